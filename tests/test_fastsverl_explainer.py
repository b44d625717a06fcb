"""FastSVERLExplainer: a user's policy on a gymnasium env -> the same Explanation as the exact engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shaprl.domains.gridworlds import five_state_grid
from shaprl.domains.tabular_env import TabularEnv
from shaprl.fastsverl.explainer import FastSVERLExplainer, collect_states
from shaprl.mdp import greedy_policy, value_iteration
from shaprl.sverl import Explanation, SVERLExplainer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def grid():
    mdp = five_state_grid()
    q, _ = value_iteration(mdp)
    policy = greedy_policy(mdp, q)
    return mdp, policy, q.max(1)


@pytest.fixture(scope="module")
def fitted(grid):
    mdp, policy, v = grid
    explainer = FastSVERLExplainer(
        TabularEnv(mdp),
        lambda x: policy[mdp.find_states(x)],
        lambda x: v[mdp.find_states(x)],
        buffer_size=2_000,
        validation_size=500,
        characteristic_updates=1_200,
        shapley_updates=1_200,
        n_runs=2,
        feature_names=mdp.feature_names,
        action_names=mdp.action_names,
    )
    return explainer.fit(kinds=("behaviour", "prediction"))


def test_explanation_matches_exact_engine(grid, fitted):
    mdp, policy, v = grid
    on_policy = [0, 1, 2, 3]  # state 5 = (0, 2) is never visited by the optimal policy
    approx = fitted.explain(mdp.features[on_policy])
    exact = SVERLExplainer(mdp, policy, values=v).explain(
        on_policy, kinds=("behaviour", "prediction")
    )
    assert isinstance(approx, Explanation) and approx.method == "fastsverl"
    assert approx.results["behaviour"].outputs == mdp.action_names
    assert approx.results["behaviour"].stderr.shape == approx.results["behaviour"].phi.shape
    np.testing.assert_allclose(
        approx.results["behaviour"].phi, exact.results["behaviour"].phi, atol=0.05
    )
    np.testing.assert_allclose(
        approx.results["prediction"].phi, exact.results["prediction"].phi, atol=0.6
    )
    # efficiency holds exactly after the correction: sum_i phi_i = pi(s) - v(∅)
    null = fitted.characteristics["behaviour"].null(
        None, torch.as_tensor(mdp.features[on_policy], dtype=torch.float32)
    )
    np.testing.assert_allclose(
        approx.results["behaviour"].phi.sum(1), policy[on_policy] - null.numpy(), atol=1e-5
    )
    frame = approx.to_frame()
    assert {"phi", "stderr", "feature", "kind"} <= set(frame.columns)


def test_bad_input_is_named(grid, fitted):
    mdp, policy, v = grid
    with pytest.raises(ValueError, match="Outcome explanations"):
        fitted.fit(kinds=("outcome",))
    with pytest.raises(ValueError, match="2 features"):
        fitted.explain(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"fit\(\)"):
        FastSVERLExplainer(TabularEnv(mdp), lambda x: policy[mdp.find_states(x)]).explain(
            mdp.features
        )
    with pytest.raises(ValueError, match="action probabilities"):
        collect_states(TabularEnv(mdp), lambda x: np.ones((len(x), 4)), 5)


def test_one_kind_may_be_named_as_a_string(grid, fitted):
    mdp, _, _ = grid
    one = fitted.explain(mdp.features[:2], kinds="behaviour")
    assert one.kinds == ("behaviour",)
    with pytest.raises(ValueError, match="Outcome explanations"):
        fitted.fit(kinds="outcome")
