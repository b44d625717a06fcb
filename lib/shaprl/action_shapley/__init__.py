"""Action Shapley: data valuation for world-model training in model-based RL.

The paper's traces and code were never published, so the four case studies (VM
right-sizing, load balancing, database tuning, Kubernetes) run on documented, seeded
simulators and **every number here comes from simulated traces**; only the paper's
qualitative claims can be checked.

Modules, in the order of the pipeline:

* :mod:`.case_studies` -- Table 6's settings, the simulators (constants fixed before any
  valuation) and the **decisions the paper leaves open**: per-dimension PID gains on a
  normalised 2-d action (6 gains in [-0.5, 0.5], sign learned), a real incremental PID
  (accumulated error and error difference; Eq. 3 as printed collapses to one gain), one RL
  step = one aggregation window, horizon 30, goal = statistic in ``[0.9 thr, thr]``, reward
  ``-|thr - statistic|`` until the goal, *fails its objective* = goal never reached (null),
  convergence time in RL steps, per-case sampling, and the no-null-subset rule.
* :mod:`.traces` -- CSV traces (``data/action_shapley/traces``) and a validating loader.
* :mod:`.world_model` -- RBF networks on a fixed basis (no leakage of held-out traces; each
  subset's output layer from summed sufficient statistics) and the paper's per-subset
  PCA + k-means RBF fit for comparison.
* :mod:`.pid_env`, :mod:`.batched_agents` -- the PID loop as an environment and SAC-PID /
  PPO-PID for many subsets at once on :mod:`shaprl.batched`; :mod:`.sb3_reference` --
  the stable-baselines3 reference (budget sweep, batched-vs-SB3 check).
* :mod:`.utility` -- U(d) as a cached, chunked, joblib-parallel :class:`~.game.ValuationGame`
  and the committed utility tables (``data/action_shapley/utilities``).
* :mod:`.game`, :mod:`.exact` -- the valuation game and exact Action Shapley (Eq. 1).
"""

from .exact import exact_action_shapley, indispensable_points, subset_sizes
from .game import FunctionGame, TableGame, ValuationGame

__all__ = [
    "FunctionGame",
    "TableGame",
    "ValuationGame",
    "exact_action_shapley",
    "indispensable_points",
    "subset_sizes",
]
