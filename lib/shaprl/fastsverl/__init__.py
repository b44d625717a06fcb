"""FastSVERL (Beechey & Şimşek): amortised Shapley explanations of reinforcement learning.

Parametric models replace SVERL's exact sums: a *characteristic model* learns the
partial-information policy or prediction from masked states (Eqs. 12-13), a *Shapley model*
learns every feature's Shapley value in one forward pass (Eqs. 10, 21, 23) with the
post-hoc efficiency correction (Eqs. 11, 22, 24). Many seeded runs train together as one
batched model (:mod:`shaprl.batched`).

* :mod:`.coalitions` -- uniform and Shapley-kernel coalition sampling, masking;
* :mod:`.training` -- training loops, losses, efficiency correction;
* :mod:`.exact` -- ground truth from the exact SVERL engine on tabular domains;
* :mod:`.outcome` -- outcome characteristic models on- and off-policy (Eqs. 14-16);
* :mod:`.explainer` -- :class:`FastSVERLExplainer`, amortised explanations of any policy on a
  gymnasium environment, returning the exact engine's :class:`~shaprl.sverl.Explanation`;
* :mod:`.experiments` -- the paper's experiments (accuracy, Hypercube scaling, large Mastermind);
* :mod:`.hypercube_dqn` -- Hypercube in the authors' setting: a DQN agent per cube, explained
  greedily from the origin (Fig. 2, App. C Fig. 5; the settle chunks of notebook 31);
* :mod:`.settle` -- the committed long runs ("settle chunks") of ``make fastsverl-settle``.
"""

from .coalitions import (
    MASK_VALUE,
    kernel_coalitions,
    kernel_size_probabilities,
    mask,
    uniform_coalitions,
)
from .exact import TabularProblem, tabular_problem
from .explainer import FastSVERLExplainer
from .training import (
    ExactCharacteristic,
    ModelCharacteristic,
    ShapleyModel,
    StateData,
    TrainConfig,
    efficiency_correction,
    train_characteristic,
    train_shapley,
)

__all__ = [
    "MASK_VALUE",
    "ExactCharacteristic",
    "FastSVERLExplainer",
    "ModelCharacteristic",
    "ShapleyModel",
    "StateData",
    "TabularProblem",
    "TrainConfig",
    "efficiency_correction",
    "kernel_coalitions",
    "kernel_size_probabilities",
    "mask",
    "tabular_problem",
    "train_characteristic",
    "train_shapley",
    "uniform_coalitions",
]
