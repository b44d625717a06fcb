"""explain_agent honours wrappers and checks its inputs (issue 19)."""

import warnings
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch

from shaprl import explain_agent
from shaprl.agents import from_callable, from_q_table
from shaprl.domains.gym_tabular import gym_tabular
from shaprl.explain.routes import choose_route
from shaprl.mdp import value_iteration

torch.set_num_threads(1)


class Shifted(gym.ObservationWrapper):
    """FrozenLake states renumbered (s -> 15 - s): an agent trained on it sees other ids."""

    def __init__(self, env):
        super().__init__(env)

    def observation(self, obs):
        return 15 - int(obs)


@pytest.fixture(scope="module")
def lake_q():
    env = gym.make("FrozenLake-v1", is_slippery=True)
    g = gym_tabular(env, gamma=0.95)
    q_mdp, _ = value_iteration(g.mdp)
    q = np.zeros((16, 4))
    q[g.gym_states] = q_mdp
    return q


@pytest.mark.parametrize("route", ["exact", "monte carlo"])
def test_observation_wrapper_is_applied_to_every_constructed_state(lake_q, route):
    # The agent was trained on the wrapped env: its table is indexed by wrapped observations.
    plain = from_q_table(lake_q, epsilon=0.1)
    wrapped_table = lake_q[15 - np.arange(16)]  # row 15 - s holds state s's values
    wrapped_agent = from_q_table(wrapped_table, epsilon=0.1)
    seen = []
    spy = from_callable(
        lambda o: (seen.append(np.asarray(o).copy()), wrapped_agent.probabilities(o))[1],
        n_actions=4, value=wrapped_agent.values,
    )  # fmt: skip
    budget = dict(n_samples=3_000, n_rollouts=8, n_permutations=4, seed=0)
    opts = budget if route == "monte carlo" else {}
    kw = dict(states=[0, 4], gamma=0.95, route=route, verbose=False, **opts)
    ref = explain_agent(gym.make("FrozenLake-v1", is_slippery=True), plain, **kw)
    got = explain_agent(Shifted(gym.make("FrozenLake-v1", is_slippery=True)), spy, **kw)
    for kind in ("behaviour", "outcome", "prediction"):
        np.testing.assert_allclose(got.results[kind].phi, ref.results[kind].phi, atol=1e-12)
    assert 15 in np.concatenate(seen)  # state 0 reached the agent as 15


def test_agent_for_another_env_is_refused(lake_q):
    from stable_baselines3 import DQN

    big = gym.make("FrozenLake-v1", map_name="8x8")
    model = DQN("MlpPolicy", big, learning_starts=0, seed=0)
    with pytest.raises(ValueError, match="observation space .* differs"):
        explain_agent(gym.make("FrozenLake-v1"), model, verbose=False)
    with pytest.raises(ValueError, match="Q-table has 64 rows but the environment has 16"):
        explain_agent(gym.make("FrozenLake-v1"), from_q_table(np.zeros((64, 4))), verbose=False)
    taxi = gym.make("Taxi-v4")
    with pytest.raises(ValueError, match="4 actions but the environment's action space"):
        explain_agent(taxi, from_q_table(np.zeros((500, 4))), verbose=False)


def test_vecenv_dict_and_tuple_get_one_clear_message():
    from stable_baselines3.common.vec_env import DummyVecEnv

    agent = from_callable(lambda o: np.full((len(o), 2), 0.5), n_actions=2)
    vec = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    with pytest.raises(TypeError, match="vectorised environment .* gymnasium environment itself"):
        explain_agent(vec, agent, verbose=False)
    with pytest.raises(TypeError, match="FlattenObservation"):
        explain_agent(gym.make("Blackjack-v1"), agent, verbose=False)


def test_sb3_gamma_is_the_default_discount():
    from stable_baselines3 import PPO

    env = gym.make("FrozenLake-v1")
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=32, gamma=0.9, seed=0)
    ex = explain_agent(env, model, states=[0], kinds="outcome", verbose=False)
    assert ex.info["gamma"] == 0.9
    ex = explain_agent(env, from_q_table(np.zeros((16, 4))), states=[0], verbose=False)
    assert ex.info["gamma"] == 0.99  # DEFAULT_GAMMA


class _Unsettable(gym.Env):
    """A 3-feature continuous env whose state shaprl cannot set."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,))
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        obs = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return obs, 1.0, self.t >= 10, False, {}


def test_behaviour_needs_no_settable_simulator_and_outcome_takes_set_state():
    gym.register("Unsettable-v0", entry_point=_Unsettable, max_episode_steps=20)
    env = gym.make("Unsettable-v0")
    agent = from_callable(
        lambda o: np.column_stack([(o[:, 0] > 0), (o[:, 0] <= 0)]).astype(float), n_actions=2
    )
    route, reason = choose_route(env, agent, kinds=("behaviour",))
    assert route == "monte carlo" and "no rollouts" in reason
    ex = explain_agent(env, agent, kinds="behaviour", n_samples=400, seed=0, verbose=False)
    phi = ex.results["behaviour"].phi
    assert np.abs(phi[:, 0]).sum() > np.abs(phi[:, 1:]).sum()  # feature 0 drives the policy
    with pytest.raises(TypeError, match="set_state"):
        explain_agent(env, agent, kinds="outcome", route="monte carlo", n_samples=200,
                      verbose=False)  # fmt: skip
    calls = []
    ex = explain_agent(
        env, agent, kinds="outcome", route="monte carlo", n_samples=200, n_rollouts=2, seed=0,
        set_state=lambda e, f: calls.append(f), verbose=False,
    )  # fmt: skip
    assert calls and np.isfinite(ex.results["outcome"].phi).all()


def _cart_agent():
    return from_callable(
        lambda o: np.column_stack([o[:, 2] < 0, o[:, 2] >= 0]).astype(float) * 0.8 + 0.1,
        n_actions=2,
        value=lambda o: 1.0 - np.abs(o[:, 2]),
    )


def test_amortised_result_reports_its_own_accuracy(capsys):
    cart = gym.make("CartPole-v1")
    budget = dict(
        buffer_size=600, validation_size=200, characteristic_updates=300, shapley_updates=300
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a short training: the check may fail
        ex = explain_agent(
            cart, _cart_agent(), route="amortised", amortised_options=budget, seed=0
        )  # default kinds: behaviour and prediction on this route
    out = capsys.readouterr().out
    assert ex.kinds == ("behaviour", "prediction")
    assert "validation loss" in out and "efficiency gap" in out and "RMS z" in out
    info = ex.info
    assert info["runs"] == 3 and np.isfinite(ex.results["behaviour"].stderr).all()
    for kind in ex.kinds:
        assert len(info["validation_loss"][kind]["characteristic"]) == 3
        gap = info["efficiency_gap"][kind]
        assert 0 <= gap["corrected"] and gap["raw"] >= 0 and gap["scale"] > 0
    check = info["self_check"]
    assert check["checked"] and check["states"] == 8 and check["passed"] == (check["rms_z"] <= 3)


class _Reference:
    """A stand-in amortised explainer that returns Monte Carlo's values (plus an offset)."""

    def __init__(self, agent, offset):
        rng = np.random.default_rng(1)
        self.n_features = 4
        self.train_rows = rng.normal(scale=0.1, size=(2000, 4))
        self.validation_rows = rng.normal(scale=0.1, size=(100, 4))
        self.agent, self.offset = agent, offset

    def explain(self, rows, kinds):
        from shaprl.sverl.continuous import ApproximateMonteCarloSVERL

        ref = ApproximateMonteCarloSVERL(self.agent, self.train_rows).explain(
            rows, kinds, n_bootstrap=32, seed=0
        )
        results = {
            k: replace(r, phi=r.phi + self.offset * r.stderr, stderr=np.zeros_like(r.stderr))
            for k, r in ref.results.items()
        }
        return replace(ref, results=results)


@pytest.mark.parametrize(("offset", "passed"), [(0.0, True), (10.0, False)])
def test_self_check_measures_agreement_in_standard_errors(offset, passed):
    from shaprl.explain.routes import amortised_self_check

    check = amortised_self_check(_Reference(_cart_agent(), offset), _cart_agent(), ["behaviour"])
    assert check["checked"] and check["states"] == 8
    assert check["passed"] is passed
    np.testing.assert_allclose(check["rms_z"], offset, atol=1e-9)


def test_failed_self_check_warns_and_auto_falls_back_to_monte_carlo():
    cart = gym.make("CartPole-v1")
    obs = np.random.default_rng(0).normal(scale=0.05, size=(600, 4))
    budget = dict(buffer_size=400, validation_size=100, characteristic_updates=5, shapley_updates=5)
    with pytest.warns(UserWarning, match="disagrees with Monte Carlo"):
        ex = explain_agent(
            cart, _cart_agent(), features=obs, kinds="behaviour", amortised_options=budget,
            n_samples=1000, verbose=False,
        )  # fmt: skip
    assert ex.info["route"] == "monte carlo" and "self-check failed" in ex.info["route_reason"]


def test_auto_mask_value_for_unbounded_features_and_a_far_one_warns():
    from shaprl.fastsverl.explainer import FastSVERLExplainer

    cart = gym.make("CartPole-v1")  # two unbounded Box features
    agent = _cart_agent()
    kw = dict(buffer_size=200, validation_size=50, characteristic_updates=2, shapley_updates=2)
    fast = FastSVERLExplainer(cart, agent.probabilities, mask_value="auto", **kw).fit()
    lo = fast.train_rows.min()
    assert fast.config.mask_value < min(lo, fast.validation_rows.min())
    assert fast.config.mask_value > lo - 10
    with pytest.warns(UserWarning, match="far outside the observations"):
        FastSVERLExplainer(cart, agent.probabilities, mask_value=1e6, **kw).fit()
