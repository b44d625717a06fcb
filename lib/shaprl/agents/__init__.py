"""Reinforcement-learning agents (one readable module per algorithm, CleanRL style)."""

from .adapters import (
    DEFAULT_GAMMA,
    AgentFunctions,
    from_callable,
    from_q_function,
    from_q_table,
)
from .dqn import DQNAgent, DQNConfig, train_dqn, trained_dqn
from .sb3 import from_sb3

__all__ = [
    "DEFAULT_GAMMA",
    "AgentFunctions",
    "from_callable",
    "from_q_function",
    "from_q_table",
    "from_sb3",
    "DQNAgent",
    "DQNConfig",
    "train_dqn",
    "trained_dqn",
]
