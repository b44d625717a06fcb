"""Shapley core: the four axioms on random games, and agreement between estimators."""

from itertools import permutations
from math import factorial

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shaprl.shapley import (
    MAX_EXACT_PLAYERS,
    TableGame,
    coalition_label,
    exact_shapley,
    kernel_shapley,
    permutation_shapley,
    shapley_kernel_weights,
    tabulate_game,
)
from shaprl.shapley.coalitions import coalition_sizes


def random_game(seed: int, n: int, m: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(1 << n, m))


def brute_force(values: np.ndarray) -> np.ndarray:
    """Shapley values as the mean marginal contribution over all n! orders."""
    n = int(np.log2(len(values)))
    phi = np.zeros((n,) + values.shape[1:])
    for order in permutations(range(n)):
        mask = 0
        for i in order:
            phi[i] += values[mask | 1 << i] - values[mask]
            mask |= 1 << i
    return phi / factorial(n)


games = st.tuples(st.integers(0, 10**6), st.integers(1, 7), st.integers(1, 3))


@given(games)
def test_exact_matches_brute_force(spec):
    seed, n, m = spec
    values = random_game(seed, min(n, 5), m)
    np.testing.assert_allclose(exact_shapley(values), brute_force(values), atol=1e-12)


@given(games)
def test_efficiency(spec):
    values = random_game(*spec)
    phi = exact_shapley(values)
    np.testing.assert_allclose(phi.sum(axis=0), values[-1] - values[0], atol=1e-10)


@given(games, st.data())
def test_symmetry(spec, data):
    seed, n, m = spec
    if n < 2:
        return
    i, j = data.draw(st.permutations(range(n)))[:2]
    values = random_game(seed, n, m)
    masks = np.arange(1 << n)
    # Make i and j interchangeable: v(S) := v(S with i and j swapped) averaged with v(S).
    swapped = masks & ~((1 << i) | (1 << j)) | ((masks >> i & 1) << j) | ((masks >> j & 1) << i)
    sym = 0.5 * (values + values[swapped])
    phi = exact_shapley(sym)
    np.testing.assert_allclose(phi[i], phi[j], atol=1e-10)


@given(games, st.data())
def test_nullity(spec, data):
    seed, n, m = spec
    null = data.draw(st.integers(0, n - 1))
    values = random_game(seed, n, m)
    masks = np.arange(1 << n)
    dummy = values[masks & ~(1 << null)]  # v(S) ignores the null player
    phi = exact_shapley(dummy)
    np.testing.assert_allclose(phi[null], 0.0, atol=1e-10)


@given(games, st.floats(-3, 3), st.floats(-3, 3))
def test_linearity(spec, a, b):
    seed, n, m = spec
    v1, v2 = random_game(seed, n, m), random_game(seed + 1, n, m)
    np.testing.assert_allclose(
        exact_shapley(a * v1 + b * v2), a * exact_shapley(v1) + b * exact_shapley(v2), atol=1e-9
    )


@given(games)
def test_kernel_least_squares_equals_exact(spec):
    values = random_game(*spec)
    np.testing.assert_allclose(kernel_shapley(values), exact_shapley(values), atol=1e-9)


def test_permutation_sampling_converges():
    values = random_game(3, 8, 2)
    exact = exact_shapley(values)
    est = permutation_shapley(TableGame(values), 8, 40_000, seed=1)
    assert np.all(np.abs(est.values - exact) < 5 * est.stderr + 1e-12)
    assert np.abs(est.values - exact).max() < 0.05
    again = permutation_shapley(TableGame(values), 8, 40_000, seed=1)
    np.testing.assert_array_equal(est.values, again.values)  # same seed, same estimate


def test_antithetic_is_exact_for_additive_games():
    weights = np.array([0.5, -1.0, 2.0, 0.0, 3.0])
    masks = np.arange(1 << 5)
    additive = ((masks[:, None] >> np.arange(5)) & 1) @ weights
    est = permutation_shapley(TableGame(additive), 5, 4, seed=0)
    np.testing.assert_allclose(est.values, weights, atol=1e-12)


def test_kernel_with_sampled_coalitions_is_close():
    n = 10
    values = random_game(5, n)[:, 0]
    rng = np.random.default_rng(0)
    w = shapley_kernel_weights(n)
    inner = np.flatnonzero(np.isfinite(w))
    masks = rng.choice(inner, size=20_000, p=w[inner] / w[inner].sum())
    est = kernel_shapley(
        values[masks],
        masks,
        np.ones(len(masks)),
        n_players=n,
        empty_value=values[0],
        full_value=values[-1],
    )
    assert np.abs(est - exact_shapley(values)).max() < 0.05
    assert np.isclose(est.sum(), values[-1] - values[0])  # efficiency is a hard constraint


def test_matches_shap_exact_explainer():
    shap = pytest.importorskip("shap")
    for seed, n in ((0, 3), (1, 5), (2, 6)):
        values = random_game(seed, n)[:, 0]
        bits = 1 << np.arange(n)

        def model(x, values=values, bits=bits):
            return values[(np.asarray(x) > 0.5).astype(np.int64) @ bits]

        explainer = shap.explainers.Exact(model, shap.maskers.Independent(np.zeros((1, n))))
        ours = exact_shapley(values)
        theirs = explainer(np.ones((1, n))).values[0]
        np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_too_many_players_names_the_alternative():
    with pytest.raises(ValueError, match="permutation_shapley"):
        tabulate_game(lambda m: m, MAX_EXACT_PLAYERS + 1)


def test_bad_table_length():
    with pytest.raises(ValueError, match="2\\*\\*n rows"):
        exact_shapley(np.zeros(6))


def test_helpers():
    assert coalition_sizes(3).tolist() == [0, 1, 1, 2, 1, 2, 2, 3]
    assert coalition_label(0b101, ["x", "y", "z"]) == "{x, z}"
    assert coalition_label(0, ["x"]) == "∅"
