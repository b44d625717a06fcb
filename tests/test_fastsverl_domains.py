"""FastSVERL domains: Hypercube, the tabular gym wrapper (Gridworld), Mastermind conventions."""

from __future__ import annotations

import numpy as np
import pytest

from shaprl.domains import mastermind as mm
from shaprl.domains.gridworlds import five_state_grid
from shaprl.domains.hypercube import action_names, hypercube_model
from shaprl.domains.tabular_env import TabularEnv
from shaprl.mdp import value_iteration


@pytest.mark.parametrize("side,dims", [(2, 2), (3, 2), (4, 3), (2, 5), (6, 2)])
def test_hypercube_sizes_and_optimal_value(side, dims):
    mdp = hypercube_model(side, dims)
    assert mdp.n_states == side**dims - 1 and mdp.n_features == dims
    assert mdp.n_actions == 2 * dims and len(action_names(dims)) == 2 * dims
    assert (mdp.features[0] == 0).all() and mdp.start[0] == 1.0
    assert not (mdp.features == side - 1).all(axis=1).any()  # the goal is terminal
    v = value_iteration(mdp)[1]
    # shortest path: dims*(side-1) steps, the last pays side*dims-1, the others -1 each
    assert v[0] == pytest.approx(side * dims - 1 - (dims * (side - 1) - 1))


def test_hypercube_moves():
    mdp = hypercube_model(3, 2)
    s = mdp.index_of([1, 1])
    for a, target in enumerate([(2, 1), (0, 1), (1, 2), (1, 0)]):
        nxt, p = mdp.successors(s, a)
        assert p.tolist() == [1.0] and tuple(mdp.features[nxt[0]]) == target
    corner = mdp.index_of([0, 0])
    nxt, _ = mdp.successors(corner, 1)  # -x0 off the cube: stay, reward -1
    assert nxt.tolist() == [corner] and mdp.rewards[corner, 1] == -1
    near = mdp.index_of([2, 1])
    assert mdp.termination[near, 2] == 1.0 and mdp.rewards[near, 2] == 5.0
    with pytest.raises(ValueError, match="side >= 2"):
        hypercube_model(1, 2)


def test_tabular_env_follows_the_model():
    mdp = five_state_grid()
    env = TabularEnv(mdp)
    obs, info = env.reset(seed=3)
    assert tuple(obs) in {(0.0, 0.0), (1.0, 0.0)}
    total, done, steps = 0.0, False, 0
    while not done:  # always north, east from (0, 0): the optimal path
        a = 1 if tuple(obs) == (0.0, 0.0) else 0
        obs, r, done, trunc, info = env.step(a)
        total += r
        steps += 1
        assert not trunc
    assert total == pytest.approx(9 - (steps - 1))
    with pytest.raises(RuntimeError):
        env.step(0)


def test_mastermind_fastsverl_conventions():
    assert mm.convention_win_bonus("sverl", 3) == 1.0
    assert mm.convention_win_bonus("fastsverl", 3) == 3.0
    with pytest.raises(ValueError, match="conventions"):
        mm.convention_win_bonus("other", 3)
    env = mm.MastermindEnv(2, 2, 2, conventions="fastsverl")
    env.reset(options={"code": 2})
    _, r, done, _, _ = env.step(2)
    assert done and r == -1 + 2
    model = mm.mastermind_model(2, 2, 2, conventions="fastsverl", cache=False)
    assert model.n_states == 9 and model.n_features == 8 and model.n_actions == 4
    np.testing.assert_allclose(model.rewards[0], -1 + 2 * 0.25)
    default = mm.MastermindEnv(2, 2, 2)
    default.reset(options={"code": 0})
    assert default.step(0)[1] == 0.0  # SVERL's convention stays the default
