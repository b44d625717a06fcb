"""Reinforcement-learning agents (one readable module per algorithm, CleanRL style)."""

from .dqn import DQNAgent, DQNConfig, train_dqn, trained_dqn

__all__ = ["DQNAgent", "DQNConfig", "train_dqn", "trained_dqn"]
