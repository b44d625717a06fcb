"""The tabular MDP container."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP over non-terminal states described by feature vectors.

    Attributes
    ----------
    features:
        ``(S, F)`` feature vector of every non-terminal state; rows must be distinct.
    transitions:
        Sparse ``(S * A, S)`` matrix; row ``s * A + a`` holds p(s' | s, a) over non-terminal
        successors. Mass missing from a row is the probability that the episode ends.
    rewards:
        ``(S, A)`` expected immediate reward r(s, a).
    valid_actions:
        ``(S, A)`` boolean mask of the actions available in each state.
    start:
        ``(S,)`` start-state distribution.
    gamma:
        Discount factor.
    feature_names, action_names:
        Labels used in tables and figures.
    state_labels:
        Optional short label per state (defaults to the feature tuple).
    name:
        Name of the domain.
    """

    features: np.ndarray
    transitions: sp.csr_matrix
    rewards: np.ndarray
    valid_actions: np.ndarray
    start: np.ndarray
    gamma: float
    feature_names: tuple[str, ...]
    action_names: tuple[str, ...]
    state_labels: tuple[str, ...] | None = None
    name: str = "mdp"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        s, f = self.features.shape
        a = self.rewards.shape[1]
        if self.transitions.shape != (s * a, s):
            raise ValueError(
                f"transitions must have shape (S*A, S) = ({s * a}, {s}); got {self.transitions.shape}"
            )
        if self.rewards.shape != (s, a) or self.valid_actions.shape != (s, a):
            raise ValueError("rewards and valid_actions must both have shape (S, A)")
        if len(self.feature_names) != f or len(self.action_names) != a:
            raise ValueError("need one name per feature and one per action")
        for what, arr in (
            ("features", self.features),
            ("rewards", self.rewards),
            ("start", self.start),
            ("transitions", self.transitions.data),
        ):
            if not np.isfinite(np.asarray(arr, float)).all():
                raise ValueError(
                    f"{what} contain NaN or infinite values; every entry must be finite"
                )
        for what, arr in (("transitions", self.transitions.data), ("start", self.start)):
            if (np.asarray(arr) < 0).any():
                raise ValueError(
                    f"{what} has a negative probability ({np.min(arr):.6g}); "
                    "probabilities must be non-negative"
                )
        if len(np.unique(self.features, axis=0)) != s:
            _, first, counts = np.unique(
                self.features, axis=0, return_index=True, return_counts=True
            )
            row = tuple(self.features[first[np.argmax(counts > 1)]].tolist())
            raise ValueError(
                f"two states share the feature row {row}; features must identify states "
                "(add a feature that tells them apart)"
            )
        if not np.isclose(self.start.sum(), 1.0):
            raise ValueError(f"start distribution sums to {self.start.sum():.6g}, not 1")
        if not self.valid_actions.any(axis=1).all():
            bad = int(np.flatnonzero(~self.valid_actions.any(axis=1))[0])
            raise ValueError(f"state {bad} has no valid action; make it terminal instead")
        row_sums = np.asarray(self.transitions.sum(axis=1)).ravel()
        if (row_sums > 1 + 1e-9).any():
            raise ValueError("a transition row sums to more than 1")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1]; got {self.gamma}")

    # -- sizes ------------------------------------------------------------------------
    @property
    def n_states(self) -> int:
        return self.features.shape[0]

    @property
    def n_actions(self) -> int:
        return self.rewards.shape[1]

    @property
    def n_features(self) -> int:
        return self.features.shape[1]

    @cached_property
    def termination(self) -> np.ndarray:
        """(S, A) probability that taking a in s ends the episode."""
        row_sums = np.asarray(self.transitions.sum(axis=1)).ravel()
        return np.clip(1.0 - row_sums, 0.0, 1.0).reshape(self.n_states, self.n_actions)

    @property
    def is_continuing(self) -> bool:
        """True when no state-action pair can end the episode."""
        return bool((self.termination < 1e-12).all())

    # -- lookups ----------------------------------------------------------------------
    @cached_property
    def _row_index(self) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """Mixed-radix code of every state's feature vector, sorted for vectorised lookup."""
        values = [np.unique(self.features[:, i]) for i in range(self.n_features)]
        sizes = [len(v) for v in values]
        if float(np.prod(sizes, dtype=float)) >= 2.0**62:
            raise ValueError("too many distinct feature values to index states by feature vector")
        multipliers = np.cumprod([1, *sizes[:-1]]).astype(np.int64)
        codes = sum(
            np.searchsorted(values[i], self.features[:, i]).astype(np.int64) * multipliers[i]
            for i in range(self.n_features)
        )
        order = np.argsort(codes, kind="stable")
        sorted_codes = np.asarray(codes)[order]
        if (np.diff(sorted_codes) == 0).any():
            raise ValueError("two states share a feature vector; features must identify states")
        return values, multipliers, sorted_codes, order

    def find_states(self, rows: np.ndarray) -> np.ndarray:
        """Vectorised lookup: the state index of each feature row, or -1 where none matches."""
        rows = self.check_rows(rows)
        values, multipliers, sorted_codes, order = self._row_index
        found = np.ones(len(rows), bool)
        codes = np.zeros(len(rows), np.int64)
        for i, vals in enumerate(values):
            pos = np.minimum(np.searchsorted(vals, rows[:, i]), len(vals) - 1)
            found &= vals[pos] == rows[:, i]
            codes += pos * multipliers[i]
        at = np.minimum(np.searchsorted(sorted_codes, codes), len(sorted_codes) - 1)
        found &= sorted_codes[at] == codes
        return np.where(found, order[at], -1)

    def check_rows(self, rows: np.ndarray) -> np.ndarray:
        """Feature rows as a ``(k, F)`` array; a ValueError names a wrong length or a NaN."""
        rows = np.atleast_2d(np.asarray(rows))
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(
                f"feature rows of {self.name!r} have {self.n_features} entries "
                f"{self.feature_names}; got an array of shape {rows.shape}"
            )
        if rows.dtype.kind == "f" and not np.isfinite(rows).all():
            bad = tuple(rows[int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])].tolist())
            raise ValueError(f"feature row {bad} contains NaN or infinity; features must be finite")
        return rows

    def index_of(self, features: Sequence[float]) -> int:
        """Index of the state with this feature vector (KeyError naming it if none)."""
        return int(self.indices_of([features])[0])

    def indices_of(self, rows: Iterable[Sequence[float]]) -> np.ndarray:
        """State indices of feature rows (KeyError naming the first row that is no state)."""
        rows = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows)
        if rows.size == 0:
            raise ValueError("no feature rows given: pass at least one state's features")
        idx = self.find_states(rows)
        if (idx < 0).any():
            key = tuple(np.atleast_2d(rows)[int(np.flatnonzero(idx < 0)[0])].tolist())
            raise KeyError(f"no non-terminal state of {self.name!r} has features {key}")
        return idx

    def label(self, s: int) -> str:
        if self.state_labels is not None:
            return self.state_labels[s]
        return str(tuple(self.features[s].tolist()))

    # -- policy-induced chain ---------------------------------------------------------
    def chain(self, policy: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        """Transition matrix P_pi (S x S) and expected reward r_pi (S,) under ``policy``."""
        s, a = self.n_states, self.n_actions
        weights = sp.diags(np.asarray(policy, float).reshape(-1))
        pick = sp.kron(sp.eye(s, format="csr"), np.ones((1, a)), format="csr")  # (S, S*A)
        p_pi = (pick @ weights @ self.transitions).tocsr()
        r_pi = (np.asarray(policy) * self.rewards).sum(axis=1)
        return p_pi, r_pi

    def successors(self, s: int, a: int) -> tuple[np.ndarray, np.ndarray]:
        """Non-terminal successor indices and probabilities of (s, a)."""
        row = self.transitions[s * self.n_actions + a]
        return row.indices, row.data

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_dense(
        cls,
        features: np.ndarray,
        transitions: np.ndarray,
        rewards: np.ndarray,
        start: np.ndarray,
        gamma: float,
        feature_names: Sequence[str],
        action_names: Sequence[str],
        valid_actions: np.ndarray | None = None,
        **kwargs,
    ) -> TabularMDP:
        """Build from a dense ``(S, A, S)`` transition array (small domains)."""
        transitions = np.asarray(transitions, float)
        s, a, _ = transitions.shape
        valid = np.ones((s, a), bool) if valid_actions is None else np.asarray(valid_actions, bool)
        return cls(
            features=np.asarray(features),
            transitions=sp.csr_matrix(transitions.reshape(s * a, s)),
            rewards=np.asarray(rewards, float),
            valid_actions=valid,
            start=np.asarray(start, float),
            gamma=float(gamma),
            feature_names=tuple(feature_names),
            action_names=tuple(action_names),
            **kwargs,
        )
