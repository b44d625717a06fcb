"""Both world models: the fixed basis and the paper's per-subset fit, compared over all subsets."""

from __future__ import annotations

import numpy as np
import pytest

from shaprl.action_shapley import analysis, tables
from shaprl.action_shapley.case_studies import case_study
from shaprl.action_shapley.traces import load_traces, traces_path
from shaprl.action_shapley.utility import world_models
from shaprl.action_shapley.world_model import SufficientStatistics, fit_per_subset


def test_world_models_stack_the_requested_kind():
    case = case_study("vm_right_sizing")
    traces = load_traces(traces_path(case), case)
    masks = np.array([0, 3, 31, 3])
    fixed = world_models(traces, masks, "fixed-basis")
    np.testing.assert_array_equal(fixed.weights, SufficientStatistics(traces).fit(masks).weights)
    per = world_models(traces, masks, "per-subset", seed=0)
    assert per.valid.tolist() == [False, True, True, True]
    np.testing.assert_array_equal(per.centres[1], per.centres[3])  # one fit per subset
    np.testing.assert_allclose(per.weights[2], fit_per_subset(traces, 31, 0).weights[0])
    with pytest.raises(ValueError, match="world_model must be one of"):
        world_models(traces, masks, "neural")


@pytest.mark.parametrize("kind", ["fixed-basis", "per-subset"])
def test_a_fit_does_not_depend_on_the_machines_thread_counts(kind):
    from threadpoolctl import threadpool_limits

    case = case_study("vm_right_sizing")
    traces = load_traces(traces_path(case), case)
    masks = np.arange(1, 1 << case.n)
    fits = []
    for threads in (1, 4):  # e.g. a one-core laptop and a four-core workstation
        with threadpool_limits(limits=threads):  # OpenBLAS and OpenMP
            fits.append(world_models(traces, masks, kind, seed=0))
    for field in ("shift", "mix", "centres", "weights"):
        np.testing.assert_array_equal(getattr(fits[0], field), getattr(fits[1], field))


def _fake_table(case, utilities, world_model, tmp_path):
    n_all = 1 << case.n
    ret = np.nan_to_num(np.asarray(utilities, float))[:, None].repeat(2, 1)
    ok = ~np.isnan(np.asarray(utilities, float))[:, None].repeat(2, 1)
    out = {
        r: {"mask": list(range(n_all)), "return": ret[:, r].tolist(),
            "success": ok[:, r].tolist(), "convergence": [3.0] * n_all}
        for r in range(2)
    }  # fmt: skip
    frame = tables.runs_frame(case, out)
    tables.save_table(frame, case, "ppo", 0, 1.0, episodes=5, world_model=world_model)


def test_the_comparison_counts_verdicts_and_correlates_values(tmp_path, monkeypatch):
    from shaprl.repro import locks

    monkeypatch.setattr(tables, "tables_dir", lambda root=None: tmp_path)
    monkeypatch.setattr(locks, "locks_dir", lambda: tmp_path / "locks")
    case = case_study("vm_right_sizing")
    masks = np.arange(1 << case.n)
    sizes = np.array([bin(m).count("1") for m in masks], float)
    additive = ((masks[:, None] >> np.arange(case.n)) & 1) @ np.arange(1.0, 6.0)
    fixed = np.where(sizes == 0, np.nan, additive)
    per = fixed.copy()
    per[1] = np.nan  # one more null subset under the per-subset fit
    _fake_table(case, fixed, "fixed-basis", tmp_path)
    _fake_table(case, per, "per-subset", tmp_path)
    assert tables.table_path(case, "ppo", 0, world_model="per-subset").name.endswith(
        "_seed0_per_subset.csv"
    )
    assert tables.committed_seeds(case, "ppo") == [0]  # the per-subset table is not a seed
    summary, values = analysis.world_model_comparison(case, algos=("ppo", "sac"))
    row = summary.set_index("algorithm").loc["ppo"]
    assert len(summary) == 1  # no SAC table: skipped
    assert row["same null verdict"] == "30/31" and row["null (fixed / per subset)"] == "0 / 1"
    assert row["spearman of values"] > 0.9
    assert len(values) == case.n


def test_agreement_sample_takes_up_to_k_subsets_of_every_size():
    from shaprl.action_shapley.utility import agreement_sample

    case = case_study("kubernetes")  # 15 points
    masks = agreement_sample(case, per_size=8, seed=0)
    sizes = np.array([bin(m).count("1") for m in masks])
    # every size present; sizes 1, 14 and 15 have 15, 15 and 1 subsets: 8, 8 and 1 drawn
    assert sorted(set(sizes)) == list(range(1, 16)) and masks == sorted(set(masks))
    assert (sizes == 1).sum() == 8 and (sizes == 15).sum() == 1 and len(masks) == 13 * 8 + 1 + 8
    assert agreement_sample(case, per_size=8, seed=0) == masks  # seeded
    assert agreement_sample(case, per_size=8, seed=1) != masks


def test_world_model_agreement_pairs_both_models_on_the_same_runs(monkeypatch):
    from shaprl.action_shapley import utility

    case = case_study("vm_right_sizing")
    calls = []

    def outcomes(case, algo, masks, runs, base_seed, traces=None, world_model="fixed-basis"):
        calls.append((world_model, runs, base_seed))
        shift = 0.0 if world_model == "fixed-basis" else 1.0
        return {
            r: {
                "mask": masks,
                "return": [-float(m) - shift for m in masks],
                # mask 3 fails under the per-subset model only: a verdict that differs
                "success": [not (world_model == "per-subset" and m == 3) for m in masks],
            }
            for r in range(runs)
        }

    monkeypatch.setattr(utility, "multi_run_outcomes", outcomes)
    frame = utility.world_model_agreement(case, "ppo", [1, 3, 31], runs=1)
    assert calls == [("fixed-basis", 1, 0), ("per-subset", 1, 0)]
    assert frame["utility_fixed_basis"].tolist() == [-1.0, -3.0, -31.0]
    assert frame["utility_per_subset"].iloc[[0, 2]].tolist() == [-2.0, -32.0]
    assert frame["same_verdict"].tolist() == [True, False, True]
    assert frame["size"].tolist() == [1, 2, 5] and (frame["mean_abs_prediction_gap"] >= 0).all()
