"""Monte Carlo SVERL (SVERL Sec. 10.2) against the exact engine, through simulators only."""

from __future__ import annotations

from functools import cache

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shaprl.domains import taxi as T
from shaprl.domains import tic_tac_toe as TTT
from shaprl.domains.simulators import TicTacToeEnv, taxi_simulator, tic_tac_toe_simulator
from shaprl.mdp import greedy_policy, value_iteration
from shaprl.shapley import exact_shapley
from shaprl.simulators import GymSimulator, collect_states
from shaprl.sverl import SVERLExplainer
from shaprl.sverl.characteristics import conditional_characteristic
from shaprl.sverl.monte_carlo import MonteCarloSVERL

KINDS = ("behaviour", "outcome", "prediction")


def _lookup(features: np.ndarray, table: np.ndarray):
    index = {r.tobytes(): i for i, r in enumerate(np.ascontiguousarray(features, np.int64))}

    def fn(rows):
        rows = np.ascontiguousarray(np.atleast_2d(rows), np.int64)
        return table[[index[r.tobytes()] for r in rows]]

    return fn


@cache
def taxi_setup():
    mdp = T.taxi()
    q, v = value_iteration(mdp)
    policy = greedy_policy(mdp, q)
    exact = SVERLExplainer(mdp, policy, values=v, renormalise=False)
    return mdp, policy, v, exact


@cache
def ttt_setup():
    mdp = TTT.tic_tac_toe()
    policy, _, v = TTT.optimal_policy(mdp)
    exact = SVERLExplainer(mdp, policy, values=v, renormalise=False)
    return mdp, policy, v, exact


def _mc(setup, sim, *, exact_weights: bool = True, states=None):
    mdp, policy, v, exact = setup
    support = exact.support
    pol, val = _lookup(mdp.features, policy), _lookup(mdp.features, v)
    if states is None:
        states = mdp.features[support]
    weights = exact.steady_state[support] if exact_weights else None
    return MonteCarloSVERL(
        sim, pol, states, weights=weights, value_fn=val,
        feature_names=mdp.feature_names, action_names=mdp.action_names,
    )  # fmt: skip


def _assert_within(mc_expl, exact_expl, n_se: float = 4.0, atol: float = 1e-9):
    for kind in mc_expl.kinds:
        est, ref = mc_expl.results[kind], exact_expl.results[kind]
        err = np.abs(est.phi - ref.phi)
        assert (err <= n_se * est.stderr + atol).all(), (
            f"{kind}: max |error| {err.max():.4g}, max z {(err / (est.stderr + 1e-15)).max():.2f}"
        )


def test_tic_tac_toe_converges_to_exact_at_fig2_state():
    mdp, _, _, exact = ttt_setup()
    mc = _mc(ttt_setup(), tic_tac_toe_simulator())
    s = mdp.index_of(TTT.FIG2_STATE)
    est = mc.explain(mdp.features[[s]], n_permutations=512, n_rollouts=128, seed=3)
    ref = exact.explain([s])
    _assert_within(est, ref)
    assert est.method == "monte carlo" and not est.is_exact
    # The block square's outcome credit is large and clearly resolved.
    assert est.results["outcome"].phi[0, 6, 0] > 5 * est.results["outcome"].stderr[0, 6, 0]


def test_taxi_converges_to_exact_at_fig10_states():
    mdp, _, _, exact = taxi_setup()
    mc = _mc(taxi_setup(), taxi_simulator())
    rows = np.array([T.TOP_STATE, T.BOTTOM_STATE])
    est = mc.explain(rows, n_permutations=1024, n_rollouts=32, seed=5)
    ref = exact.explain(features=rows)
    _assert_within(est, ref)
    np.testing.assert_array_equal(est.features, ref.features)


def test_collected_sample_approximates_the_steady_state_and_the_values():
    mdp, policy, v, exact = taxi_setup()
    pol = _lookup(mdp.features, policy)
    sample = collect_states(taxi_simulator(), pol, 60_000, seed=0, progress=False)
    assert sample.steps >= 60_000 and sample.truncated == 0
    counts = np.bincount(T.encode(*sample.features.T), minlength=mdp.n_states)
    tv = 0.5 * np.abs(counts / counts.sum() - exact.steady_state).sum()
    assert tv < 0.05
    mc = _mc(taxi_setup(), taxi_simulator(), exact_weights=False, states=sample)
    rows = np.array([T.TOP_STATE, T.BOTTOM_STATE])
    est = mc.explain(rows, n_permutations=512, n_rollouts=64, seed=1)
    # The standard errors include the state sample's own error (episode bootstrap).
    assert est.results["behaviour"].samples["bootstrap"] == 64
    _assert_within(est, exact.explain(features=rows))


def test_weighted_sample_has_no_sample_error():
    mc = _mc(taxi_setup(), taxi_simulator())
    est = mc.explain(np.array([T.TOP_STATE]), ("behaviour",), n_permutations=8)
    assert est.results["behaviour"].samples["bootstrap"] == 0


def test_stderr_shrinks_like_one_over_root_n():
    mdp, _, _, _ = taxi_setup()
    mc = _mc(taxi_setup(), taxi_simulator())
    rows = np.array([T.TOP_STATE, T.BOTTOM_STATE])
    small = mc.explain(rows, n_permutations=64, n_rollouts=16, seed=0)
    large = mc.explain(rows, n_permutations=1024, n_rollouts=256, seed=0)
    for kind in ("behaviour", "prediction"):
        a, b = small.results[kind].stderr, large.results[kind].stderr
        ratio = np.sqrt(np.mean(a**2) / np.mean(b**2))
        assert 2.5 < ratio < 6.5, (kind, ratio)  # sqrt(1024 / 64) = 4


def test_same_seed_same_values_on_any_joblib_backend():
    mdp, _, _, _ = ttt_setup()
    mc = _mc(ttt_setup(), tic_tac_toe_simulator())
    rows = mdp.features[[mdp.index_of(TTT.FIG2_STATE)]]
    a = mc.explain(rows, n_permutations=32, n_rollouts=16, seed=7)
    fresh = _mc(ttt_setup(), tic_tac_toe_simulator())
    with joblib.parallel_config(backend="threading", n_jobs=2):
        b = fresh.explain(rows, n_permutations=32, n_rollouts=16, seed=7)
    c = mc.explain(rows, n_permutations=32, n_rollouts=16, seed=8)
    for kind in KINDS:
        np.testing.assert_array_equal(a.results[kind].phi, b.results[kind].phi)
        np.testing.assert_array_equal(a.results[kind].stderr, b.results[kind].stderr)
    assert not np.array_equal(a.results["outcome"].phi, c.results["outcome"].phi)


def test_a_state_does_not_depend_on_its_company():
    mdp, _, _, _ = taxi_setup()
    mc = _mc(taxi_setup(), taxi_simulator())
    both = mc.explain(np.array([T.TOP_STATE, T.BOTTOM_STATE]), n_permutations=16, n_rollouts=8)
    alone = mc.explain(np.array([T.BOTTOM_STATE]), n_permutations=16, n_rollouts=8)
    for kind in KINDS:
        np.testing.assert_array_equal(both.results[kind].phi[1], alone.results[kind].phi[0])


def test_bad_input_gets_a_clear_error():
    mdp, policy, v, exact = ttt_setup()
    sim = tic_tac_toe_simulator()
    mc = _mc(ttt_setup(), sim)
    with pytest.raises(ValueError, match="never occurs in the state sample"):
        mc.explain([[1, 1, 1, 2, 2, 0, 0, 0, 0]], on_missing="raise")
    with pytest.raises(ValueError, match="on_missing"):
        mc.explain(mdp.features[:1], on_missing="skip")
    with pytest.raises(ValueError, match="feature rows of length 9"):
        mc.explain([[0, 0, 0]])
    with pytest.raises(ValueError, match="unknown explanation kind"):
        mc.explain(mdp.features[:1], kinds=("behavior",))
    with pytest.raises(ValueError, match="n_permutations"):
        mc.explain(mdp.features[:1], n_permutations=1)
    feats = mdp.features[exact.support]
    pol = _lookup(mdp.features, policy)
    with pytest.raises(ValueError, match="value function"):
        MonteCarloSVERL(sim, pol, feats).explain(feats[:1], kinds="prediction")
    with pytest.raises(ValueError, match="not a probability distribution"):
        MonteCarloSVERL(sim, lambda r: np.full((len(r), 9), np.nan), feats)
    with pytest.raises(ValueError, match="action probabilities of shape"):
        MonteCarloSVERL(sim, lambda r: np.ones((len(r), 3)) / 3, feats)
    with pytest.raises(ValueError, match="weights"):
        MonteCarloSVERL(sim, pol, feats, weights=-np.ones(len(feats)))
    with pytest.raises(ValueError, match="NaN"):
        MonteCarloSVERL(sim, pol, np.full((2, 9), np.nan))
    with pytest.raises(TypeError, match="not a simulator"):
        MonteCarloSVERL(object(), pol, feats)
    with pytest.raises(ValueError, match="not a live board"):
        TicTacToeEnv().set_board([1, 1, 1, 2, 2, 0, 0, 0, 0])
    env = TicTacToeEnv()
    env.reset(seed=0)
    env.set_board(TTT.FIG2_STATE)
    with pytest.raises(ValueError, match="not free"):
        env.step(4)


class _Loop:
    """A two-state loop that never ends: rollouts must be cut and say so."""

    n_actions = 1

    def reset(self, seed=None):
        self.s = 0
        return np.array([0])

    def reset_to(self, features):
        self.s = int(features[0])

    def step(self, action):
        self.s = 1 - self.s
        return np.array([self.s]), 0.0, False, False

    def valid_actions(self, features):
        return np.ones(1, bool)


def test_cut_rollouts_warn():
    mc = MonteCarloSVERL(_Loop(), lambda r: np.ones((len(r), 1)), np.array([[0], [1]]),
                         gamma=0.5, max_episode_steps=1)  # fmt: skip
    with pytest.warns(RuntimeWarning, match="max_episode_steps"):
        mc.explain([[0]], ("outcome",), n_permutations=4, n_rollouts=4, n_groups=2)


def test_gym_simulator_rejects_continuous_actions():
    import gymnasium as gym

    with pytest.raises(TypeError, match="discrete actions"):
        GymSimulator(gym.make("Pendulum-v1"), set_state=lambda env, f: None)


class _NoDynamics:
    """Behaviour and prediction need no rollouts: a simulator that only names the actions."""

    n_actions = 3

    def reset(self, seed=None):
        raise AssertionError("not used")

    reset_to = step = reset

    def valid_actions(self, features):
        return np.ones(3, bool)


@settings(max_examples=25)
@given(st.integers(0, 2**31 - 1), st.integers(2, 4))
def test_matches_exact_shapley_of_the_sample_characteristic(seed, n_features):
    """Same sample, same weights: permutation values within 4 stderr of the exact ones, and
    efficient (they sum to v(N) - v(empty)) for every number of orders."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 2, size=(12, n_features))
    weights = rng.random(12) + 0.1
    logits = rng.normal(size=(2,) * n_features + (3,))

    def pol(r):
        z = logits[tuple(np.asarray(r).T)]
        return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)

    def val(r):
        return logits[tuple(np.asarray(r).T)][:, 0]

    mc = MonteCarloSVERL(_NoDynamics(), pol, rows, weights=weights, value_fn=val)
    x = rows[0]
    est = mc.explain(x[None], ("behaviour", "prediction"), n_permutations=200, seed=seed)
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    w = np.bincount(inverse.reshape(-1), weights=weights)
    for kind, target in (("behaviour", pol(unique)), ("prediction", val(unique)[:, None])):
        table = conditional_characteristic(unique, w, target, x)
        exact_phi = exact_shapley(table)
        phi, se = est.results[kind].phi[0], est.results[kind].stderr[0]
        assert (np.abs(phi - exact_phi) <= 4 * se + 1e-9).all()
        np.testing.assert_allclose(phi.sum(axis=0), table[-1] - table[0], atol=1e-9)


def test_along_orders_sampler_equals_the_bitmask_sampler():
    from shaprl.shapley import TableGame, permutation_shapley
    from shaprl.shapley.sampling import _values_along, permutation_shapley_along_orders

    values = np.random.default_rng(3).normal(size=(1 << 6, 2))
    game = TableGame(values)
    a = permutation_shapley(game, 6, 50, seed=4)
    b = permutation_shapley_along_orders(lambda o: _values_along(game, o), 6, 50, seed=4)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.stderr, b.stderr)


def test_more_features_than_bitmasks_hold():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 3, size=(400, 80))
    w = rng.normal(size=(80, 3)) * 0.1

    def pol(r):
        z = np.asarray(r, float) @ w
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    mc = MonteCarloSVERL(_NoDynamics(), pol, rows)
    est = mc.explain(rows[:2], "behaviour", n_permutations=16, seed=0)
    assert est.results["behaviour"].phi.shape == (2, 80, 3)
    # Efficiency holds for every sample of orders: phi sums to pi(x) - mean pi.
    expected = pol(rows[:2]) - pol(rows).mean(axis=0)
    np.testing.assert_allclose(est.results["behaviour"].phi.sum(axis=1), expected, atol=1e-12)
    with pytest.raises(ValueError, match="at most 62"):
        mc.behaviour_values(rows[0], np.array([0]))


def test_process_backend_gives_the_same_sample():
    mdp, policy, _, _ = taxi_setup()
    pol = _lookup(mdp.features, policy)
    serial = collect_states(taxi_simulator(), pol, 3_000, seed=2, steps_per_job=1_000)
    with joblib.parallel_config(backend="loky", n_jobs=2):
        spread = collect_states(taxi_simulator(), pol, 3_000, seed=2, steps_per_job=1_000)
    np.testing.assert_array_equal(serial.features, spread.features)
    np.testing.assert_array_equal(serial.episode, spread.episode)


def test_renormalised_variant_matches_the_exact_option():
    mdp, policy, v, _ = ttt_setup()
    exact = SVERLExplainer(mdp, policy, values=v, renormalise=True)
    support = exact.support
    mc = MonteCarloSVERL(
        tic_tac_toe_simulator(), _lookup(mdp.features, policy), mdp.features[support],
        weights=exact.steady_state[support], renormalise=True,
    )  # fmt: skip
    s = mdp.index_of(TTT.FIG2_STATE)
    est = mc.explain(mdp.features[[s]], n_permutations=512, n_rollouts=64, seed=0)
    assert est.kinds == ("behaviour", "outcome")  # no value function: no prediction
    _assert_within(est, exact.explain(states=[s], kinds=("behaviour", "outcome")))


class _ModelSim:
    """Test-only simulator that samples a tabular model (to reach gamma < 1 and revisits)."""

    def __init__(self, mdp):
        self.mdp, self.n_actions = mdp, mdp.n_actions
        self.rng = np.random.default_rng(0)

    def reset(self, seed=None):
        self.rng = np.random.default_rng(seed)
        self.s = int(self.rng.choice(self.mdp.n_states, p=self.mdp.start))
        return self.mdp.features[self.s]

    def reset_to(self, features):
        self.s = self.mdp.index_of(tuple(features))

    def step(self, action):
        row = self.mdp.transitions[self.s * self.n_actions + int(action)]
        reward = float(self.mdp.rewards[self.s, int(action)])
        u, acc = self.rng.random(), 0.0
        for nxt, p in zip(row.indices, row.data, strict=True):
            acc += p
            if u < acc:
                self.s = int(nxt)
                return self.mdp.features[self.s], reward, False, False
        return self.mdp.features[self.s], reward, True, False

    def valid_actions(self, features):
        return self.mdp.valid_actions[self.mdp.index_of(tuple(features))]


def test_discounted_continuing_task_with_revisits():
    """Colour grid (gamma = 0.9, continuing): rollouts end when x recurs, not at episode end."""
    from shaprl.domains.gridworlds import colour_grid

    mdp = colour_grid()
    q, _ = value_iteration(mdp)
    policy = 0.7 * greedy_policy(mdp, q) + 0.3 / mdp.n_actions
    exact = SVERLExplainer(mdp, policy)
    mc = MonteCarloSVERL(
        _ModelSim(mdp), _lookup(mdp.features, policy), mdp.features,
        weights=exact.steady_state, gamma=mdp.gamma,
    )  # fmt: skip
    est = mc.explain(mdp.features, "outcome", n_permutations=64, n_rollouts=400, seed=0)
    _assert_within(est, exact.explain(states=range(mdp.n_states), kinds="outcome"))
    assert est.results["outcome"].stderr.max() > 0
