"""Result object of a SVERL explanation, shared by every route that computes one.

Exact explanations (:class:`~shaprl.sverl.SVERLExplainer`) carry the full characteristic
table v(C) of every explained state and no uncertainty. Estimated explanations (Monte
Carlo SVERL, SVERL Sec. 10.2; amortised models) carry Shapley values with standard errors
and no table, since 2**F coalitions cannot be stored beyond a couple of dozen features.
Both are the same :class:`Explanation`, so tidy frames and plots do not care which route
produced them; ``method`` and ``samples`` record how the numbers were obtained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..shapley.coalitions import coalition_label
from ..shapley.exact import exact_shapley

#: Method label of explanations computed exactly from a model.
EXACT = "exact"


@dataclass(frozen=True)
class KindResult:
    """Shapley values of one explanation kind (behaviour, outcome or prediction).

    ``characteristic`` is the ``(n_states, 2**F, m)`` table of v(C), or ``None`` where it
    was not (or could not be) tabulated. ``stderr`` has the shape of ``phi`` for estimated
    values and is ``None`` for exact ones. ``samples`` counts what the estimate cost, e.g.
    ``{"permutations": 256, "rollouts": 1200, "simulator_steps": 5400}``.
    """

    phi: np.ndarray  #: (n_states, F, m) Shapley values
    characteristic: np.ndarray | None  #: (n_states, 2**F, m) v(C) for every coalition, or None
    outputs: tuple[str, ...]  #: labels of the m outputs (actions, or "value")
    stderr: np.ndarray | None = None  #: (n_states, F, m) standard errors, None when exact
    samples: Mapping[str, int] = field(default_factory=dict)  #: sample counts of an estimate

    def __post_init__(self) -> None:
        phi = np.asarray(self.phi, float)
        if phi.ndim != 3:
            raise ValueError(f"phi must have shape (n_states, F, m); got shape {phi.shape}")
        object.__setattr__(self, "phi", phi)
        object.__setattr__(self, "outputs", tuple(self.outputs))
        if len(self.outputs) != phi.shape[2]:
            raise ValueError(
                f"phi has {phi.shape[2]} outputs but {len(self.outputs)} output labels were given"
            )
        if self.stderr is not None:
            stderr = np.asarray(self.stderr, float)
            if stderr.shape != phi.shape:
                raise ValueError(f"stderr has shape {stderr.shape}; phi has {phi.shape}")
            object.__setattr__(self, "stderr", stderr)
        if self.characteristic is not None:
            char = np.asarray(self.characteristic, float)
            expected = (phi.shape[0], 1 << phi.shape[1], phi.shape[2])
            if char.shape != expected:
                raise ValueError(f"characteristic has shape {char.shape}; expected {expected}")
            object.__setattr__(self, "characteristic", char)
        object.__setattr__(self, "samples", dict(self.samples))

    @property
    def is_exact(self) -> bool:
        return self.stderr is None


@dataclass(frozen=True)
class Explanation:
    """SVERL explanations of a set of states.

    Parameters
    ----------
    states:
        ``(n,)`` identifiers of the explained states (MDP state indices for the exact
        engine, positions ``0..n-1`` for routes without state indices).
    state_labels:
        One readable label per state.
    feature_names:
        The F feature names.
    results:
        ``results[kind]`` holds the :class:`KindResult` of each computed kind.
    characteristic_kind:
        ``"conditional"`` (the paper's, Def. 17) or ``"marginal"`` (Eq. 6).
    method:
        What produced the values: ``"exact"``, ``"monte carlo"``, ``"fastsverl"``, ...
    features:
        ``(n, F)`` feature rows of the explained states, where known.
    info:
        Free-form details of the run (seed, budgets, wall time).

    :meth:`to_frame` and :meth:`characteristic_frame` give tidy tables (one row per state,
    output and feature / coalition); ``to_frame`` has a ``stderr`` column when the values
    were estimated.
    """

    states: np.ndarray
    state_labels: tuple[str, ...]
    feature_names: tuple[str, ...]
    results: dict[str, KindResult] = field(default_factory=dict)
    characteristic_kind: str = "conditional"
    method: str = EXACT
    features: np.ndarray | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        states = np.asarray(self.states)
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "state_labels", tuple(self.state_labels))
        object.__setattr__(self, "feature_names", tuple(self.feature_names))
        if len(self.state_labels) != len(states):
            raise ValueError(f"{len(states)} states but {len(self.state_labels)} state labels")
        for kind, res in self.results.items():
            if res.phi.shape[:2] != (len(states), len(self.feature_names)):
                raise ValueError(
                    f"{kind}: phi has shape {res.phi.shape}; expected ({len(states)}, "
                    f"{len(self.feature_names)}, m) for the explained states and features"
                )
        if self.features is not None:
            feats = np.asarray(self.features)
            if feats.shape != (len(states), len(self.feature_names)):
                raise ValueError(f"features has shape {feats.shape}; expected one row per state")
            object.__setattr__(self, "features", feats)
        object.__setattr__(self, "info", dict(self.info))

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_characteristics(
        cls,
        states: np.ndarray,
        state_labels: tuple[str, ...],
        feature_names: tuple[str, ...],
        tables: dict[str, tuple[np.ndarray, tuple[str, ...]]],
        characteristic_kind: str = "conditional",
        *,
        method: str = EXACT,
        features: np.ndarray | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> Explanation:
        """Exact Shapley values of given characteristic tables.

        ``tables[kind] = (char, outputs)`` with ``char`` of shape (n_states, 2**F, m), e.g.
        hand-specified partial-information agents such as the road-sign example's.
        """
        results = {}
        for kind, (char, outputs) in tables.items():
            char = np.asarray(char, float)
            phi = np.moveaxis(exact_shapley(np.moveaxis(char, 1, 0)), 0, 1)  # (n_states, F, m)
            results[kind] = KindResult(phi, char, tuple(outputs))
        return cls(
            np.asarray(states),
            tuple(state_labels),
            tuple(feature_names),
            results,
            characteristic_kind,
            method,
            features,
            info or {},
        )

    @classmethod
    def from_values(
        cls,
        feature_names: tuple[str, ...],
        values: dict[str, tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]],
        *,
        method: str,
        states: np.ndarray | None = None,
        state_labels: tuple[str, ...] | None = None,
        features: np.ndarray | None = None,
        characteristic_kind: str = "conditional",
        samples: Mapping[str, Mapping[str, int]] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> Explanation:
        """An explanation from Shapley values alone (no characteristic table).

        ``values[kind] = (phi, stderr, outputs)`` with ``phi`` and ``stderr`` of shape
        ``(n_states, F, m)`` (``stderr`` may be ``None``). ``states`` defaults to positions
        ``0..n-1``; labels default to the feature rows, e.g. ``"(0, 3, 4, 3)"``.
        ``samples[kind]`` records the sample counts of each kind.
        """
        if not values:
            raise ValueError("from_values needs at least one kind of values")
        n = len(np.asarray(next(iter(values.values()))[0]))
        states = np.arange(n) if states is None else np.asarray(states)
        if state_labels is None:
            if features is not None:
                state_labels = tuple(str(tuple(np.asarray(r).tolist())) for r in features)
            else:
                state_labels = tuple(str(s) for s in states.tolist())
        samples = samples or {}
        results = {
            kind: KindResult(phi, None, tuple(outputs), stderr, samples.get(kind, {}))
            for kind, (phi, stderr, outputs) in values.items()
        }
        return cls(
            states,
            tuple(state_labels),
            tuple(feature_names),
            results,
            characteristic_kind,
            method,
            features,
            info or {},
        )

    @classmethod
    def concat(cls, parts: Sequence[Explanation], *, keep_tables: bool = False) -> Explanation:
        """One explanation of the states of ``parts`` (same features, kinds and method).

        Characteristic tables are dropped unless ``keep_tables`` (a global view over many
        states needs the values only: 2**F tables per state would not fit in memory).
        ``info`` is the first part's, with ``chunks`` added.
        """
        if not parts:
            raise ValueError("concat needs at least one explanation")
        first = parts[0]
        results = {}
        for kind, res in first.results.items():
            stderr = (
                None
                if res.stderr is None
                else np.concatenate([p.results[kind].stderr for p in parts])
            )
            tables = None
            if keep_tables and res.characteristic is not None:
                tables = np.concatenate([p.results[kind].characteristic for p in parts])
            results[kind] = KindResult(
                np.concatenate([p.results[kind].phi for p in parts]),
                tables,
                res.outputs,
                stderr,
                res.samples,
            )
        features = None
        if all(p.features is not None for p in parts):
            features = np.concatenate([p.features for p in parts])
        return cls(
            np.concatenate([p.states for p in parts]),
            tuple(label for p in parts for label in p.state_labels),
            first.feature_names,
            results,
            first.characteristic_kind,
            first.method,
            features,
            {**first.info, "chunks": len(parts)},
        )

    # -- global views (SVERL Prop. 45 / Cor. 46) -------------------------------------------
    def mean_abs(self, kind: str) -> pd.DataFrame:
        """Mean |phi| over the explained states: features x outputs (a global importance).

        By SVERL Prop. 45 / Cor. 46 the steady-state average (Eq. 12) of behaviour and
        prediction values is identically zero, so a global view averages magnitudes (as
        shap's bar plot does); signed, policy-weighted views are in
        :mod:`shaprl.sverl.aggregate`. States with NaN values (never sampled) are skipped.
        """
        res = self._get(kind)
        return pd.DataFrame(
            np.nanmean(np.abs(res.phi), axis=0),
            index=list(self.feature_names),
            columns=list(res.outputs),
        )

    def plot_bar(self, kind: str, *, ax=None, title: str | None = None):
        """Bar plot of :meth:`mean_abs` (summed over outputs), largest on top."""
        from ..plots import mean_abs_bars

        return mean_abs_bars(self.mean_abs(kind).sum(axis=1), kind=kind, ax=ax, title=title)

    def plot_beeswarm(self, kind: str, output: str | int = 0, *, ax=None, title: str | None = None):
        """One dot per state and feature: phi of ``output``, coloured by the feature's value."""
        from ..plots import beeswarm

        res = self._get(kind)
        j = output if isinstance(output, int) else list(res.outputs).index(output)
        return beeswarm(
            res.phi[:, :, j],
            self.feature_names,
            self.features,
            ax=ax,
            title=title or f"{kind}: {res.outputs[j]}",
        )

    # -- access --------------------------------------------------------------------------
    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.results)

    @property
    def is_exact(self) -> bool:
        """True when no kind carries standard errors."""
        return all(res.is_exact for res in self.results.values())

    def phi(self, kind: str, state: int | None = None, *, features=None) -> pd.DataFrame:
        """Shapley values of one state as a features x outputs table.

        Name the state as ``explain`` accepted it: its index (``state=``) or its feature row
        (``features=``, or a tuple/list given as ``state``).
        """
        res = self._get(kind)
        i = self._position(state, features)
        return pd.DataFrame(res.phi[i], index=list(self.feature_names), columns=list(res.outputs))

    def stderr(self, kind: str, state: int | None = None, *, features=None) -> pd.DataFrame:
        """Standard errors of :meth:`phi` (zeros for exact values, which have no sampling error)."""
        res = self._get(kind)
        i = self._position(state, features)
        err = np.zeros_like(res.phi[i]) if res.stderr is None else res.stderr[i]
        return pd.DataFrame(err, index=list(self.feature_names), columns=list(res.outputs))

    def values(self, kind: str, state: int | None = None, *, features=None) -> pd.DataFrame:
        """Characteristic values of one state as a coalitions x outputs table."""
        res = self._get(kind)
        char = self._table(kind, res)
        i = self._position(state, features)
        labels = [coalition_label(c, self.feature_names) for c in range(char.shape[1])]
        return pd.DataFrame(char[i], index=labels, columns=list(res.outputs))

    def to_frame(self) -> pd.DataFrame:
        """Tidy Shapley values: kind, characteristic, state, state_label, output, feature, phi.

        Estimated explanations have one more column, ``stderr`` (zero for exact kinds).
        """
        with_err = not self.is_exact
        frames = []
        for kind, res in self.results.items():
            n_s, n_f, n_o = res.phi.shape
            idx = np.indices((n_s, n_f, n_o)).reshape(3, -1)
            columns = {
                "kind": kind,
                "characteristic": self.characteristic_kind,
                "state": self.states[idx[0]],
                "state_label": np.asarray(self.state_labels, dtype=object)[idx[0]],
                "output": np.asarray(res.outputs, dtype=object)[idx[2]],
                "feature": np.asarray(self.feature_names, dtype=object)[idx[1]],
                "phi": res.phi.reshape(-1),
            }
            if with_err:
                err = np.zeros(res.phi.size) if res.stderr is None else res.stderr.reshape(-1)
                columns["stderr"] = err
            frames.append(pd.DataFrame(columns))
        return pd.concat(frames, ignore_index=True)

    def characteristic_frame(self) -> pd.DataFrame:
        """Tidy characteristic values: kind, state, state_label, output, coalition, value.

        Kinds without a characteristic table are left out; an error if no kind has one.
        """
        frames = []
        for kind, res in self.results.items():
            if res.characteristic is None:
                continue
            n_s, n_c, n_o = res.characteristic.shape
            labels = np.array(
                [coalition_label(c, self.feature_names) for c in range(n_c)], dtype=object
            )
            idx = np.indices((n_s, n_c, n_o)).reshape(3, -1)
            frames.append(
                pd.DataFrame(
                    {
                        "kind": kind,
                        "characteristic": self.characteristic_kind,
                        "state": self.states[idx[0]],
                        "state_label": np.asarray(self.state_labels, dtype=object)[idx[0]],
                        "output": np.asarray(res.outputs, dtype=object)[idx[2]],
                        "coalition": idx[1],
                        "coalition_label": labels[idx[1]],
                        "value": res.characteristic.reshape(-1),
                    }
                )
            )
        if not frames:
            raise ValueError(self._no_table_message())
        return pd.concat(frames, ignore_index=True)

    def __repr__(self) -> str:
        kinds = ", ".join(self.kinds) or "none"
        return (
            f"Explanation(method={self.method!r}, {len(self.states)} states, "
            f"{len(self.feature_names)} features, kinds: {kinds}, "
            f"characteristic={self.characteristic_kind!r})"
        )

    def _table(self, kind: str, res: KindResult) -> np.ndarray:
        if res.characteristic is None:
            raise ValueError(self._no_table_message(kind))
        return res.characteristic

    def _no_table_message(self, kind: str | None = None) -> str:
        what = f"the {kind!r} result" if kind else "no kind"
        return (
            f"{what} of this {self.method!r} explanation stores no characteristic table (only "
            "exact explanations tabulate v(C) for all 2**F coalitions); use phi() / to_frame(), "
            "or compute the explanation exactly with SVERLExplainer"
        )

    def _get(self, kind: str) -> KindResult:
        if kind not in self.results:
            raise KeyError(f"this explanation has kinds {self.kinds}; {kind!r} was not computed")
        return self.results[kind]

    def _position(self, state: int | None, features=None) -> int:
        if features is None and state is not None and np.ndim(state) > 0:
            features = state  # a feature row, as explain(...) accepted it
        if features is not None:
            row = np.asarray(features).reshape(-1)
            if self.features is None or row.shape != (self.features.shape[1],):
                held = "no feature rows" if self.features is None else "rows of another length"
                raise KeyError(f"cannot look up the feature row {tuple(row.tolist())}: {held}")
            hits = np.flatnonzero((self.features == row[None]).all(axis=1))
            if not hits.size:
                raise KeyError(f"the feature row {tuple(row.tolist())} was not explained")
            return int(hits[0])
        if state is None:
            if len(self.states) != 1:
                raise ValueError("this explanation covers several states; name one with state=")
            return 0
        hits = np.flatnonzero(self.states == state)
        if not hits.size:
            raise KeyError(f"state {state} was not explained; explained: {self.states.tolist()}")
        return int(hits[0])
