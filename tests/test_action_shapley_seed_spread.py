"""Extra agent seeds by the corrected Algorithm 2, recorded in and replayed from a sample table."""

from __future__ import annotations

import numpy as np
import pytest

from shaprl.action_shapley import seed_spread, tables
from shaprl.action_shapley.case_studies import KUBERNETES, case_study


@pytest.fixture
def tmp_tables(tmp_path, monkeypatch):
    from shaprl.repro import locks

    monkeypatch.setattr(tables, "tables_dir", lambda root=None: tmp_path)
    monkeypatch.setattr(locks, "locks_dir", lambda: tmp_path / "locks")  # not the tree's lock
    return tmp_path


def test_a_seed_sample_is_recorded_then_replayed_without_training(tmp_tables):
    case = case_study("vm_right_sizing")
    first = seed_spread.seed_estimate(case, "ppo", 1, samples_per_size=1)
    path = seed_spread.sample_path(case, "ppo", 1)
    assert path.exists() and tables.committed_seeds(case, "ppo") == []
    again = seed_spread.seed_estimate(case, "ppo", 1, samples_per_size=1, train=False)
    np.testing.assert_allclose(first.values, again.values, atol=1e-6)  # CSV rounding
    assert first.evaluations == again.evaluations <= 2 * case.n * case.n
    with pytest.raises(LookupError, match="action-shapley-kubernetes-seeds"):
        seed_spread.seed_estimate(case, "ppo", 1, samples_per_size=3, train=False)
    spread = seed_spread.seed_spread(case, "ppo", seeds=(1, 2), samples_per_size=1)
    assert set(spread["seed"]) == {1} and len(spread) == case.n  # seed 2 not sampled: skipped


def test_the_hybrid_cost_shows_both_failure_modes_on_rare_nulls():
    n = KUBERNETES.n
    only_empty = np.full(1 << n, -100.0)
    only_empty[0] = np.nan
    cost = seed_spread.hybrid_cost_on_table(only_empty, KUBERNETES.points)
    assert cost["hybrid evaluations"] == 1 << n  # Algorithm 1 walks every level
    assert cost["algorithm 2 evaluations"] <= 4096
    masks = np.arange(1 << n)
    weights = 10.0 * np.arange(1, n + 1)  # additive game: phi_k = w_k, every marginal is w_k
    table = ((masks[:, None] >> np.arange(n)) & 1) @ weights - 500.0
    table[0] = np.nan
    table[(1 << n) - 2] = np.nan  # one null high up: the hybrid stops there for every point
    cost = seed_spread.hybrid_cost_on_table(table, KUBERNETES.points)
    assert cost["hybrid evaluations"] < 1000
    # additive: every non-null marginal is w_k, so Algorithm 2 errs only where a draw meets a null
    assert cost["algorithm 2 max |error|"] < 0.05 * cost["largest |exact value|"]
    assert cost["hybrid max |error|"] > 0.5 * cost["largest |exact value|"]  # levels dropped


def test_seed_intervals_are_t_intervals_of_the_seed_mean():
    import pandas as pd
    from scipy import stats

    exact = pd.DataFrame({"algorithm": "ppo", "seed": 0, "point": ["a", "b"], "value": [1.0, -2.0]})
    spread = pd.DataFrame(
        {
            "algorithm": "ppo",
            "seed": [1, 1, 2, 2],
            "point": ["a", "b", "a", "b"],
            "estimate": [2.0, -2.0, 3.0, -2.0],
            "stderr": [0.5, 0.1, 0.3, 0.1],
        }
    )
    out = seed_spread.seed_intervals(exact, spread).set_index("point")
    assert out.loc["a", "seeds"] == 3 and out.loc["a", "mean over seeds"] == pytest.approx(2.0)
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    assert out.loc["a", "low"] == pytest.approx(2.0 - half)
    assert out.loc["a", "mean Monte Carlo s.e."] == pytest.approx(0.4)
    assert out.loc["b", "sd over seeds"] == 0.0 and out.loc["b", "seed 0 (exact)"] == -2.0


def test_sample_progress_reads_each_seeds_json(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(tables, "tables_dir", lambda root=None: tmp_path)
    case = case_study("kubernetes")
    meta = seed_spread.sample_path(case, "sac", 2).with_suffix(".json")
    meta.write_text(json.dumps({"n_subsets": 1024}))
    assert seed_spread.sample_progress(case, "sac") == "1: -, 2: 1,024, 3: -, 4: -"


def test_seed_congruence_compares_across_algorithms_with_within_algorithm_seed_agreement():
    import pandas as pd

    points = ["a", "b", "c", "d"]
    base = np.array([4.0, 3.0, 2.0, 1.0])
    jitter = {1: [0, 0, 0, 0], 2: [0, 0, 1.5, 0], 3: [0, 0, 0, 0]}  # seed 2 swaps b and c

    def frames(sign: float):
        exact = pd.concat(
            [pd.DataFrame({"algorithm": a, "seed": 0, "point": points, "value": base})
             for a in ("sac", "ppo")]
        )  # fmt: skip
        spread = pd.concat(
            [pd.DataFrame({"algorithm": a, "seed": s, "point": points,
                           "estimate": (base if a == "sac" else sign * base) + jitter[s]})
             for a in ("sac", "ppo") for s in (1, 2, 3)]
        )  # fmt: skip
        return exact, spread

    same = seed_spread.seed_congruence(*frames(1.0))
    assert same["seeds_sac"] == same["seeds_ppo"] == 4
    assert same["within_sac"] == pytest.approx(same["within_ppo"])
    assert same["cross"] >= min(same["within_sac"], same["within_ppo"])
    assert same["verdict"] == "congruent"
    flipped = seed_spread.seed_congruence(*frames(-1.0))  # PPO's seeds 1-3 rank in reverse
    assert flipped["cross"] < flipped["within_sac"] and flipped["verdict"] == "not congruent"
    exact, spread = frames(1.0)
    alone = seed_spread.seed_congruence(exact, spread[spread.algorithm == "ppo"].iloc[:0])
    assert alone["seeds_sac"] == 1 and alone["verdict"] == "undetermined"
