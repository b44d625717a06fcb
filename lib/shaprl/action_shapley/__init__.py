"""Action Shapley: data valuation for world-model training in model-based RL.

The valuation game (:mod:`.game`) and exact Action Shapley values (:mod:`.exact`, Eq. 1).
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
