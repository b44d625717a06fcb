"""Single-sample characteristics (Eq. 18, App. F): the conditional-sampling index and training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shaprl.domains.gridworlds import five_state_grid
from shaprl.fastsverl import single_sample as ss
from shaprl.fastsverl.exact import tabular_problem
from shaprl.fastsverl.training import ExactCharacteristic, TrainConfig, train_shapley

torch.set_num_threads(1)


@st.composite
def buffers(draw):
    f = draw(st.integers(1, 6))
    n = draw(st.integers(1, 40))
    vals = draw(st.lists(st.integers(-1, 2), min_size=n * f, max_size=n * f))
    rows = np.array(vals, float).reshape(n, f)
    q = draw(st.integers(1, 12))
    qvals = draw(st.lists(st.integers(-1, 2), min_size=q * f, max_size=q * f))
    cbits = draw(st.lists(st.booleans(), min_size=q * f, max_size=q * f))
    return rows, np.array(qvals, float).reshape(q, f), np.array(cbits).reshape(q, f)


@settings(max_examples=60, deadline=None)
@given(buffers(), st.integers(0, 2**31 - 1))
def test_index_draws_only_matching_states(buf, seed):
    rows, queries, coalitions = buf
    # half the queries are buffer rows themselves (always matched)
    queries[::2] = rows[np.arange(0, len(queries), 2) % len(rows)]
    index = ss.ConditionalIndex(rows)
    drawn = index.sample(queries, coalitions, np.random.default_rng(seed))
    for q, c, d in zip(queries, coalitions, drawn, strict=True):
        brute = index.matches(q, c)
        if len(brute) == 0:
            assert d == -1
        else:
            assert d in brute
            np.testing.assert_array_equal(index.states[d][c], q[c])


def test_index_draws_in_proportion_to_buffer_frequencies():
    rows = np.array([[0, 0], [0, 1], [0, 1], [0, 1], [1, 1], [0, 2], [0, 2]], float)
    index = ss.ConditionalIndex(rows)
    rng = np.random.default_rng(0)
    q = np.tile([[0.0, 5.0]], (30_000, 1))  # known: first feature = 0; second unknown
    c = np.array([True, False])
    drawn = index.sample(q, c, rng)
    freq = np.bincount(drawn, minlength=len(index.states)) / len(drawn)
    brute = index.matches(q[0], c)
    want = np.zeros(len(index.states))
    want[brute] = index.counts[brute] / index.counts[brute].sum()  # 1 : 3 : 2
    np.testing.assert_allclose(freq, want, atol=0.01)
    # the empty coalition draws from the whole buffer; the full one returns the state itself
    all_ = index.sample(np.zeros((20_000, 2)), np.zeros(2, bool), rng)
    np.testing.assert_allclose(np.bincount(all_) / 20_000, index.counts / 7, atol=0.01)
    own = index.sample(index.states, np.ones(2, bool), rng)
    np.testing.assert_array_equal(own, np.arange(len(index.states)))


def test_index_caches_groups_and_survives_hash_collisions(monkeypatch):
    rows = np.random.default_rng(3).integers(0, 3, size=(200, 5)).astype(float)
    index = ss.ConditionalIndex(rows)
    c = np.array([1, 0, 1, 0, 0], bool)
    rng = np.random.default_rng(0)
    index.sample(rows[:10], c, rng)
    index.sample(rows[10:20], c, rng)
    assert index.builds == 1
    # every row hashes alike: the index must fall back to brute force, never return a mismatch
    monkeypatch.setattr(ss, "masked_hash", lambda r, *_: np.zeros(len(r), np.uint64))
    collide = ss.ConditionalIndex(rows)
    drawn = collide.sample(rows[:50], np.tile(c, (50, 1)), rng)
    assert ((collide.states[drawn] == rows[:50]) | ~c).all()


def test_index_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        ss.ConditionalIndex(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="counts"):
        ss.ConditionalIndex(np.zeros((2, 3)), counts=np.array([1]))


def _gridworld_problem():
    mdp = five_state_grid()
    policy = np.full((mdp.n_states, mdp.n_actions), 0.1)
    policy[np.arange(mdp.n_states), [1, 0, 0, 0, 0]] = (
        0.7  # a stochastic policy, every state visited
    )
    values = np.arange(mdp.n_states, dtype=float)
    return tabular_problem(mdp, policy, values, seed=0, n_train=4_000, n_val=500)


def test_sampled_characteristic_is_unbiased_for_the_exact_one():
    prob = _gridworld_problem()
    data = prob.data("behaviour")
    char = ss.SampledCharacteristic.from_state_data(data, seed=1)
    table = prob.table("behaviour")  # (S, 4, m): coalitions by bit code
    freq = np.bincount(data.train, minlength=len(data.states)) / len(data.train)
    exact_buffer = ss.ConditionalIndex(data.states, counts=np.bincount(data.train))
    for code in range(4):
        c = np.array([code & 1, code >> 1 & 1], bool)
        idx = torch.arange(len(data.states)).repeat(4_000)
        cc = torch.as_tensor(np.tile(c, (len(idx), 1)))
        est = char(idx, None, cc).reshape(4_000, len(data.states), -1).mean(0).numpy()
        # the buffer's conditional means (what single samples estimate)
        for s in range(len(data.states)):
            m = exact_buffer.matches(data.states[s], c)
            want = (freq[m, None] * data.targets[m]).sum(0) / freq[m].sum()
            np.testing.assert_allclose(est[s], want, atol=0.03)
            np.testing.assert_allclose(
                want, table[s, code], atol=0.05
            )  # buffer ≈ exact steady state
    np.testing.assert_allclose(
        char.null(torch.arange(2), None)[0].numpy(),
        (freq[:, None] * data.targets).sum(0),
        atol=1e-6,
    )


def test_shapley_model_trained_on_single_samples_reaches_the_exact_values():
    prob = _gridworld_problem()
    data = prob.data("behaviour")
    cfg = TrainConfig(
        hidden=(32, 32),
        learning_rate=3e-3,
        updates=1_500,
        eval_every=250,
        n_runs=2,
        per_sample_coalitions=True,
    )
    ev = prob.shapley_eval("behaviour")
    _, sampled = train_shapley(
        data, ss.SampledCharacteristic.from_state_data(data, seed=2), cfg, exact=ev
    )
    _, exact = train_shapley(data, ExactCharacteristic(prob.table("behaviour")), cfg, exact=ev)
    assert sampled.exact_mse[:, 0].mean() > 5 * sampled.best_exact_mse.mean()
    assert sampled.best_exact_mse.max() < 2e-3
    assert exact.best_exact_mse.max() < 2e-3


@settings(max_examples=40, deadline=None)
@given(buffers(), st.integers(0, 2**31 - 1))
def test_fast_path_for_buffer_states_matches_brute_force(buf, seed):
    rows, _, coalitions = buf
    counts = np.random.default_rng(seed).integers(0, 3, size=len(rows))
    index = ss.ConditionalIndex(rows, counts=counts)
    c = coalitions[0]
    idx = np.arange(len(rows))
    drawn = index.sample_states(idx, c, np.random.default_rng(seed))
    for s, d in zip(idx, drawn, strict=True):
        brute = index.matches(rows[s], c)
        assert (d == -1) if len(brute) == 0 else (d in brute)


def test_sampled_behaviour_for_the_outcome_characteristic():
    from shaprl.fastsverl import outcome

    prob = _gridworld_problem()
    beh = ss.sampled_behaviour(prob, seed=0)
    table = prob.table("behaviour")
    n = len(prob.support)
    for code in range(4):
        c = torch.as_tensor(np.tile([code & 1, code >> 1 & 1], (n * 3_000, 1)).astype(bool))
        se = torch.arange(n).repeat(3_000)
        est = beh(se, c).reshape(3_000, n, -1).mean(0).numpy()
        np.testing.assert_allclose(est, table[:, code], atol=0.05)
    cfg = outcome.OutcomeConfig(updates=300, eval_every=150, n_runs=1, n_envs=4)
    _, curves = outcome.train_outcome_on_policy(prob, beh, cfg)
    assert curves.exact_mse[0, -1] < curves.exact_mse[0, 0]


@settings(max_examples=60, deadline=None)
@given(buffers(), st.integers(0, 2**31 - 1))
def test_streaming_index_for_many_features_matches_brute_force(buf, seed):
    rows, queries, coalitions = buf
    queries[::2] = rows[np.arange(0, len(queries), 2) % len(rows)]
    index = ss.ConditionalIndex(rows, cache_features=0)  # force the many-feature path
    assert index.streaming
    rng = np.random.default_rng(seed)
    drawn = index.sample(queries, coalitions, rng)
    for q, c, d in zip(queries, coalitions, drawn, strict=True):
        brute = index.matches(q, c)
        assert (d == -1) if len(brute) == 0 else (d in brute)
    idx = np.arange(len(index.states))
    fast = index.sample_states(idx, coalitions[0], rng)
    for s, d in zip(idx, fast, strict=True):
        assert d in index.matches(index.states[s], coalitions[0])
    assert index.builds == 0  # nothing cached


def test_streaming_index_draws_in_proportion_to_counts():
    rows = np.array([[0, 0], [0, 1], [0, 1], [0, 1], [1, 1], [0, 2], [0, 2]], float)
    index = ss.ConditionalIndex(rows, cache_features=0)
    drawn = index.sample(
        np.tile([[0.0, 5.0]], (30_000, 1)), np.array([True, False]), np.random.default_rng(0)
    )
    freq = np.bincount(drawn, minlength=len(index.states)) / len(drawn)
    np.testing.assert_allclose(freq, [1 / 6, 3 / 6, 2 / 6, 0.0], atol=0.01)
