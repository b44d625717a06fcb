"""Taxi domain (SVERL App. B, Fig. 10): model built from gymnasium, policy, steady state."""

import numpy as np
import pytest

from shaprl.domains import taxi as T
from shaprl.mdp import greedy_policy, steady_state, value_iteration
from shaprl.sverl import SVERLExplainer


@pytest.fixture(scope="module")
def solved():
    mdp = T.taxi()
    q, v = value_iteration(mdp)
    policy = greedy_policy(mdp, q)
    return mdp, q, v, policy, steady_state(mdp, policy)


def test_model_matches_gymnasium(solved):
    mdp = solved[0]
    table, start = T.gym_table()
    assert mdp.n_states == 500 and mdp.n_actions == 6 and mdp.gamma == 1.0
    np.testing.assert_array_equal(T.encode(*mdp.features.T), np.arange(500))
    np.testing.assert_allclose(mdp.start, start)
    assert (mdp.start > 0).sum() == 300
    start_feats = mdp.features[mdp.start > 0]
    assert (start_feats[:, 2] != T.IN_TAXI).all() and (start_feats[:, 2] != start_feats[:, 3]).all()
    dense = mdp.transitions.toarray()
    for s in range(500):
        for a in range(6):
            ((prob, nxt, reward, terminated),) = table[s][a]
            assert mdp.rewards[s, a] == reward
            row = dense[s * 6 + a]
            if terminated:
                assert row.sum() == 0 and reward == 20
            else:
                assert row[nxt] == prob == 1.0 and row.sum() == 1.0


def test_termination_is_delivery_only(solved):
    mdp = solved[0]
    ends = np.argwhere(mdp.termination > 0)
    assert len(ends) == 4  # drop-off at the destination with the passenger aboard
    for s, a in ends:
        y, x, p, d = mdp.features[s]
        assert a == 5 and p == T.IN_TAXI and (y, x) == T.LANDMARKS[d]


def test_values_and_policy(solved):
    mdp, q, v, policy, _ = solved
    top, bottom = mdp.index_of(T.TOP_STATE), mdp.index_of(T.BOTTOM_STATE)
    # Bottom: 4 moves south, then deliver: -4 + 20 = 16. Top: 4 south, pick up, 1 east,
    # 4 north, deliver: -10 + 20 = 10.
    assert v[bottom] == pytest.approx(16.0)
    assert v[top] == pytest.approx(10.0)
    assert policy[top, T.SOUTH] == 1.0 and policy[bottom, T.SOUTH] == 1.0
    # Values are integers, so greedy ties are exact.
    assert np.allclose(v, np.round(v))


def test_steady_state_support(solved):
    mdp, _, _, policy, p = solved
    support = np.flatnonzero(p > 0)
    assert len(support) == 376
    assert p.sum() == pytest.approx(1.0)
    feats = mdp.features[support]
    assert (feats[:, 2] != feats[:, 3]).all(), "delivered states are never visited"
    for state in (T.TOP_STATE, T.BOTTOM_STATE):
        assert p[mdp.index_of(state)] > 0


def test_reduced_model_agrees(solved):
    mdp, _, v, _, _ = solved
    small = T.taxi(keep_unreachable=False)
    assert small.n_states == 400
    q_small, v_small = value_iteration(small)
    idx = T.encode(*small.features.T)
    np.testing.assert_allclose(v_small, v[idx])
    # Without the never-visited states the marginal variant queries rows that are no state.
    pi_small = greedy_policy(small, q_small)
    marginal = SVERLExplainer(small, pi_small, values=v_small, characteristic="marginal")
    with pytest.raises(ValueError, match="not a state"):
        marginal.behaviour_table(small.index_of(T.TOP_STATE))


def test_explanations_at_fig10_states(solved):
    mdp, _, v, policy, _ = solved
    ex = SVERLExplainer(mdp, policy, values=v)
    states = [mdp.index_of(T.TOP_STATE), mdp.index_of(T.BOTTOM_STATE)]
    e = ex.explain(states)
    for s in states:
        for kind in ("behaviour", "outcome", "prediction"):
            phi, vals = e.phi(kind, s), e.values(kind, s)
            np.testing.assert_allclose(phi.sum(axis=0), vals.iloc[-1] - vals.iloc[0], atol=1e-9)
        assert e.values("outcome", s)["value"].iloc[-1] == pytest.approx(v[s])
    # The marginal variant's default lookup finds every hybrid row (all 500 states kept).
    marginal = SVERLExplainer(mdp, policy, values=v, characteristic="marginal")
    for s in states:
        np.testing.assert_allclose(marginal.behaviour_table(s).sum(axis=1), 1.0)
