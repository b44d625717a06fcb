"""shaprl: Shapley values for reinforcement learning.

Front door
----------
``shaprl.explain_agent(env, agent)`` -- behaviour, outcome and prediction explanations of
your own agent (:mod:`shaprl.explain`), loaded on first use so ``import shaprl`` stays light.

Sub-packages, top layer first (each imports only from layers below it)
---------------------------------------------------------------------
explain         -- explain_agent and its routes (exact, Monte Carlo, amortised).
fastsverl       -- FastSVERL (amortised SVERL); action_shapley -- Action Shapley.
sverl           -- SVERL (Beechey et al.): behaviour, outcome and prediction explanations.
agents, domains -- adapters of trained agents; the papers' environments.
shapley, mdp, simulators, batched, plots, repro -- the foundations: coalitional games,
                   tabular MDPs, the simulator protocol, batched torch models, plotting, and
                   the reproduction pipeline.
"""

from . import kernel_baseline
from ._version import __version__

# before numpy, scipy or torch load, where shaprl is imported first (see kernel_baseline)
kernel_baseline.apply()

__all__ = ["__version__", "explain_agent"]


def __getattr__(name: str):
    """PEP 562: ``shaprl.explain_agent`` is imported on first use (no cost, no cycle)."""
    if name == "explain_agent":
        from .explain import explain_agent

        return explain_agent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
