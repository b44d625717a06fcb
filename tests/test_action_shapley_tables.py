"""Committed utility tables (sample recomputation), cut-off cardinality, sampled estimate."""

import json
import shutil
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from shaprl.action_shapley import TableGame, exact_action_shapley
from shaprl.action_shapley.analysis import cutoff_cardinalities, p_comp
from shaprl.action_shapley.case_studies import VM_RIGHT_SIZING
from shaprl.action_shapley.tables import load_table, machine, recheck_tables, table_path
from shaprl.action_shapley.utility import UTILITY_CODE, stratified_estimate
from shaprl.repro.cache import library_fingerprint


def test_committed_table_matches_the_code_on_a_sample():
    frame, meta = load_table(VM_RIGHT_SIZING, "ppo", 0)
    assert len(frame) == 32 and meta["complete"] and meta["budget"]["total_steps"] > 0
    assert np.isnan(frame.set_index("mask").loc[0, "utility"])  # U(empty) is null
    assert meta["schema_version"] == 2 and meta["runs"] >= 10 and meta["goal"] == "band"
    assert (frame["runs"] >= 10).all() and (frame.loc[frame["mask"] == 0, "failures"] == 10).all()
    out = recheck_tables(VM_RIGHT_SIZING, "ppo", seeds=[0], n_sample=4)
    assert len(out) == 4 and set(out["seed"]) == {0} and out["run"].between(0, 9).all()
    # made on another machine: a difference is a warning, never silent
    assert (out["agree"] | out["note"].str.startswith("warning")).all()


@pytest.fixture
def copied(tmp_path, monkeypatch):
    """A throw-away repository holding VM right-sizing's PPO seed-0 table and the traces."""
    src = table_path(VM_RIGHT_SIZING, "ppo", 0)
    dst = tmp_path / "data" / "action_shapley" / "utilities"
    dst.mkdir(parents=True)
    for ext in (".csv", ".json"):
        shutil.copy(src.with_suffix(ext), dst / src.with_suffix(ext).name)
    shutil.copytree(src.parents[1] / "traces", tmp_path / "data" / "action_shapley" / "traces")
    (tmp_path / "lib" / "shaprl").mkdir(parents=True)
    monkeypatch.setenv("SHAPRL_ROOT", str(tmp_path))
    return dst / src.name


def test_a_tampered_table_is_refused_naming_the_make_target(copied):
    frame = pd.read_csv(copied, dtype={"run_success": str})
    frame["utility"] = frame["utility"] - 5.0  # every run's return (and so U) off by 5
    frame["run_returns"] = [
        ";".join(f"{float(x) - 5.0:.10g}" for x in r.split(";")) for r in frame["run_returns"]
    ]
    frame.to_csv(copied, index=False)
    # made on another machine: a warning beside the claims, not a failure
    meta_path = copied.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "cpu_model": "another CPU"}))
    out = recheck_tables(VM_RIGHT_SIZING, "ppo", seeds=[0], n_sample=2)
    assert out["note"].str.startswith("warning: made on another machine").any()
    # made here, by other code: fails, naming the cause and the make target
    meta = {**meta, **machine(), "code_fingerprint": "0000000000000000"}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(RuntimeError, match="utility code changed.*make action-shapley-tables"):
        recheck_tables(VM_RIGHT_SIZING, "ppo", seeds=[0], n_sample=2)
    # made here, by this code: a determinism bug
    meta_path.write_text(
        json.dumps({**meta, "code_fingerprint": library_fingerprint(UTILITY_CODE)})
    )
    with pytest.raises(RuntimeError, match="same code, traces and machine: a determinism bug"):
        recheck_tables(VM_RIGHT_SIZING, "ppo", seeds=[0], n_sample=2)


def test_cutoff_cardinality_of_a_threshold_game():
    # n = 4: every subset with fewer than 3 points is null -> theta_k = 3 for all k
    n = 4
    table = np.array([np.nan if bin(m).count("1") < 3 else float(m) for m in range(1 << n)])
    np.testing.assert_array_equal(cutoff_cardinalities(table, n), [3, 3, 3, 3])
    assert p_comp(3, 4) == 0.5
    none_null = np.arange(1 << n, dtype=float)
    np.testing.assert_array_equal(cutoff_cardinalities(none_null, n), [1, 1, 1, 1])


def test_stratified_estimate_is_exact_when_every_subset_is_drawn_once():
    n = 4
    rng = np.random.default_rng(1)
    table = rng.normal(size=1 << n)
    table[[0, 3, 9]] = np.nan
    pairs = []
    for k in range(n):
        others = [j for j in range(n) if j != k]
        for i in range(n):
            for chosen in combinations(others, i):
                d = sum(1 << j for j in chosen)
                pairs.append((k, d, d | 1 << k))
    util = dict(enumerate(table))
    np.testing.assert_allclose(
        stratified_estimate(n, pairs, util), exact_action_shapley(TableGame(table)), atol=1e-12
    )


# -- validated committed tables (pipeline integrity II) ------------------------------------------
def _edit(path, fn):
    lines = path.read_text().splitlines()
    path.write_text("\n".join(fn(lines)) + "\n")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # a duplicated mask, still 32 rows: rows were used by position before
        (lambda ls: ls[:6] + [ls[5]] + ls[7:], r"line 7, column 'mask': duplicate row \(mask=4\)"),
        (lambda ls: ls[:-1], r"complete but the table has 31 of 32 subsets \(absent: \[31\]\)"),
        (
            lambda ls: [*ls, "32,{x},1.0,3,1,0,1.0,1,3"],
            r"line 34, column 'mask': 32 is not a subset",
        ),
        (
            lambda ls: [ls[0], ls[1].replace(",,", ",abc,"), *ls[2:]],
            r"line 2, column 'utility': expected a number, got 'abc'",
        ),
        (
            lambda ls: [ls[0], ls[1], ls[2].replace("{a1}", "{a2}"), *ls[3:]],
            r"line 3, column 'subset': '\{a2\}' does not match mask 1",
        ),
    ],
    ids=["duplicate", "31-rows", "33-rows", "text", "label"],
)
def test_a_malformed_table_names_file_line_column_and_fix(copied, edit, message):
    from shaprl.repro.data import DataFormatError

    _edit(copied, edit)
    with pytest.raises(DataFormatError, match=message) as err:
        load_table(VM_RIGHT_SIZING, "ppo", 0)
    assert str(copied) in str(err.value) and "make action-shapley-tables" in str(err.value)


def test_a_table_built_from_other_traces_is_refused(copied):
    from shaprl.repro.data import DataFormatError

    traces = copied.parents[1] / "traces" / "vm_right_sizing.csv"
    _edit(traces, lambda ls: [ls[0], ls[1].rsplit(",", 1)[0] + ",1.0", *ls[2:]])
    with pytest.raises(
        DataFormatError, match="built from other traces .*: run `make action-shapley-tables`"
    ):
        load_table(VM_RIGHT_SIZING, "ppo", 0)


def test_an_unknown_schema_version_is_refused(copied):
    import json

    from shaprl.repro.data import DataFormatError

    meta = copied.with_suffix(".json")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "schema_version": 9}))
    with pytest.raises(DataFormatError, match="newer than this code reads"):
        load_table(VM_RIGHT_SIZING, "ppo", 0)


def test_the_recheck_sample_moves_when_a_table_changes(copied):
    from shaprl.action_shapley.tables import draw_sample

    before = draw_sample(VM_RIGHT_SIZING, "ppo", [0], 6)
    assert before == draw_sample(VM_RIGHT_SIZING, "ppo", [0], 6)  # the same on every call
    frame = pd.read_csv(copied, dtype={"run_success": str})
    # a failed run's return changes (U does not): the sample still moves
    runs = frame.loc[0, "run_returns"].split(";")
    frame.loc[0, "run_returns"] = ";".join([f"{float(runs[0]) - 1.0:.10g}", *runs[1:]])
    frame.to_csv(copied, index=False)
    assert draw_sample(VM_RIGHT_SIZING, "ppo", [0], 6) != before


def test_the_sb3_check_reads_its_verdict_columns_as_booleans():
    from shaprl.action_shapley.tables import check_path, load_check

    ref = load_check("sb3_reference")
    for col in ("same_verdict", "inside_sb3_spread", "sb3_majority_null"):
        assert ref[col].dtype == bool, col
    raw = pd.read_csv(check_path("sb3_reference"), dtype=str)  # the committed text
    inside = int((raw["inside_sb3_spread"] == "True").sum())
    assert 0 < inside < len(raw)  # both kinds present, so a string sum would show
    assert f"{int(ref.inside_sb3_spread.sum())}/{len(ref)}" == f"{inside}/{len(raw)}"


def test_degeneracy_counts_the_common_utility_of_load_balancing():
    from shaprl.action_shapley.analysis import degeneracy
    from shaprl.action_shapley.case_studies import case_study

    lb = degeneracy(case_study("load_balancing"))
    assert (lb["distinct non-null utilities"] < 0.2 * lb["non-null subsets"]).all()
    assert (lb["most common utility"].round(2) == -135.44).all()
    vm = degeneracy(VM_RIGHT_SIZING)
    assert (vm["distinct non-null utilities"] == vm["non-null subsets"]).all()


def test_recheck_verdict_leaves_legacy_tables_out():
    from shaprl.action_shapley.tables import recheck_holds, recheck_summary

    legacy = {"algorithm": "sac", "seed": 0, "mask": -1, "run": -1, "agree": False,
              "note": "legacy: made before issue 17"}  # fmt: skip
    ok = [{"algorithm": "ppo", "seed": 0, "mask": m, "run": 0, "agree": True, "note": ""}
          for m in (3, 5)]  # fmt: skip
    frame = pd.DataFrame([*ok, legacy])
    assert recheck_holds(frame) is True  # the legacy SAC row is not a disagreement
    assert recheck_summary(frame).startswith("2/2 recomputed")
    assert "legacy table(s) not recomputed: sac" in recheck_summary(frame)
    assert recheck_holds(pd.DataFrame([legacy])) == "not testable"
    bad = pd.DataFrame([*ok, {**ok[0], "mask": 9, "agree": False}, legacy])
    assert recheck_holds(bad) is False
    warned = pd.DataFrame([*ok, {**ok[0], "mask": 9, "agree": False, "note": "warning: other CPU"}])
    assert recheck_holds(warned) == "partly"


def test_is_legacy_follows_the_schema_version_as_load_table_does(copied):
    from shaprl.action_shapley.estimators.summary import CURRENT, LEGACY, table_kind
    from shaprl.action_shapley.tables import is_legacy

    # a schema-2 table (the paper's goal): not legacy, by CaseStudy or by key
    assert is_legacy(VM_RIGHT_SIZING, "ppo", 0) is False
    assert is_legacy("vm_right_sizing", "ppo") is False
    assert load_table(VM_RIGHT_SIZING, "ppo", 0)[1]["legacy"] is False
    assert table_kind("vm_right_sizing", "ppo") == CURRENT
    # the same table marked version 1 (made before issue 17): legacy, for both readers
    meta_path = copied.with_suffix(".json")
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "schema_version": 1}))
    assert is_legacy(VM_RIGHT_SIZING, "ppo", 0) is True
    assert load_table(VM_RIGHT_SIZING, "ppo", 0)[1]["legacy"] is True
    assert table_kind("vm_right_sizing", "ppo") == LEGACY
    # no table: refused as load_table refuses it, naming the make target
    with pytest.raises(FileNotFoundError, match="make action-shapley-tables"):
        is_legacy(VM_RIGHT_SIZING, "sac", 0)


def test_beats_holding_needs_every_run_at_the_budget(monkeypatch):
    from shaprl.action_shapley import sb3_reference

    hold = {"vm_right_sizing": (-100.0, True), "load_balancing": (-50.0, False)}
    monkeypatch.setattr(
        sb3_reference,
        "hold_initial",
        lambda case: dict(zip(("reward", "success"), hold[case.key], strict=True)),
    )
    sweep = pd.DataFrame(
        {
            "case": ["vm_right_sizing"] * 3 + ["load_balancing"] * 2,
            "algo": "ppo",
            "steps": [10, 10, 20, 10, 10],
            "system_return": [-90.0, -80.0, -500.0, -60.0, -70.0],
            "success": [True, True, False, True, False],
        }
    )
    beat = sb3_reference.beats_holding(sweep, 10).set_index("case")
    assert beat.loc["vm_right_sizing", "system_return"] == -85.0  # the run at 20 left out
    assert beat.loc["vm_right_sizing", "beats_hold"]  # -85 > -100, every run succeeds
    assert not beat.loc["load_balancing", "beats_hold"]  # a run fails: no, though hold fails


def test_beats_holding_takes_each_algorithm_at_its_own_budget(monkeypatch):
    from shaprl.action_shapley import sb3_reference

    monkeypatch.setattr(
        sb3_reference, "hold_initial", lambda case: {"reward": -100.0, "success": True}
    )
    sweep = pd.DataFrame(
        {
            "case": "vm_right_sizing",
            "algo": ["ppo", "ppo", "sac", "sac"],
            "steps": [12, 6, 6, 12],
            "system_return": [-90.0, -500.0, -80.0, -700.0],
            "success": True,
        }
    )
    beat = sb3_reference.beats_holding(sweep, {"ppo": 12, "sac": 6}).set_index("algo")
    assert beat.loc["ppo", "system_return"] == -90.0 and beat.loc["sac", "system_return"] == -80.0
    assert beat.beats_hold.all()


def test_a_committed_block_needs_every_budget_and_run():
    from shaprl.action_shapley.sb3_reference import committed_block

    rows = [("vm", "ppo", t, r) for t in (6, 12) for r in range(2)] + [("vm", "sac", 6, 0)]
    sweep = pd.DataFrame(rows, columns=["case", "algo", "steps", "run"])
    kept = committed_block(sweep, "vm", "ppo", (6, 12), runs=2)
    assert kept is not None and len(kept) == 4 and set(kept.algo) == {"ppo"}
    assert committed_block(sweep, "vm", "ppo", (6, 12, 24), runs=2) is None  # a budget missing
    assert committed_block(sweep, "vm", "sac", (6,), runs=2) is None  # a run missing
    assert committed_block(sweep, "db", "ppo", (6,), runs=1) is None  # another case
    assert committed_block(None, "vm", "ppo", (6,), runs=1) is None  # nothing committed


def test_table_status_names_the_table_each_algorithm_is_read_from():
    from shaprl.action_shapley.analysis import table_status
    from shaprl.action_shapley.case_studies import case_study

    status = table_status(case_study("vm_right_sizing"), algos=("ppo",)).iloc[0]
    assert status["table"] == "paper's goal" and status["runs per subset"] == 10
    assert status["subsets"] == 32 and status["partial table (subsets)"] is None
