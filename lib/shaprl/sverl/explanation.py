"""Result object of a SVERL explanation: Shapley values plus the characteristic tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..shapley.coalitions import coalition_label
from ..shapley.exact import exact_shapley


@dataclass(frozen=True)
class KindResult:
    """Shapley values and characteristic values of one explanation kind."""

    phi: np.ndarray  #: (n_states, F, m) Shapley values
    characteristic: np.ndarray  #: (n_states, 2**F, m) v(C) for every coalition
    outputs: tuple[str, ...]  #: labels of the m outputs (actions, or "value")


@dataclass(frozen=True)
class Explanation:
    """SVERL explanations of a set of states.

    ``results[kind]`` holds the arrays; :meth:`to_frame` and :meth:`characteristic_frame`
    give tidy tables (one row per state, output, feature / coalition).
    """

    states: np.ndarray
    state_labels: tuple[str, ...]
    feature_names: tuple[str, ...]
    results: dict[str, KindResult] = field(default_factory=dict)
    characteristic_kind: str = "conditional"

    @classmethod
    def from_characteristics(
        cls,
        states: np.ndarray,
        state_labels: tuple[str, ...],
        feature_names: tuple[str, ...],
        tables: dict[str, tuple[np.ndarray, tuple[str, ...]]],
        characteristic_kind: str = "conditional",
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
        )

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.results)

    def phi(self, kind: str, state: int | None = None) -> pd.DataFrame:
        """Shapley values of one state as a features x outputs table."""
        res = self._get(kind)
        i = self._position(state)
        return pd.DataFrame(res.phi[i], index=list(self.feature_names), columns=list(res.outputs))

    def values(self, kind: str, state: int | None = None) -> pd.DataFrame:
        """Characteristic values of one state as a coalitions x outputs table."""
        res = self._get(kind)
        i = self._position(state)
        labels = [
            coalition_label(c, self.feature_names) for c in range(res.characteristic.shape[1])
        ]
        return pd.DataFrame(res.characteristic[i], index=labels, columns=list(res.outputs))

    def to_frame(self) -> pd.DataFrame:
        """Tidy Shapley values: kind, state, state_label, output, feature, phi."""
        frames = []
        for kind, res in self.results.items():
            n_s, n_f, n_o = res.phi.shape
            idx = np.indices((n_s, n_f, n_o)).reshape(3, -1)
            frames.append(
                pd.DataFrame(
                    {
                        "kind": kind,
                        "characteristic": self.characteristic_kind,
                        "state": self.states[idx[0]],
                        "state_label": np.asarray(self.state_labels, dtype=object)[idx[0]],
                        "output": np.asarray(res.outputs, dtype=object)[idx[2]],
                        "feature": np.asarray(self.feature_names, dtype=object)[idx[1]],
                        "phi": res.phi.reshape(-1),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def characteristic_frame(self) -> pd.DataFrame:
        """Tidy characteristic values: kind, state, state_label, output, coalition, value."""
        frames = []
        for kind, res in self.results.items():
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
        return pd.concat(frames, ignore_index=True)

    def _get(self, kind: str) -> KindResult:
        if kind not in self.results:
            raise KeyError(f"this explanation has kinds {self.kinds}; {kind!r} was not computed")
        return self.results[kind]

    def _position(self, state: int | None) -> int:
        if state is None:
            if len(self.states) != 1:
                raise ValueError("this explanation covers several states; name one with state=")
            return 0
        hits = np.flatnonzero(self.states == state)
        if not hits.size:
            raise KeyError(f"state {state} was not explained; explained: {self.states.tolist()}")
        return int(hits[0])
