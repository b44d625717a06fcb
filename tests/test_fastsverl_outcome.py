"""Outcome characteristic models (Eqs. 14-16) on Mastermind-222 with a deterministic optimal agent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shaprl.domains import mastermind as mm
from shaprl.fastsverl import outcome as oc
from shaprl.fastsverl import tabular_problem
from shaprl.fastsverl.training import ExactCharacteristic, TrainConfig, train_shapley

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def problem():
    mdp = mm.build_model(mm.MastermindSpec(2, 2, 2, 2.0))
    policy, q = mm.sverl_agent(mdp)
    return tabular_problem(mdp, policy, q.max(1), seed=0)


def test_simulator_matches_model(problem):
    sim = oc.TabularSimulator(problem.mdp)
    rng = np.random.default_rng(0)
    s = np.zeros(20_000, dtype=np.int64)
    a = np.full(20_000, 2)
    r, s2, done = sim.step(s, a, rng)
    assert done.mean() == pytest.approx(problem.mdp.termination[0, 2], abs=0.02)
    assert (r == problem.mdp.rewards[0, 2]).all()
    assert set(s2[~done]) <= set(problem.mdp.successors(0, 2)[0])


def test_outcome_models_learn(problem):
    cfg = oc.OutcomeConfig(updates=1_500, eval_every=500, n_runs=2)
    beh = oc.exact_behaviour(problem)
    buffer = oc.behaviour_buffer(problem, 20_000, seed=1)
    net, off = oc.train_outcome_off_policy(problem, beh, buffer, cfg)
    assert off.exact_mse[:, -1].max() < 0.5 * off.exact_mse[:, 0].min()
    _, on = oc.train_outcome_on_policy(problem, beh, cfg)
    assert on.exact_mse[:, -1].mean() < on.exact_mse[:, 0].mean()
    # the learned off-policy characteristic drives an outcome Shapley model
    char = oc.OutcomeModelCharacteristic(problem, net, beh, cfg)
    values = char(
        torch.arange(len(problem.support)),
        None,
        torch.ones(len(problem.support), problem.n_features, dtype=torch.bool),
    )
    assert values.shape == (len(problem.support), 1)
    _, shap = train_shapley(
        problem.data("outcome"),
        char,
        TrainConfig(updates=300, eval_every=100),
        exact=problem.shapley_eval("outcome"),
    )
    _, exact = train_shapley(
        problem.data("outcome"),
        ExactCharacteristic(problem.table("outcome")),
        TrainConfig(updates=300, eval_every=100),
        exact=problem.shapley_eval("outcome"),
    )
    assert np.isfinite(shap.best_exact_mse).all() and np.isfinite(exact.best_exact_mse).all()
