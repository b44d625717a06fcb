"""Notebook 30's Mastermind-333 settle chunks (FastSVERL App. C Fig. 4): the authors' budgets,
the split by kind changes no number, the chunk round-trips to the notebook's layout, and the
two Mastermind-333 claims are decided by committed chunks only when both are there.

Nothing here builds the real Mastermind-333 problem or agent (~6 min, 5 GB and a 1M-step
DQN): the computation runs on a small Hypercube problem, the claims on synthetic chunks.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from shaprl.fastsverl import authors, settle
from shaprl.fastsverl import experiments as ex
from shaprl.repro.claims import INDICATIVE, decide

KEYS = ("appC_mm333_low_error_vs_authors", "fig4_mm333_learned_upstream_less_accurate")


# -- configuration ---------------------------------------------------------------------------
def test_chunk_configs_carry_the_authors_budgets():
    assert ex.MM333_CHUNKS == settle.MM333_ACCURACY_CHUNKS
    beh = settle.CHUNKS["mm333_accuracy_behaviour"].config
    pred = settle.CHUNKS["mm333_accuracy_prediction"].config
    assert (beh["kind"], beh["char"], beh["shapley"]) == ("behaviour", 62_000, 18_600)
    assert (pred["kind"], pred["char"], pred["shapley"]) == ("prediction", 124_000, 31_000)
    for cfg in (beh, pred):
        assert cfg["domain"] == "Mastermind-333" and cfg["dqn"] == 1_000_000
        assert cfg["seed"] == 0 and cfg["runs"] == 5 and cfg["eval_every"] == 620
        assert cfg["char"] % cfg["eval_every"] == 0 and cfg["shapley"] % cfg["eval_every"] == 0
    # the same numbers as the authors' own panels (App. C Fig. 4)
    for kind, cfg in (("policy", beh), ("value", pred)):
        d = "mastermind_333"
        assert authors.panel(f"app_{d}_{kind}_char.pdf", "mean").final_update == cfg["char"]
        for label in ("Exact characteristic", "Approx characteristic"):
            ref = authors.panel(f"app_{d}_{kind}_shapley.pdf", label)
            assert ref.final_update == cfg["shapley"] >= ref.settle_update
    for name in ex.MM333_CHUNKS:
        chunk = settle.CHUNKS[name]
        assert chunk.claims == KEYS and chunk.estimate_cpu_s > 0
    for key in KEYS:
        assert ex.SETTLE_BUDGETS[key].where == " + ".join(ex.MM333_CHUNKS)


def test_paper_profile_runs_the_authors_prediction_shapley_budget(monkeypatch):
    """MM-333's prediction Shapley budget is the authors' 31,000 under ``paper``; the cache
    keys of the other domains' runs are unchanged (the override is left out when unset)."""
    from shaprl import repro

    monkeypatch.setattr(repro, "cached", lambda name, key, compute: key)
    old_fields = {
        "behaviour_char",
        "prediction_char",
        "shapley",
        "outcome_shapley",
        "n_runs",
        "eval_every",
        "hidden",
        "seed",
        "kinds",
    }
    for profile in ex.ACCURACY_PROFILES.values():
        for name, budget in profile["domains"].items():
            key = ex.domain_accuracy(name, None, budget)
            if name == "Mastermind-333":
                assert key["budget"]["prediction_shapley"] == 31_000
                assert key["budget"]["shapley"] == 18_600
            else:
                assert set(key["budget"]) == old_fields, (name, key["budget"])


# -- the computation, on a small problem -----------------------------------------------------
@pytest.fixture(scope="module")
def small_problem():
    return ex.hypercube_problem(3, 2, max_eval_rows=64)


TINY = ex.AccuracyBudget(
    behaviour_char=40, prediction_char=30, shapley=20, n_runs=2, eval_every=10, hidden=(16, 16)
)


def test_splitting_by_kind_changes_no_number(small_problem):
    torch.set_num_threads(1)
    both, _ = ex.accuracy_curves(small_problem, replace(TINY, kinds=("behaviour", "prediction")))
    parts = [
        ex.accuracy_curves(small_problem, replace(TINY, kinds=(k,)))[0]
        for k in ("behaviour", "prediction")
    ]
    split = pd.concat(parts, ignore_index=True)
    key = ["model", "kind", "upstream", "run", "update"]
    pd.testing.assert_frame_equal(
        both.sort_values(key).reset_index(drop=True),
        split.sort_values(key).reset_index(drop=True),
    )  # bitwise


def test_chunk_computation_round_trips_to_the_notebook_layout(small_problem, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setattr(ex, "domain_problem", lambda name, **kw: (None, small_problem))
    cfg = {
        **settle.CHUNKS["mm333_accuracy_prediction"].config,
        "char": 30,
        "shapley": 20,
        "eval_every": 10,
        "runs": 2,
    }
    table = settle.CHUNKS["mm333_accuracy_prediction"].compute(cfg, "cpu")
    assert set(table["metric"]) == {
        "characteristic prediction exact",
        "shapley prediction exact",
        "shapley prediction learned",
        *(
            f"{m} | validation loss"
            for m in (
                "characteristic prediction exact",
                "shapley prediction exact",
                "shapley prediction learned",
            )
        ),
    }
    budget = ex.AccuracyBudget(
        prediction_char=30,
        shapley=20,
        n_runs=2,
        eval_every=10,
        hidden=ex.DOMAINS["Mastermind-333"]["hidden"],
        kinds=("prediction",),
    )
    curves, summary = ex.accuracy_curves(
        small_problem, budget, domain="Mastermind-333", validation=True
    )
    back = settle.accuracy_frame(table, "Mastermind-333")
    key = ["model", "kind", "upstream", "run", "update"]
    pd.testing.assert_frame_equal(
        back.sort_values(key).reset_index(drop=True)[sorted(back.columns)],
        curves.sort_values(key).reset_index(drop=True)[sorted(back.columns)],
        check_dtype=False,
    )
    # the selected model of each run (lowest validation loss): the trainers' own summary
    got = settle.accuracy_summary(table, "Mastermind-333").set_index(["model", "upstream"])
    want = summary.set_index(["model", "upstream"])
    np.testing.assert_allclose(
        got.loc[want.index, "final exact MSE"], want["final exact MSE"], rtol=1e-6
    )
    assert got["updates"].to_dict() == {
        ("characteristic", "exact"): 30,
        ("shapley", "exact"): 20,
        ("shapley", "learned"): 20,
    }


def test_summary_selects_each_runs_lowest_validation_loss():
    rows = []
    for run, (exact, val) in enumerate(
        (([0.5, 0.2, 0.3], [1.0, 0.4, 0.6]), ([0.5, 0.25, 0.1], [1.0, 0.3, 0.3]))
    ):
        for validation, values in ((False, exact), (True, val)):
            rows.append(
                pd.DataFrame(
                    {
                        "run": run,
                        "update": [0, 10, 20],
                        "metric": settle.accuracy_metric(
                            "shapley", "behaviour", "exact", validation
                        ),
                        "value": values,
                    }
                )
            )
    s = settle.accuracy_summary(pd.concat(rows), "Mastermind-333").iloc[0]
    # run 0: lowest validation loss at 10 (0.2); run 1: tied at 10 and 20, the first (0.25)
    assert s["final exact MSE"] == pytest.approx((0.2 + 0.25) / 2)
    assert (s["model"], s["kind"], s["upstream"], s["updates"], s["runs"]) == (
        "shapley",
        "behaviour",
        "exact",
        20,
        2,
    )


# -- committed chunks (synthetic) ------------------------------------------------------------
#: designed final exact MSEs; the authors': behaviour char. 2.6e-3, prediction char. 7.6e-3,
#: behaviour Shapley 4.1e-5 (exact) / 2.4e-4 (approx), prediction 8.4e-4 / 1.4e-3
FINAL = {
    ("characteristic", "behaviour", "exact"): 2e-3,
    ("characteristic", "prediction", "exact"): 6e-3,
    ("shapley", "behaviour", "exact"): 5e-5,
    ("shapley", "prediction", "exact"): 1e-3,
}
#: learned upstream above exact (the paper's claim) or below it (the claim fails)
LEARNED = {
    "above": {"behaviour": 3e-4, "prediction": 1.5e-3},
    "below": {"behaviour": 4e-5, "prediction": 9e-4},
}


def _synthetic(design: str):
    def compute(cfg, device):
        kind, every = cfg["kind"], cfg["eval_every"]
        finals = {k: v for k, v in FINAL.items() if k[1] == kind}
        finals[("shapley", kind, "learned")] = LEARNED[design][kind]
        rows = []
        for (model, _, upstream), final in finals.items():
            n = cfg["char"] if model == "characteristic" else cfg["shapley"]
            u = np.arange(0, n + 1, every)
            for run in range(cfg["runs"]):
                curve = final * (1 + 0.01 * run) * (1 + 9 * np.exp(-10 * u / n))
                for validation, v in ((False, curve), (True, 3 * curve)):
                    metric = settle.accuracy_metric(model, kind, upstream, validation)
                    rows.append(
                        pd.DataFrame({"run": run, "update": u, "metric": metric, "value": v})
                    )
        return pd.concat(rows, ignore_index=True)

    return compute


def _row(domain, model, kind, upstream, updates, mse):
    return dict(
        domain=domain,
        model=model,
        kind=kind,
        upstream=upstream,
        updates=updates,
        runs=4,
        **{"final exact MSE": mse, "stderr": 0.0},
    )


#: this run's summary under quick: Gridworld / Mastermind-222 only
QUICK = pd.DataFrame(
    [
        _row("Mastermind-222", "characteristic", "behaviour", "exact", 3_100, 0.0017),
        _row("Mastermind-222", "shapley", "behaviour", "exact", 3_100, 0.0005),
        _row("Mastermind-222", "shapley", "behaviour", "learned", 3_100, 0.0009),
    ]
)


def _commit(root, monkeypatch, design):
    import shutil

    (root / "lib" / "shaprl").mkdir(parents=True, exist_ok=True)
    (root / "data" / "fastsverl").mkdir(parents=True, exist_ok=True)
    for p in (authors.panels_path(), authors.points_path()):  # the authors' committed curves
        for f in (p, p.with_suffix(".json")):
            shutil.copy(f, root / "data" / "fastsverl" / f.name)
    monkeypatch.setenv("SHAPRL_ROOT", str(root))
    for name in ex.MM333_CHUNKS:
        monkeypatch.setitem(
            settle.CHUNKS, name, replace(settle.CHUNKS[name], compute=_synthetic(design))
        )
        settle.run_chunk(name)


def _claims(summary=QUICK, profile="quick"):
    """Notebook 30's path: every available chunk loaded, the claims decided."""
    names = (*ex.ACCURACY_CHUNKS, *ex.MM333_CHUNKS)
    chunks = {n: settle.load(n) for n in names if settle.available(n)}
    out = {}
    for c in ex.accuracy_claims(summary, chunks):
        if c["key"] in KEYS:
            keys = ("holds", "measured", "needs", "source")
            out[c["key"]] = decide(c["key"], profile=profile, **{k: c[k] for k in keys})
    return out


@pytest.mark.parametrize(
    ("design", "ordering"), [("above", "reproduced"), ("below", "not reproduced")]
)
def test_claims_decided_by_committed_chunks(tmp_path, monkeypatch, design, ordering):
    _commit(tmp_path, monkeypatch, design)
    got = _claims()
    assert got["appC_mm333_low_error_vs_authors"][0] == "reproduced"
    assert got["fig4_mm333_learned_upstream_less_accurate"][0] == ordering
    for _, measured, source in got.values():
        assert "mm333_accuracy_behaviour.csv" in source
        assert "mm333_accuracy_prediction.csv" in source
        assert "not re-run under quick" in measured and "make fastsverl-settle" not in measured
    measured = got["appC_mm333_low_error_vs_authors"][1]
    assert "Mastermind-333 prediction characteristic (exact): 0.0061 vs authors 0.0076" in measured
    assert "Mastermind-333 prediction shapley (exact): 0.001 vs authors 0.00084" in measured


def test_a_prediction_char_far_above_the_authors_is_graded_outside(tmp_path, monkeypatch):
    monkeypatch.setitem(FINAL, ("characteristic", "prediction", "exact"), 0.05)  # > 2 x 0.0076
    _commit(tmp_path, monkeypatch, "above")
    assert _claims()["appC_mm333_low_error_vs_authors"][0] == "partly reproduced"


def test_claims_wait_for_a_missing_chunk(tmp_path, monkeypatch):
    _commit(tmp_path, monkeypatch, "above")
    settle.path("mm333_accuracy_prediction").unlink()
    assert settle.read_mm333_accuracy({"mm333_accuracy_behaviour": ()}) is None
    for status, measured, _ in _claims().values():
        assert status == INDICATIVE
        assert (
            "make fastsverl-settle CHUNKS='mm333_accuracy_behaviour mm333_accuracy_prediction'"
            in measured
        )
        assert "[settle budget" in measured


def test_the_paper_profile_decides_by_its_own_run(tmp_path, monkeypatch):
    _commit(tmp_path, monkeypatch, "below")
    own = pd.DataFrame(
        [
            _row("Mastermind-333", "characteristic", "behaviour", "exact", 62_000, 0.002),
            _row("Mastermind-333", "characteristic", "prediction", "exact", 124_000, 0.006),
            _row("Mastermind-333", "shapley", "behaviour", "exact", 18_600, 5e-5),
            _row("Mastermind-333", "shapley", "behaviour", "learned", 18_600, 3e-4),
            _row("Mastermind-333", "shapley", "prediction", "exact", 31_000, 1e-3),
            _row("Mastermind-333", "shapley", "prediction", "learned", 31_000, 1.5e-3),
        ]
    )
    got = _claims(pd.concat([QUICK, own], ignore_index=True), profile="paper")
    assert got["fig4_mm333_learned_upstream_less_accurate"][0] == "reproduced"  # not the chunks'
    assert all(source == "this run (paper)" for _, _, source in got.values())
