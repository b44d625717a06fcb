"""Mastermind(k, g, p): code length k, g guesses, p letters (SVERL Sec. 7.1; FastSVERL).

Sources of every number and choice
----------------------------------
* Game rules (SVERL Sec. 7.1): a hidden code of ``k`` letters is drawn uniformly from the
  ``p**k`` codes. Each guess is answered by a *position clue* (letters of the guess equal to
  the code's letter at the same position) and a *misplaced clue* (letters shared with the
  code, each code letter used at most once, minus the position clue). Example of the paper:
  code AB, guess AA -> position 1, misplaced 0.
* Observation (authors' code, see ``/work/shared/sverl_domains.md`` and
  ``fastsverl_notes.md``): ``g`` rows of ``k + 2`` features, row ``i`` = guess ``i`` as
  ``[misplaced, letter_1 .. letter_k, position]``, row 0 = first guess, empty cells -1,
  letters 1..p. SVERL's own code used letters 0/1 (A/B) with -1 for empty; the encoding
  changes no Shapley value, because the conditional characteristic only asks whether two
  feature values are equal. SVERL's Mastermind (k=2, g=3, p=2) thus has 3 x 4 = **12**
  features; the paper's text says 16, which matches no board of this game.
* Actions: the ``p**k`` codes; action ``a`` has letter ``i`` = ``(a // p**i) % p + 1``, the
  first letter least significant (FastSVERL's order). For k=2, p=2 this is AA, BA, AB, BB,
  *not* the lexicographic AA, AB, BA, BB of SVERL's code, so actions are always named by
  their letters (:func:`action_names`), never by index.
* Rewards: -1 per guess; a correct guess ends the episode and pays ``win_bonus`` on top.
  SVERL pays 0 for a correct guess (``win_bonus=1``, the default here); FastSVERL pays
  ``+g`` (``win_bonus=g``). The episode also ends after the g-th guess. gamma = 1.
* Naming: "Mastermind-kgp", e.g. FastSVERL's Mastermind-443 = k 4, g 4, p 3. SVERL's game is
  therefore Mastermind-232 in this naming (the issue calls it "MM-222" after its two
  letters and length 2).

Exact model
-----------
The tabular model is over *boards* (belief states): a board's clues determine the set of
hidden codes consistent with it, and the next clue is distributed as the clue of a uniform
consistent code. Non-terminal states are the boards with fewer than ``g`` guesses whose
clues some code satisfies and that contain no winning guess. Every (board, action, clue)
gives a distinct board, so boards are enumerated level by level without deduplication,
with one small matrix product per level (:func:`build_model`). Passing a policy enumerates
only the boards that policy reaches (needed for the larger games, whose full models are
astronomically large).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
import scipy.sparse as sp

from ..mdp.solvers import value_iteration
from ..mdp.tabular import TabularMDP

EMPTY = -1
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

#: A policy on boards: feature rows ``(B, F)`` -> action probabilities ``(B, A)``.
BoardPolicy = Callable[[np.ndarray], np.ndarray]

#: The two papers' reward conventions (letters 1..p, empty -1 and the action order are shared).
CONVENTIONS = ("sverl", "fastsverl")


def convention_win_bonus(conventions: str, n_guesses: int) -> float:
    """Bonus on top of the -1 of a correct guess: SVERL pays 0 net (1), FastSVERL ``+g``.

    FastSVERL's models also replace unknown features by the mask value -2 (empty cells are
    -1); that is a property of the models (:mod:`shaprl.fastsverl`), not of the game.
    """
    if conventions not in CONVENTIONS:
        raise ValueError(f"conventions must be one of {CONVENTIONS}; got {conventions!r}")
    return 1.0 if conventions == "sverl" else float(n_guesses)


@dataclass(frozen=True)
class MastermindSpec:
    """Size and rewards of a Mastermind game."""

    code_length: int = 2  #: k
    n_guesses: int = 3  #: g
    n_letters: int = 2  #: p
    win_bonus: float = 1.0  #: paid on top of the -1 of a correct guess

    def __post_init__(self) -> None:
        k, g, p = self.code_length, self.n_guesses, self.n_letters
        if k < 1 or g < 1 or not 1 <= p <= len(LETTERS):
            raise ValueError(
                f"Mastermind needs code_length >= 1, n_guesses >= 1 and 1 <= n_letters <= 26; "
                f"got k={k}, g={g}, p={p}"
            )

    @property
    def n_codes(self) -> int:
        return self.n_letters**self.code_length

    @property
    def row_width(self) -> int:
        return self.code_length + 2

    @property
    def n_features(self) -> int:
        return self.n_guesses * self.row_width

    @property
    def n_clues(self) -> int:
        """Number of clue ids: (position, misplaced) pairs coded as position*(k+1) + misplaced."""
        return (self.code_length + 1) ** 2

    @property
    def win_clue(self) -> int:
        return self.code_length * (self.code_length + 1)

    @property
    def name(self) -> str:
        return f"Mastermind-{self.code_length}{self.n_guesses}{self.n_letters}"


# -- codes and clues -----------------------------------------------------------------------
def code_letters(spec: MastermindSpec) -> np.ndarray:
    """``(p**k, k)`` letters (1..p) of every code; action/code ``a`` has letter i = (a // p**i) % p + 1."""
    a = np.arange(spec.n_codes)[:, None]
    return (a // spec.n_letters ** np.arange(spec.code_length)[None, :]) % spec.n_letters + 1


def action_names(spec: MastermindSpec) -> tuple[str, ...]:
    """Codes as words, e.g. ('AA', 'BA', 'AB', 'BB') for k=2, p=2."""
    return tuple("".join(LETTERS[v - 1] for v in row) for row in code_letters(spec))


def feature_names(spec: MastermindSpec) -> tuple[str, ...]:
    """``g{i} misplaced, g{i} L1 .. g{i} Lk, g{i} position`` for guesses i = 1..g."""
    names = []
    for i in range(1, spec.n_guesses + 1):
        names.append(f"g{i} misplaced")
        names += [f"g{i} L{j}" for j in range(1, spec.code_length + 1)]
        names.append(f"g{i} position")
    return tuple(names)


def guess_rows(spec: MastermindSpec) -> dict[int, np.ndarray]:
    """Feature indices of each guess row, ``{1: first guess, ..., g: last}`` (see feature_names)."""
    w = spec.row_width
    return {i + 1: np.arange(i * w, (i + 1) * w) for i in range(spec.n_guesses)}


def clues(guess: np.ndarray, code: np.ndarray, n_letters: int) -> tuple[np.ndarray, np.ndarray]:
    """Position and misplaced clues of guesses against codes (letters 1..p, broadcasting).

    ``guess`` and ``code`` are ``(..., k)`` letter arrays; returns two ``(...)`` int arrays.
    Position clues are counted first; the misplaced clue counts the remaining shared letters,
    each letter of the code used at most once (SVERL Sec. 7.1).
    """
    guess, code = np.asarray(guess), np.asarray(code)
    position = (guess == code).sum(axis=-1)
    letters = np.arange(1, n_letters + 1)
    g_count = (guess[..., None] == letters).sum(axis=-2)
    c_count = (code[..., None] == letters).sum(axis=-2)
    common = np.minimum(g_count, c_count).sum(axis=-1)
    return position, common - position


def clue_table(spec: MastermindSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(A, N)`` position and misplaced clues of every guess (row) against every code."""
    letters = code_letters(spec)
    return clues(letters[:, None, :], letters[None, :, :], spec.n_letters)


def clue_ids(spec: MastermindSpec) -> np.ndarray:
    """``(A, N)`` clue id position*(k+1) + misplaced of every guess against every code."""
    pos, mis = clue_table(spec)
    return pos * (spec.code_length + 1) + mis


# -- boards --------------------------------------------------------------------------------
def board_features(spec: MastermindSpec, guesses: np.ndarray, clue_id: np.ndarray) -> np.ndarray:
    """Feature rows of boards from their guess histories.

    ``guesses`` and ``clue_id`` are ``(B, t)`` arrays (t <= g) of actions and clue ids; rows
    t..g-1 of the board are empty (-1).
    """
    guesses, clue_id = np.asarray(guesses, np.int64), np.asarray(clue_id, np.int64)
    b, t = guesses.shape
    if t > spec.n_guesses:
        raise ValueError(f"a board holds at most g={spec.n_guesses} guesses; got {t}")
    out = np.full((b, spec.n_guesses, spec.row_width), EMPTY, dtype=np.int64)
    k1 = spec.code_length + 1
    out[:, :t, 0] = clue_id % k1
    out[:, :t, 1:-1] = code_letters(spec)[guesses]
    out[:, :t, -1] = clue_id // k1
    return out.reshape(b, spec.n_features)


def _rows(spec: MastermindSpec, features: np.ndarray) -> np.ndarray:
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != spec.n_features:
        raise ValueError(
            f"{spec.name} boards have {spec.n_features} features (g={spec.n_guesses} rows of "
            f"k+2={spec.row_width}); got an array of shape {features.shape}. Pass (B, F) rows."
        )
    return features.reshape(len(features), spec.n_guesses, spec.row_width)


def guesses_made(spec: MastermindSpec, features: np.ndarray) -> np.ndarray:
    """Number of filled rows of each board."""
    return (_rows(spec, features)[:, :, 1] != EMPTY).sum(axis=1)


def consistent_codes(spec: MastermindSpec, features: np.ndarray) -> np.ndarray:
    """``(B, N)`` mask of the codes that satisfy every clue on each board."""
    rows = _rows(spec, features)
    ids = clue_ids(spec)
    powers = spec.n_letters ** np.arange(spec.code_length)
    out = np.ones((len(rows), spec.n_codes), dtype=bool)
    for i in range(spec.n_guesses):
        filled = rows[:, i, 1] != EMPTY
        if not filled.any():
            continue
        action = ((rows[filled, i, 1:-1] - 1) * powers).sum(axis=1)
        clue = rows[filled, i, -1] * (spec.code_length + 1) + rows[filled, i, 0]
        out[filled] &= ids[action] == clue[:, None]
    return out


def first_consistent_policy(spec: MastermindSpec) -> BoardPolicy:
    """Policy guessing the first code (in action order) consistent with every clue so far."""

    def policy(features: np.ndarray) -> np.ndarray:
        mask = consistent_codes(spec, features)
        if not mask.any(axis=1).all():
            raise ValueError("a board's clues contradict each other: no code is consistent")
        return np.eye(spec.n_codes)[mask.argmax(axis=1)]

    return policy


def board_label(spec: MastermindSpec, row: np.ndarray) -> str:
    """Short label of a board, e.g. ``AA p1 m0 / BA p0 m2`` (``empty`` for no guess)."""
    rows = np.asarray(row).reshape(spec.n_guesses, spec.row_width)
    parts = [
        "".join(LETTERS[v - 1] for v in r[1:-1]) + f" p{r[-1]} m{r[0]}"
        for r in rows
        if r[1] != EMPTY
    ]
    return " / ".join(parts) if parts else "empty"


# -- the exact model -----------------------------------------------------------------------
def build_model(
    spec: MastermindSpec, policy: BoardPolicy | None = None, *, chunk: int = 4096
) -> TabularMDP:
    """Exact tabular model of Mastermind over boards (belief states).

    ``policy=None`` enumerates every reachable board (the full model). With a policy, only
    the boards reached by its positive-probability actions are enumerated: the rows of the
    actions it never takes are then left empty (they read as "episode ends"), and
    ``info["complete"]`` is False. Such a model is exact for everything that follows the
    policy -- its steady state, V^pi, and the behaviour and prediction characteristics --
    but not for value iteration or outcome explanations, which need every action.
    Rewards r(s, a) = -1 + win_bonus * P(code = a | board) are exact for every action.

    ``info`` holds ``spec``, ``consistent`` (S, N) masks, ``level`` (guesses made) and
    ``complete``.
    """
    n_codes = n_actions = spec.n_codes
    ids = clue_ids(spec)  # (A, N)
    n_clues = spec.n_clues
    # onehot[n, a * K + c] = 1 when guess a scores clue c against code n.
    onehot = np.zeros((n_codes, n_actions * n_clues), dtype=np.float32)
    onehot[np.arange(n_codes)[None, :], np.arange(n_actions)[:, None] * n_clues + ids] = 1.0

    guesses = np.zeros((1, 0), np.int64)
    clue_hist = np.zeros((1, 0), np.int64)
    mask = np.ones((1, n_codes), dtype=bool)
    feats, masks, levels, rewards, t_rows, t_cols, t_probs = [], [], [], [], [], [], []
    offset = 0
    for level in range(spec.n_guesses):
        n_boards = len(mask)
        features = board_features(spec, guesses, clue_hist)
        size = mask.sum(axis=1)
        rewards.append(-1.0 + spec.win_bonus * mask / size[:, None])  # code index == action
        feats.append(features)
        masks.append(mask)
        levels.append(np.full(n_boards, level))
        if level == spec.n_guesses - 1:
            break  # every guess from here ends the episode
        acts = np.ones((n_boards, n_actions), bool)
        if policy is not None:
            acts = np.asarray(policy(features)) > 0
        child_b, child_a, child_c, child_n = [], [], [], []
        for lo in range(0, n_boards, chunk):
            part = mask[lo : lo + chunk].astype(np.float32)
            counts = (part @ onehot).reshape(len(part), n_actions, n_clues)
            counts[:, :, spec.win_clue] = 0.0  # a correct guess ends the episode
            counts *= acts[lo : lo + chunk, :, None]
            b, a, c = np.nonzero(counts)
            child_b.append(b + lo)
            child_a.append(a)
            child_c.append(c)
            child_n.append(counts[b, a, c])
        b, a, c = (np.concatenate(x) for x in (child_b, child_a, child_c))
        n_child = np.concatenate(child_n)
        t_rows.append((offset + b) * n_actions + a)
        t_cols.append(offset + n_boards + np.arange(len(b)))
        t_probs.append(n_child / size[b])
        guesses = np.column_stack([guesses[b], a])
        clue_hist = np.column_stack([clue_hist[b], c])
        mask = mask[b] & (ids[a] == c[:, None])
        offset += n_boards
    features = np.concatenate(feats)
    n_states = len(features)
    transitions = sp.csr_matrix(
        (
            np.concatenate(t_probs) if t_probs else np.zeros(0),
            (
                np.concatenate(t_rows) if t_rows else np.zeros(0, np.int64),
                np.concatenate(t_cols) if t_cols else np.zeros(0, np.int64),
            ),
        ),
        shape=(n_states * n_actions, n_states),
    )
    start = np.zeros(n_states)
    start[0] = 1.0
    return TabularMDP(
        features=features,
        transitions=transitions,
        rewards=np.concatenate(rewards),
        valid_actions=np.ones((n_states, n_actions), bool),
        start=start,
        gamma=1.0,
        feature_names=feature_names(spec),
        action_names=action_names(spec),
        state_labels=tuple(board_label(spec, r) for r in features),
        name=spec.name,
        info={
            "spec": spec,
            "consistent": np.concatenate(masks),
            "level": np.concatenate(levels),
            "complete": policy is None,
        },
    )


POLICIES: dict[str, Callable[[MastermindSpec], BoardPolicy]] = {
    "first_consistent": first_consistent_policy,
}

#: Bump when the model construction changes (invalidates cached models).
MODEL_VERSION = 2


def mastermind_model(
    code_length: int = 2,
    n_guesses: int = 3,
    n_letters: int = 2,
    *,
    win_bonus: float = 1.0,
    reachable_under: str | None = None,
    cache: bool = True,
    conventions: str | None = None,
) -> TabularMDP:
    """Cached :func:`build_model`; ``reachable_under`` names a policy of :data:`POLICIES`.

    ``conventions="fastsverl"`` (or ``"sverl"``) sets ``win_bonus`` by the paper's convention.
    """
    from ..repro import cached

    if conventions is not None:
        win_bonus = convention_win_bonus(conventions, n_guesses)

    spec = MastermindSpec(code_length, n_guesses, n_letters, float(win_bonus))
    if reachable_under is not None and reachable_under not in POLICIES:
        raise ValueError(f"unknown policy {reachable_under!r}; choose one of {sorted(POLICIES)}")
    policy = None if reachable_under is None else POLICIES[reachable_under](spec)
    config: dict[str, Any] = {
        "version": MODEL_VERSION,
        "k": code_length,
        "g": n_guesses,
        "p": n_letters,
        "win_bonus": float(win_bonus),
        "reachable_under": reachable_under,
    }
    return cached("mastermind_model", config, lambda: build_model(spec, policy), enabled=cache)


# -- policies on the tabular model ---------------------------------------------------------
def policy_table(mdp: TabularMDP, policy: BoardPolicy) -> np.ndarray:
    """``(S, A)`` table of a board policy on every state of a Mastermind model."""
    return np.asarray(policy(mdp.features), float)


def first_optimal_policy(mdp: TabularMDP, q: np.ndarray, *, tie_atol: float = 1e-9) -> np.ndarray:
    """Deterministic optimal policy: the first action (in action order) within ``tie_atol`` of max Q.

    With this module's action order (AA, BA, AB, BB for k=2, p=2) it reproduces SVERL's
    Mastermind agent: AA first, BA after (position 1, misplaced 0), AB if BA fails.
    """
    q = np.where(mdp.valid_actions, q, -np.inf)
    best = q >= q.max(axis=1, keepdims=True) - tie_atol
    return np.eye(mdp.n_actions)[best.argmax(axis=1)]


def sverl_agent(mdp: TabularMDP) -> tuple[np.ndarray, np.ndarray]:
    """SVERL Sec. 7.1's deterministic optimal agent: value iteration, ties to the first action.

    Returns ``(policy, Q)``. Needs the full model (``info["complete"]``).
    """
    if not mdp.info.get("complete", True):
        raise ValueError(
            "value iteration needs every action's transitions; build the full model "
            "(build_model(spec) / mastermind_model(...) without a policy)"
        )
    q, _ = value_iteration(mdp)
    return first_optimal_policy(mdp, q), q


def episode_states(mdp: TabularMDP, policy: np.ndarray, code: int) -> list[int]:
    """States visited by a deterministic policy when the hidden code is ``code`` (an action index)."""
    spec: MastermindSpec = mdp.info["spec"]
    ids = clue_ids(spec)
    s, visited = 0, [0]
    guesses, hist = [], []
    while True:
        a = int(np.argmax(policy[s]))
        if a == code or len(guesses) + 1 == spec.n_guesses:
            return visited
        guesses.append(a)
        hist.append(int(ids[a, code]))
        s = mdp.index_of(board_features(spec, np.array([guesses]), np.array([hist]))[0])
        visited.append(s)


# -- the environment -----------------------------------------------------------------------
class MastermindEnv(gymnasium.Env):
    """Gymnasium environment of Mastermind(k, g, p) (see the module docstring).

    Observations are ``float32`` vectors of the board's ``g * (k + 2)`` features; actions are
    code indices. ``reset(options={"code": a})`` fixes the hidden code (else uniform).
    ``conventions="fastsverl"`` pays ``+g`` for a correct guess (FastSVERL App. G); the
    default keeps SVERL's ``win_bonus=1``.
    ``info`` carries ``code`` (the hidden code's index) and ``consistent`` (number of codes
    consistent with the board).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        code_length: int = 2,
        n_guesses: int = 3,
        n_letters: int = 2,
        win_bonus: float = 1.0,
        *,
        conventions: str | None = None,
    ) -> None:
        spaces = gymnasium.spaces
        if conventions is not None:
            win_bonus = convention_win_bonus(conventions, n_guesses)
        self.spec_ = MastermindSpec(code_length, n_guesses, n_letters, float(win_bonus))
        self.observation_space = spaces.Box(
            low=-1,
            high=max(n_letters, code_length),
            shape=(self.spec_.n_features,),
            dtype=np.float32,
        )
        self.action_space = spaces.Discrete(self.spec_.n_codes)
        self._letters = code_letters(self.spec_)
        self._ids = clue_ids(self.spec_)
        self._code = 0
        self._guesses: list[int] = []
        self._clues: list[int] = []
        self._done = True

    def _obs(self) -> np.ndarray:
        feats = board_features(
            self.spec_,
            np.array([self._guesses], np.int64).reshape(1, -1),
            np.array([self._clues], np.int64).reshape(1, -1),
        )
        return feats[0].astype(np.float32)

    def _info(self) -> dict:
        n = int(consistent_codes(self.spec_, self._obs()[None].astype(np.int64)).sum())
        return {"code": self._code, "consistent": n}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        code = (options or {}).get("code")
        if code is None:
            code = int(self.np_random.integers(self.spec_.n_codes))
        if not 0 <= int(code) < self.spec_.n_codes:
            raise ValueError(f"code must be an action index in 0..{self.spec_.n_codes - 1}")
        self._code, self._guesses, self._clues, self._done = int(code), [], [], False
        return self._obs(), self._info()

    def step(self, action: int):
        if self._done:
            raise RuntimeError("the episode has ended; call reset() before step()")
        a = int(action)
        if not 0 <= a < self.spec_.n_codes:
            raise ValueError(f"action must lie in 0..{self.spec_.n_codes - 1}; got {action}")
        win = a == self._code
        reward = -1.0 + (self.spec_.win_bonus if win else 0.0)
        self._guesses.append(a)
        self._clues.append(int(self._ids[a, self._code]))
        self._done = win or len(self._guesses) == self.spec_.n_guesses
        return self._obs(), reward, self._done, False, self._info()
