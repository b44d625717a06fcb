"""Dice domain (SVERL App. B, Table 7, Fig. 9): model, policy, steady state, explanations."""

from fractions import Fraction

import numpy as np
import pytest

from shaprl.domains import dice as D
from shaprl.mdp import estimate_steady_state, greedy_policy, steady_state, value_iteration
from shaprl.sverl import SVERLExplainer


@pytest.fixture(scope="module")
def solved():
    mdp = D.dice()
    q, v = value_iteration(mdp)
    policy = greedy_policy(mdp, q)
    return mdp, q, v, policy, steady_state(mdp, policy)


def test_model_invariants(solved):
    mdp = solved[0]
    assert mdp.n_states == 36 and mdp.n_actions == 4 and mdp.gamma == 1.0
    # Every action ends the episode with probability exactly 1/2.
    np.testing.assert_allclose(mdp.termination, 0.5)
    np.testing.assert_allclose(mdp.start, 1 / 36)
    for d1, d2 in [(3, 6), (1, 1), (5, 5)]:
        assert mdp.index_of((d1, d2)) == D.state_index(d1, d2)
    # Keeping (6, 6) wins for sure when the episode ends: r = 1/2.
    assert mdp.rewards[D.state_index(6, 6), D.KEEP] == pytest.approx(0.5)
    # Re-rolling both: P(sum >= 10) = 6/36, paid with probability 1/2.
    np.testing.assert_allclose(mdp.rewards[:, D.REROLL_BOTH], 0.5 * 6 / 36)
    # Re-rolling die 2 at (3, .): need a 7+ on one die -> impossible.
    assert mdp.rewards[D.state_index(3, 1), D.REROLL_DIE2] == 0.0
    # Re-rolling die 1 keeps die 2: successors share die 2 and are uniform over die 1.
    idx, p = mdp.successors(D.state_index(2, 5), D.REROLL_DIE1)
    assert set(mdp.features[idx, 1]) == {5} and np.allclose(p, 0.5 / 6)


def test_optimal_policy(solved):
    mdp, q, v, policy, _ = solved
    assert ((policy == 0) | (policy == 1)).all(), "the optimum has no ties"
    rolls = D.rerolled(policy)
    for s, (d1, d2) in enumerate(mdp.features):
        # Re-roll every die showing 1-4 unless the sum already reaches 10 ((4,6), (6,4)).
        expected = (False, False) if d1 + d2 >= 10 else (d1 <= 4, d2 <= 4)
        assert tuple(rolls[s] > 0) == expected, (d1, d2)
    # Winning states are worth 1; (1, 1) is the worst state.
    assert np.allclose(v[mdp.features.sum(1) >= 10], 1.0)
    assert v.argmin() == D.state_index(1, 1)


def test_exact_steady_state(solved):
    p = solved[4]
    assert p.sum() == pytest.approx(1.0)
    assert p[D.state_index(3, 6)] == pytest.approx(1 / 42, abs=1e-14)
    assert p[D.state_index(1, 1)] == pytest.approx(1 / 56, abs=1e-14)
    assert Fraction(p[D.state_index(3, 6)]).limit_denominator(1000) == Fraction(1, 42)


def test_sampled_steady_state_agrees(solved):
    mdp, _, _, policy, p = solved
    est = estimate_steady_state(mdp, policy, 40_000, seed=3)
    assert np.abs(est - p).max() < 0.006


def test_table7_and_fig9(solved):
    mdp, _, v, policy, p = solved
    ex = SVERLExplainer(mdp, policy, values=v)
    e = ex.explain(range(36), kinds=("prediction",))
    s36, s11 = D.state_index(3, 6), D.state_index(1, 1)
    t = e.values("prediction", s36)["value"]
    assert t["∅"] == pytest.approx(p @ v)
    assert t["{die 2}"] > t["∅"] > t["{die 1}"]
    phi = e.phi("prediction", s36)["value"]
    assert phi["die 2"] > 0 > phi["die 1"]
    t11 = e.values("prediction", s11)["value"]
    assert (
        t11["{die 1}"] == pytest.approx(t11["{die 2}"])
        and t11["{die 1, die 2}"] < t11["{die 1}"] < t11["∅"]
    )
    phi11 = e.phi("prediction", s11)["value"]
    assert phi11["die 1"] == pytest.approx(phi11["die 2"]) and phi11["die 1"] < 0
    # Fig. 9: negative credit exactly for re-rolled dice, in all 36 states.
    phis = e.results["prediction"].phi[:, :, 0]
    assert np.array_equal(phis < 0, D.rerolled(policy) > 0)


def brute_force_marginal(mdp, p, table, x):
    """v(C) = sum_s' p(s') f(x_C, s'_{-C}) by explicit loops over coalitions and states."""
    out = []
    for mask in range(4):
        total = np.zeros(table.shape[1])
        for s in range(mdp.n_states):
            row = [x[i] if mask >> i & 1 else mdp.features[s, i] for i in range(2)]
            total += p[s] * table[mdp.index_of(row)]
        out.append(total)
    return np.array(out)


def test_marginal_matches_brute_force(solved):
    mdp, _, v, policy, p = solved
    marginal = SVERLExplainer(mdp, policy, values=v, characteristic="marginal")
    for s in (D.state_index(3, 6), D.state_index(1, 1), D.state_index(4, 5)):
        x = mdp.features[s]
        np.testing.assert_allclose(
            marginal.behaviour_table(s), brute_force_marginal(mdp, p, policy, x), atol=1e-12
        )
        np.testing.assert_allclose(
            marginal.prediction_table(s), brute_force_marginal(mdp, p, v[:, None], x), atol=1e-12
        )
    # The dice are dependent under p (the policy keeps (4,6) but re-rolls (4,5)), so the two
    # characteristics differ somewhere.
    conditional = SVERLExplainer(mdp, policy, values=v)
    s = D.state_index(3, 6)
    assert not np.allclose(conditional.prediction_table(s), marginal.prediction_table(s))


def test_bad_input():
    with pytest.raises(ValueError, match="end_probability"):
        D.dice(end_probability=0.0)
    mdp = D.dice()
    explainer = SVERLExplainer(mdp, np.full((36, 4), 0.25), characteristic="marginal")
    with pytest.raises(ValueError, match="not a state"):
        explainer.policy_fn(np.array([[0, 3]]))  # a face of 0 is no dice state
