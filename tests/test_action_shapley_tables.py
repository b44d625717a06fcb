"""Committed utility tables (sample recomputation), cut-off cardinality, sampled estimate."""

import shutil
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from shaprl.action_shapley import TableGame, exact_action_shapley
from shaprl.action_shapley.analysis import cutoff_cardinalities, p_comp
from shaprl.action_shapley.case_studies import VM_RIGHT_SIZING
from shaprl.action_shapley.tables import load_table, recheck_tables, table_path
from shaprl.action_shapley.utility import stratified_estimate


def test_committed_table_matches_the_code_on_a_sample():
    frame, meta = load_table(VM_RIGHT_SIZING, "ppo", 0)
    assert len(frame) == 32 and meta["complete"] and meta["budget"]["total_steps"] > 0
    assert np.isnan(frame.set_index("mask").loc[0, "utility"])  # U(empty) is null
    out = recheck_tables(VM_RIGHT_SIZING, "ppo", seeds=[0, 1], n_sample=4)
    assert len(out) == 4 and out["agree"].all() and set(out["seed"]) == {0, 1}


def test_a_tampered_table_is_refused_naming_the_make_target(tmp_path, monkeypatch):
    src = table_path(VM_RIGHT_SIZING, "ppo", 0)
    dst = tmp_path / "data" / "action_shapley" / "utilities"
    dst.mkdir(parents=True)
    for ext in (".csv", ".json"):
        shutil.copy(src.with_suffix(ext), dst / src.with_suffix(ext).name)
    frame = pd.read_csv(dst / src.name)
    frame["utility"] = frame["utility"] - 5.0  # every non-null utility off by 5
    frame.to_csv(dst / src.name, index=False)
    (tmp_path / "lib" / "shaprl").mkdir(parents=True)
    monkeypatch.setenv("SHAPRL_ROOT", str(tmp_path))
    shutil.copytree(src.parents[1] / "traces", tmp_path / "data" / "action_shapley" / "traces")
    with pytest.raises(RuntimeError, match="make action-shapley-tables"):
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
