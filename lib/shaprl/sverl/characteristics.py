"""SVERL characteristic functions, tabulated over all 2**F coalitions of one explained state.

Conditional characteristics (the paper's choice) average a target over the steady-state
states that agree with the explained state on the known features (SVERL Def. 17, Eq. 11):
    v(C) = sum_{s : s_C = x_C} p(s) f(s) / sum_{s : s_C = x_C} p(s).
A state s agrees with x on C exactly when C is a subset of its *agreement set*
A(s) = {i : s_i = x_i}. So with g(A) = sum_{s : A(s) = A} p(s) f(s), the numerator is the
sum of g over all supersets of C -- a superset-sum (zeta) transform, O(F 2**F) per output
for all coalitions at once, after one pass over the support.

The marginal (interventional) variant replaces unknown features by independent draws from
the steady state (SVERL Eq. 6); the outcome characteristic evaluates the return of acting
with partial information at the explained state only (SVERL Def. 34, Eq. 10).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ..mdp.solvers import solve_chain
from ..mdp.steady_state import reachable_states
from ..mdp.tabular import TabularMDP
from ..shapley.coalitions import check_exact_size, marginal_weights


def agreement_masks(support_features: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bitmask of the features on which each support state agrees with ``x``."""
    agree = np.asarray(support_features) == np.asarray(x)[None, :]
    return agree.astype(np.int64) @ (np.int64(1) << np.arange(agree.shape[1], dtype=np.int64))


def superset_sums(table: np.ndarray) -> np.ndarray:
    """In place: table[C] <- sum over supersets D of C of table[D] (zeta transform)."""
    rows = table.shape[0]
    n = rows.bit_length() - 1
    flat = table.reshape(rows, -1)
    for i in range(n):
        view = flat.reshape(-1, 2, 1 << i, flat.shape[1])
        view[:, 0] += view[:, 1]
    return table


def conditional_characteristic(
    support_features: np.ndarray, weights: np.ndarray, targets: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """Conditional-steady-state characteristic of ``x`` for every coalition.

    Parameters
    ----------
    support_features:
        ``(N, F)`` features of the states with positive steady-state probability.
    weights:
        ``(N,)`` steady-state probabilities of those states (need not be normalised).
    targets:
        ``(N, m)`` quantity to average: action probabilities (behaviour, Def. 17) or value
        estimates (prediction, Def. 44, as a single column).
    x:
        ``(F,)`` features of the explained state; it must be among the support states.

    Returns
    -------
    ``(2**F, m)`` table; row C is E[target | s_C = x_C] under the steady state.
    """
    n_features = support_features.shape[1]
    check_exact_size(n_features)
    masks = agreement_masks(support_features, x)
    full = (1 << n_features) - 1
    if not np.any((masks == full) & (weights > 0)):
        raise ValueError(
            f"explained state {tuple(np.asarray(x).tolist())} is outside the steady-state support: "
            "the conditional characteristic is undefined there. Explain a state the policy "
            "visits, or supply a steady-state distribution that covers it."
        )
    targets = np.asarray(targets, float).reshape(len(masks), -1)
    table = np.zeros((1 << n_features, 1 + targets.shape[1]))
    np.add.at(table[:, 0], masks, weights)
    np.add.at(table[:, 1:], masks, weights[:, None] * targets)
    superset_sums(table)
    return table[:, 1:] / table[:, :1]


def marginal_characteristic(
    support_features: np.ndarray,
    weights: np.ndarray,
    target_fn: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    *,
    chunk: int = 1 << 18,
) -> np.ndarray:
    """Marginal (joint steady-state) characteristic of ``x`` for every coalition (SVERL Eq. 6).

    v(C) = sum_s p(s) f(x_C, s_{not C}): unknown features are filled in from steady-state
    states independently of the known ones. ``target_fn`` maps a batch of feature rows
    ``(k, F)`` to ``(k, m)`` targets; it is queried at hybrid rows that need not be states.
    """
    support_features = np.asarray(support_features)
    n, f = support_features.shape
    check_exact_size(f)
    p = np.asarray(weights, float) / np.sum(weights)
    n_coalitions = 1 << f
    per_chunk = max(1, chunk // max(n, 1))
    out = []
    for start in range(0, n_coalitions, per_chunk):
        masks = np.arange(start, min(start + per_chunk, n_coalitions), dtype=np.int64)
        known = ((masks[:, None] >> np.arange(f)) & 1).astype(bool)  # (k, F)
        hybrid = np.where(known[:, None, :], np.asarray(x)[None, None, :], support_features[None])
        vals = np.asarray(target_fn(hybrid.reshape(-1, f)), float).reshape(len(masks), n, -1)
        out.append(np.einsum("kns,n->ks", vals, p))
    return np.concatenate(out, axis=0)


def restrict_to_valid(behaviour: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Zero unavailable actions and renormalise each row (SVERL Remark 35).

    The outcome characteristic always applies it. Applied to the behaviour characteristic it
    gives a variant that is not SVERL's Def. 17 (``SVERLExplainer(renormalise=True)``).
    """
    masked = np.where(np.asarray(valid, bool)[None, :], behaviour, 0.0)
    totals = masked.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        raise ValueError(
            "a partial-information policy gives no probability to any valid action of the "
            "explained state, so it cannot be renormalised (Remark 35)"
        )
    return masked / totals


def first_passage_terms(
    mdp: TabularMDP,
    policy: np.ndarray,
    state: int,
    chain: tuple[sp.csr_matrix, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-action return decomposition at ``state`` for the outcome characteristic.

    With the policy changed only at ``state`` = e, every other state's value is
    W(s) + F(s) V'(e): W is the expected discounted return collected before the chain
    next reaches e (or ends) under pi, and F the expected discount gamma**tau of reaching
    e at step tau (zero if it never does). Both come from one sparse solve with two
    right-hand sides on the states reachable from e. Returns (QW, QF), each ``(A,)``:
        QW(a) = r(e, a) + gamma sum_s' p(s'|e, a) W(s'),   QF(a) = gamma sum_s' p(s'|e, a) F(s'),
    so that any action distribution q at e has return  q.QW / (1 - q.QF)  (renewal argument).
    ``chain`` may pass a precomputed ``mdp.chain(policy)`` when explaining many states.
    """
    e = int(state)
    a_count = mdp.n_actions
    p_pi, r_pi = mdp.chain(policy) if chain is None else chain
    rows = mdp.transitions[e * a_count : (e + 1) * a_count]  # (A, S)
    first = np.unique(rows.indices)
    first = first[first != e]
    w = np.zeros(mdp.n_states)
    f = np.zeros(mdp.n_states)
    f[e] = 1.0
    if first.size:
        # States reachable from e's successors without passing through e.
        leave_e = np.ones(mdp.n_states)
        leave_e[e] = 0.0
        live = reachable_states(sp.diags(leave_e) @ p_pi, first)
        live = live[live != e]
        sub = p_pi[live][:, live]
        rhs = np.column_stack([r_pi[live], mdp.gamma * p_pi[live][:, [e]].toarray().ravel()])
        solved = solve_chain(sub, rhs, mdp.gamma)
        w[live], f[live] = solved[:, 0], solved[:, 1]
    qw = mdp.rewards[e] + mdp.gamma * (rows @ w)
    qf = mdp.gamma * (rows @ f)
    return np.where(mdp.valid_actions[e], qw, 0.0), np.where(mdp.valid_actions[e], qf, 0.0)


def outcome_characteristic(
    mdp: TabularMDP,
    policy: np.ndarray,
    state: int,
    behaviour: np.ndarray,
    chain: tuple[sp.csr_matrix, np.ndarray] | None = None,
) -> np.ndarray:
    """Outcome characteristic (SVERL Def. 34, Eq. 10) for every coalition at once.

    ``behaviour`` is the ``(K, A)`` table of partial-information action distributions at
    ``state``, one row per coalition (Def. 17). As Remark 35 requires, each row is first
    restricted to the actions available at ``state`` and renormalised, so the partially
    informed agent always takes an action that exists. Each row then costs O(A) after
    :func:`first_passage_terms`, instead of one policy evaluation per coalition.
    """
    qw, qf = first_passage_terms(mdp, policy, state, chain)
    q = restrict_to_valid(behaviour, mdp.valid_actions[int(state)])
    recurrence = 1.0 - q @ qf
    if (recurrence <= 1e-12).any():
        raise ValueError(
            f"with its partial-information policy the agent never leaves state {state} "
            f"({mdp.label(state)}), so its undiscounted return is unbounded; use gamma < 1 or a "
            "behaviour table that keeps the original action's probability positive"
        )
    return (q @ qw) / recurrence


def conditional_shapley_values(
    support_features: np.ndarray,
    weights: np.ndarray,
    targets: np.ndarray,
    states: np.ndarray,
) -> np.ndarray:
    """``(k, F, m)`` exact Shapley values of the conditional characteristic of many states.

    The same numbers as :func:`conditional_characteristic` followed by
    :func:`~shaprl.shapley.exact.exact_shapley` for each row of ``states`` (SVERL Def. 17 /
    Def. 44 and Eq. 1), for a global view of many states: one table is alive at a time (no
    state's 2**F table is kept), the weights and every target column share one zeta transform
    (:func:`superset_sums`), rows are scattered with ``bincount`` and the Shapley sum is one
    matrix product with the coalitions' membership matrix, built once.
    """
    support_features = np.asarray(support_features)
    n_features = support_features.shape[1]
    check_exact_size(n_features)
    n = 1 << n_features
    weights = np.asarray(weights, float)
    targets = np.asarray(targets, float).reshape(len(weights), -1)
    columns = np.column_stack([weights, weights[:, None] * targets])  # (N, 1 + m)
    width = columns.shape[1]
    members = (np.arange(n)[:, None] >> np.arange(n_features)[None, :]) & 1  # (2**F, F)
    sizes = members.sum(axis=1)
    w = np.concatenate([[0.0], marginal_weights(n_features), [0.0]])  # w[k + 1] = w(k)
    alpha = w[sizes] + w[sizes + 1]  # phi_i = sum_{S ∋ i} a(|S|) v(S) - sum_S w(|S|) v(S)
    beta = w[sizes + 1]
    coef = np.vstack([(members * alpha[:, None]).T, beta[None, :]])  # (F + 1, 2**F)
    # a support row with coalition mask M fills table row M, i.e. flat entries M * width + j
    # (one bincount for all columns); masks as a float product (exact below 2**53)
    bits = float(width) * (1 << np.arange(n_features)).astype(float)
    offsets = np.arange(width, dtype=np.int64)
    flat_columns = columns.ravel()
    out = np.empty((len(states), n_features, targets.shape[1]))
    for k, x in enumerate(np.asarray(states)):
        agree = support_features == x[None, :]
        index = (agree.astype(float) @ bits).astype(np.int64)
        if not np.any(agree.all(axis=1) & (weights > 0)):
            raise ValueError(
                f"explained state {tuple(np.asarray(x).tolist())} is outside the steady-state "
                "support: the conditional characteristic is undefined there"
            )
        table = np.bincount(
            (index[:, None] + offsets).ravel(), weights=flat_columns, minlength=n * width
        ).reshape(n, width)
        superset_sums(table)
        table[:, 1:] /= table[:, :1]  # v(S) = E[target | s_S = x_S]
        sums = coef @ table[:, 1:]
        out[k] = sums[:n_features] - sums[n_features]
    return out
