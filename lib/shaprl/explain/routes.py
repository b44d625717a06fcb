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

**Wrappers are honoured.** The routes build states themselves (gymnasium state indices,
classic-control physical states) from the unwrapped environment; every such observation is
passed through the environment's ``ObservationWrapper`` chain before the agent sees it, so
the agent is queried on the observations it was trained on. The agent's spaces are checked
against the (wrapped) environment's. Vectorised environments and Dict / Tuple observations
are refused with the fix named (pass the gymnasium environment; ``FlattenObservation``).

The discount of the explained returns (outcome, exact V^pi) is the agent's own
(``model.gamma`` of an SB3 model), else ``DEFAULT_GAMMA`` = 0.99, unless ``gamma=`` is given.

``route="auto"`` picks the first that applies, in that order, and says which and why (printed
when ``verbose``, and stored in ``explanation.info["route"]`` / ``["route_reason"]``). A route
named by hand is used as asked, or refused with the reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..agents.adapters import DEFAULT_GAMMA, AgentFunctions
from ..sverl.explainer import KINDS, SVERLExplainer, check_kinds
from ..sverl.explanation import Explanation

ROUTES = ("auto", "exact", "monte carlo", "amortised")
MAX_EXACT_FEATURES = 20
MAX_EXACT_STATES = 1_000_000
MANY_STATES = 500
AMORTISED_KINDS = ("behaviour", "prediction")  # what FastSVERLExplainer trains models for
CHECK_STATES = 8  #: held-out states on which amortised values are checked against Monte Carlo
MAX_RMS_Z = 3.0  #: agreement worse than this (RMS z over the checked entries) fails the check
AMORTISED_DEFAULTS = {"n_runs": 3, "mask_value": "auto"}  # n_runs: also the explainer's own


def as_agent(agent, env=None) -> AgentFunctions:
    """:class:`AgentFunctions` of an SB3 model (or the object itself if it already is one).

    With ``env``, the agent's spaces are checked against the environment's (the wrapped
    environment's: what the agent was trained on).
    """
    from ..agents.sb3 import from_sb3

    if isinstance(agent, AgentFunctions):
        n_obs = getattr(getattr(env, "observation_space", None), "n", None)
        if env is not None and agent.n_observations is not None and n_obs is not None:
            if agent.n_observations != int(n_obs):
                raise ValueError(
                    f"the agent's Q-table has {agent.n_observations} rows but the environment "
                    f"has {int(n_obs)} observations: explain the agent in the environment it "
                    "was trained in"
                )
        if env is not None and hasattr(env.action_space, "n"):
            if not agent.is_continuous and agent.n_actions != int(env.action_space.n):
                raise ValueError(
                    f"the agent has {agent.n_actions} actions but the environment's action "
                    f"space is {env.action_space}: explain the agent in the environment it "
                    "was trained in"
                )
        return agent
    if hasattr(agent, "policy") and hasattr(agent.policy, "obs_to_tensor"):
        if env is not None:
            check_spaces(agent, env)
        out = from_sb3(agent)
        gamma = getattr(agent, "gamma", None)
        return replace(out, gamma=None if gamma is None else float(gamma))
    raise TypeError(
        f"cannot explain a {type(agent).__name__}: pass a stable-baselines3 model or wrap the "
        "agent with shaprl.agents.from_q_table / from_q_function / from_callable"
    )


def check_env(env) -> None:
    """A clear error, naming the fix, for environments the routes cannot read."""
    import gymnasium as gym

    if hasattr(env, "num_envs") and hasattr(env, "env_method"):  # an SB3 VecEnv
        raise TypeError(
            f"{type(env).__name__} is a vectorised environment (e.g. model.get_env()): pass the "
            "gymnasium environment itself, e.g. explain_agent(gym.make('FrozenLake-v1'), model)"
        )
    if not hasattr(env, "unwrapped") or not hasattr(env, "observation_space"):
        raise TypeError(f"explain_agent takes a gymnasium environment; got {type(env).__name__}")
    space = env.observation_space
    if isinstance(space, gym.spaces.Dict | gym.spaces.Tuple):
        raise TypeError(
            f"{type(space).__name__} observations have no feature vector to explain: wrap the "
            "environment with gymnasium.wrappers.FlattenObservation, train the agent on it, and "
            "pass that wrapped environment"
        )


def check_spaces(model, env) -> None:
    """The SB3 model's observation and action spaces must be the environment's."""
    for what in ("observation_space", "action_space"):
        mine, theirs = getattr(model, what, None), getattr(env, what)
        if mine is not None and mine != theirs:
            raise ValueError(
                f"the agent's {what.replace('_', ' ')} {mine} differs from the environment's "
                f"{theirs}: explain the agent in the (wrapped) environment it was trained in"
            )


def observation_wrappers(env) -> list:
    """The environment's ``ObservationWrapper``s, innermost first."""
    import gymnasium as gym

    chain, e = [], env
    while isinstance(e, gym.Wrapper):
        if isinstance(e, gym.ObservationWrapper):
            chain.append(e)
        e = e.env
    return chain[::-1]


def through_wrappers(env, agent: AgentFunctions) -> AgentFunctions:
    """The agent queried on raw (unwrapped) observations, each passed through ``env``'s
    observation wrappers first: the routes build raw states, the agent saw wrapped ones."""
    chain = observation_wrappers(env)
    if not chain:
        return agent

    def wrap(fn):
        if fn is None:
            return None

        def call(obs: np.ndarray) -> np.ndarray:
            rows = []
            for o in np.asarray(obs):
                o = o.item() if np.ndim(o) == 0 else o
                for w in chain:
                    o = w.observation(o)
                rows.append(np.asarray(o))
            return fn(np.stack(rows))

        return call

    names = " -> ".join(type(w).__name__ for w in chain)
    return replace(
        agent,
        policy=wrap(agent.policy),
        value=wrap(agent.value),
        action=wrap(agent.action),
        description=f"{agent.description} (observations through {names})",
    )


def choose_route(
    env, agent, n_states: int | None = None, kinds: Sequence[str] = KINDS, set_state=None
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
    from ..sverl.continuous import MAX_FEATURES, state_setter

    try:
        state_setter(env)
        settable = True
    except TypeError:
        settable = set_state is not None
    if n_obs <= MAX_FEATURES and (settable or "outcome" not in kinds):
        how = (
            "a simulator whose state can be set, for outcome rollouts"
            if "outcome" in kinds
            else "a sample of visited states (behaviour and prediction need no rollouts)"
        )
        return "monte carlo", (
            f"no model, continuous observations ({n_obs} features) and {how}: Monte Carlo "
            "SVERL from visited states, with an approximate conditional (see method)"
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
    states: int | Sequence[int] | str | None = None,
    kinds: str | Sequence[str] | None = None,
    *,
    n_states: int | None = None,
    chunk_size: int = 256,
    features: np.ndarray | Sequence[Sequence[float]] | None = None,
    route: str = "auto",
    gamma: float | None = None,
    n_samples: int = 20_000,
    conditional=None,
    n_permutations: int = 256,
    n_rollouts: int = 32,
    seed: int = 0,
    amortised_options: dict | None = None,
    set_state=None,
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
        The explained states: gymnasium state indices (``states=``, discrete environments;
        an int is one state) or observations / feature rows (``features=``). Neither: the
        steady-state support (exact route) or 8 visited states (sampled routes).
        ``states="all"``: every state of the steady-state support (exact) or of the state
        sample (Monte Carlo, amortised), for a global view (:meth:`Explanation.mean_abs`,
        ``plot_bar``, ``plot_beeswarm``).
    n_states, chunk_size:
        ``n_states=n``: n states drawn (seeded) from the support or the state sample. The
        exact route explains them ``chunk_size`` at a time and keeps only the values, not
        each state's 2**F characteristic tables.
    kinds:
        One kind (``"outcome"``) or several. Default: all three (behaviour and prediction on
        the amortised route, which has no outcome models).
    route:
        ``"auto"`` (default), ``"exact"``, ``"monte carlo"`` or ``"amortised"``.
    gamma:
        Discount of the explained returns (outcome; exact V^pi). Default: the agent's own
        (``model.gamma``), else ``DEFAULT_GAMMA`` = 0.99.
    set_state:
        ``set_state(env, features)`` puts the unwrapped environment into the state with these
        observations, for outcome rollouts on environments shaprl cannot set itself (only
        outcome needs it: behaviour and prediction need only visited states).
    n_samples, conditional, n_permutations, n_rollouts, seed:
        Budgets of the sampled routes (visited states, the approximate conditional of
        continuous states, permutations, rollouts per action or coalition) and their seed.
    on_missing:
        Monte Carlo route: a requested state that the state sample never visited gets NaN
        values, counted in ``info["missing"]`` (``"nan"``, default), or an error (``"raise"``).
    amortised_options:
        Keyword arguments of ``FastSVERLExplainer`` (buffer size, updates, runs) for the
        amortised route, which explains behaviour and prediction. Defaults here: ``n_runs=3``
        (standard errors across runs; the explainer's default too) and ``mask_value="auto"``
        (chosen from the observations).
        The amortised result reports its own accuracy in ``info["self_check"]`` (see
        :func:`amortised_self_check`); ``route="auto"`` keeps it only when the check passes.
    """
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}; got {route!r}")
    select: str | int | None = None
    if isinstance(states, str):
        if states != "all":
            raise ValueError(f"states= takes state indices or 'all'; got {states!r}")
        select, states = "all", None
    if n_states is not None:
        if states is not None or features is not None or select is not None:
            raise ValueError("n_states= draws the states itself: leave out states= / features=")
        if int(n_states) < 1:
            raise ValueError(f"n_states must be positive; got {n_states}")
        select = int(n_states)
    if select is not None and features is not None:
        raise ValueError("states='all' explains the support: leave out features=")
    default_kinds = kinds is None
    kinds = check_kinds(KINDS if kinds is None else kinds)
    if isinstance(env, str):
        import gymnasium as gym

        env = gym.make(env)
    check_env(env)
    agent = as_agent(agent, env)
    if gamma is None:
        gamma = agent.gamma if agent.gamma is not None else DEFAULT_GAMMA
    native = agent
    agent = through_wrappers(env, agent)
    n_requested = select if isinstance(select, int) else None
    if states is not None or features is not None:
        n_requested = int(np.size(states)) if features is None else len(np.atleast_2d(features))
    auto = route == "auto"
    if auto:
        route, reason = choose_route(env, agent, n_requested, kinds, set_state)
    else:
        reason = "chosen by hand"
    if route == "amortised" and default_kinds:
        kinds = AMORTISED_KINDS
    if verbose:
        print(f"shaprl: {route} route -- {reason}")
    if route == "exact":
        out = _exact(env, agent, states, features, kinds, gamma, select, seed, chunk_size, verbose)
    elif route == "monte carlo":
        budget = dict(n_samples=n_samples, n_rollouts=n_rollouts, seed=seed)
        if isinstance(getattr(env.unwrapped, "P", None), dict) and not agent.is_continuous:
            out = _monte_carlo_tabular(
                env, agent, states, features, kinds, gamma, n_permutations, on_missing, select,
                verbose, **budget,
            )  # fmt: skip
        else:
            if states is not None:
                raise ValueError(
                    "this environment's states have no indices: name them by observation, "
                    "features=[...]"
                )
            out = _monte_carlo_continuous(
                env, agent, features, kinds, gamma, conditional, set_state, select, verbose,
                **budget,
            )  # fmt: skip
    else:  # the amortised route samples the wrapped env itself: the agent as it is
        out = _amortised(env, native, states, features, kinds, seed, amortised_options, select)
        check = out.info["self_check"]
        if verbose:
            print(describe_self_check(out.info))
        if not check["passed"] and check["checked"]:
            warnings.warn(
                f"the amortised explanation disagrees with Monte Carlo on {check['states']} "
                f"held-out states (RMS z = {check['rms_z']:.2f} > {MAX_RMS_Z:g}): train longer "
                "(amortised_options: characteristic_updates, shapley_updates) or use "
                "route='monte carlo'",
                UserWarning,
                stacklevel=2,
            )
            if auto:
                reason = (
                    f"{reason}; but its self-check failed (RMS z = {check['rms_z']:.2f} against "
                    "Monte Carlo on held-out states), so Monte Carlo SVERL instead"
                )
                route = "monte carlo"
                if verbose:
                    print(f"shaprl: {route} route -- {reason}")
                budget = dict(n_samples=n_samples, n_rollouts=n_rollouts, seed=seed)
                feats = out.features if features is None else features
                out = _monte_carlo_continuous(
                    env, agent, feats, kinds, gamma, conditional, set_state, None, verbose,
                    **budget,
                )  # fmt: skip
    info = {**out.info, "route": route, "route_reason": reason, "gamma": gamma}
    return replace(out, info=info)


def _pick(n_candidates: int, select: str | int | None, seed: int, default: int = 8):
    """Positions of the explained candidates: all, n drawn (seeded, sorted), or a default."""
    if select == "all":
        return np.arange(n_candidates)
    n = default if select is None else int(select)
    if n >= n_candidates:
        return np.arange(n_candidates)
    return np.sort(np.random.default_rng(seed).choice(n_candidates, n, replace=False))


def _exact(
    env, agent, states, features, kinds, gamma, select=None, seed=0, chunk_size=256, verbose=False
) -> Explanation:
    from tqdm.auto import tqdm

    from ..domains.gym_tabular import gym_tabular

    g = gym_tabular(env, gamma=gamma)
    policy = g.policy_table(agent.probabilities)
    values = g.value_table(agent.values) if "prediction" in kinds else None
    explainer = SVERLExplainer(g.mdp, policy, values=values)
    if select is not None:  # a global view: chunks, values only
        support = np.asarray(explainer.support)
        chosen = support[_pick(len(support), select, seed)]
        chunks = [chosen[i : i + chunk_size] for i in range(0, len(chosen), chunk_size)]
        if "outcome" not in kinds:
            ex = global_values(explainer, chunks, kinds, verbose)
            return replace(
                ex,
                states=g.gym_states[ex.states],
                info={**ex.info, "states": "gymnasium state indices", "agent": agent.description},
            )
        parts = []
        for chunk in tqdm(chunks, desc="exact SVERL", disable=not verbose or len(chunks) < 2):
            parts.append(explainer.explain(states=list(chunk), kinds=kinds, progress=False))
        ex = Explanation.concat(parts)
        return replace(
            ex,
            states=g.gym_states[ex.states],
            info={**ex.info, "states": "gymnasium state indices", "agent": agent.description},
        )
    if states is None and features is None:
        states = g.observations(explainer.support)
    if states is not None:
        states = [g.state(int(s)) for s in np.atleast_1d(states)]
        ex = explainer.explain(states=states, kinds=kinds, progress=None if verbose else False)
    else:
        ex = explainer.explain(features=features, kinds=kinds, progress=None if verbose else False)
    return replace(
        ex,
        states=g.gym_states[ex.states],
        info={**ex.info, "states": "gymnasium state indices", "agent": agent.description},
    )


def global_values(explainer: SVERLExplainer, chunks, kinds, verbose: bool = False) -> Explanation:
    """Exact behaviour / prediction values of many MDP states, values only (no tables).

    Each chunk of states is one joblib job of
    :func:`~shaprl.sverl.characteristics.conditional_shapley_values` (behaviour and prediction
    share one zeta transform per state); ``joblib.parallel_config(n_jobs=...)`` spreads the
    chunks over cores. The conditional characteristic (Def. 17 / 44) without renormalisation;
    other settings take the per-state engine.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from ..sverl.characteristics import conditional_shapley_values

    if explainer.characteristic != "conditional" or explainer.renormalise:
        parts = [explainer.explain(states=list(c), kinds=kinds, progress=False) for c in chunks]
        return Explanation.concat(parts)
    mdp, support = explainer.mdp, np.asarray(explainer.support)
    columns = []
    if "behaviour" in kinds:
        columns.append(explainer.policy[support])
    if "prediction" in kinds:
        columns.append(explainer.values[support, None])
    targets = np.column_stack(columns)
    feats, weights = mdp.features[support], explainer.steady_state[support]
    jobs = (
        delayed(conditional_shapley_values)(feats, weights, targets, mdp.features[c])
        for c in chunks
    )
    parts = Parallel(return_as="generator")(jobs)
    show = verbose and len(chunks) > 1
    phi = np.concatenate(list(tqdm(parts, total=len(chunks), desc="exact SVERL", disable=not show)))
    states = np.concatenate(chunks)
    col = mdp.n_actions if "behaviour" in kinds else 0
    parts_of = {
        "behaviour": (phi[:, :, : mdp.n_actions], None, mdp.action_names),
        "prediction": (phi[:, :, col : col + 1], None, ("value",)),
    }
    values = {kind: parts_of[kind] for kind in kinds}
    return Explanation.from_values(
        mdp.feature_names,
        values,
        method="exact",
        states=states,
        state_labels=tuple(mdp.label(int(s)) for s in states),
        features=mdp.features[states],
        info={"chunks": len(chunks)},
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
    select=None,
    verbose=False,
    *,
    n_samples,
    n_rollouts,
    seed,
) -> Explanation:
    import gymnasium as gym

    from ..domains.gym_tabular import gym_tabular
    from ..simulators import collect_states
    from ..sverl.monte_carlo import MonteCarloSVERL

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
            visited = np.unique(sample.features, axis=0)
            rows = visited[_pick(len(visited), select, seed)]
        else:
            rows = g.mdp.features[[g.state(int(s)) for s in np.atleast_1d(states)]]
    else:
        rows = np.atleast_2d(features)
    ex = mc.explain(
        rows, kinds, n_permutations=n_permutations, n_rollouts=n_rollouts, seed=seed,
        on_missing=on_missing, progress=verbose and len(rows) > 1,
    )  # fmt: skip
    return replace(ex, states=g.observations_of(rows), info={**ex.info, "agent": agent.description})


def _monte_carlo_continuous(
    env,
    agent,
    features,
    kinds,
    gamma,
    conditional,
    set_state,
    select=None,
    verbose=False,
    *,
    n_samples,
    n_rollouts,
    seed,
) -> Explanation:
    import gymnasium as gym

    from ..sverl.continuous import (
        ApproximateMonteCarloSVERL,
        ClassicControlSimulator,
        collect_visited,
    )

    spec = env.spec
    if spec is None:
        raise ValueError("the Monte Carlo route needs an environment made with gymnasium.make")
    horizon = spec.max_episode_steps or 500
    sim = ClassicControlSimulator(
        lambda: gym.make(spec.id, **spec.kwargs).unwrapped, set_state=set_state
    )
    sample = collect_visited(sim, agent, n_samples, seed=seed, horizon=horizon)
    mc = ApproximateMonteCarloSVERL(
        agent, sample, conditional=conditional, simulator=sim, gamma=gamma, horizon=horizon
    )
    if features is None:
        if select == "all":
            raise ValueError(
                "continuous states have no finite support: pass n_states= (visited states "
                "drawn from the sample) instead of states='all'"
            )
        features = sample[_pick(len(sample), select, seed)]
    return mc.explain(features, kinds, n_rollouts=n_rollouts, seed=seed)


def _amortised_available() -> bool:
    try:
        from ..fastsverl.explainer import FastSVERLExplainer  # noqa: F401
    except ImportError:
        return False
    return True


def _amortised(env, agent, states, features, kinds, seed, options, select=None) -> Explanation:
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
    options = {"seed": seed, **AMORTISED_DEFAULTS, **(options or {})}
    explainer = FastSVERLExplainer(env, agent.probabilities, value, **options).fit(kinds)
    if features is None:
        features = explainer.states[_pick(len(explainer.states), select, seed)]
    ex = explainer.explain(features, kinds)
    check = amortised_self_check(explainer, agent, kinds, seed=seed)
    return replace(ex, info={**ex.info, "agent": agent.description, "self_check": check})


def amortised_self_check(
    explainer, agent: AgentFunctions, kinds: Sequence[str], *, seed: int = 0, k: int = CHECK_STATES
) -> dict:
    """How far the amortised values are from Monte Carlo SVERL on ``k`` held-out states.

    The states come from the explainer's validation buffer (not trained on). The reference
    is :class:`~shaprl.sverl.continuous.ApproximateMonteCarloSVERL` on the training buffer
    (the conditional of Def. 17 / Def. 44 by kernel weights, bootstrap errors); each entry's
    z = (amortised - Monte Carlo) / sqrt(se_amortised^2 + se_MC^2). ``passed`` when the RMS
    z is at most ``MAX_RMS_Z``. With more features than that route enumerates, nothing is
    checked (``checked`` False, ``passed`` True, and the reason is given).
    """
    from ..sverl.continuous import MAX_FEATURES, ApproximateMonteCarloSVERL

    if explainer.n_features > MAX_FEATURES:
        return {
            "checked": False,
            "passed": True,
            "reason": f"{explainer.n_features} features: the Monte Carlo reference enumerates "
            f"2**F coalitions (F <= {MAX_FEATURES})",
        }
    held = np.unique(explainer.validation_rows, axis=0)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 19]))
    rows = held[rng.choice(len(held), min(k, len(held)), replace=False)]
    reference = ApproximateMonteCarloSVERL(agent, explainer.train_rows.astype(float)).explain(
        rows, kinds, n_bootstrap=32, seed=seed
    )
    amortised = explainer.explain(rows, kinds)
    z = []
    for kind in kinds:
        a, m = amortised.results[kind], reference.results[kind]
        se = np.sqrt(np.nan_to_num(a.stderr) ** 2 + m.stderr**2)
        z.append(((a.phi - m.phi) / np.where(se > 0, se, np.inf)).ravel())
    z = np.concatenate(z)
    rms = float(np.sqrt(np.mean(z**2)))
    return {
        "checked": True,
        "passed": rms <= MAX_RMS_Z,
        "states": len(rows),
        "rms_z": rms,
        "max_abs_z": float(np.abs(z).max()),
        "reference": reference.method,
    }


def describe_self_check(info: dict) -> str:
    """One printed paragraph: validation losses, efficiency gaps, agreement with Monte Carlo."""
    lines = ["shaprl: amortised self-check"]
    for kind, losses in info.get("validation_loss", {}).items():
        c, s = np.mean(losses["characteristic"]), np.mean(losses["shapley"])
        lines.append(f"  {kind}: validation loss characteristic {c:.3g}, Shapley {s:.3g}")
    for kind, gap in info.get("efficiency_gap", {}).items():
        lines.append(
            f"  {kind}: efficiency gap against the real outputs (RMS) {gap['corrected']:.3g} "
            f"(before the Eq. 11 correction {gap['raw']:.3g}; outputs' scale {gap['scale']:.3g})"
        )
    check = info.get("self_check", {})
    if check.get("checked"):
        verdict = "passed" if check["passed"] else f"FAILED (> {MAX_RMS_Z:g})"
        lines.append(
            f"  agreement with Monte Carlo on {check['states']} held-out states: RMS z = "
            f"{check['rms_z']:.2f}, max |z| = {check['max_abs_z']:.2f} -- {verdict}"
        )
    elif check:
        lines.append(f"  agreement with Monte Carlo not checked: {check['reason']}")
    return "\n".join(lines)
