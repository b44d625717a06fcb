"""Exact SVERL explanations of a policy on a tabular MDP (the shap-style entry point)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from ..mdp.policies import check_policy
from ..mdp.solvers import policy_evaluation
from ..mdp.steady_state import exact_steady_state, reachable_states
from ..mdp.tabular import TabularMDP
from .characteristics import (
    conditional_characteristic,
    marginal_characteristic,
    outcome_characteristic,
    restrict_to_valid,
)
from .explanation import Explanation

KINDS = ("behaviour", "outcome", "prediction")
CHARACTERISTICS = ("conditional", "marginal")


class SVERLExplainer:
    """Explain a policy's behaviour, outcomes and predictions with exact Shapley values.

    Parameters
    ----------
    mdp:
        The tabular MDP (its model is needed for the steady state and for outcomes).
    policy:
        ``(S, A)`` action probabilities of the explained agent.
    steady_state:
        ``(S,)`` distribution p^pi over states. ``None`` computes it exactly from the model
        (normalised expected visits, or the stationary distribution of continuing tasks).
    values:
        ``(S,)`` value estimates explained by prediction (Def. 44). ``None`` uses the exact
        V^pi of the policy.
    characteristic:
        ``"conditional"`` (the paper's choice, Def. 17 / Eq. 11) or ``"marginal"`` (Eq. 6,
        which assumes feature independence and queries the policy at hybrid feature rows).
    policy_fn, value_fn:
        For the marginal variant: functions from feature rows ``(k, F)`` to action
        probabilities ``(k, A)`` / values ``(k,)``, defined wherever the marginal variant
        needs them. By default the tables are looked up, and a hybrid row that is not a
        state of the MDP raises an error naming it.
    renormalise:
        ``False`` (default) keeps the behaviour characteristic exactly as SVERL Def. 17
        defines it: the steady-state average of pi(a | s) over the states that agree on
        the known features, which may give probability to actions that are unavailable at
        the explained state. ``True`` is a variant that is *not* the paper's definition: it
        zeroes the explained state's unavailable actions and renormalises each row (the
        step Remark 35 prescribes for outcomes only). It breaks Prop. 45 (steady-state
        averages of behaviour attributions are no longer zero) wherever actions can be
        unavailable. Outcome characteristics always renormalise (Remark 35): the partially
        informed agent must take an action that exists.
    """

    def __init__(
        self,
        mdp: TabularMDP,
        policy: np.ndarray,
        *,
        steady_state: np.ndarray | None = None,
        values: np.ndarray | None = None,
        characteristic: str = "conditional",
        policy_fn: Callable[[np.ndarray], np.ndarray] | None = None,
        value_fn: Callable[[np.ndarray], np.ndarray] | None = None,
        renormalise: bool = False,
    ) -> None:
        if characteristic not in CHARACTERISTICS:
            raise ValueError(
                f"unknown characteristic {characteristic!r}; choose one of {CHARACTERISTICS}"
            )
        self.mdp = mdp
        self.policy = check_policy(mdp, policy)
        self.characteristic = characteristic
        self.renormalise = renormalise
        self.steady_state = self._check_distribution(
            exact_steady_state(mdp, self.policy) if steady_state is None else steady_state
        )
        self.support = np.flatnonzero(self.steady_state > 0)
        if values is None:
            values = values_of(mdp, self.policy, self.chain)
        self.values = np.asarray(values, float)
        if self.values.shape != (mdp.n_states,):
            raise ValueError(f"values must have shape ({mdp.n_states},); got {self.values.shape}")
        if not np.isfinite(self.values[self.support]).all():
            raise ValueError("values are not finite on every steady-state state")
        self.policy_fn = policy_fn or _table_lookup(mdp, self.policy, "policy")
        self.value_fn = value_fn or _table_lookup(mdp, self.values[:, None], "value")

    # -- characteristic tables ---------------------------------------------------------
    def behaviour_table(self, state: int) -> np.ndarray:
        """(2**F, A) partial-information action probabilities at ``state`` (Def. 17).

        With ``renormalise=True`` (not the paper's definition) each row is restricted to the
        state's valid actions and renormalised.
        """
        table = self._average(self.policy[self.support], self.policy_fn, state)
        if self.renormalise:
            table = restrict_to_valid(table, self.mdp.valid_actions[state])
        return table

    def prediction_table(self, state: int) -> np.ndarray:
        """(2**F, 1) value estimates from partial information at ``state`` (Def. 44)."""
        return self._average(self.values[self.support, None], self.value_fn, state)

    def outcome_table(self, state: int, behaviour: np.ndarray | None = None) -> np.ndarray:
        """(2**F, 1) return of acting with partial information at ``state`` only (Def. 34)."""
        if behaviour is None:
            behaviour = self.behaviour_table(state)
        behaviour = restrict_to_valid(behaviour, self.mdp.valid_actions[state])
        return outcome_characteristic(self.mdp, self.policy, state, behaviour, self.chain)[:, None]

    @cached_property
    def chain(self) -> tuple[sp.csr_matrix, np.ndarray]:
        """P_pi and r_pi of the explained policy, built once and shared by values and outcomes."""
        return self.mdp.chain(self.policy)

    def _average(self, targets: np.ndarray, fn, state: int) -> np.ndarray:
        x = self.mdp.features[state]
        feats = self.mdp.features[self.support]
        weights = self.steady_state[self.support]
        if self.characteristic == "conditional":
            return conditional_characteristic(feats, weights, targets, x)
        return marginal_characteristic(feats, weights, fn, x)

    # -- explanations ------------------------------------------------------------------
    def explain(
        self,
        states: int | Iterable[int] | Iterable[Sequence[float]] | None = None,
        kinds: str | Sequence[str] = KINDS,
        *,
        features: Sequence[float] | Iterable[Sequence[float]] | None = None,
        progress: bool | None = None,
    ) -> Explanation:
        """Exact Shapley values (SVERL Eq. 1 with the chosen characteristics).

        Name the explained states in one of two unambiguous ways: ``states=`` MDP state
        indices (an int or a list/array of ints), or ``features=`` feature rows (one row or
        a ``(k, F)`` array). A list of feature rows passed as ``states`` is read as feature
        rows, as before; a bare tuple of numbers such as ``(2, 1)`` is refused because it
        could mean either. ``kinds`` is one kind (``"outcome"``) or several. ``progress``:
        show a bar (default: from 200 states). Returns an :class:`Explanation`.
        """
        kinds = check_kinds(kinds)
        idx = self._resolve(states, features)
        tables: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
        show = len(idx) >= 200 if progress is None else progress
        for s in tqdm(idx, desc="SVERL states", disable=not show, leave=False):
            behaviour = None
            if "behaviour" in kinds or "outcome" in kinds:
                behaviour = self.behaviour_table(int(s))
            if "behaviour" in kinds:
                tables["behaviour"].append(behaviour)
            if "outcome" in kinds:
                tables["outcome"].append(self.outcome_table(int(s), behaviour))
            if "prediction" in kinds:
                tables["prediction"].append(self.prediction_table(int(s)))
        outputs = {
            "behaviour": self.mdp.action_names,
            "outcome": ("value",),
            "prediction": ("value",),
        }
        return Explanation.from_characteristics(
            idx,
            tuple(self.mdp.label(int(s)) for s in idx),
            self.mdp.feature_names,
            {kind: (np.stack(tables[kind]), outputs[kind]) for kind in kinds},
            self.characteristic,
            features=self.mdp.features[idx],
        )

    def _resolve(self, states, features) -> np.ndarray:
        idx = resolve_states(self.mdp, states, features)
        if self.characteristic == "conditional":
            outside = idx[self.steady_state[idx] <= 0]
            if outside.size:
                s = int(outside[0])
                raise ValueError(
                    f"state {s} ({self.mdp.label(s)}) has zero steady-state probability under "
                    "this policy, so the conditional characteristic is undefined there. Explain "
                    "a state the policy visits (see explainer.support), or pass steady_state= "
                    "a distribution that covers it."
                )
        return idx

    def _check_distribution(self, d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, float)
        if d.shape != (self.mdp.n_states,) or (d < 0).any() or not np.isclose(d.sum(), 1.0):
            raise ValueError(
                f"steady_state must be a probability vector of length {self.mdp.n_states}"
            )
        return d


def explain(
    mdp: TabularMDP,
    policy: np.ndarray,
    states: int | Iterable[int] | Iterable[Sequence[float]] | None = None,
    kinds: str | Sequence[str] = KINDS,
    *,
    features: Sequence[float] | Iterable[Sequence[float]] | None = None,
    **kwargs,
) -> Explanation:
    """One-call form of :class:`SVERLExplainer` ``(mdp, policy, **kwargs).explain(...)``."""
    return SVERLExplainer(mdp, policy, **kwargs).explain(states, kinds, features=features)


def check_kinds(kinds: str | Sequence[str]) -> tuple[str, ...]:
    """Explanation kinds as a tuple: one kind (``"outcome"``) or several, each known."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown explanation kind(s) {unknown or kinds}; choose from {KINDS}")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"kinds {kinds} name a kind twice")
    return kinds


def resolve_states(mdp: TabularMDP, states, features) -> np.ndarray:
    """MDP indices of the explained states given as ``states=`` indices or ``features=`` rows.

    Errors name the problem: both or neither given, an empty list, a bare tuple of numbers
    (ambiguous), an index out of range, a row of the wrong length, with NaN, or matching no
    state, and a state named twice.
    """
    if (states is None) == (features is None):
        raise TypeError(
            "name the explained states with exactly one of states= (MDP state indices) or "
            "features= (feature rows)"
        )
    if features is not None:
        rows = np.asarray(features)
        if rows.ndim == 1 and mdp.n_features == 1:
            rows = rows[:, None]  # one feature: a flat list is a list of rows
        if rows.size == 0:
            raise ValueError("features= is empty: pass at least one feature row to explain")
        idx = mdp.indices_of(mdp.check_rows(rows))
    else:
        if isinstance(states, tuple) and states and all(np.ndim(s) == 0 for s in states):
            raise ValueError(
                f"explain({states!r}) is ambiguous: a tuple of numbers could be state indices "
                f"or one feature row. Write states={list(states)!r} for state indices or "
                f"features=[{states!r}] for a feature row."
            )
        items = [states] if np.ndim(states) == 0 else list(states)
        if not items:
            raise ValueError("the list of states is empty: pass at least one state to explain")
        if all(np.ndim(s) == 0 for s in items):
            arr = np.asarray(items)
            if arr.dtype.kind not in "iu" and not np.array_equal(arr, np.round(arr)):
                raise TypeError(
                    f"state indices must be integers; got {items[:3]}. Pass feature rows as "
                    "features=[...]"
                )
            idx = arr.astype(np.int64)
            bad = (idx < 0) | (idx >= mdp.n_states)
            if bad.any():
                raise IndexError(f"state index {int(idx[bad][0])} outside 0..{mdp.n_states - 1}")
        else:  # a list of feature rows, read as rows (the earlier positional form)
            idx = mdp.indices_of(mdp.check_rows(np.asarray(items)))
    uniq, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        s = int(uniq[counts > 1][0])
        raise ValueError(
            f"state {s} ({mdp.label(s)}) is named {int(counts.max())} times; explain each "
            "state once"
        )
    return idx


def values_of(
    mdp: TabularMDP, policy: np.ndarray, chain: tuple[sp.csr_matrix, np.ndarray] | None = None
) -> np.ndarray:
    """V^pi on the states reachable from the start distribution (NaN elsewhere)."""
    p_pi, _ = mdp.chain(policy) if chain is None else chain
    live = reachable_states(p_pi, np.flatnonzero(mdp.start > 0))
    return policy_evaluation(mdp, policy, states=live)


def _table_lookup(mdp: TabularMDP, table: np.ndarray, what: str):
    """Function from feature rows to rows of a per-state table, failing on non-states."""

    def lookup(rows: np.ndarray) -> np.ndarray:
        idx = mdp.find_states(rows)
        if (idx < 0).any():
            row = np.asarray(rows)[int(np.flatnonzero(idx < 0)[0])]
            raise ValueError(
                f"the marginal characteristic queried the {what} at feature row "
                f"{tuple(row.tolist())}, which is not a state of {mdp.name!r} "
                f"(SVERL Sec. 4.2). Pass {what}_fn= defined on such rows, or use "
                "characteristic='conditional'."
            )
        return table[idx]

    return lookup
