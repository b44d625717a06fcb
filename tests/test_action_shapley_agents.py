"""Batched SAC-PID / PPO-PID agents: independence of batching, nulls, and SB3 agreement."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from shaprl.action_shapley.batched_agents import PPO_BUDGET, SAC_BUDGET
from shaprl.action_shapley.case_studies import VM_RIGHT_SIZING
from shaprl.action_shapley.traces import load_traces, traces_path
from shaprl.action_shapley.utility import subset_seed, train_and_evaluate
from shaprl.action_shapley.world_model import SufficientStatistics

SMOKE = {
    "sac": replace(SAC_BUDGET, total_steps=300, learning_starts=100),
    "ppo": replace(PPO_BUDGET, total_steps=1024),
}


@pytest.fixture(scope="module")
def stats():
    return SufficientStatistics(load_traces(traces_path(VM_RIGHT_SIZING), VM_RIGHT_SIZING))


def _run(stats, algo, masks, seed=0):
    masks = np.array(masks)
    seeds = [subset_seed(seed, int(m)) for m in masks]
    return train_and_evaluate(VM_RIGHT_SIZING, stats.fit(masks), algo, seeds, "cpu", SMOKE[algo])


@pytest.mark.parametrize("algo", ["sac", "ppo"])
def test_a_subsets_weights_are_bitwise_the_same_in_any_batch(stats, algo):
    # fused Adam rounds the tail of a stacked tensor differently; padding the batch to a
    # multiple of MEMBER_MULTIPLE keeps every member out of that tail, at any position
    from shaprl.action_shapley.utility import MEMBER_MULTIPLE, pad_members, train_agents

    def weights(masks, at):
        masks = np.array(masks)
        seeds = [subset_seed(0, int(m)) for m in masks]
        policy = train_agents(VM_RIGHT_SIZING, stats.fit(masks), algo, seeds, "cpu", SMOKE[algo])
        net = policy.actor if algo == "sac" else policy.pi
        assert policy.n_members % MEMBER_MULTIPLE == 0
        return [p[at].detach().clone() for p in net.parameters()]

    alone = weights([21], 0)
    for masks, at in (([3, 21, 31, 7], 1), ([1, 2, 3, 4, 5, 21, 9], 5)):
        for a, b in zip(alone, weights(masks, at), strict=True):
            assert torch.equal(a, b)
    padded, seeds = pad_members(stats.fit(np.array([5, 6, 7])), [1, 2, 3])
    assert padded.weights.shape[0] == len(seeds) == MEMBER_MULTIPLE
    assert seeds[3:] == [1] * (MEMBER_MULTIPLE - 3)


@pytest.mark.parametrize("algo", ["sac", "ppo"])
def test_a_subsets_agent_does_not_depend_on_its_batch(stats, algo):
    alone = _run(stats, algo, [21])
    inside = _run(stats, algo, [3, 21, 31, 0])
    np.testing.assert_allclose(alone["reward"][0], inside["reward"][1], rtol=1e-6, atol=1e-6)
    assert alone["convergence"][0] == inside["convergence"][1]
    assert np.isnan(inside["utility"][3])  # the empty subset: no world model, null


def test_batched_and_sb3_agents_reach_the_same_verdicts():
    """Smoke-size reference check on load-balancing subsets with both verdicts: {w3} (its
    model sees one saturated configuration; null for every seed in the committed tables) and
    {w1, w3} (goal met for every seed)."""
    from shaprl.action_shapley.case_studies import LOAD_BALANCING
    from shaprl.action_shapley.sb3_reference import reference_check

    traces = load_traces(traces_path(LOAD_BALANCING), LOAD_BALANCING)
    budget = replace(PPO_BUDGET, total_steps=2048)
    out = reference_check(LOAD_BALANCING, traces, [4, 5], "ppo", n_seeds=2, budget=budget)
    assert out.same_verdict.all(), out.to_string()
    assert out.batched_null.tolist() == [True, False]
    # the run-seed spread starts with the table's own agent (batching does not change it)
    first = [u[0] for u in out.batched_utilities]
    np.testing.assert_allclose(first, out.batched_utility.round(2))
    assert out.batched_null_fraction.between(0, 1).all()


@pytest.mark.parametrize("copies", [1, 4])
def test_looked_up_start_statistics_are_bitwise_the_model_s(stats, copies):
    # BatchedPIDEnv evaluates its pool of episode starts once and looks a reset's start
    # statistic up; the steps must be bitwise those of evaluating the model on every reset
    from shaprl.action_shapley.pid_env import BatchedPIDEnv, BatchedRBF

    model = BatchedRBF(stats.fit(np.array([3, 21, 31, 7] * 4)))
    starts = torch.rand(16, 8, 2, generator=torch.Generator().manual_seed(0))
    envs = [BatchedPIDEnv(VM_RIGHT_SIZING, model, copies, starts) for _ in range(2)]
    envs[1]._s_pool = None  # the reference: the model evaluated on every reset
    assert envs[0]._s_pool is not None
    for e in envs:
        e.reset_all()
    act = torch.rand(40, 16, copies, 6, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for t in range(40):
        outs = [e.step(act[t]) for e in envs]
        for a, b in zip(outs[0], outs[1], strict=True):
            assert torch.equal(a, b)
    assert torch.equal(envs[0].episode, envs[1].episode) and envs[0].episode.max() > 2 * copies


def test_rbf_distances_per_coordinate_are_bitwise_the_summed_squares(stats):
    from shaprl.action_shapley.pid_env import BatchedRBF

    model = BatchedRBF(stats.fit(np.arange(16)))
    x = torch.rand(16, 5, 3, generator=torch.Generator().manual_seed(2)) * 1.4 - 0.2
    z = torch.bmm(x - model.shift[:, None], model.mix)
    d2 = (z[:, :, None, :] - model.centres[:, None, :, :]).pow(2).sum(-1)
    phi = torch.cat(
        [torch.ones_like(z[..., :1]), z, torch.exp(-model.gamma[:, None, None] * d2)], -1
    )
    assert torch.equal(model(x), torch.bmm(phi, model.weights))


def test_sb3_plateau_sweep_has_the_batched_sweep_s_columns_and_is_seeded():
    """Issue 17: SB3 beside the batched agents in the budget-plateau check (one PPO update)."""
    from shaprl.action_shapley.sb3_reference import sb3_plateau_sweep
    from shaprl.action_shapley.tables import CHECKS
    from shaprl.action_shapley.utility import plateau_budget

    one = sb3_plateau_sweep(VM_RIGHT_SIZING, "ppo", [512], runs=2)
    again = sb3_plateau_sweep(VM_RIGHT_SIZING, "ppo", [512], runs=2)
    names = [[c.name for c in CHECKS[k].columns] for k in ("budget_plateau", "sb3_plateau")]
    assert list(one.columns) == [*names[0], "agent"] == names[1]
    assert (one.agent == "sb3").all() and one.run.tolist() == [0, 1]
    # seeded: the same call gives the same agents (everything but the wall time)
    drop = ["seconds"]
    assert one.drop(columns=drop).equals(again.drop(columns=drop))
    assert plateau_budget(one).loc[0, "budgets"] == "512"
