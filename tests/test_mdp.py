"""Tabular MDP core: solvers, exact steady states, validation errors."""

import numpy as np
import pytest

from shaprl.domains.gridworlds import colour_grid, five_state_grid
from shaprl.mdp import (
    TabularMDP,
    check_policy,
    estimate_steady_state,
    expected_visits,
    greedy_policy,
    policy_evaluation,
    steady_state,
    uniform_policy,
    value_iteration,
)


def random_mdp(seed: int, n: int = 6, a: int = 3, end: float = 0.2) -> TabularMDP:
    rng = np.random.default_rng(seed)
    p = rng.random((n, a, n))
    p = p / p.sum(axis=2, keepdims=True) * (1 - end)
    start = rng.random(n)
    return TabularMDP.from_dense(
        np.arange(n)[:, None],
        p,
        rng.normal(size=(n, a)),
        start / start.sum(),
        1.0,
        ("s",),
        tuple("abc"[:a]),
    )


def test_five_state_grid_values_and_steady_state():
    mdp = five_state_grid()
    q, v = value_iteration(mdp)
    np.testing.assert_allclose(v, [6, 7, 8, 9, 9])
    pi = greedy_policy(mdp, q)
    assert pi.argmax(1).tolist() == [1, 0, 0, 0, 0]  # East from state 1, North elsewhere
    np.testing.assert_allclose(steady_state(mdp, pi), [1 / 7, 2 / 7, 2 / 7, 2 / 7, 0])
    np.testing.assert_allclose(policy_evaluation(mdp, pi), v)


def test_colour_grid_is_continuing_with_uniform_stationary_distribution():
    mdp = colour_grid()
    assert mdp.is_continuing
    q, _ = value_iteration(mdp)
    pi = greedy_policy(mdp, q)
    assert (pi.max(1) == 1).all()  # a unique clockwise policy
    np.testing.assert_allclose(steady_state(mdp, pi), 0.25)


def test_expected_visits_match_sampling():
    mdp = random_mdp(0)
    pi = uniform_policy(mdp)
    exact = steady_state(mdp, pi)
    est = estimate_steady_state(mdp, pi, 200_000, seed=0)
    assert np.abs(exact - est).max() < 0.01
    eta = expected_visits(mdp, pi)
    assert np.isclose(eta.sum(), 1 / 0.2)  # each step ends the episode w.p. 0.2


def test_policy_evaluation_matches_monte_carlo_free_identity():
    mdp = random_mdp(1)
    pi = uniform_policy(mdp)
    v = policy_evaluation(mdp, pi)
    p_pi, r_pi = mdp.chain(pi)
    np.testing.assert_allclose(v, r_pi + p_pi @ v)


def test_policy_that_never_terminates_is_reported():
    mdp = five_state_grid()
    stuck = np.zeros((5, 4))
    stuck[:, 3] = 1.0  # always West: state 1 and 5 bump into the wall forever
    with pytest.raises(ValueError, match="never reaches a terminal state"):
        policy_evaluation(mdp, stuck)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (np.full((5, 4), 0.2), "sum to 0.8"),
        (np.full((4, 4), 0.25), "shape"),
        (np.tile([1.5, -0.5, 0, 0], (5, 1)), "negative"),
    ],
)
def test_bad_policies_get_clear_errors(policy, message):
    with pytest.raises(ValueError, match=message):
        check_policy(five_state_grid(), policy)


def test_index_of_unknown_state():
    with pytest.raises(KeyError, match="no non-terminal state"):
        five_state_grid().index_of([0, 1])
