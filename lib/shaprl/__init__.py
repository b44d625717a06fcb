"""shaprl: Shapley values for reinforcement learning.

Sub-packages
------------
shapley  -- coalitional-game core: exact enumeration, kernel least squares, permutation sampling.
mdp      -- tabular Markov decision processes: solvers, steady-state distributions, rollouts.
sverl    -- SVERL (Beechey et al.): behaviour, outcome and prediction explanations.
repro    -- the reproduction pipeline: profiles, artefacts, claims ledger, notebook runner.
"""

from ._version import __version__

__all__ = ["__version__"]
