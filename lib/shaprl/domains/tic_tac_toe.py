"""Tic-Tac-Toe against a minimax opponent (SVERL Sec. 6.4, Fig. 2; Sec. 9.1).

Every number below comes from the authors' code as summarised in
``/work/shared/sverl_domains.md`` ("tic_tac_toe"):

* **Features**: the 9 squares in row-major order (index ``3 * row + col``, row 0 at the
  top); each is ``EMPTY = 0``, ``X = 1`` (the explained agent) or ``O = 2`` (the opponent).
* **Actions**: the 9 squares; a square is a valid action when it is empty.
* **One decision stage** is the agent's mark followed by the opponent's reply. The agent
  only ever observes boards on which it is to move.
* **Opponent**: full-tree minimax on win / draw / loss (no preference for faster wins),
  uniform over every reply that attains the best score. The authors' search is not
  memoised and is slow; here it is (:func:`move_scores` caches every position).
* **Start**: with probability 1/2 the agent moves first on the empty board; otherwise the
  opponent first marks a uniformly random square (that opening move is random, not
  minimax).
* **Rewards**: +1 when the agent completes a line, -1 when the opponent does, 0 for a
  draw; paid on the transition that ends the game. ``gamma = 1``.

The agent's policy (value iteration, ties uniform) is built by :func:`optimal_policy`.

Resulting sizes (checked in ``tests/test_tic_tac_toe.py``): 1,500 boards with the agent to
move are reachable under any agent play; the optimal agent's exact steady state has 868 of
them in its support, all with V = 0 (matching the authors' notes). Two consequences of
the opponent's rules: it never leaves the agent an immediate win (no move pays +1), and
after a losing move by the agent it may delay its own win, since a win later scores the
same as a win now.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from functools import cache

import numpy as np
import scipy.sparse as sp

from ..mdp.policies import greedy_policy
from ..mdp.solvers import value_iteration
from ..mdp.steady_state import expected_visits
from ..mdp.tabular import TabularMDP

EMPTY, X, O = 0, 1, 2  # noqa: E741 (the game's own names)
MARKS = {EMPTY: "_", X: "X", O: "O"}
SQUARES = ("TL", "TC", "TR", "ML", "MC", "MR", "BL", "BC", "BR")
LINES = (
    (0, 1, 2), (3, 4, 5), (6, 7, 8),  # rows
    (0, 3, 6), (1, 4, 7), (2, 5, 8),  # columns
    (0, 4, 8), (2, 4, 6),  # diagonals
)  # fmt: skip
WIN, DRAW, LOSS = 1.0, 0.0, -1.0

#: The state of Fig. 2: [_ _ _ / _ X _ / O _ O]; the opponent moved first.
FIG2_STATE = (EMPTY, EMPTY, EMPTY, EMPTY, X, EMPTY, O, EMPTY, O)
#: The agent's only non-losing move there: the bottom-centre square.
FIG2_BLOCK = 7

Board = tuple[int, ...]


# -- game rules ---------------------------------------------------------------------------
def winner(board: Sequence[int]) -> int:
    """``X`` or ``O`` if that player has three in a line, else ``EMPTY``."""
    for i, j, k in LINES:
        if board[i] != EMPTY and board[i] == board[j] == board[k]:
            return int(board[i])
    return EMPTY


def empty_squares(board: Sequence[int]) -> list[int]:
    return [i for i, v in enumerate(board) if v == EMPTY]


def place(board: Board, square: int, mark: int) -> Board:
    """The board with ``mark`` written on the empty ``square``."""
    if board[square] != EMPTY:
        raise ValueError(f"square {square} of {board_label(board)} is not empty")
    return board[:square] + (mark,) + board[square + 1 :]


def board_label(board: Sequence[int]) -> str:
    """Compact text such as ``'___/_X_/O_O'`` (rows top to bottom)."""
    s = "".join(MARKS[int(v)] for v in board)
    return f"{s[:3]}/{s[3:6]}/{s[6:]}"


def _check_board(board: Sequence[int]) -> Board:
    board = tuple(int(v) for v in board)
    if len(board) != 9 or any(v not in MARKS for v in board):
        raise ValueError(f"a board is 9 values in {{0 empty, 1 X, 2 O}}; got {board}")
    return board


# -- the minimax opponent -----------------------------------------------------------------
@cache
def _negamax(board: Board, mover: int) -> float:
    """Game value for ``mover`` (to move on a live board) under perfect play by both."""
    other = X + O - mover
    best = -np.inf
    for sq in empty_squares(board):
        child = place(board, sq, mover)
        if winner(child) == mover:
            return WIN
        score = DRAW if EMPTY not in child else -_negamax(child, other)
        best = max(best, score)
    return best


def move_scores(board: Sequence[int], mover: int = O) -> dict[int, float]:
    """Minimax score (+1 win, 0 draw, -1 loss for ``mover``) of each move on a live board.

    Scores ignore game length: a win in five plies counts the same as a win in one.
    """
    board = _check_board(board)
    if winner(board) != EMPTY or EMPTY not in board:
        raise ValueError(f"{board_label(board)} is finished; there is no move to score")
    other = X + O - mover
    out = {}
    for sq in empty_squares(board):
        child = place(board, sq, mover)
        if winner(child) == mover:
            out[sq] = WIN
        elif EMPTY not in child:
            out[sq] = DRAW
        else:
            out[sq] = -_negamax(child, other)
    return out


def opponent_replies(board: Sequence[int]) -> list[int]:
    """The opponent's replies: every square whose minimax score is the best (uniform)."""
    scores = move_scores(board, O)
    best = max(scores.values())
    return [sq for sq, v in scores.items() if v == best]


# -- the MDP ------------------------------------------------------------------------------
def start_distribution() -> dict[Board, float]:
    """1/2 on the empty board, 1/18 on each board with one O (the opponent opened)."""
    empty = (EMPTY,) * 9
    starts = {empty: 0.5}
    for sq in range(9):
        starts[place(empty, sq, O)] = 0.5 / 9
    return starts


def agent_step(board: Board, square: int) -> tuple[float, dict[Board, float]]:
    """Expected reward and non-terminal successors of the agent marking ``square``.

    The step is the agent's mark followed, unless the game ended, by the minimax reply.
    Probability mass missing from the successors is the probability the game ends.
    """
    after = place(board, square, X)
    if winner(after) == X:
        return WIN, {}
    if EMPTY not in after:
        return DRAW, {}
    replies = opponent_replies(after)
    p = 1.0 / len(replies)
    reward, successors = 0.0, {}
    for sq in replies:
        nxt = place(after, sq, O)
        if winner(nxt) == O:
            reward += p * LOSS
        elif EMPTY in nxt:
            successors[nxt] = successors.get(nxt, 0.0) + p
        # else: the opponent filled the board without a line: a draw, reward 0.
    return reward, successors


def tic_tac_toe() -> TabularMDP:
    """The exact MDP over every board reachable with the agent to move.

    States are found by breadth-first search from the start boards over *all* agent moves
    (so value iteration can compare them) and the opponent's minimax replies.
    """
    starts = start_distribution()
    index: dict[Board, int] = {}
    order: list[Board] = []
    queue: deque[Board] = deque()

    def visit(b: Board) -> int:
        if b not in index:
            index[b] = len(order)
            order.append(b)
            queue.append(b)
        return index[b]

    for b in starts:
        visit(b)
    rows, cols, probs = [], [], []
    rewards: list[np.ndarray] = []
    while queue:
        b = queue.popleft()
        s = index[b]
        r = np.zeros(9)
        for a in empty_squares(b):
            r[a], successors = agent_step(b, a)
            for nxt, p in successors.items():
                rows.append(s * 9 + a)
                cols.append(visit(nxt))
                probs.append(p)
        rewards.append(r)
    n = len(order)
    features = np.array(order, dtype=np.int64)
    transitions = sp.csr_matrix((probs, (rows, cols)), shape=(n * 9, n))
    start = np.zeros(n)
    for b, p in starts.items():
        start[index[b]] = p
    return TabularMDP(
        features=features,
        transitions=transitions,
        rewards=np.array(rewards),
        valid_actions=features == EMPTY,
        start=start,
        gamma=1.0,
        feature_names=SQUARES,
        action_names=SQUARES,
        state_labels=tuple(board_label(b) for b in order),
        name="tic_tac_toe",
    )


def optimal_policy(mdp: TabularMDP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value iteration (gamma = 1); the policy is uniform over each state's best moves.

    Returns ``(policy, Q, V)``. Exact ties only: the game's values are 0 and +-1, so no
    rounding tolerance is needed.
    """
    q, v = value_iteration(mdp)
    return greedy_policy(mdp, q, tie_atol=1e-9), q, v


def result_rates(mdp: TabularMDP, policy: np.ndarray) -> dict[str, float]:
    """Probability that an episode ends in an agent win, a loss or a draw under ``policy``.

    Exact: expected visits per episode times the chance each move ends the game. A move
    either wins outright (reward +1, no reply) or is answered; its reward is then minus the
    probability that the reply completes an opponent line.
    """
    eta = expected_visits(mdp, policy)
    win = float(eta @ (policy * (mdp.rewards == WIN)).sum(axis=1))
    loss = float(eta @ (policy * np.clip(-mdp.rewards, 0.0, None)).sum(axis=1))
    return {"win": win, "draw": 1.0 - win - loss, "loss": loss}


# -- Fig. 2 -------------------------------------------------------------------------------
def draw_attributions(
    ax,
    board: Sequence[int],
    phi: Sequence[float],
    *,
    title: str = "",
    vmax: float | None = None,
    highlight: int | None = None,
    fmt: str = "{:+.2f}",
):
    """One panel of Fig. 2: a 3x3 board, each square shaded and labelled by its phi.

    The board's marks are drawn large and faint underneath; the square ``highlight``
    (e.g. the agent's move) gets a dashed outline. ``vmax`` fixes the colour scale so that
    several panels share it; without it the panel is scaled by its own largest |phi| and
    the title says so, since that scale can make tiny values look large.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    board = _check_board(board)
    phi = np.asarray(phi, float)
    if phi.shape != (9,):
        raise ValueError(f"need one Shapley value per square (9); got shape {phi.shape}")
    if vmax is None:
        vmax = max(float(np.abs(phi).max()), 1e-9)
        title = f"{title}\n(own colour scale ±{vmax:.2g})" if title else f"colour scale ±{vmax:.2g}"
    vmax = float(vmax)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)
    cmap = plt.get_cmap("RdBu")
    for sq in range(9):
        row, col = divmod(sq, 3)
        x, y = col, 2 - row
        # Keep the darkest shade readable: the colour scale stops short of saturation.
        shade = norm(phi[sq]) * 0.8 + 0.1
        dark = abs(shade - 0.5) > 0.28
        ink = "white" if dark else "black"
        ax.add_patch(Rectangle((x, y), 1, 1, facecolor=cmap(shade), edgecolor="black", lw=1.5))
        if board[sq] != EMPTY:
            ax.text(x + 0.5, y + 0.5, MARKS[board[sq]], ha="center", va="center", fontsize=46,
                    color=ink, alpha=0.22, fontweight="bold")  # fmt: skip
        text = "0" if abs(phi[sq]) < 5e-13 else fmt.format(phi[sq])
        ax.text(x + 0.5, y + 0.5, text, ha="center", va="center", fontsize=11, color=ink,
                fontweight="bold")  # fmt: skip
    if highlight is not None:
        row, col = divmod(highlight, 3)
        ax.add_patch(Rectangle((col + 0.06, 2 - row + 0.06), 0.88, 0.88, fill=False, ls="--",
                               lw=1.5, edgecolor="#2F2F2F"))  # fmt: skip
    ax.set_xlim(-0.05, 3.05)
    ax.set_ylim(-0.05, 3.05)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    return ax
