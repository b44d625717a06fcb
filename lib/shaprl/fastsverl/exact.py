"""Ground truth for FastSVERL's models from the exact SVERL engine (tabular domains).

Given a tabular MDP, the explained policy and value estimate, :func:`tabular_problem` builds
everything the accuracy experiments need:

* the **steady state** p^pi: exact (normalised expected visits, :class:`SVERLExplainer`) by
  default; the authors instead used the empirical frequencies of an on-policy buffer
  (``steady_state=`` lets a caller pass such frequencies to measure the difference);
* the **training and validation buffers**: i.i.d. draws from p^pi (8,000 + 2,000, as the
  authors' buffer sizes), as indices into the support states;
* exact **characteristic tables** ``(S, 2**F, m)`` for behaviour (Def. 17, Eq. 7), prediction
  (Def. 44, Eq. 9) and outcome (Def. 34, Eq. 8), and their exact **Shapley values**;
* the **evaluation set** of a characteristic model: every distinct masked input
  (support state x coalition, masked by -2) with its exact value -- the authors' "exact MSE"
  is the unweighted mean over these distinct masked inputs. Where there are more than
  ``max_eval_rows`` of them (Mastermind-333) a seeded uniform subset is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..mdp.tabular import TabularMDP
from ..shapley.exact import exact_shapley
from ..sverl import SVERLExplainer
from .coalitions import MASK_VALUE
from .training import CharacteristicEval, ShapleyEval, StateData

KINDS = ("behaviour", "prediction", "outcome")


@dataclass
class TabularProblem:
    """Exact quantities of one explained agent on a tabular MDP (see the module docstring)."""

    mdp: TabularMDP
    explainer: SVERLExplainer
    support: np.ndarray  #: state indices with p^pi(s) > 0
    train: np.ndarray  #: buffer: indices into ``support``
    val: np.ndarray
    mask_value: float = MASK_VALUE
    max_eval_rows: int = 20_000
    seed: int = 0
    _tables: dict = field(default_factory=dict)

    @property
    def states(self) -> np.ndarray:
        return self.mdp.features[self.support].astype(np.float32)

    @property
    def n_features(self) -> int:
        return self.mdp.n_features

    def targets(self, kind: str) -> np.ndarray:
        """``(S, m)`` explained quantity on the support: pi(s, .), v̂(s) or v^pi(s)."""
        if kind == "behaviour":
            return self.explainer.policy[self.support]
        if kind == "prediction":
            return self.explainer.values[self.support, None]
        if kind == "outcome":
            return self.table("outcome")[:, -1, :]
        raise ValueError(f"unknown kind {kind!r}; choose from {KINDS}")

    def data(self, kind: str) -> StateData:
        return StateData(self.states, self.targets(kind).astype(np.float32), self.train, self.val)

    def table(self, kind: str) -> np.ndarray:
        """Exact characteristic ``(S, 2**F, m)`` of every support state."""
        if kind not in self._tables:
            ex = self.explainer
            if kind == "behaviour":
                rows = [ex.behaviour_table(int(s)) for s in self.support]
            elif kind == "prediction":
                rows = [ex.prediction_table(int(s)) for s in self.support]
            elif kind == "outcome":
                rows = [
                    ex.outcome_table(int(s), self.table("behaviour")[i])
                    for i, s in enumerate(self.support)
                ]
            else:
                raise ValueError(f"unknown kind {kind!r}; choose from {KINDS}")
            self._tables[kind] = np.stack(rows).astype(np.float32)
        return self._tables[kind]

    def shapley(self, kind: str, table: np.ndarray | None = None) -> np.ndarray:
        """Exact Shapley values ``(S, F, m)`` of a characteristic table (default: the exact one)."""
        t = self.table(kind) if table is None else table
        return np.moveaxis(exact_shapley(np.moveaxis(np.asarray(t, float), 1, 0)), 0, 1)

    def shapley_eval(self, kind: str, table: np.ndarray | None = None) -> ShapleyEval:
        return ShapleyEval(np.arange(len(self.support)), self.shapley(kind, table))

    @cached_property
    def _eval_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct masked inputs: (rows (M, F), state position (M,), coalition code (M,))."""
        n_coal = 1 << self.n_features
        x = self.states
        if len(x) * n_coal > 4 * self.max_eval_rows:  # too many pairs: sample them first
            rng = np.random.default_rng(self.seed + 1)
            pairs = rng.choice(len(x) * n_coal, 2 * self.max_eval_rows, replace=False)
        else:
            pairs = np.arange(len(x) * n_coal)
        s_pos, c_code = np.divmod(pairs, n_coal)
        known = ((c_code[:, None] >> np.arange(self.n_features)) & 1).astype(bool)
        rows = np.where(known, x[s_pos], self.mask_value)
        uniq, first = np.unique(rows, axis=0, return_index=True)
        state_pos, code = s_pos[first], c_code[first]
        if len(uniq) > self.max_eval_rows:
            keep = np.random.default_rng(self.seed).choice(
                len(uniq), self.max_eval_rows, replace=False
            )
            keep.sort()
            uniq, state_pos, code = uniq[keep], state_pos[keep], code[keep]
        return uniq, state_pos, code

    def characteristic_eval(self, kind: str) -> CharacteristicEval:
        rows, pos, code = self._eval_rows
        return CharacteristicEval(rows, self.table(kind)[pos, code])


def sample_buffer(p: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` i.i.d. draws (indices) from the distribution ``p``."""
    return np.random.default_rng(seed).choice(len(p), size=n, p=p / p.sum())


def tabular_problem(
    mdp: TabularMDP,
    policy: np.ndarray,
    values: np.ndarray | None = None,
    *,
    steady_state: np.ndarray | None = None,
    n_train: int = 8_000,
    n_val: int = 2_000,
    seed: int = 0,
    max_eval_rows: int = 20_000,
    mask_value: float = MASK_VALUE,
) -> TabularProblem:
    """Build the exact problem of explaining ``policy`` (and ``values``) on ``mdp``."""
    explainer = SVERLExplainer(mdp, policy, values=values, steady_state=steady_state)
    support = explainer.support
    p = explainer.steady_state[support]
    train = sample_buffer(p, n_train, seed)
    val = sample_buffer(p, n_val, seed + 1)
    if (
        mdp.features.min() <= mask_value <= mdp.features.max()
        and (mdp.features == mask_value).any()
    ):
        raise ValueError(
            f"mask value {mask_value} occurs as a feature value of {mdp.name!r}; choose a mask "
            "value outside the state space (FastSVERL App. H)"
        )
    return TabularProblem(mdp, explainer, support, train, val, mask_value, max_eval_rows, seed)


def buffer_frequencies(mdp: TabularMDP, visited: np.ndarray) -> np.ndarray:
    """Empirical steady state from the state indices of an on-policy buffer (the authors' way)."""
    counts = np.bincount(np.asarray(visited), minlength=mdp.n_states).astype(float)
    return counts / counts.sum()
