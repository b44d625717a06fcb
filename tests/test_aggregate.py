"""Aggregated explanations (SVERL Sec. 10.1, Eq. 12, Prop. 45, Cor. 46)."""

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from shaprl.mdp import TabularMDP, greedy_policy, policy_evaluation, value_iteration
from shaprl.sverl import SVERLExplainer
from shaprl.sverl import aggregate as ag


def random_mdp(seed: int, values_per_feature=(3, 2, 2), n_actions: int = 3):
    """Random episodic MDP whose states are all combinations of a few feature values."""
    rng = np.random.default_rng(seed)
    features = np.array(list(itertools.product(*[range(k) for k in values_per_feature])))
    n = len(features)
    p = rng.random((n, n_actions, n)) * (rng.random((n, n_actions, n)) < 0.3)
    p /= p.sum(axis=2, keepdims=True) + 1e-12
    p *= rng.uniform(0.6, 0.95, size=(n, n_actions, 1))  # every step may end the episode
    start = rng.random(n) * (rng.random(n) < 0.5)
    start[0] += 0.1
    mdp = TabularMDP(
        features=features,
        transitions=sp.csr_matrix(p.reshape(n * n_actions, n)),
        rewards=rng.normal(size=(n, n_actions)),
        valid_actions=np.ones((n, n_actions), bool),
        start=start / start.sum(),
        gamma=1.0,
        feature_names=tuple(f"f{i}" for i in range(len(values_per_feature))),
        action_names=tuple(f"a{i}" for i in range(n_actions)),
    )
    policy = rng.dirichlet(np.ones(n_actions), size=n)
    return mdp, policy


@settings(max_examples=12)
@given(st.integers(0, 10**6), st.sampled_from(["conditional", "marginal"]))
def test_prop45_cor46_steady_state_average_is_zero(seed, characteristic):
    mdp, policy = random_mdp(seed)
    # Values on every state (the marginal variant queries unvisited feature combinations).
    values = policy_evaluation(mdp, policy)
    ex = SVERLExplainer(mdp, policy, values=values, characteristic=characteristic)
    e = ag.explain_support(ex)
    avg = ag.steady_state_average(e, ex.steady_state)
    assert set(avg["kind"]) == {"behaviour", "outcome", "prediction"}
    zero = avg[avg["kind"].isin(["behaviour", "prediction"])]
    assert np.abs(zero["phi"]).max() < 1e-10
    # Outcome averages keep signal: check against a direct weighted sum.
    w = ex.steady_state[e.states]
    direct = np.einsum("n,nf->f", w, e.results["outcome"].phi[:, :, 0])
    got = avg[avg["kind"] == "outcome"].set_index("feature")["phi"].to_numpy()
    np.testing.assert_allclose(got, direct, atol=1e-12)


def test_outcome_average_is_not_zero_in_general():
    mdp, policy = random_mdp(5)
    ex = SVERLExplainer(mdp, policy)
    avg = ag.steady_state_average(ag.explain_support(ex), ex.steady_state, kinds=("outcome",))
    assert np.abs(avg["phi"]).max() > 1e-3


def test_point_mass_and_coverage():
    mdp, policy = random_mdp(1)
    ex = SVERLExplainer(mdp, policy)
    s = int(ex.support[0])
    e = ex.explain([s])
    d = np.zeros(mdp.n_states)
    d[s] = 2.0  # normalised inside
    out = ag.expected_phi(e, d, kinds=("behaviour",))
    np.testing.assert_allclose(
        out.pivot(index="feature", columns="output", values="phi").loc[
            list(mdp.feature_names), list(mdp.action_names)
        ],
        e.phi("behaviour", s),
    )
    with pytest.raises(ValueError, match="does not cover"):
        ag.steady_state_average(e, ex.steady_state)
    with pytest.raises(KeyError, match="not computed"):
        ag.expected_phi(e, d, kinds=("nonsense",))


def test_policy_weighted_matches_manual_sum():
    mdp, policy = random_mdp(2)
    ex = SVERLExplainer(mdp, policy)
    e = ag.explain_support(ex)
    per_state = ag.policy_weighted(e, policy)
    s = int(e.states[3])
    manual = (e.phi("behaviour", s) * policy[s]).sum(axis=1)
    got = per_state[per_state["state"] == s].set_index("feature")["phi"]
    np.testing.assert_allclose(got[manual.index], manual)
    avg = ag.policy_weighted_average(e, policy, ex.steady_state)
    expected = (
        per_state.assign(w=ex.steady_state[per_state["state"]])
        .groupby("feature")
        .apply(lambda g: (g["w"] * g["phi"]).sum(), include_groups=False)
    )
    np.testing.assert_allclose(avg.set_index("feature")["phi"][expected.index], expected)


def test_deterministic_policy_credit_toward_chosen_action():
    # With a deterministic policy, pi-weighted credit is the credit of the chosen action and
    # sums (over features) to 1 - v_a(empty) >= 0.
    mdp, _ = random_mdp(4)
    q, _ = value_iteration(mdp)
    policy = greedy_policy(mdp, q)
    ex = SVERLExplainer(mdp, policy)
    e = ag.explain_support(ex)
    per_state = ag.policy_weighted(e, policy).groupby("state")["phi"].sum()
    for s in e.states:
        a = int(policy[s].argmax())
        assert per_state[s] == pytest.approx(1.0 - e.values("behaviour", s).iloc[0, a])


def test_conditioned_on_feature_total_expectation():
    mdp, policy = random_mdp(3)
    ex = SVERLExplainer(mdp, policy)
    e = ag.explain_support(ex)
    cond = ag.conditioned_on_feature(e, mdp.features, ex.steady_state, "f0", policy=policy)
    assert set(cond.columns) >= {
        "condition",
        "condition_value",
        "probability",
        "kind",
        "output",
        "feature",
        "phi",
    }
    probs = cond.drop_duplicates("condition_value").set_index("condition_value")["probability"]
    assert probs.sum() == pytest.approx(1.0)
    # Law of total expectation: the probability-weighted mix over values is the overall mean.
    mix = (
        (cond["probability"] * cond["phi"])
        .groupby([cond["kind"], cond["output"], cond["feature"]])
        .sum()
    )
    overall = ag.steady_state_average(ag._with_policy_weighted(e, policy), ex.steady_state)
    overall = overall.set_index(["kind", "output", "feature"])["phi"]
    np.testing.assert_allclose(mix[overall.index], overall, atol=1e-12)
    with pytest.raises(IndexError):
        ag.conditioned_on_feature(e, mdp.features, ex.steady_state, 7)


def test_feature_dependence():
    features = np.array(list(itertools.product(range(3), range(2))))
    independent = np.outer([0.2, 0.3, 0.5], [0.4, 0.6]).ravel()
    dep = ag.feature_dependence(features, independent, ("a", "b"))
    assert isinstance(dep, pd.DataFrame)
    np.testing.assert_allclose(dep[["mutual_information", "total_variation"]], 0, atol=1e-12)
    # Perfectly dependent: b = a mod 2 on two values of a.
    coupled = np.array([0.5, 0, 0, 0.5, 0, 0])
    dep = ag.feature_dependence(features, coupled, ("a", "b")).set_index("pair")
    assert dep.loc["a–b", "mutual_information"] == pytest.approx(np.log(2))
    assert dep.loc["a–b", "total_variation"] == pytest.approx(0.5)


def test_policy_weighted_is_shapley_of_expected_probability_game():
    from shaprl.shapley import exact_shapley

    mdp, policy = random_mdp(6)
    ex = SVERLExplainer(mdp, policy)
    e = ag.explain_support(ex, kinds=("behaviour",))
    game = ag.expected_probability_game(e, policy)
    assert game.shape == (len(e.states), 1 << mdp.n_features)
    direct = ag.policy_weighted(e, policy)["phi"].to_numpy().reshape(len(e.states), -1)
    np.testing.assert_allclose(exact_shapley(game.T).T, direct, atol=1e-12)


def test_conditioned_heatmap_labels_contrast_and_colour_bar():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(
        {
            "condition": "f0",
            "condition_value": [0, 0, 1, 1],
            "feature": ["a", "b", "a", "b"],
            "phi": [1.0, 0.004, -1.0, 0.0],
        }
    )
    fig, ax = plt.subplots()
    ag.conditioned_heatmap(frame, ax=ax, title="demo")
    inks = {t.get_text(): t.get_color() for t in ax.texts}
    assert inks["+1.00"] == "white" and inks["-1.00"] == "white"  # saturated cells: white
    assert inks["+0.00"] == "black"  # near-white cells: black
    assert "±1" in ax.get_title()  # the panel states its colour scale
    assert len(fig.axes) == 2  # the colour bar
    plt.close(fig)
