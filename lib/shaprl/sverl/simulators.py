"""The simulator protocol now lives at the bottom of the package: :mod:`shaprl.simulators`.

Re-exported here so that ``from shaprl.sverl.simulators import GymSimulator`` keeps working.
"""

from ..simulators import (
    GymSimulator,
    PolicyFn,
    PolicySampler,
    Simulator,
    StateSample,
    check_probabilities,
    check_simulator,
    collect_states,
)

__all__ = [
    "GymSimulator",
    "PolicyFn",
    "PolicySampler",
    "Simulator",
    "StateSample",
    "check_probabilities",
    "check_simulator",
    "collect_states",
]
