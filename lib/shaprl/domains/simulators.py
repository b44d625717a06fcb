"""Simulators of the SVERL domains for Monte Carlo SVERL (no tabular model is read).

:func:`taxi_simulator` drives gymnasium's own Taxi-v4 environment; :class:`TicTacToeEnv`
plays Tic-Tac-Toe against the minimax opponent move by move. Both are wrapped as
:class:`~shaprl.simulators.GymSimulator` objects whose states are feature rows.

Tic-Tac-Toe. The rules are those of :mod:`shaprl.domains.tic_tac_toe` (same start distribution, same
uniform choice among the opponent's minimax-best replies, +1 / -1 / 0 at the end,
gamma = 1), played move by move. Monte Carlo SVERL (SVERL Sec. 10.2) drives it through
:meth:`TicTacToeEnv.set_board`, which puts the game on any board with the agent to move,
the way a user's own simulator would be reset to a state.

Observations are the 9 squares (0 empty, 1 X = the agent, 2 O = the opponent); actions
are the squares; ``info["action_mask"]`` marks the empty ones.
"""

from __future__ import annotations

import gymnasium
import numpy as np

from ..simulators import GymSimulator
from .tic_tac_toe import EMPTY, LOSS, WIN, O, X, board_label, opponent_replies, winner


class TicTacToeEnv(gymnasium.Env):
    """One step = the agent's mark, then (unless the game is over) the opponent's reply."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gymnasium.spaces.MultiDiscrete([3] * 9)
        self.action_space = gymnasium.spaces.Discrete(9)
        self.board = np.zeros(9, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.board = np.zeros(9, dtype=np.int64)
        if self.np_random.random() < 0.5:  # the opponent opens on a uniformly random square
            self.board[self.np_random.integers(9)] = O
        return self.board.copy(), self._info()

    def set_board(self, board) -> None:
        """Put the game on ``board`` (a live board with the agent to move)."""
        board = np.asarray(board, dtype=np.int64).reshape(-1)
        if board.shape != (9,) or not np.isin(board, (EMPTY, X, O)).all():
            raise ValueError(f"a board is 9 values in {{0 empty, 1 X, 2 O}}; got {board.tolist()}")
        n_x, n_o = int((board == X).sum()), int((board == O).sum())
        if winner(board) != EMPTY or EMPTY not in board or n_o - n_x not in (0, 1):
            raise ValueError(f"{board_label(board)} is not a live board with the agent (X) to move")
        self.board = board.copy()

    def step(self, action: int):
        a = int(action)
        if not 0 <= a < 9 or self.board[a] != EMPTY:
            raise ValueError(f"square {a} is not free on {board_label(self.board)}")
        self.board[a] = X
        if winner(self.board) == X:
            return self.board.copy(), WIN, True, False, self._info()
        if EMPTY not in self.board:
            return self.board.copy(), 0.0, True, False, self._info()
        replies = opponent_replies(tuple(int(v) for v in self.board))
        self.board[replies[self.np_random.integers(len(replies))]] = O
        if winner(self.board) == O:
            return self.board.copy(), LOSS, True, False, self._info()
        if EMPTY not in self.board:
            return self.board.copy(), 0.0, True, False, self._info()
        return self.board.copy(), 0.0, False, False, self._info()

    def _info(self) -> dict:
        return {"action_mask": self.board == EMPTY}


def _set_board(env: TicTacToeEnv, features: np.ndarray) -> None:
    env.set_board(features)


def _empty_squares(features: np.ndarray) -> np.ndarray:
    return np.asarray(features) == EMPTY


def tic_tac_toe_simulator() -> GymSimulator:
    """Tic-Tac-Toe as a simulator: features = the 9 squares, valid actions = empty squares."""
    return GymSimulator(TicTacToeEnv(), set_state=_set_board, valid_actions_fn=_empty_squares)


def _taxi_set_state(env, features: np.ndarray) -> None:
    env.unwrapped.s = int(env.unwrapped.encode(*(int(v) for v in features)))


def _taxi_observe(env, obs) -> np.ndarray:
    return np.fromiter(env.unwrapped.decode(int(obs)), dtype=np.int64, count=4)


def taxi_simulator() -> GymSimulator:
    """gymnasium's Taxi-v4 (default dynamics) with features (y, x, P, D) and no time limit.

    The state is set through the environment's own ``s`` attribute and its ``encode``; the
    time limit wrapper is left out, matching the exact model (episodes end on delivery).
    """
    import gymnasium as gym

    env = gym.make("Taxi-v4", max_episode_steps=None).unwrapped
    return GymSimulator(env, set_state=_taxi_set_state, observe=_taxi_observe)
