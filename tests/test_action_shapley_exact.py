"""Exact Action Shapley (Eq. 1): Shapley value without nulls, null pairs dropped."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shaprl.action_shapley import (
    FunctionGame,
    TableGame,
    exact_action_shapley,
    indispensable_points,
)
from shaprl.shapley import exact_shapley


def _voting_table(weights, quota):
    n = len(weights)
    return np.array(
        [float(sum(w for k, w in enumerate(weights) if m >> k & 1) >= quota) for m in range(1 << n)]
    )


def test_voting_game_49_49_2():
    phi = exact_action_shapley(TableGame(_voting_table([49, 49, 2], 51)))
    np.testing.assert_allclose(phi, [1 / 3] * 3)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000))
def test_without_nulls_equals_shapley(n, seed):
    table = np.random.default_rng(seed).normal(size=1 << n)
    phi = exact_action_shapley(TableGame(table))
    np.testing.assert_allclose(phi, exact_shapley(table), atol=1e-10)
    np.testing.assert_allclose(phi.sum(), table[-1] - table[0], atol=1e-10)


def test_null_pairs_are_dropped_not_zeroed():
    # n = 2; U({}) null, U({1}) = 2, U({2}) null, U({1,2}) = 5.
    table = np.array([np.nan, 2.0, np.nan, 5.0])
    phi = exact_action_shapley(TableGame(table))
    # point 1: pairs ({},{1}) null-dropped; ({2},{1,2}) dropped -> 0.
    # point 2: pair ({},{2}) dropped; ({1},{1,2}): (5 - 2) / C(1,1) -> 3, times C_f = 1/2.
    np.testing.assert_allclose(phi, [0.0, 1.5])
    assert indispensable_points(TableGame(table)) == [0]


def test_counts_distinct_evaluations():
    calls = []

    def fn(masks):
        calls.append(len(masks))
        return masks.astype(float)

    game = FunctionGame(3, fn)
    game.utilities([1, 1, 2])
    game.utilities([2, 3])
    assert game.evaluations == 3 and sum(calls) == 3


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="2\\*\\*n entries"):
        TableGame(np.zeros(6))
    with pytest.raises(ValueError, match="bitmasks"):
        TableGame(np.zeros(4)).utilities([4])
