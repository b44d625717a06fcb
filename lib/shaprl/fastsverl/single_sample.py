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
states (cached, least recently used first out), a batch of Q queries O(Q log U). That suits
few features (2**F coalitions repeat). With many features (Mastermind-463: F = 36) a coalition
is almost never seen twice, so the index streams instead: every distinct state keeps one
64-bit hash per (feature, value), a coalition's hash of a row is the wrapping sum over its
known features (O(U |C|), no sort), rows are matched to the batch's <= Q distinct query
hashes by binary search, and only the matches are grouped (a radix sort of small group ids;
CSR offsets and cumulative counts as above). Each draw is verified against the query on C,
so a hash collision (probability ~ U**2 / 2**64 per coalition) costs a brute-force fallback,
never a wrong sample.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
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


def feature_hashes(rows: np.ndarray) -> np.ndarray:
    """``(N, F)`` 64-bit hashes of each (feature, value); a coalition's hash of a row is the
    wrapping sum of its known features' hashes (unknown features add nothing)."""
    bits = np.ascontiguousarray(np.asarray(rows, np.float64) + 0.0).view(np.uint64)
    salts = _mix(np.arange(1, rows.shape[1] + 1, dtype=np.uint64) * _MULT)
    with np.errstate(over="ignore"):
        return _mix(bits * _MULT + salts[None, :])


@dataclass
class _Groups:
    keys: np.ndarray  #: (U',) sorted hashes of the masked buffer states
    order: np.ndarray  #: (U',) distinct-state index at each sorted position
    cum: np.ndarray  #: (U' + 1,) cumulative buffer counts in sorted order
    lo: np.ndarray  #: (U,) first sorted position of each distinct state's group
    hi: np.ndarray  #: (U,) one past its last position (lo == hi: no buffer match)


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
        cache_features: int = 16,
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
        # Many features: coalitions rarely repeat, so group per query batch instead (streaming)
        self.streaming = self.n_features > cache_features
        if self.streaming:
            self._present = np.flatnonzero(self.counts > 0)
            self._hash_all = feature_hashes(self.states)
            # (F, U') feature-major: a coalition's rows of it are contiguous to sum
            self._hash_present_t = np.ascontiguousarray(self._hash_all[self._present].T)

    # -- per-coalition groups -----------------------------------------------------------------
    def groups(self, coalition: np.ndarray) -> _Groups:
        """The sorted hashes and CSR offsets of the buffer states masked to ``coalition``."""
        key = np.packbits(np.asarray(coalition, bool)).tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        present = self.counts > 0
        h_all = masked_hash(self.states, coalition, self.mask_value)
        h = h_all[present]
        sort = np.argsort(h, kind="stable")
        keys = h[sort]
        order = np.flatnonzero(present)[sort]
        cum = np.concatenate([[0], np.cumsum(self.counts[order])])
        lo = np.searchsorted(keys, h_all, side="left")
        hi = np.searchsorted(keys, h_all, side="right")
        groups = _Groups(keys, order, cum, lo, hi)
        self._cache[key] = groups
        self.builds += 1
        if len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return groups

    def _stream(self, query_hash: np.ndarray, coalition: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Draws for queries (their per-feature hashes) on one coalition, without a full sort.

        The coalition's hash of a row is the sum (mod 2**64) of its known features' hashes;
        buffer rows are matched to the <= Q distinct query hashes by binary search, then only
        the matching rows are grouped (a radix sort of small group ids).
        """
        c = np.asarray(coalition, bool)
        h_all = self._hash_present_t[c].sum(axis=0, dtype=np.uint64)
        qh = query_hash[:, c].sum(axis=1, dtype=np.uint64)
        uq, qinv = np.unique(qh, return_inverse=True)
        low = (uq & np.uint64(0xFFFF)).astype(np.int64)
        if len(np.unique(low)) == len(uq):  # a direct table on the low 16 bits (no search)
            table = np.full(1 << 16, len(uq), np.int64)
            table[low] = np.arange(len(uq))
            pos = table[(h_all & np.uint64(0xFFFF)).astype(np.int64)]
            cand = np.flatnonzero(pos < len(uq))
            sel = cand[uq[pos[cand]] == h_all[cand]]
        else:
            pos = np.minimum(np.searchsorted(uq, h_all), len(uq) - 1)
            sel = np.flatnonzero(uq[pos] == h_all)
        gid = pos[sel].astype(np.int16 if len(uq) < 2**15 else np.int64)
        order = np.argsort(gid, kind="stable")
        members = self._present[sel[order]]
        if len(members) == 0:
            return np.full(len(qh), -1, np.int64)
        cum = np.concatenate([[0], np.cumsum(self.counts[members])])
        gs = gid[order]
        lo = np.searchsorted(gs, qinv.reshape(-1), side="left")
        hi = np.searchsorted(gs, qinv.reshape(-1), side="right")
        total = cum[hi] - cum[lo]
        t = cum[lo] + np.minimum((u * total).astype(np.int64), np.maximum(total - 1, 0))
        p = np.clip(np.searchsorted(cum, t, side="right") - 1, 0, len(members) - 1)
        return np.where(hi > lo, members[p], -1)

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
        q_hash = feature_hashes(queries) if self.streaming else None
        for g in range(len(uniq)):
            sel = np.flatnonzero(which == g)
            c = coalitions[sel[0]]
            if self.streaming:
                out[sel] = self._stream(q_hash[sel], c, u[sel])
                continue
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

    def sample_states(
        self, state_idx: np.ndarray, coalition: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Fast path: queries that are distinct states of the index, one coalition for all."""
        state_idx = np.asarray(state_idx, np.int64)
        c = np.asarray(coalition, bool)
        if self.streaming:
            drawn = self._stream(self._hash_all[state_idx], c, rng.random(len(state_idx)))
            queries = self.states[state_idx]
            self._verify(queries, np.broadcast_to(c, queries.shape), drawn, rng)
            return drawn
        grp = self.groups(c)
        lo, hi = grp.lo[state_idx], grp.hi[state_idx]
        total = grp.cum[hi] - grp.cum[lo]
        u = rng.random(len(state_idx))
        t = grp.cum[lo] + np.minimum((u * total).astype(np.int64), np.maximum(total - 1, 0))
        pos = np.searchsorted(grp.cum, t, side="right") - 1
        drawn = np.where(hi > lo, grp.order[np.clip(pos, 0, len(grp.order) - 1)], -1)
        queries = self.states[state_idx]
        self._verify(queries, np.broadcast_to(c, queries.shape), drawn, rng)
        return drawn

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
        device: torch.device | str | None = None,
    ) -> None:
        from .training import resolve_device

        device = resolve_device(device)
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
        flat_idx = idx.reshape(-1, shape[-1]).cpu().numpy()  # (groups, B)
        flat_c = c.reshape(-1, shape[-1], c.shape[-1]).cpu().numpy()
        shared = (flat_c == flat_c[:, :1]).all(axis=(1, 2))  # one coalition per batch
        parts = []
        for g in range(len(flat_idx)):
            if shared[g]:
                parts.append(self.index.sample_states(flat_idx[g], flat_c[g, 0], self.rng))
            else:
                q = self.index.states[flat_idx[g]]
                parts.append(self.index.sample(q, flat_c[g], self.rng))
        drawn = np.concatenate(parts)
        if (drawn < 0).any():
            raise ValueError(
                "a query state matches no buffer state on its coalition; single-sample "
                "characteristics need the explained states to come from the buffer"
            )
        self.draws += len(drawn)
        values = self._on(idx.device)[0]
        drawn_t = torch.as_tensor(drawn, device=values.device)
        return values[drawn_t].reshape(*shape, values.shape[-1])

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Follow the device of the trainer's tensors (whatever ``device`` this was built on)."""
        if self.values.device != device:
            self.values, self._null = self.values.to(device), self._null.to(device)
        return self.values, self._null

    @torch.no_grad()
    def null(self, idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self._on(idx.device)[1].expand(len(idx), -1)


# -- the experiment of Fig. 3c and App. F Fig. 11 -------------------------------------------------
METHODS = ("single-sample", "exact", "model-based")


def sampling_curves(
    problem,
    kind: str,
    cfg,
    *,
    char_updates: int,
    domain: str = "",
    methods: tuple[str, ...] = METHODS,
) -> tuple[pd.DataFrame, dict]:
    """Shapley models trained with single-sample, exact and model-based characteristics.

    ``problem`` is a :class:`~shaprl.fastsverl.exact.TabularProblem`, ``kind`` "behaviour" or
    "prediction", ``cfg`` the Shapley models' :class:`~shaprl.fastsverl.training.TrainConfig`
    (the same seeds for every method: runs are paired). The model-based method first trains
    ``cfg.n_runs`` characteristic models for ``char_updates`` updates (their first run is the
    upstream of every Shapley run, as in App. C), so its Shapley curve starts at
    ``char_updates`` cumulative updates. Every curve is the exact MSE against the exact Shapley
    values. Returns ``(curves, info)`` with seconds per method.
    """
    from dataclasses import replace

    from .training import (
        ExactCharacteristic,
        ModelCharacteristic,
        train_characteristic,
        train_shapley,
    )

    data = problem.data(kind)
    exact = problem.shapley_eval(kind)
    frames, info = [], {"char_updates": int(char_updates)}
    for method in methods:
        offset = 0
        if method == "single-sample":
            char = SampledCharacteristic.from_state_data(
                data, seed=cfg.seed + 17, mask_value=cfg.mask_value
            )
        elif method == "exact":
            char = ExactCharacteristic(problem.table(kind))
        elif method == "model-based":
            ccfg = replace(cfg, updates=int(char_updates), seed=cfg.seed + 1)
            model, ccurves = train_characteristic(data, ccfg)
            char = ModelCharacteristic(model.member(0), cfg.mask_value)
            offset = int(char_updates)
            info["char_seconds"] = ccurves.seconds
        else:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        _, curves = train_shapley(data, char, cfg, exact=exact)
        info[f"{method}_seconds"] = curves.seconds
        r, t = curves.exact_mse.shape
        frames.append(
            pd.DataFrame(
                {
                    "domain": domain,
                    "kind": kind,
                    "method": method,
                    "run": np.repeat(np.arange(r), t),
                    "update": np.tile(curves.updates + offset, r),
                    "exact_mse": curves.exact_mse.reshape(-1),
                }
            )
        )
    return pd.concat(frames, ignore_index=True), info


def converged_at(
    updates: np.ndarray, mean: np.ndarray, *, factor: float = 1.25, tail: int = 3
) -> float:
    """First update at which a mean curve is within ``factor`` of its final value (mean of the
    last ``tail`` evaluations) and stays there."""
    final = float(np.mean(mean[-tail:]))
    inside = mean <= factor * final
    outside = np.flatnonzero(~inside)
    first = 0 if len(outside) == 0 else outside[-1] + 1
    return float(updates[min(first, len(updates) - 1)])


def sampling_figure(curves: pd.DataFrame, char_updates: dict):
    """Fig. 3c / Fig. 11: exact MSE against cumulative updates, one panel per (domain, kind);
    dashed line: end of the characteristic model's pre-training (model-based method)."""
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(zip(curves["domain"], curves["kind"], strict=True)))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 2.8), squeeze=False)
    colours = {"single-sample": "#2ca02c", "exact": "#1f77b4", "model-based": "#d62728"}
    g = curves.groupby(["domain", "kind", "method", "update"], sort=False)["exact_mse"]
    stats = g.agg(["mean", "std", "count"]).reset_index()
    stats["stderr"] = stats["std"].fillna(0.0) / np.sqrt(stats["count"])
    for ax, (domain, kind) in zip(axes[0], panels, strict=True):
        part = stats[(stats["domain"] == domain) & (stats["kind"] == kind)]
        for method, c in part.groupby("method", sort=False):
            ax.plot(c["update"], c["mean"], color=colours[method], label=method, lw=1.2)
            lo = np.maximum(c["mean"] - c["stderr"], 0.1 * c["mean"])  # log scale
            ax.fill_between(
                c["update"], lo, c["mean"] + c["stderr"], color=colours[method], alpha=0.2
            )
        ax.axvline(char_updates[(domain, kind)], color="grey", ls="--", lw=0.8)
        ax.set_yscale("log")
        title = kind if "characteristic" in kind else f"{kind} Shapley"
        ax.set_title(f"{domain}: {title}", fontsize=8)
        ax.set_xlabel("cumulative updates", fontsize=8)
        ax.set_ylabel("exact MSE", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def sampled_behaviour(problem, *, seed: int = 0, mask_value: float = MASK_VALUE):
    """Single-sample behaviour for the on-policy outcome characteristic (App. F, Eq. 48).

    Returns a :data:`~shaprl.fastsverl.outcome.Behaviour`: given explained states ``se``
    (positions in ``problem.support``) and coalitions ``c``, it draws s' ~ p^pi(. | s_e^C) from
    the problem's training buffer and returns pi(s', .) -- the action distribution the
    conditioned policy uses at s = s_e in place of a behaviour characteristic model.
    """
    states = problem.states
    counts = np.bincount(problem.train, minlength=len(states))
    index = ConditionalIndex(states, counts=counts, mask_value=mask_value)
    table = torch.as_tensor(problem.targets("behaviour"), dtype=torch.float32)
    rng = np.random.default_rng(seed)

    def behaviour(se: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        se = se.reshape(-1).cpu().numpy()
        drawn = index.sample(index.states[se], c.reshape(len(se), -1).cpu().numpy(), rng)
        if (drawn < 0).any():
            raise ValueError("an explained state matches no buffer state on its coalition")
        return table[torch.as_tensor(drawn)]

    return behaviour


def outcome_sampling_curves(
    problem, cfg, *, char_updates: int, hidden: tuple[int, ...] = (64, 64), domain: str = ""
) -> pd.DataFrame:
    """On-policy outcome characteristic (Eq. 14) with sampled, exact and model-based behaviour.

    ``cfg`` is an :class:`~shaprl.fastsverl.outcome.OutcomeConfig`. The model-based upstream
    is a behaviour characteristic model trained for ``char_updates`` updates (its first run),
    and its curve is shifted by them. Returns a tidy frame like :func:`sampling_curves`
    (``kind = "outcome characteristic"``).
    """
    from .outcome import exact_behaviour, model_behaviour, train_outcome_on_policy
    from .training import TrainConfig, train_characteristic

    ups = {"single-sample": (sampled_behaviour(problem, seed=cfg.seed + 17), 0)}
    ups["exact"] = (exact_behaviour(problem), 0)
    ccfg = TrainConfig(hidden=hidden, updates=int(char_updates), seed=cfg.seed + 1)
    model, _ = train_characteristic(problem.data("behaviour"), ccfg)
    ups["model-based"] = (
        model_behaviour(problem, model.member(0), cfg.mask_value),
        int(char_updates),
    )
    frames = []
    for method, (behaviour, offset) in ups.items():
        _, curves = train_outcome_on_policy(problem, behaviour, cfg)
        r, t = curves.exact_mse.shape
        frames.append(
            pd.DataFrame(
                {
                    "domain": domain,
                    "kind": "outcome characteristic",
                    "method": method,
                    "run": np.repeat(np.arange(r), t),
                    "update": np.tile(curves.updates + offset, r),
                    "exact_mse": curves.exact_mse.reshape(-1),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
