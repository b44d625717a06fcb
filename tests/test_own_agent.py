"""Explaining a user's own agent: routes, approximate conditionals, the README snippet."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from shaprl import explain_agent
from shaprl.agents import from_callable, from_q_table
from shaprl.domains.gym_tabular import gym_tabular
from shaprl.explain.routes import choose_route
from shaprl.mdp import greedy_policy, value_iteration
from shaprl.sverl import SVERLExplainer
from shaprl.sverl.continuous import ApproximateMonteCarloSVERL, Conditional

torch.set_num_threads(1)


def test_readme_snippet_sb3_agent_three_explanations():
    # The README's snippet, with a tiny training budget.
    from stable_baselines3 import PPO

    env = gym.make("FrozenLake-v1", is_slippery=True)
    agent = PPO("MlpPolicy", env, n_steps=64, batch_size=32, seed=0).learn(128)
    explanation = explain_agent(env, agent)  # exact route: FrozenLake exposes its model
    explanation.phi("behaviour", 0)  # features x actions, gymnasium state 0
    explanation.phi("outcome", 0), explanation.phi("prediction", 0)
    frame = explanation.to_frame()
    assert set(frame["kind"]) == {"behaviour", "outcome", "prediction"}
    assert explanation.info["route"] == "exact" and 0 in explanation.states


def test_readme_snippet_q_learning_frozenlake_reaches_the_goal():
    # The README's from-scratch snippet: < 30 s on one core, >= 60 % of 1,000 seeded episodes.
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(
        r"```python\n(import gymnasium as gym\nimport numpy as np\n.*?)```", readme, re.S
    )
    namespace: dict = {}
    exec(compile(block.group(1), "README", "exec"), namespace)  # noqa: S102 -- our own README
    q, env = namespace["q"], namespace["env"]
    wins = 0.0
    for i in range(1_000):
        s, _ = env.reset(seed=10**6 + i)
        done = False
        while not done:
            s, r, term, trunc, _ = env.step(int(q[s].argmax()))
            done = term or trunc
        wins += r
    assert wins / 1_000 >= 0.6
    assert namespace["explanation"].info["route"] == "exact"


@pytest.fixture(scope="module")
def lake():
    env = gym.make("FrozenLake-v1", is_slippery=True)
    g = gym_tabular(env, gamma=0.95)
    q_mdp, _ = value_iteration(g.mdp)
    q = np.zeros((16, 4))
    q[g.gym_states] = q_mdp
    return env, g, q


def test_exact_route_equals_the_engine(lake, capsys):
    env, g, q = lake
    agent = from_q_table(q, epsilon=0.1)
    ex = explain_agent(env, agent, states=[0, 6], gamma=0.95)
    assert "exact route" in capsys.readouterr().out
    policy = g.policy_table(agent.policy)
    ref = SVERLExplainer(g.mdp, policy, values=g.value_table(agent.value)).explain(
        states=[g.state(0), g.state(6)]
    )
    for kind in ("behaviour", "outcome", "prediction"):
        np.testing.assert_allclose(ex.phi(kind, 6), ref.phi(kind, g.state(6)))
    np.testing.assert_array_equal(ex.states, [0, 6])  # gymnasium indices


def test_monte_carlo_route_by_hand_agrees_with_exact(lake):
    env, g, q = lake
    agent = from_q_table(q, epsilon=0.2)
    exact = explain_agent(env, agent, states=[0], gamma=0.95, verbose=False)
    mc = explain_agent(
        env, agent, states=[0], gamma=0.95, route="monte carlo", n_samples=20_000,
        n_rollouts=400, n_permutations=64, seed=1, verbose=False,
    )  # fmt: skip
    assert mc.method == "monte carlo" and mc.info["route_reason"] == "chosen by hand"
    for kind in ("behaviour", "outcome", "prediction"):
        diff = np.abs(mc.phi(kind, 0).to_numpy() - exact.phi(kind, 0).to_numpy())
        err = mc.stderr(kind, 0).to_numpy()
        assert (diff <= 4 * err + 1e-3).all(), (kind, diff, err)


def test_route_choice_and_refusals():
    lake_env = gym.make("FrozenLake-v1")
    agent = from_q_table(np.zeros((16, 4)))
    assert choose_route(lake_env, agent)[0] == "exact"
    cart = gym.make("CartPole-v1")
    cart_agent = from_callable(lambda o: np.full((len(o), 2), 0.5), n_actions=2)
    route, reason = choose_route(cart, cart_agent)
    assert route == "monte carlo" and "4 features" in reason
    with pytest.raises(ValueError, match="route must be one of"):
        explain_agent(lake_env, agent, route="fast")
    with pytest.raises(TypeError, match="from_callable"):
        explain_agent(lake_env, lambda obs: obs)
    with pytest.raises(ValueError, match="features="):
        explain_agent(cart, cart_agent, states=[3], verbose=False)


def test_kernel_conditional_recovers_a_gaussian_conditional_mean():
    # s ~ N(0, [[1, r], [r, 1]]); action a(s) = s0 + s1. E[a | s0 = x0] = (1 + r) x0.
    r = 0.6
    rng = np.random.default_rng(0)
    sample = rng.multivariate_normal([0, 0], [[1, r], [r, 1]], size=40_000)
    agent = from_callable(lambda o: o.sum(axis=1, keepdims=True), output="actions", n_actions=1)
    x = np.array([1.0, -0.5])
    for cond in (Conditional("kernel", bandwidth=0.05), Conditional("knn", k=400)):
        ex = ApproximateMonteCarloSVERL(agent, sample, conditional=cond).explain(x, "behaviour")
        v = ex.values("behaviour", 0)["action0"].to_numpy()  # coalitions: {}, {0}, {1}, {0,1}
        assert v[1] == pytest.approx((1 + r) * x[0], abs=0.05)
        assert v[2] == pytest.approx((1 + r) * x[1], abs=0.05)
        assert v[3] == pytest.approx(x.sum()) and v[0] == pytest.approx(0.0, abs=0.03)
        assert "approximate" in ex.method and ex.results["behaviour"].stderr is not None
    # Independent features (the marginal case): the conditional mean is x0 alone.
    indep = rng.normal(size=(40_000, 2))
    ex = ApproximateMonteCarloSVERL(
        agent, indep, conditional=Conditional("bins", n_bins=40)
    ).explain(x, "behaviour")
    phi = ex.phi("behaviour", 0)["action0"]
    np.testing.assert_allclose(phi, x, atol=0.06)


def test_exact_conditional_matches_the_engine_on_discrete_features(lake):
    env, g, q = lake
    policy = greedy_policy(g.mdp, q[g.gym_states])
    from shaprl.mdp import steady_state

    p = steady_state(g.mdp, policy)
    rng = np.random.default_rng(0)
    sample = g.mdp.features[rng.choice(g.mdp.n_states, 200_000, p=p)].astype(float)
    table = {tuple(f): policy[i] for i, f in enumerate(g.mdp.features)}
    agent = from_callable(lambda o: np.array([table[tuple(r)] for r in o]), n_actions=4)
    approx = ApproximateMonteCarloSVERL(agent, sample, conditional=Conditional("exact"))
    x = g.mdp.features[g.state(0)]
    est = approx.explain(x, "behaviour")
    ref = SVERLExplainer(g.mdp, policy).explain(features=x, kinds="behaviour")
    assert est.method == "monte carlo"
    np.testing.assert_allclose(
        est.results["behaviour"].phi, ref.results["behaviour"].phi, atol=0.01
    )


def test_continuous_route_cartpole_outcome_is_efficient():
    cart = gym.make("CartPole-v1")
    # Push towards the side the pole leans to (a good hand-made controller).
    agent = from_callable(
        lambda o: np.column_stack([o[:, 2] + o[:, 3] < 0, o[:, 2] + o[:, 3] >= 0]).astype(float),
        n_actions=2,
        value=lambda o: 100.0 - 50 * np.abs(o[:, 2]),
    )
    ex = explain_agent(cart, agent, n_samples=1_000, n_rollouts=2, seed=0, verbose=False)
    assert "approximate" in ex.method and ex.info["route"] == "monte carlo"
    for kind in ex.kinds:
        res = ex.results[kind]
        total = res.characteristic[:, -1] - res.characteristic[:, 0]
        np.testing.assert_allclose(res.phi.sum(axis=1), total, atol=1e-9)
    # The pole's angle and angular velocity drive behaviour more than the cart's position.
    beh = np.abs(ex.results["behaviour"].phi).mean(axis=(0, 2))
    assert beh[2] + beh[3] > beh[0] + beh[1]


def test_amortised_route_returns_the_same_explanation_type():
    cart = gym.make("CartPole-v1")
    agent = from_callable(
        lambda o: np.column_stack([o[:, 2] < 0, o[:, 2] >= 0]).astype(float) * 0.8 + 0.1,
        n_actions=2,
        value=lambda o: 1.0 - np.abs(o[:, 2]),
    )
    obs = np.random.default_rng(0).normal(scale=0.05, size=(600, 4))
    route, reason = choose_route(cart, agent, n_states=len(obs), kinds=("behaviour",))
    assert route == "amortised" and "600 states" in reason
    budget = dict(
        buffer_size=400, validation_size=100, characteristic_updates=30, shapley_updates=30
    )
    ex = explain_agent(
        cart, agent, features=obs[:5], kinds="behaviour", route="amortised",
        amortised_options=budget, verbose=False,
    )  # fmt: skip
    assert ex.method == "fastsverl" and ex.kinds == ("behaviour",)
    assert ex.to_frame().shape[0] == 5 * 4 * 2
    with pytest.raises(ValueError, match="monte carlo"):
        explain_agent(
            cart, agent, features=obs[:5], kinds="outcome", route="amortised", verbose=False
        )


def test_conditional_errors_and_labels():
    sample = np.random.default_rng(1).normal(size=(200, 2))
    agent = from_callable(lambda o: o[:, :1], output="actions", n_actions=1)
    far = np.array([50.0, 50.0])  # far outside the sample: no neighbour under a narrow kernel
    with pytest.raises(ValueError, match="widen the conditional"):
        ApproximateMonteCarloSVERL(
            agent, sample, conditional=Conditional("kernel", bandwidth=0.01)
        ).explain(far, "behaviour")
    with pytest.raises(ValueError, match="conditional method"):
        Conditional("gaussian")
    with pytest.raises(ValueError, match="NaN"):
        ApproximateMonteCarloSVERL(agent, sample).explain([np.nan, 0.0], "behaviour")
    with pytest.raises(ValueError, match="outcome needs a simulator"):
        ApproximateMonteCarloSVERL(agent, sample).explain(sample[0], "outcome")
    assert Conditional("knn", k=7).label == "7 nearest neighbours"


def test_visited_states_do_not_depend_on_how_lanes_are_grouped():
    # Lanes advance in lockstep with one batched policy call per step; each lane's own rng
    # draws its resets and actions, so grouping lanes into jobs changes nothing.
    from shaprl.sverl.continuous import ClassicControlSimulator, collect_visited

    agent = from_callable(lambda o: np.column_stack([o[:, 2] < 0, o[:, 2] >= 0]) * 0.8 + 0.1,
                          n_actions=2)  # fmt: skip
    sim = ClassicControlSimulator(lambda: gym.make("CartPole-v1").unwrapped)
    calls = []
    counted = from_callable(
        lambda o: (calls.append(len(o)), agent.probabilities(o))[1], n_actions=2
    )
    one = collect_visited(sim, counted, 1_000, seed=2, steps_per_job=250, lanes_per_job=1)
    n_single = len(calls)
    calls.clear()
    many = collect_visited(sim, counted, 1_000, seed=2, steps_per_job=250, lanes_per_job=4)
    np.testing.assert_array_equal(one, many)
    assert len(calls) == n_single // 4 and max(calls) == 4
