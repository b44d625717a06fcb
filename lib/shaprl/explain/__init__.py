"""Explain your own agent: the front door, above every other layer of shaprl.

:func:`explain_agent` takes a gymnasium environment and an agent (a stable-baselines3 model,
or :class:`~shaprl.agents.AgentFunctions` from :func:`~shaprl.agents.from_q_table` /
:func:`~shaprl.agents.from_callable`) and returns SVERL's behaviour (Def. 17), outcome
(Def. 34) and prediction (Def. 44) explanations by the exact, Monte Carlo or amortised route
(see :mod:`shaprl.explain.routes`). It is also ``shaprl.explain_agent``.

Layers (each imports only from layers below it; see the README's *Layout*):
``explain`` > ``fastsverl``, ``action_shapley`` > ``sverl``, ``agents``, ``domains`` >
``shapley``, ``mdp``, ``simulators``, ``batched``, ``plots``, ``repro``.
"""

from .routes import (
    ROUTES,
    as_agent,
    check_env,
    check_spaces,
    choose_route,
    explain_agent,
    observation_wrappers,
    through_wrappers,
)

__all__ = [
    "ROUTES",
    "as_agent",
    "check_env",
    "check_spaces",
    "choose_route",
    "explain_agent",
    "observation_wrappers",
    "through_wrappers",
]
