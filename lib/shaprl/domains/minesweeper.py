"""Mini Minesweeper as an exact tabular MDP (SVERL Sec. 7.2 and 8.2, Figs. 4-5).

Where the numbers come from
---------------------------
* Board 4 x 4 with 2 mines, placed uniformly at random at the start of every episode
  (C(16, 2) = 120 equally likely layouts): SVERL Sec. 7.2 and the authors' code (see
  ``/work/shared/sverl_domains.md``, "mini_minesweeper"). ``rows``, ``cols`` and ``mines``
  are parameters so that a smaller board (3 x 3 with 1 mine) can stand in for tests.
* Features: one per square, row-major (index ``cols * row + col``): -1 for an unopened
  square, otherwise the number of adjacent mines (0..8; at most 2 here). Labels follow the
  paper's figures: x = col + 1, y = rows - row, so square 11 is "(4,2)".
* Actions: open an unopened square (action j opens square j). Opening a mine pays -1 and
  ends the episode; opening a safe square pays 0, and a square with no adjacent mine
  opens its eight neighbours recursively. The episode also ends (reward 0) once only the
  mines are left unopened. gamma = 1.
* State = the visible board. The hidden layout is marginalised: every layout that agrees
  with the board is equally likely (the prior is uniform and every observation is a
  deterministic function of the layout and the actions taken), so
  p(board' | board, open j) is the fraction of consistent layouts that produce board'.
  The authors' enumeration gives 49,025 non-terminal boards (and 125,504 terminal ones,
  about the paper's "175k states"); :func:`build_minesweeper` reproduces both counts.

How it is built
---------------
Layouts and opened sets are bitmasks. For each layout and square we precompute the set a
click opens (flood fill). A breadth-first search over (layout, opened-set) pairs, one
vectorised numpy step per decision stage, finds every reachable pair; boards are the
distinct visible feature vectors of those pairs, and transitions are counted from the
pairs directly. Opened sets are always closed under the flood fill, so opening j from any
reachable set gives ``opened | flood[layout, j]``.

The policy
----------
The paper explains a tabular Q-learning agent (10^6 steps, eps = 0.05, alpha = 0.2,
seed 0) and estimates outcomes by Monte Carlo rollouts. The model is known here, so we
explain the exact optimal policy instead (value iteration, ties shared uniformly between
exactly tied actions); outcomes, predictions and the steady state are then exact. Both of
the paper's explained boards lie in this policy's steady-state support (checked by the
tests and the notebook). Where Q-learning had not converged, its choices could differ
from ours, so our attributions need not match the paper's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import scipy.sparse as sp

from ..mdp.policies import greedy_policy
from ..mdp.solvers import value_iteration
from ..mdp.tabular import TabularMDP

UNOPENED = -1
#: Largest board the encodings support (bitmasks of 2**cells opened sets, base-10 keys).
MAX_CELLS = 18

#: The paper's two explained boards (rows from the top, u = unopened; SVERL Fig. 4).
PAPER_S1 = "001u/012u/01uu/0111"
PAPER_S2 = "001u/012u/01u2/0111"


@dataclass(frozen=True)
class Board:
    """Board geometry: ``rows`` x ``cols`` squares holding ``mines`` mines."""

    rows: int = 4
    cols: int = 4
    mines: int = 2

    def __post_init__(self) -> None:
        n = self.rows * self.cols
        if self.rows < 1 or self.cols < 1:
            raise ValueError(
                f"a board needs at least one row and column; got {self.rows}x{self.cols}"
            )
        if n > MAX_CELLS:
            raise ValueError(
                f"{self.rows}x{self.cols} = {n} squares exceeds the {MAX_CELLS} this exact model "
                "supports (it enumerates 2**squares opened sets); use a smaller board"
            )
        if not 1 <= self.mines < n:
            raise ValueError(f"mines must lie in 1..{n - 1} for a {self.rows}x{self.cols} board")

    @property
    def n_cells(self) -> int:
        return self.rows * self.cols

    def square_name(self, j: int) -> str:
        """Paper-style label of square j: "(x,y)" with x = col + 1, y = rows - row."""
        row, col = divmod(int(j), self.cols)
        return f"({col + 1},{self.rows - row})"

    def neighbours(self) -> np.ndarray:
        """(N,) bitmask of the (up to eight) neighbours of every square."""
        out = np.zeros(self.n_cells, dtype=np.int64)
        for j in range(self.n_cells):
            r, c = divmod(j, self.cols)
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if (dr or dc) and 0 <= rr < self.rows and 0 <= cc < self.cols:
                        out[j] |= 1 << (rr * self.cols + cc)
        return out

    def layouts(self) -> np.ndarray:
        """(L, N) boolean mine layouts, all C(N, mines) of them in lexicographic order."""
        combos = np.array(list(combinations(range(self.n_cells), self.mines)), dtype=np.int64)
        out = np.zeros((len(combos), self.n_cells), dtype=bool)
        out[np.arange(len(combos))[:, None], combos] = True
        return out


# -- boards as text ------------------------------------------------------------------------
def parse_board(text: str, board: Board = Board()) -> np.ndarray:
    """Feature vector of a board written row by row from the top, e.g. ``"001u/012u/..."``.

    ``u`` (or ``-``) marks an unopened square; digits are adjacent-mine counts.
    """
    rows = text.replace(" ", "").split("/")
    if len(rows) != board.rows or any(len(r) != board.cols for r in rows):
        raise ValueError(
            f"board text {text!r} must have {board.rows} rows of {board.cols} squares "
            "separated by '/'"
        )
    out = []
    for ch in "".join(rows):
        if ch in "u-":
            out.append(UNOPENED)
        elif ch.isdigit():
            out.append(int(ch))
        else:
            raise ValueError(f"unknown square {ch!r} in {text!r}; use digits or 'u'")
    return np.array(out, dtype=np.int64)


def board_text(features: np.ndarray, board: Board = Board()) -> str:
    """Inverse of :func:`parse_board`."""
    chars = ["u" if v == UNOPENED else str(int(v)) for v in np.asarray(features).ravel()]
    return "/".join(
        "".join(chars[r * board.cols : (r + 1) * board.cols]) for r in range(board.rows)
    )


# -- geometry of one layout ----------------------------------------------------------------
def adjacent_counts(layouts: np.ndarray, board: Board) -> np.ndarray:
    """(L, N) number of mines adjacent to every square."""
    nbr = board.neighbours()
    adjacency = ((nbr[:, None] >> np.arange(board.n_cells)) & 1).astype(np.int64)  # (N, N)
    return layouts.astype(np.int64) @ adjacency.T


def flood_masks(layouts: np.ndarray, counts: np.ndarray, board: Board) -> np.ndarray:
    """(L, N) bitmask of the squares opened by clicking square j under each layout.

    A safe square with no adjacent mine opens its neighbours, recursively. Entries for
    squares holding a mine are the mine's own bit (the click ends the episode).
    """
    n = board.n_cells
    nbr = board.neighbours()
    bit = np.int64(1) << np.arange(n, dtype=np.int64)
    zero = ((counts == 0) & ~layouts).astype(np.int64) @ bit  # (L,) squares showing 0
    opened = np.broadcast_to(bit, layouts.shape).copy()
    while True:
        frontier = opened & zero[:, None]
        grown = opened.copy()
        for i in range(n):
            has = ((frontier >> i) & 1).astype(bool)
            grown[has] |= nbr[i]
        if np.array_equal(grown, opened):
            return opened
        opened = grown


def popcount(x: np.ndarray) -> np.ndarray:
    """Number of set bits of non-negative int64 masks."""
    x = np.asarray(x, dtype=np.int64)
    out = np.zeros(x.shape, dtype=np.int64)
    while np.any(x):
        out += x & 1
        x = x >> 1
    return out


def _keys(layout: np.ndarray, opened: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
    """Base-10 key of the visible board of (layout, opened) pairs (digit = feature + 1)."""
    vis = np.where((opened[:, None] >> np.arange(n)) & 1 == 1, counts[layout] + 1, 0)
    return vis @ (np.int64(10) ** np.arange(n, dtype=np.int64))


def _decode(keys: np.ndarray, n: int) -> np.ndarray:
    return (keys[:, None] // (np.int64(10) ** np.arange(n, dtype=np.int64))) % 10 - 1


# -- the MDP -------------------------------------------------------------------------------
def reachable_pairs(board: Board) -> tuple[np.ndarray, np.ndarray]:
    """All non-terminal (layout, opened-set) pairs reachable by some sequence of clicks.

    Returns ``(layout, opened)`` int64 arrays, breadth-first by decision stage.
    """
    n, layouts = board.n_cells, board.layouts()
    counts = adjacent_counts(layouts, board)
    flood = flood_masks(layouts, counts, board)
    safe = ~layouts
    n_layouts = len(layouts)
    goal = n - board.mines
    seen = np.zeros((n_layouts, 1 << n), dtype=bool)
    lay = np.arange(n_layouts, dtype=np.int64)
    opened = np.zeros(n_layouts, dtype=np.int64)
    seen[lay, opened] = True
    out_l, out_o = [lay], [opened]
    while lay.size:
        closed = ((opened[:, None] >> np.arange(n)) & 1).astype(bool)
        ok = safe[lay] & ~closed  # clicks that open a new safe square
        k, j = np.nonzero(ok)
        nl = lay[k]
        no = opened[k] | flood[nl, j]
        live = popcount(no) < goal  # reaching the goal ends the episode
        nl, no = nl[live], no[live]
        flat = np.unique(nl * (1 << n) + no)
        nl, no = flat >> n, flat & ((1 << n) - 1)
        fresh = ~seen[nl, no]
        lay, opened = nl[fresh], no[fresh]
        seen[lay, opened] = True
        out_l.append(lay)
        out_o.append(opened)
    return np.concatenate(out_l), np.concatenate(out_o)


def build_minesweeper(rows: int = 4, cols: int = 4, mines: int = 2) -> TabularMDP:
    """The exact Minesweeper MDP over visible boards (see the module docstring).

    ``info`` holds the board geometry, the number of layouts, the number of terminal
    boards, and per state the number of consistent layouts (``"n_consistent"``).
    """
    board = Board(rows, cols, mines)
    n, layouts = board.n_cells, board.layouts()
    counts = adjacent_counts(layouts, board)
    flood = flood_masks(layouts, counts, board)
    goal = n - board.mines
    lay, opened = reachable_pairs(board)

    keys = _keys(lay, opened, counts, n)
    uniq, state_of_pair = np.unique(keys, return_inverse=True)
    n_states = len(uniq)
    n_consistent = np.bincount(state_of_pair, minlength=n_states)
    lookup = np.full((len(layouts), 1 << n), -1, dtype=np.int64)
    lookup[lay, opened] = state_of_pair

    # Every (pair, click on an unopened square): a mine, the goal, or a next board.
    closed = ((opened[:, None] >> np.arange(n)) & 1).astype(bool)
    k, j = np.nonzero(~closed)
    weight = 1.0 / n_consistent[state_of_pair[k]]
    s, lk = state_of_pair[k], lay[k]
    boom = layouts[lk, j]
    rewards = np.zeros((n_states, n))
    np.add.at(rewards, (s[boom], j[boom]), -weight[boom])
    new = opened[k] | flood[lk, j]
    cont = ~boom & (popcount(new) < goal)
    nxt = lookup[lk[cont], new[cont]]
    if (nxt < 0).any():
        raise RuntimeError("internal error: a successor board was not enumerated")
    transitions = sp.csr_matrix(
        (weight[cont], (s[cont] * n + j[cont], nxt)), shape=(n_states * n, n_states)
    )
    transitions.sum_duplicates()

    features = _decode(uniq, n)
    valid = features == UNOPENED
    start = np.zeros(n_states)
    start[0] = 1.0  # key 0 is the all-unopened board
    names = tuple(board.square_name(i) for i in range(n))

    # Terminal boards, counted as the authors' environment shows them: an exploded mine
    # (one per board and mine-possible click) or a finished board (one per layout).
    mine_possible = (rewards < 0).sum()
    info = {
        "board": board,
        "n_layouts": len(layouts),
        "n_pairs": len(lay),
        "n_terminal": int(mine_possible) + len(layouts),
        "n_consistent": n_consistent,
    }
    return TabularMDP(
        features=features,
        transitions=transitions,
        rewards=rewards,
        valid_actions=valid,
        start=start,
        gamma=1.0,
        feature_names=names,
        action_names=names,
        state_labels=tuple(board_text(f, board) for f in features),
        name=f"minesweeper_{rows}x{cols}_{mines}",
        info=info,
    )


def consistent_layouts(features: np.ndarray, board: Board = Board()) -> np.ndarray:
    """(K, N) boolean mine layouts that agree with a visible board."""
    features = np.asarray(features)
    layouts = board.layouts()
    counts = adjacent_counts(layouts, board)
    shown = features != UNOPENED
    ok = ~(layouts & shown).any(axis=1) & (counts[:, shown] == features[shown]).all(axis=1)
    return layouts[ok]


def certain_mines(features: np.ndarray, board: Board = Board()) -> np.ndarray:
    """Squares that hold a mine under every layout consistent with the board."""
    return np.flatnonzero(consistent_layouts(features, board).all(axis=0))


def mine_probability(features: np.ndarray, board: Board = Board()) -> np.ndarray:
    """(N,) posterior probability that each square holds a mine, given the board."""
    return consistent_layouts(features, board).mean(axis=0)


def play_episode(
    mdp: TabularMDP, policy: np.ndarray, mine_squares, *, board: Board | None = None
) -> list[tuple[int, int]]:
    """Decision stages (state, action) of one episode on a fixed mine layout.

    The agent takes its most probable action, the lowest square index among ties, so the
    episode is one of those the policy can produce. Ends at a mine or a finished board.
    """
    board = board or mdp.info["board"]
    mines = np.zeros(board.n_cells, dtype=bool)
    mines[list(mine_squares)] = True
    if mines.sum() != board.mines:
        raise ValueError(f"give exactly {board.mines} mine squares; got {list(mine_squares)}")
    counts = adjacent_counts(mines[None], board)[0]
    flood = flood_masks(mines[None], counts[None], board)[0]
    opened, stages = 0, []
    while True:
        vis = np.where((opened >> np.arange(board.n_cells)) & 1 == 1, counts, UNOPENED)
        s = mdp.index_of(vis)
        a = int(np.argmax(policy[s]))
        stages.append((s, a))
        if mines[a]:
            return stages
        opened |= int(flood[a])
        if bin(opened).count("1") == board.n_cells - board.mines:
            return stages


def optimal_policy(mdp: TabularMDP, *, tie_atol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """The optimal policy by value iteration, uniform over exactly tied actions, and Q*.

    This replaces the paper's Q-learning agent (see the module docstring). With gamma = 1
    value iteration is exact after as many sweeps as the longest episode (every click
    opens at least one square).
    """
    q, _ = value_iteration(mdp)
    return greedy_policy(mdp, q, tie_atol=tie_atol), q
