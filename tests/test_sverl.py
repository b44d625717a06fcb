"""SVERL characteristics against brute force, the paper's worked numbers, and errors."""

import numpy as np
import pytest

from shaprl.domains import road_sign as rs
from shaprl.domains.gridworlds import colour_grid, five_state_grid
from shaprl.mdp import TabularMDP, greedy_policy, policy_evaluation, steady_state, value_iteration
from shaprl.sverl import (
    SVERLExplainer,
    conditional_characteristic,
    explain,
    marginal_characteristic,
    outcome_characteristic,
    restrict_to_valid,
)


def random_feature_mdp(seed: int, n_features: int = 4, levels: int = 3, a: int = 3) -> TabularMDP:
    """A random episodic MDP whose states are all distinct feature vectors."""
    rng = np.random.default_rng(seed)
    grid = (
        np.array(np.meshgrid(*[range(levels)] * n_features, indexing="ij"))
        .reshape(n_features, -1)
        .T
    )
    feats = grid[rng.choice(len(grid), size=min(12, len(grid)), replace=False)]
    n = len(feats)
    p = rng.random((n, a, n)) * (rng.random((n, a, n)) < 0.4)
    p = p / np.maximum(p.sum(axis=2, keepdims=True), 1e-12) * 0.8
    valid = rng.random((n, a)) < 0.8
    valid[:, 0] = True
    return TabularMDP.from_dense(
        feats,
        p,
        rng.normal(size=(n, a)),
        np.full(n, 1 / n),
        1.0,
        tuple(f"f{i}" for i in range(n_features)),
        tuple(f"a{j}" for j in range(a)),
        valid_actions=valid,
    )


def random_policy(mdp: TabularMDP, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pi = rng.random((mdp.n_states, mdp.n_actions)) * mdp.valid_actions
    return pi / pi.sum(axis=1, keepdims=True)


def brute_conditional(feats, weights, targets, x):
    f = feats.shape[1]
    out = []
    for c in range(1 << f):
        known = [(c >> i) & 1 for i in range(f)]
        match = np.all((feats == x) | ~np.array(known, bool), axis=1)
        out.append(weights[match] @ targets[match] / weights[match].sum())
    return np.array(out)


@pytest.mark.parametrize("seed", range(5))
def test_conditional_characteristic_matches_brute_force(seed):
    mdp = random_feature_mdp(seed)
    pi = random_policy(mdp, seed)
    d = steady_state(mdp, pi)
    support = np.flatnonzero(d > 0)
    x = mdp.features[support[0]]
    fast = conditional_characteristic(mdp.features[support], d[support], pi[support], x)
    slow = brute_conditional(mdp.features[support], d[support], pi[support], x)
    np.testing.assert_allclose(fast, slow, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_outcome_characteristic_matches_policy_evaluation_per_coalition(seed):
    mdp = random_feature_mdp(seed)
    pi = random_policy(mdp, seed + 10)
    explainer = SVERLExplainer(mdp, pi)
    e = int(explainer.support[-1])
    behaviour = explainer.behaviour_table(e)
    fast = outcome_characteristic(mdp, pi, e, behaviour)
    acted = restrict_to_valid(behaviour, mdp.valid_actions[e])  # Remark 35
    for c in range(len(behaviour)):
        changed = pi.copy()
        changed[e] = acted[c]
        assert np.isclose(fast[c], policy_evaluation(mdp, changed)[e], atol=1e-9)
    v = policy_evaluation(mdp, pi)
    assert np.isclose(fast[-1], v[e])  # full information recovers V^pi(e)


def test_marginal_characteristic_matches_brute_force():
    mdp = random_feature_mdp(3, n_features=3, levels=2, a=2)
    x = mdp.features[0]
    feats, w = mdp.features, np.full(mdp.n_states, 1 / mdp.n_states)

    def f(rows):
        return np.column_stack([rows.sum(1), rows[:, 0] * rows[:, 2]])

    fast = marginal_characteristic(feats, w, f, x)
    for c in range(8):
        known = np.array([(c >> i) & 1 for i in range(3)], bool)
        hybrid = np.where(known, x, feats)
        np.testing.assert_allclose(fast[c], w @ f(hybrid))


def test_paper_numbers_five_state_grid_outcome():
    """App. B, Fig. 8: x gets twice y's credit at state 1; x positive, y negative at state 2."""
    mdp = five_state_grid()
    q, _ = value_iteration(mdp)
    ex = explain(mdp, greedy_policy(mdp, q), [0, 1], kinds=["outcome"])
    np.testing.assert_allclose(ex.values("outcome", 0)["value"], [0, 6, 4, 6])
    np.testing.assert_allclose(ex.phi("outcome", 0)["value"], [4, 2])
    np.testing.assert_allclose(ex.values("outcome", 1)["value"], [41 / 6, 7, 6.5, 7])
    np.testing.assert_allclose(ex.phi("outcome", 1)["value"], [1 / 3, -1 / 6])


def test_paper_numbers_colour_grid_behaviour():
    mdp = colour_grid()
    q, _ = value_iteration(mdp)
    ex = explain(mdp, greedy_policy(mdp, q), [0, 2], kinds=["behaviour"])
    phi_tl = ex.phi("behaviour", 0)
    np.testing.assert_allclose(phi_tl.loc["I"], phi_tl.loc["C"])  # either feature identifies TL
    phi_bl = ex.phi("behaviour", 2)
    assert phi_bl.loc["I", "N"] > phi_bl.loc["C", "N"] > 0 and phi_bl.loc["C", "W"] > 0


def test_steady_state_average_of_behaviour_and_prediction_is_zero():
    """SVERL Prop. 45 and Cor. 46 on a random MDP."""
    mdp = random_feature_mdp(7)
    pi = random_policy(mdp, 7)
    assert not mdp.valid_actions.all()  # Def. 17 must hold where actions can be unavailable
    explainer = SVERLExplainer(mdp, pi)  # the default is Def. 17 (no renormalisation)
    ex = explainer.explain(explainer.support, kinds=["behaviour", "prediction"])
    d = explainer.steady_state[explainer.support]
    for kind in ("behaviour", "prediction"):
        np.testing.assert_allclose(np.einsum("s,sfm->fm", d, ex.results[kind].phi), 0, atol=1e-12)


def test_renormalised_variant_is_opt_in_and_breaks_prop45():
    """renormalise=True is not Def. 17: it moves behaviour, leaves outcome and prediction."""
    mdp = random_feature_mdp(7)
    pi = random_policy(mdp, 7)
    paper = SVERLExplainer(mdp, pi)
    variant = SVERLExplainer(mdp, pi, renormalise=True)
    assert not paper.renormalise
    support = paper.support
    d = paper.steady_state[support]
    ex_p = paper.explain(support)
    ex_v = variant.explain(support)
    for s in support:  # Def. 17 rows are plain steady-state averages of pi
        table = paper.behaviour_table(int(s))
        np.testing.assert_allclose(table.sum(axis=1), 1.0)
        np.testing.assert_allclose(
            variant.behaviour_table(int(s)),
            restrict_to_valid(table, mdp.valid_actions[s]),
        )
    for kind in ("outcome", "prediction"):  # outcome renormalises either way (Remark 35)
        np.testing.assert_allclose(ex_p.results[kind].phi, ex_v.results[kind].phi, atol=1e-12)
    average = np.einsum("s,sfm->fm", d, ex_v.results["behaviour"].phi)
    assert np.abs(average).max() > 1e-3


def test_valid_action_probability_mass_is_below_one_under_def17():
    """Def. 17 can give mass to actions unavailable at the explained state."""
    mdp = random_feature_mdp(7)
    pi = random_policy(mdp, 7)
    explainer = SVERLExplainer(mdp, pi)
    leaks = [
        explainer.behaviour_table(int(s))[:, ~mdp.valid_actions[s]].sum(axis=1).max()
        for s in explainer.support
    ]
    assert max(leaks) > 0


def test_explanation_frames_are_tidy_and_efficient():
    mdp, pi = rs.road_sign()
    ex = explain(mdp, pi, [0, 1])
    tidy = ex.to_frame()
    assert set(tidy.columns) >= {"kind", "state", "output", "feature", "phi"}
    assert len(tidy) == 2 * 2 * (2 + 1 + 1)  # states x features x outputs(kind)
    chars = ex.characteristic_frame()
    for kind, res in ex.results.items():
        np.testing.assert_allclose(
            res.phi.sum(axis=1), res.characteristic[:, -1] - res.characteristic[:, 0], atol=1e-12
        )
        assert (chars["kind"] == kind).sum() == res.characteristic.size


def test_state_outside_support_is_refused():
    mdp, pi = rs.road_sign()
    with pytest.raises(ValueError, match="zero steady-state probability"):
        explain(mdp, pi, [2])


def test_unknown_kind_and_characteristic():
    mdp, pi = rs.road_sign()
    with pytest.raises(ValueError, match="unknown explanation kind"):
        explain(mdp, pi, [0], kinds=["behavior"])
    with pytest.raises(ValueError, match="unknown characteristic"):
        SVERLExplainer(mdp, pi, characteristic="interventional")


def test_marginal_off_manifold_row_is_reported():
    mdp, pi = rs.road_sign()  # (left, 10 mi) is not a junction of the map
    with pytest.raises(ValueError, match="not a state"):
        explain(mdp, pi, [0], kinds=["behaviour"], characteristic="marginal")


def test_restrict_to_valid_renormalises():
    out = restrict_to_valid(np.array([[0.5, 0.25, 0.25]]), np.array([True, False, True]))
    np.testing.assert_allclose(out, [[2 / 3, 0, 1 / 3]])
    with pytest.raises(ValueError, match="Remark 35"):
        restrict_to_valid(np.array([[0.0, 1.0]]), np.array([True, False]))


def test_characteristic_and_phi_table():
    from shaprl.sverl.tables import characteristic_and_phi, split_characteristic_and_phi

    mdp, pi = rs.road_sign()
    ex = explain(mdp, pi, [0, 1])
    tidy, display = characteristic_and_phi(ex, "behaviour")
    assert list(display.columns) == ["∅", "{direction}", "{distance}", "{direction, distance}"] + [
        "φ_direction",
        "φ_distance",
    ]
    assert display.index.names == ["state_label", "output"] and len(display) == 4
    # Efficiency row by row: the φ columns add up to v(all) - v(∅).
    gap = display[["φ_direction", "φ_distance"]].sum(axis=1)
    np.testing.assert_allclose(gap, display["{direction, distance}"] - display["∅"], atol=1e-12)
    assert set(tidy["quantity"]) == {"v(C)", "φ"} and len(tidy) == 2 * 2 * (4 + 2)
    _, pred = characteristic_and_phi(ex, "prediction")
    assert pred.index.names == ["state_label"]  # the single output level is dropped
    _, named = characteristic_and_phi({"a": ex, "b": ex}, "outcome", states=[0])
    assert named.index.names == ["agent"] and list(named.index) == ["a", "b"]
    v, v_view, phis, phi_view = split_characteristic_and_phi(tidy, display)
    assert list(v.columns) == list(ex.characteristic_frame().columns)
    assert set(phis.columns) == set(ex.to_frame().columns) and len(phis) == 2 * 2 * 2
    assert list(phi_view.columns) == ["φ_direction", "φ_distance"] and len(v_view.columns) == 4
    with pytest.raises(ValueError, match="no 'outcome'"):
        characteristic_and_phi(explain(mdp, pi, [0], kinds=["behaviour"]), "outcome")
