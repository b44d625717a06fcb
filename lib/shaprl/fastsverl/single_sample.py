"""Single-sample characteristics: Shapley models without characteristic models (Sec. 5, App. F).

Instead of querying a characteristic model for pi~_s^a(C), the Shapley loss (Eq. 10) uses one
state s' drawn from the conditional steady state p^pi(. | s^C) and the explained quantity at
it (Eq. 18, App. F Eqs. 38, 41):

    L(theta) = E_{s, a, C} E_{s' ~ p^pi(.|s^C)} | pi(s', a) - pi~_s^a(∅) - sum_{i in C} phi_i(s, a) |**2.

In expectation over s' this is the model-based loss (App. F, Eqs. 43-45), so the optimum is
the same Shapley values; single samples only add gradient noise. As in the paper, p^pi(.|s^C)
is the buffer's empirical distribution: s' is a uniform draw among the buffer entries that
agree with s on C, and the null value pi~(∅) is the buffer mean of pi (Eq. 40).

Drawing s' for every sample of every batch needs an index from (coalition, known values) to
the matching buffer entries. :class:`ConditionalIndex` builds, per coalition C, a hash of
every distinct buffer state masked to C, sorts the hashes once, and keeps CSR-style group
offsets into the sorted order together with cumulative buffer counts; a query is then a
binary search plus one uniform integer. Per coalition the build is O(U log U) for U distinct
states (cached, least recently used first out), a batch of Q queries O(Q log U). Each draw
is verified against the query on C, so a hash collision (probability ~ U**2 / 2**64 per
coalition) costs a brute-force fallback, never a wrong sample.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from .coalitions import MASK_VALUE

_MULT = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio multiplier (Fibonacci hashing)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def masked_hash(
    rows: np.ndarray, coalition: np.ndarray, mask_value: float = MASK_VALUE
) -> np.ndarray:
    """64-bit hash of each row with the features outside ``coalition`` replaced by the mask."""
    masked = np.where(coalition, rows, mask_value).astype(np.float64) + 0.0  # -0.0 -> 0.0
    bits = np.ascontiguousarray(masked).view(np.uint64)
    h = np.zeros(len(rows), np.uint64)
    with np.errstate(over="ignore"):
        for i in range(rows.shape[1]):
            h = _mix(h * _MULT + bits[:, i] + np.uint64(i + 1))
    return h


@dataclass
class _Groups:
    keys: np.ndarray  #: (U',) sorted hashes of the masked buffer states
    order: np.ndarray  #: (U',) distinct-state index at each sorted position
    cum: np.ndarray  #: (U' + 1,) cumulative buffer counts in sorted order


class ConditionalIndex:
    """Draws buffer states that match queries on a coalition (see the module docstring).

    ``rows`` ``(N, F)`` is the buffer (repeats allowed: a state's frequency is its weight).
    Draws return indices into :attr:`states` (the distinct rows), or -1 where nothing in the
    buffer matches the query on its coalition.
    """

    def __init__(
        self,
        rows: np.ndarray,
        *,
        counts: np.ndarray | None = None,
        mask_value: float = MASK_VALUE,
        max_cached_rows: int = 20_000_000,
    ) -> None:
        rows = np.asarray(rows, np.float64)
        if rows.ndim != 2 or len(rows) == 0:
            raise ValueError(
                f"rows must be a non-empty (N, F) array of buffer states; got {rows.shape}"
            )
        if counts is None:
            self.states, inverse, counts = np.unique(
                rows, axis=0, return_inverse=True, return_counts=True
            )
            self.inverse = inverse.reshape(-1)
        else:
            if len(counts) != len(rows) or (np.asarray(counts) < 0).any():
                raise ValueError("counts must give one non-negative count per row")
            self.states, self.inverse = rows, np.arange(len(rows))
        self.counts = np.asarray(counts, np.int64)
        self.mask_value = float(mask_value)
        self.n_features = self.states.shape[1]
        self._cache: OrderedDict[bytes, _Groups] = OrderedDict()
        self._max_cached = max(1, int(max_cached_rows) // max(1, len(self.states)))
        self.builds = 0  #: number of coalition groupings built (cache misses)

    # -- per-coalition groups -----------------------------------------------------------------
    def groups(self, coalition: np.ndarray) -> _Groups:
        """The sorted hashes and CSR offsets of the buffer states masked to ``coalition``."""
        key = np.packbits(np.asarray(coalition, bool)).tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        present = np.flatnonzero(self.counts > 0)
        h = masked_hash(self.states[present], coalition, self.mask_value)
        sort = np.argsort(h, kind="stable")
        cum = np.concatenate([[0], np.cumsum(self.counts[present[sort]])])
        groups = _Groups(h[sort], present[sort], cum)
        self._cache[key] = groups
        self.builds += 1
        if len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return groups

    # -- queries ---------------------------------------------------------------------------
    def sample(
        self, queries: np.ndarray, coalitions: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """One buffer state per query drawn from the buffer restricted to matches on C.

        ``queries`` ``(Q, F)`` and ``coalitions`` ``(Q, F)`` (booleans; one coalition may be
        broadcast as ``(F,)``). Returns ``(Q,)`` distinct-state indices (-1: no match).
        """
        queries = np.asarray(queries, np.float64)
        coalitions = np.broadcast_to(np.asarray(coalitions, bool), queries.shape)
        out = np.full(len(queries), -1, np.int64)
        if len(queries) == 0:
            return out
        packed = np.packbits(coalitions, axis=1)
        uniq, which = np.unique(packed, axis=0, return_inverse=True)
        which = which.reshape(-1)
        u = rng.random(len(queries))
        for g in range(len(uniq)):
            sel = np.flatnonzero(which == g)
            c = coalitions[sel[0]]
            grp = self.groups(c)
            qh = masked_hash(queries[sel], c, self.mask_value)
            lo = np.searchsorted(grp.keys, qh, side="left")
            hi = np.searchsorted(grp.keys, qh, side="right")
            found = hi > lo
            total = grp.cum[hi] - grp.cum[lo]
            t = grp.cum[lo] + np.minimum(
                (u[sel] * total).astype(np.int64), np.maximum(total - 1, 0)
            )
            pos = np.searchsorted(grp.cum, t, side="right") - 1
            drawn = np.where(found, grp.order[np.clip(pos, 0, len(grp.order) - 1)], -1)
            out[sel] = drawn
        self._verify(queries, coalitions, out, rng)
        return out

    def _verify(self, queries, coalitions, drawn, rng) -> None:
        """Redraw by brute force any draw that a hash collision made inconsistent."""
        ok = drawn >= 0
        agree = np.ones(len(drawn), bool)
        agree[ok] = ((self.states[drawn[ok]] == queries[ok]) | ~coalitions[ok]).all(axis=1)
        for q in np.flatnonzero(~agree):
            match = self.matches(queries[q], coalitions[q])
            w = self.counts[match].astype(float)
            drawn[q] = rng.choice(match, p=w / w.sum()) if w.sum() > 0 else -1

    def matches(self, query: np.ndarray, coalition: np.ndarray) -> np.ndarray:
        """Brute force: indices of the buffer states equal to ``query`` on ``coalition``."""
        c = np.asarray(coalition, bool)
        eq = (self.states[:, c] == np.asarray(query, np.float64)[c]).all(axis=1)
        return np.flatnonzero(eq & (self.counts > 0))


class SampledCharacteristic:
    """Single-sample behaviour/prediction characteristic for :func:`~.training.train_shapley`.

    ``states`` ``(S, F)`` and ``values`` ``(S, m)``: the explained quantity (pi(s, .) or
    v̂(s)) at every state; ``buffer`` ``(N,)``: indices into ``states`` whose frequencies
    stand for p^pi. Called like the model and exact characteristics of
    :mod:`~shaprl.fastsverl.training` (``idx``, ``x``, ``c`` of one update) it returns the
    value at one draw s' ~ p^pi(. | s^C) per sample; :meth:`null` is the buffer mean (Eq. 40).
    """

    def __init__(
        self,
        states: np.ndarray,
        values: np.ndarray,
        buffer: np.ndarray,
        *,
        seed: int = 0,
        mask_value: float = MASK_VALUE,
        device: torch.device | str = "cpu",
    ) -> None:
        counts = np.bincount(np.asarray(buffer), minlength=len(states))
        self.index = ConditionalIndex(np.asarray(states), counts=counts, mask_value=mask_value)
        self.values = torch.as_tensor(np.asarray(values), dtype=torch.float32, device=device)
        self.rng = np.random.default_rng(seed)
        self._null = (
            self.values
            * torch.as_tensor(counts / counts.sum(), dtype=torch.float32, device=device)[:, None]
        ).sum(0)
        self.draws = 0

    @classmethod
    def from_state_data(
        cls, data, *, seed: int = 0, mask_value: float = MASK_VALUE
    ) -> SampledCharacteristic:
        """From a :class:`~shaprl.fastsverl.training.StateData` (its training buffer)."""
        return cls(data.states, data.targets, data.train, seed=seed, mask_value=mask_value)

    @torch.no_grad()
    def __call__(self, idx: torch.Tensor, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shape = idx.shape
        q = self.index.states[idx.reshape(-1).cpu().numpy()]
        drawn = self.index.sample(q, c.reshape(-1, c.shape[-1]).cpu().numpy(), self.rng)
        if (drawn < 0).any():
            raise ValueError(
                "a query state matches no buffer state on its coalition; single-sample "
                "characteristics need the explained states to come from the buffer"
            )
        self.draws += len(drawn)
        return self.values[torch.as_tensor(drawn)].reshape(*shape, self.values.shape[-1])

    @torch.no_grad()
    def null(self, idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self._null.expand(len(idx), -1)
