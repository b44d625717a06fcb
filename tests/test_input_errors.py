"""Bad input gets an error that names the problem (not a misdiagnosis further down)."""

import gymnasium as gym
import numpy as np
import pytest
import scipy.sparse as sp

from shaprl.domains import taxi as T
from shaprl.domains.gym_tabular import gym_tabular
from shaprl.mdp import TabularMDP, greedy_policy, uniform_policy, value_iteration
from shaprl.sverl import SVERLExplainer, explain


@pytest.fixture(scope="module")
def lake():
    g = gym_tabular(gym.make("FrozenLake-v1", is_slippery=True), gamma=0.99)
    q, _ = value_iteration(g.mdp)
    return g.mdp, greedy_policy(g.mdp, q)


@pytest.fixture(scope="module")
def explainer(lake):
    return SVERLExplainer(*lake)


def test_nan_in_policy_is_named_not_called_non_terminating(lake):
    mdp, policy = lake
    bad = policy.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN") as err:
        SVERLExplainer(mdp, bad)
    assert "terminal" not in str(err.value) and "state 3" in str(err.value)


def test_nan_in_features_is_named_not_called_outside_support(explainer):
    with pytest.raises(ValueError, match="NaN") as err:
        explainer.explain(features=[(0.0, np.nan)])
    assert "support" not in str(err.value)
    with pytest.raises(ValueError, match="NaN"):
        explainer.explain([[0.0, np.nan]])


def test_nan_in_model_features():
    with pytest.raises(ValueError, match="features contain NaN"):
        TabularMDP.from_dense(
            [[0.0], [np.nan]], np.zeros((2, 1, 2)), np.zeros((2, 1)), [1, 0], 1.0, ["f"], ["a"]
        )


def test_feature_row_of_wrong_length(explainer):
    with pytest.raises(ValueError, match="have 2 entries"):
        explainer.explain(features=[(0, 1, 2)])


def test_empty_state_list(explainer):
    with pytest.raises(ValueError, match="empty"):
        explainer.explain([])
    with pytest.raises(ValueError, match="empty"):
        explainer.explain(features=np.zeros((0, 2)))


def test_duplicate_feature_rows(explainer):
    with pytest.raises(ValueError, match="named 2 times"):
        explainer.explain(features=[(0, 0), (0, 0)])
    with pytest.raises(ValueError, match="share the feature row"):
        TabularMDP.from_dense(
            [[1.0], [1.0]], np.zeros((2, 1, 2)), np.zeros((2, 1)), [1, 0], 1.0, ["f"], ["a"]
        )


def test_negative_transition_probability():
    p = np.zeros((2, 1, 2))
    p[0, 0] = [-0.2, 1.0]
    with pytest.raises(ValueError, match="negative probability"):
        TabularMDP.from_dense([[0], [1]], p, np.zeros((2, 1)), [1, 0], 1.0, ["f"], ["a"])
    with pytest.raises(ValueError, match="negative probability"):
        TabularMDP(
            features=np.array([[0], [1]]),
            transitions=sp.csr_matrix(np.array([[0.5, -0.1], [0.0, 0.0]])),
            rewards=np.zeros((2, 1)),
            valid_actions=np.ones((2, 1), bool),
            start=np.array([1.0, 0.0]),
            gamma=1.0,
            feature_names=("f",),
            action_names=("a",),
        )


def test_ambiguous_tuple_and_unambiguous_keywords():
    mdp = T.taxi()
    q, _ = value_iteration(mdp)
    ex = SVERLExplainer(mdp, greedy_policy(mdp, q))
    with pytest.raises(ValueError, match="ambiguous"):
        ex.explain((0, 3, 4, 3))
    by_row = ex.explain(features=T.BOTTOM_STATE, kinds="outcome")
    by_index = ex.explain(states=mdp.index_of(T.BOTTOM_STATE), kinds="outcome")
    assert by_row.kinds == ("outcome",)
    np.testing.assert_array_equal(by_row.states, by_index.states)
    # phi accepts what explain accepted: the index, or the feature row.
    s = int(by_index.states[0])
    np.testing.assert_array_equal(
        by_row.phi("outcome", features=T.BOTTOM_STATE), by_index.phi("outcome", s)
    )
    np.testing.assert_array_equal(by_row.phi("outcome", T.BOTTOM_STATE), by_row.phi("outcome", s))
    legacy = explain(mdp, greedy_policy(mdp, q), [T.BOTTOM_STATE, T.TOP_STATE], "behaviour")
    assert len(legacy.states) == 2
    with pytest.raises(TypeError, match="exactly one"):
        ex.explain(states=[s], features=[T.BOTTOM_STATE])
    with pytest.raises(ValueError, match="unknown explanation kind"):
        ex.explain([s], kinds="outcomes")


def test_uniform_policy_still_fine(lake):
    mdp, _ = lake
    SVERLExplainer(mdp, uniform_policy(mdp)).explain([0], kinds="behaviour")


def test_monte_carlo_nan_row_is_named_not_called_unvisited():
    from shaprl.domains.simulators import taxi_simulator
    from shaprl.sverl import MonteCarloSVERL

    mdp = T.taxi()
    rows = mdp.features[:50].astype(float)
    mc = MonteCarloSVERL(taxi_simulator(), lambda r: np.full((len(r), 6), 1 / 6), rows)
    with pytest.raises(ValueError, match="NaN") as err:
        mc.explain([[0.0, 3.0, np.nan, 3.0]], kinds="behaviour")
    assert "never occurs" not in str(err.value)
