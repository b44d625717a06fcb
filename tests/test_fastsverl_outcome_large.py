"""The off-policy outcome characteristic on observations (Eqs. 15-16) and outcome Shapley models
(Eqs. 21-22) for domains that cannot be enumerated, checked on Mastermind-222 where they can."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from shaprl.domains import mastermind as mm
from shaprl.fastsverl import outcome as oc
from shaprl.fastsverl import outcome_replay as orp
from shaprl.fastsverl import tabular_problem
from shaprl.fastsverl.coalitions import all_coalitions, coalition_bits
from shaprl.fastsverl.training import TrainConfig, train_shapley

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def problem():
    mdp = mm.build_model(mm.MastermindSpec(2, 2, 2, 2.0))
    policy, q = mm.sverl_agent(mdp)
    return tabular_problem(mdp, policy, q.max(1), seed=0)


@pytest.fixture(scope="module")
def setting(problem):
    """The tabular problem's data as observations: transitions, policy, exact π̃ and targets."""
    mdp = problem.mdp
    x = mdp.features.astype(np.float32)
    buf = oc.behaviour_buffer(problem, 20_000, seed=1)
    transitions = orp.Transitions(
        x[buf["s"]],
        buf["a"],
        buf["r"].astype(np.float32),
        x[np.maximum(buf["s2"], 0)],  # terminal successors: any row, never bootstrapped
        buf["done"].astype(np.float32),
    )
    states = torch.as_tensor(problem.states)
    table = torch.as_tensor(problem.table("behaviour"), dtype=torch.float32)

    def pi_tilde(xe: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # exact, from features
        pos = (xe[:, None, :] == states[None]).all(-1).float().argmax(1)
        return table[pos, coalition_bits(c)]

    def policy(obs: np.ndarray) -> np.ndarray:
        return problem.explainer.policy[np.maximum(mdp.find_states(obs), 0)]

    coalitions = all_coalitions(problem.n_features)
    s = len(problem.states)
    exact = orp.OutcomeEval(
        np.repeat(problem.states, len(coalitions), axis=0),
        np.tile(coalitions, (s, 1)),
        problem.table("outcome").reshape(-1),
    )
    return {
        "buffer": buf,
        "transitions": transitions,
        "pi_tilde": pi_tilde,
        "policy": policy,
        "exact": exact,
    }


def test_observation_path_agrees_with_the_tabular_path(problem, setting):
    """Same data, same budget: both learn the exact outcome characteristic about equally well."""
    cfg = oc.OutcomeConfig(updates=1_500, eval_every=500, n_runs=2)
    _, tab = oc.train_outcome_off_policy(
        problem, oc.exact_behaviour(problem), setting["buffer"], cfg
    )
    train, held_out = setting["transitions"].split(2_000, seed=0)
    _, obs = orp.train_outcome_replay(
        train,
        problem.states[problem.train],
        setting["policy"],
        setting["pi_tilde"],
        cfg,
        validation=held_out,
        exact=setting["exact"],
        device="cpu",
    )
    # identical seeds: both start from the same networks
    np.testing.assert_allclose(obs.exact_mse[:, 0], tab.exact_mse[:, 0], rtol=1e-5)
    assert obs.exact_mse[:, -1].max() < 0.3 * obs.exact_mse[:, 0].min()
    assert obs.exact_mse[:, -1].mean() < 1.5 * tab.exact_mse[:, -1].mean() + 0.01
    assert obs.val_loss[:, -1].mean() < obs.val_loss[:, 0].mean()  # held-out TD loss falls


def test_conditioned_policy_switches_only_at_the_explained_state():
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    xe = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0]])
    c = torch.ones(3, 2, dtype=torch.bool)
    pi_x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    called = []

    def pi_tilde(xe_rows, c_rows):
        called.append(len(xe_rows))
        return torch.full((len(xe_rows), 2), 0.5)

    probs = orp.conditioned_policy(x, xe, c, pi_x, pi_tilde)
    assert called == [2]  # evaluated on the matching rows only
    np.testing.assert_allclose(probs.numpy(), [[0.5, 0.5], [1.0, 0.0], [0.5, 0.5]])
    same = orp.conditioned_policy(x[1:2], xe[1:2], c[1:2], pi_x[1:2], pi_tilde)
    assert same is pi_x[1:2] or torch.equal(same, pi_x[1:2])
    assert called == [2]  # no matching row: π̃ is not evaluated


def test_outcome_shapley_efficiency_correction(problem, setting):
    """Eq. 22: corrected values sum to ṽ_s(F) - ṽ_s(∅) of the learned characteristic."""
    cfg = oc.OutcomeConfig(updates=200, eval_every=100, n_runs=2)
    net, _ = orp.train_outcome_replay(
        setting["transitions"],
        problem.states[problem.train],
        setting["policy"],
        setting["pi_tilde"],
        cfg,
        device="cpu",
    )
    char = orp.replay_characteristic(net, setting["pi_tilde"])
    data = orp.outcome_state_data(problem.states, problem.train, problem.val, char, device="cpu")
    x = torch.as_tensor(problem.states)
    full = torch.ones(x.shape, dtype=torch.bool)
    grand = char(None, x, full)
    np.testing.assert_allclose(data.targets, grand.numpy(), rtol=1e-6)
    # run 0 of the group: Eq. 16 with s_e = s
    q = net(oc.outcome_inputs(x, x, full))[0]
    np.testing.assert_allclose(
        grand.numpy(), oc.outcome_value(q, setting["pi_tilde"](x, full)).detach().numpy(), rtol=1e-5
    )
    model, curves = train_shapley(
        data, char, TrainConfig(updates=100, eval_every=50, n_runs=2), device="cpu"
    )
    null = char.null(None, x)
    phi = model.corrected(x, grand, null)  # (R, S, F, 1)
    assert phi.shape == (2, len(x), problem.n_features, 1)
    np.testing.assert_allclose(
        phi.sum(-2).numpy(), (grand - null).expand(2, -1, -1).numpy(), atol=1e-5
    )
    assert np.isfinite(curves.val_loss).all()


def test_learned_outcome_shapley_tracks_exact_values(problem, setting):
    """A well-trained observation-path characteristic gives outcome Shapley values close to
    the exact SVERL ones (the tiny exactly solvable case of the issue)."""
    cfg = oc.OutcomeConfig(updates=3_000, eval_every=1_000, n_runs=1)
    net, curves = orp.train_outcome_replay(
        setting["transitions"],
        problem.states[problem.train],
        setting["policy"],
        setting["pi_tilde"],
        cfg,
        exact=setting["exact"],
        device="cpu",
    )
    assert curves.best_exact_mse[0] < 0.03
    char = orp.replay_characteristic(net, setting["pi_tilde"])
    data = orp.outcome_state_data(problem.states, problem.train, problem.val, char)
    base = TrainConfig(updates=1_500, eval_every=250, n_runs=2, seed=1)
    _, shap = train_shapley(data, char, base, exact=problem.shapley_eval("outcome"))
    _, none = train_shapley(
        data, char, replace(base, updates=1), exact=problem.shapley_eval("outcome")
    )
    assert shap.best_exact_mse.mean() < 0.25 * none.best_exact_mse.mean()


def test_transitions_reject_bad_input():
    with pytest.raises(ValueError, match="record=True"):
        orp.Transitions.from_buffer(None)
    obs = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="one row per transition"):
        orp.Transitions(obs, np.zeros(3, int), np.zeros(4), obs, np.zeros(4))
    t = orp.Transitions(obs, np.zeros(4, int), np.arange(4.0), obs, np.zeros(4))
    train, val = t.split(1, seed=0)
    assert (len(train), len(val)) == (3, 1)
    assert sorted(np.concatenate([train.reward, val.reward])) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="validation"):
        t.split(4)
    with pytest.raises(ValueError, match="explained must be"):
        orp.train_outcome_replay(
            t, np.zeros((2, 5)), lambda o: np.ones((len(o), 2)) / 2, None, oc.OutcomeConfig()
        )
