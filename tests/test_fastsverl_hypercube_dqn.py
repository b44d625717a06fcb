"""Hypercube in the authors' setting (FastSVERL Fig. 2): the greedy path of a DQN agent, its
support, and the settle chunks' ``hypercube_scaling`` table (tiny budgets)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shaprl.domains.hypercube import hypercube_model
from shaprl.fastsverl import hypercube_dqn as hd
from shaprl.fastsverl import settle
from shaprl.repro.data import DataFormatError, read_table, write_table

TINY = {
    "cubes": [[2, 2], [3, 2]],  # 3 and 8 non-terminal cells
    "kinds": ["behaviour"],
    "runs": 2,
    "max_updates": 200,
    "seed": 0,
    "dqn_steps": 300,
}


class _TableAgent:
    """An 'agent' with fixed Q-values per cell (only what :func:`hd.agent_problem` uses)."""

    def __init__(self, mdp, q):
        self.mdp, self.q, self.config = mdp, q, {"total_steps": 0}

    def _rows(self, obs):
        return self.mdp.find_states(np.asarray(obs))

    def policy(self, obs):
        return np.eye(self.q.shape[1])[self.q[self._rows(obs)].argmax(axis=1)]

    def value(self, obs):
        return self.q[self._rows(obs)].max(axis=1)


def _axis_order_q(mdp, side):
    """+x0 until the face x0 = side-1, then +x1, ...: an optimal greedy policy."""
    q = np.zeros((mdp.n_states, mdp.n_actions))
    for s, x in enumerate(mdp.features):
        axis = int(np.argmax(x < side - 1))
        q[s, 2 * axis] = 1.0
    return q


@pytest.mark.parametrize("side,dims", [(2, 2), (3, 2), (2, 3), (3, 3)])
def test_optimal_greedy_policy_visits_one_shortest_path(side, dims):
    mdp = hypercube_model(side, dims)
    agent = _TableAgent(mdp, _axis_order_q(mdp, side))
    path, reaches = hd.greedy_path(mdp, agent.policy(mdp.features))
    assert reaches and len(path) == dims * (side - 1)
    assert (mdp.features[path[0]] == 0).all()
    # each move changes one coordinate by +1
    assert (np.abs(np.diff(mdp.features[path], axis=0)).sum(axis=1) == 1).all()
    prob, facts = hd.agent_problem(side, dims, agent, max_eval_rows=64)
    assert sorted(prob.support) == sorted(path)
    assert facts["support"] == dims * (side - 1) == facts["path bound"] - 1
    assert facts["greedy path cells"] == facts["path bound"] and facts["cells"] == side**dims
    assert facts["reaches goal"] == facts["optimal"] == 1.0
    assert facts["greedy return"] == side * dims - 1 - (dims * (side - 1) - 1)


def test_a_looping_greedy_policy_is_reported_with_the_buffer_steady_state():
    side, dims = 3, 2
    mdp = hypercube_model(side, dims)
    q = _axis_order_q(mdp, side)
    # at (1, 0) step back to the origin: origin -> (1, 0) -> origin ... never the goal
    q[mdp.find_states(np.array([[1, 0]]))[0]] = np.eye(mdp.n_actions)[1]
    agent = _TableAgent(mdp, q)
    path, reaches = hd.greedy_path(mdp, agent.policy(mdp.features))
    assert not reaches and len(path) == 2
    p = hd.buffer_steady_state(mdp, agent.policy(mdp.features))
    assert np.isclose(p.sum(), 1) and set(np.flatnonzero(p)) == set(path)
    _, facts = hd.agent_problem(side, dims, agent, max_eval_rows=64)
    assert facts["reaches goal"] == facts["optimal"] == 0.0 and np.isnan(facts["greedy return"])
    assert facts["support"] == 2 and facts["greedy path cells"] == 2


def test_a_detour_reaches_the_goal_but_is_not_optimal():
    side, dims = 3, 2
    mdp = hypercube_model(side, dims)
    q = _axis_order_q(mdp, side)
    # (0,0) -> (0,1) -> (1,1) -> back to (1,0) -> (2,0) -> (2,1) -> goal: 6 moves, not 4
    q[mdp.find_states(np.array([[0, 0]]))[0]] = np.eye(mdp.n_actions)[2]
    q[mdp.find_states(np.array([[0, 1]]))[0]] = np.eye(mdp.n_actions)[0]
    q[mdp.find_states(np.array([[1, 1]]))[0]] = np.eye(mdp.n_actions)[3]
    _, facts = hd.agent_problem(side, dims, _TableAgent(mdp, q), max_eval_rows=64)
    assert facts["reaches goal"] == 1.0 and facts["optimal"] == 0.0
    assert facts["support"] == 6 > dims * (side - 1)


def test_authors_dqn_settings():
    cfg = hd.dqn_config(6, 5)
    assert cfg.total_steps == 1_000_000 and cfg.hidden == (128, 128)
    assert (cfg.end_e, cfg.exploration_fraction, cfg.learning_starts) == (0.05, 0.5, 20_000)
    assert cfg.train_frequency == 16 and cfg.tau == 0.01 and cfg.batch_size == 64
    assert len(hd.AUTHORS_DQN_STEPS) == 20


@pytest.fixture
def one_thread():
    """One torch thread, as ``settle.run_chunk`` (several crawl on a busy 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_scaling_chunk_is_deterministic_and_round_trips(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("SHAPRL_CACHE_DIR", str(tmp_path / "a"))
    a = hd.scaling_chunk(TINY)
    monkeypatch.setenv("SHAPRL_CACHE_DIR", str(tmp_path / "b"))  # the agents retrained
    b = hd.scaling_chunk(TINY)
    pd.testing.assert_frame_equal(a, b)
    facts = hd.facts_frame(a)
    assert list(facts.cells) == [4, 9] and list(facts["path bound"]) == [3, 5]
    runs = hd.runs_frame(a)
    assert set(runs.model) == {"characteristic", "shapley"} and set(runs.run) == {0, 1}
    assert set(runs.target) == {0.01, 0.001} and (runs.states == runs.side**runs.dims).all()
    p = tmp_path / "t.csv"
    write_table(a, p, {"config": TINY}, hd.SCALING)
    back, meta = read_table(p, hd.SCALING, "fix")
    assert meta["kind"] == "hypercube_scaling"
    pd.testing.assert_frame_equal(hd.runs_frame(back), runs, check_dtype=False)
    check = hd.compare_prefix(back, a[(a.side == 2)])
    assert check["agrees"] and check["cube facts equal"] and check["largest gap (updates)"] == 0
    worse = a.assign(value=np.where(a.metric.str.contains("<"), a.value * 3 + 50, a.value))
    assert not hd.compare_prefix(back, worse[worse.side == 2])["agrees"]
    # a duplicated key is refused
    lines = p.read_text().splitlines()
    p.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(DataFormatError, match="duplicate row"):
        read_table(p, hd.SCALING, "fix")


def test_hypercube_chunks_are_registered_with_their_schema():
    for name in settle.HYPERCUBE_CHUNKS:
        chunk = settle.CHUNKS[name]
        assert chunk.schema is hd.SCALING and chunk.claims == settle.HYPERCUBE_CLAIMS
        assert all(tuple(c) in hd.AUTHORS_DQN_STEPS for c in chunk.config["cubes"])
        assert chunk.config["runs"] >= 5 and chunk.config["max_updates"] == 620_000
