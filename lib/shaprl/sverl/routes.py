"""Explain your own agent: one call, three routes, one :class:`Explanation`.

:func:`explain_agent` takes a gymnasium environment and an agent (a stable-baselines3 model,
or :class:`~shaprl.agents.adapters.AgentFunctions` from a Q-table or any callable) and
returns behaviour, outcome and prediction explanations by one of three routes:

* ``"exact"`` -- the environment exposes its model (``unwrapped.P``: FrozenLake, CliffWalking,
  Taxi) and has few features: exact SVERL (:class:`SVERLExplainer`) on
  :func:`~shaprl.domains.gym_tabular.gym_tabular`'s MDP. No sampling error.
* ``"monte carlo"`` -- a simulator that can be put into the explained state, any number of
  states. Discrete states: :class:`MonteCarloSVERL` (SVERL Sec. 10.2) on a sample of visited
  states, with standard errors. Continuous states: :class:`ApproximateMonteCarloSVERL`, whose
  conditional distribution is approximated (kernel, nearest neighbours or bins): the result
  says so in its ``method``.
* ``"amortised"`` -- FastSVERL models trained once, then any number of states explained by a
  forward pass (for many states or many features).

``route="auto"`` picks the first that applies, in that order, and says which and why (printed
when ``verbose``, and stored in ``explanation.info["route"]`` / ``["route_reason"]``). A route
named by hand is used as asked, or refused with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .explainer import KINDS, SVERLExplainer, check_kinds
from .explanation import Explanation

ROUTES = ("auto", "exact", "monte carlo", "amortised")
MAX_EXACT_FEATURES = 20
MAX_EXACT_STATES = 1_000_000
MANY_STATES = 500
AMORTISED_KINDS = ("behaviour", "prediction")  # what FastSVERLExplainer trains models for


def as_agent(agent):
    """:class:`AgentFunctions` of an SB3 model (or the object itself if it already is one)."""
    from ..agents.adapters import AgentFunctions
    from ..agents.sb3 import from_sb3

    if isinstance(agent, AgentFunctions):
        return agent
    if hasattr(agent, "policy") and hasattr(agent.policy, "obs_to_tensor"):
        return from_sb3(agent)
    raise TypeError(
        f"cannot explain a {type(agent).__name__}: pass a stable-baselines3 model or wrap the "
        "agent with shaprl.agents.from_q_table / from_q_function / from_callable"
    )


def choose_route(
    env, agent, n_states: int | None = None, kinds: Sequence[str] = KINDS
) -> tuple[str, str]:
    """The automatic route for this environment and agent, and the reason for it.

    Exact when the model is exposed and small; amortised when many states are to be explained
    (behaviour and prediction only); else Monte Carlo when the simulator's state can be set;
    else amortised.
    """
    amortisable = (
        not agent.is_continuous
        and all(k in AMORTISED_KINDS for k in kinds)
        and _amortised_available()
    )
    u = env.unwrapped
    table = getattr(u, "P", None)
    if isinstance(table, dict) and table and not agent.is_continuous:
        from ..domains.gym_tabular import default_decoder

        n_features = len(default_decoder(env)[1])
        if n_features <= MAX_EXACT_FEATURES and len(table) <= MAX_EXACT_STATES:
            return "exact", (
                f"the environment exposes its transition table (unwrapped.P, {len(table)} "
                f"states, {n_features} features): exact values from the model, no sampling error"
            )
    n_obs = int(np.prod(env.observation_space.shape or (1,)))
    if n_states is not None and n_states > MANY_STATES and amortisable:
        return "amortised", (
            f"{n_states} states to explain: FastSVERL models trained once explain each further "
            "state by a forward pass"
        )
    from .continuous import MAX_FEATURES, state_setter

    try:
        state_setter(env)
        settable = True
    except TypeError:
        settable = False
    if settable and n_obs <= MAX_FEATURES:
        return "monte carlo", (
            f"no model, continuous observations ({n_obs} features) and a simulator whose state "
            "can be set (env.unwrapped.state): Monte Carlo SVERL from visited states and "
            "rollouts, with an approximate conditional (see method)"
        )
    if amortisable:
        return "amortised", (
            f"no model and {n_obs} features"
            + ("" if settable else ", state cannot be set for rollouts")
            + ": FastSVERL's learned characteristic and Shapley models"
        )
    raise ValueError(
        f"no route applies to {type(u).__name__} with {n_obs} features and kinds {tuple(kinds)}: "
        "it has no transition table, its state cannot be set for Monte Carlo rollouts, and the "
        "amortised FastSVERL explainer covers only behaviour and prediction of discrete actions"
    )


def explain_agent(
    env,
    agent,
    states: int | Sequence[int] | None = None,
    kinds: str | Sequence[str] = KINDS,
    *,
    features: np.ndarray | Sequence[Sequence[float]] | None = None,
    route: str = "auto",
    gamma: float = 0.99,
    n_samples: int = 20_000,
    conditional=None,
    n_permutations: int = 256,
    n_rollouts: int = 32,
    seed: int = 0,
    amortised_options: dict | None = None,
    on_missing: str = "nan",
    verbose: bool = True,
) -> Explanation:
    """Behaviour, outcome and prediction explanations of ``agent`` acting in ``env``.

    Parameters
    ----------
    env:
        A gymnasium environment or its id (e.g. ``"FrozenLake-v1"``).
    agent:
        A stable-baselines3 model (DQN, PPO, A2C, SAC, TD3) or ``AgentFunctions``.
    states, features:
        The explained states: gymnasium state indices (``states=``, discrete environments)
        or observations / feature rows (``features=``). Neither: the steady-state support
        (exact route) or 8 visited states (sampled routes).
    kinds:
        One kind (``"outcome"``) or several.
    route:
        ``"auto"`` (default), ``"exact"``, ``"monte carlo"`` or ``"amortised"``.
    gamma:
        Discount of the explained returns (outcome; exact V^pi).
    n_samples, conditional, n_permutations, n_rollouts, seed:
        Budgets of the sampled routes (visited states, the approximate conditional of
        continuous states, permutations, rollouts per action or coalition) and their seed.
    on_missing:
        Monte Carlo route: a requested state that the state sample never visited gets NaN
        values, counted in ``info["missing"]`` (``"nan"``, default), or an error (``"raise"``).
    amortised_options:
        Keyword arguments of ``FastSVERLExplainer`` (buffer size, updates, runs) for the
        amortised route, which explains behaviour and prediction.
    """
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}; got {route!r}")
    kinds = check_kinds(kinds)
    if isinstance(env, str):
        import gymnasium as gym

        env = gym.make(env)
    agent = as_agent(agent)
    n_requested = None
    if states is not None or features is not None:
        n_requested = int(np.size(states)) if features is None else len(np.atleast_2d(features))
    if route == "auto":
        route, reason = choose_route(env, agent, n_requested, kinds)
    else:
        reason = "chosen by hand"
    if verbose:
        print(f"shaprl: {route} route -- {reason}")
    if route == "exact":
        out = _exact(env, agent, states, features, kinds, gamma)
    elif route == "monte carlo":
        budget = dict(n_samples=n_samples, n_rollouts=n_rollouts, seed=seed)
        if isinstance(getattr(env.unwrapped, "P", None), dict) and not agent.is_continuous:
            out = _monte_carlo_tabular(
                env, agent, states, features, kinds, gamma, n_permutations, on_missing, **budget
            )
        else:
            if states is not None:
                raise ValueError(
                    "this environment's states have no indices: name them by observation, "
                    "features=[...]"
                )
            out = _monte_carlo_continuous(env, agent, features, kinds, gamma, conditional, **budget)
    else:
        out = _amortised(env, agent, states, features, kinds, seed, amortised_options)
    return replace(out, info={**out.info, "route": route, "route_reason": reason})


def _exact(env, agent, states, features, kinds, gamma) -> Explanation:
    from ..domains.gym_tabular import gym_tabular

    g = gym_tabular(env, gamma=gamma)
    policy = g.policy_table(agent.probabilities)
    values = g.value_table(agent.values) if "prediction" in kinds else None
    explainer = SVERLExplainer(g.mdp, policy, values=values)
    if states is None and features is None:
        states = g.observations(explainer.support)
    if states is not None:
        states = [g.state(int(s)) for s in np.atleast_1d(states)]
        ex = explainer.explain(states=states, kinds=kinds)
    else:
        ex = explainer.explain(features=features, kinds=kinds)
    return replace(
        ex,
        states=g.gym_states[ex.states],
        info={**ex.info, "states": "gymnasium state indices", "agent": agent.description},
    )


def _monte_carlo_tabular(
    env,
    agent,
    states,
    features,
    kinds,
    gamma,
    n_permutations,
    on_missing,
    *,
    n_samples,
    n_rollouts,
    seed,
) -> Explanation:
    import gymnasium as gym

    from ..domains.gym_tabular import gym_tabular
    from .monte_carlo import MonteCarloSVERL
    from .simulators import collect_states

    g = gym_tabular(env, gamma=gamma)
    spec = env.spec
    factory = (lambda: gym.make(spec.id, **spec.kwargs).unwrapped) if spec else None
    if factory is None:
        raise ValueError("the Monte Carlo route needs an environment made with gymnasium.make")
    sim = g.simulator(factory)
    policy = g.features_policy(agent.probabilities)
    value_fn = g.features_policy(agent.values) if agent.value is not None else None
    sample = collect_states(sim, policy, n_samples, seed=seed, progress=False)
    mc = MonteCarloSVERL(
        sim,
        policy,
        sample,
        value_fn=value_fn,
        gamma=gamma,
        feature_names=g.mdp.feature_names,
        action_names=g.mdp.action_names,
    )
    if features is None:
        if states is None:
            rows = np.unique(sample.features, axis=0)[:8]
        else:
            rows = g.mdp.features[[g.state(int(s)) for s in np.atleast_1d(states)]]
    else:
        rows = np.atleast_2d(features)
    ex = mc.explain(
        rows, kinds, n_permutations=n_permutations, n_rollouts=n_rollouts, seed=seed,
        on_missing=on_missing,
    )  # fmt: skip
    return replace(ex, states=g.observations_of(rows), info={**ex.info, "agent": agent.description})


def _monte_carlo_continuous(
    env, agent, features, kinds, gamma, conditional, *, n_samples, n_rollouts, seed
) -> Explanation:
    import gymnasium as gym

    from .continuous import ApproximateMonteCarloSVERL, ClassicControlSimulator, collect_visited

    spec = env.spec
    if spec is None:
        raise ValueError("the Monte Carlo route needs an environment made with gymnasium.make")
    horizon = spec.max_episode_steps or 500
    sim = ClassicControlSimulator(lambda: gym.make(spec.id, **spec.kwargs).unwrapped)
    sample = collect_visited(sim, agent, n_samples, seed=seed, horizon=horizon)
    mc = ApproximateMonteCarloSVERL(
        agent, sample, conditional=conditional, simulator=sim, gamma=gamma, horizon=horizon
    )
    if features is None:
        features = sample[np.random.default_rng(seed).choice(len(sample), 8, replace=False)]
    return mc.explain(features, kinds, n_rollouts=n_rollouts, seed=seed)


def _amortised_available() -> bool:
    try:
        from ..fastsverl.explainer import FastSVERLExplainer  # noqa: F401
    except ImportError:
        return False
    return True


def _amortised(env, agent, states, features, kinds, seed, options) -> Explanation:
    """FastSVERL (:class:`~shaprl.fastsverl.explainer.FastSVERLExplainer`): train, then explain."""
    if not _amortised_available():
        raise ValueError(
            "the amortised route needs shaprl.fastsverl.explainer.FastSVERLExplainer, which "
            "this installation does not have; use route='monte carlo' or 'exact'"
        )
    from ..fastsverl.explainer import FastSVERLExplainer

    if agent.is_continuous:
        raise ValueError(
            "the amortised route explains action probabilities (discrete actions); for a "
            "continuous-action agent use route='monte carlo'"
        )
    unsupported = [k for k in kinds if k not in AMORTISED_KINDS]
    if unsupported:
        raise ValueError(
            f"the amortised route explains {AMORTISED_KINDS}, not {unsupported} (FastSVERL's "
            "outcome models are not part of its explainer yet); use route='monte carlo' for them"
        )
    if states is not None:
        raise ValueError("the amortised route takes observations: pass features=, not states=")
    value = agent.values if "prediction" in kinds else None
    options = {"seed": seed, **(options or {})}
    explainer = FastSVERLExplainer(env, agent.probabilities, value, **options).fit(kinds)
    if features is None:
        pick = np.random.default_rng(seed).choice(len(explainer.states), 8, replace=False)
        features = explainer.states[pick]
    ex = explainer.explain(features, kinds)
    return replace(ex, info={**ex.info, "agent": agent.description})
