"""Aggregated SVERL explanations: Shapley values averaged over states or actions (SVERL Sec. 10.1).

Eq. 12 summarises local explanations by their expectation under a distribution d over
states (and, for behaviour, optionally over actions):

    Phi_i = E_{s ~ d} [ phi_i(s) ]            (per output: each action, or the value).

Three choices of d are implemented:

* the steady state p^pi (:func:`steady_state_average`). For behaviour and prediction with
  the conditional characteristic the average is exactly zero for every feature
  (Prop. 45 and Cor. 46: marginalising the conditional expectation recovers the
  baseline, so the Shapley differences cancel). Outcome averages need not vanish;
* the policy over actions (:func:`policy_weighted`): sum_a pi(a|s) phi_i(s, a), the credit
  each feature gets for the action the agent actually takes (zero-sum over actions is
  not weighted away because pi depends on s);
* the steady state conditioned on a feature value (:func:`conditioned_on_feature`):
  E[phi_i(s) | s_j = v].

All functions take an :class:`Explanation` whose ``states`` are indices of the MDP, and
distributions as ``(S,)`` arrays over the MDP's states; they return tidy DataFrames.
:func:`feature_dependence` measures how far the steady state is from feature
independence, which is what separates the conditional and marginal characteristics
(SVERL Sec. 4.2, Eq. 6).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .explainer import KINDS, SVERLExplainer
from .explanation import Explanation, KindResult

POLICY_WEIGHTED = "pi-weighted"


def explain_support(explainer: SVERLExplainer, kinds: Sequence[str] = KINDS) -> Explanation:
    """Explanations of every state with positive steady-state probability (input to Eq. 12)."""
    return explainer.explain(explainer.support, kinds)


def _weights_on_states(
    explanation: Explanation, distribution: np.ndarray, *, atol: float
) -> np.ndarray:
    """Distribution restricted to the explained states, checking it puts no mass elsewhere."""
    d = np.asarray(distribution, float)
    states = np.asarray(explanation.states)
    if d.ndim != 1 or (states.size and states.max() >= d.size):
        raise ValueError(
            "distribution must be a 1-D array over the MDP's states (indexed like explanation.states)"
        )
    if len(np.unique(states)) != len(states):
        raise ValueError("the explanation lists a state twice; explain each state once")
    if (d < -atol).any():
        raise ValueError("distribution has negative entries")
    total = d.sum()
    if total <= 0:
        raise ValueError("distribution has no mass")
    w = d[states] / total
    missing = 1.0 - w.sum()
    if missing > atol:
        raise ValueError(
            f"{missing:.3g} of the distribution's mass lies on states the explanation does not "
            "cover; explain every state it supports (e.g. aggregate.explain_support(explainer))"
        )
    return w


def _kinds(explanation: Explanation, kinds: Sequence[str] | None) -> tuple[str, ...]:
    kinds = explanation.kinds if kinds is None else tuple(kinds)
    missing = [k for k in kinds if k not in explanation.kinds]
    if missing:
        raise KeyError(
            f"the explanation has kinds {explanation.kinds}; {missing} were not computed"
        )
    return kinds


def expected_phi(
    explanation: Explanation,
    distribution: np.ndarray,
    *,
    kinds: Sequence[str] | None = None,
    atol: float = 1e-9,
) -> pd.DataFrame:
    """Eq. 12: E_{s~d}[phi_i(s)] for every kind, output and feature.

    ``distribution`` is an ``(S,)`` array over the MDP's states (normalised here); it may
    only put mass on explained states. Returns columns kind, characteristic, output,
    feature, phi.
    """
    w = _weights_on_states(explanation, distribution, atol=atol)
    frames = []
    for kind in _kinds(explanation, kinds):
        res = explanation.results[kind]
        mean = np.einsum("n,nfm->fm", w, res.phi)
        frames.append(_tidy(explanation, kind, mean, res.outputs))
    return pd.concat(frames, ignore_index=True)


def steady_state_average(
    explanation: Explanation,
    steady_state: np.ndarray,
    *,
    kinds: Sequence[str] | None = None,
    atol: float = 1e-9,
) -> pd.DataFrame:
    """Eq. 12 with d = p^pi. Zero for behaviour and prediction (Prop. 45, Cor. 46).

    The explanation must cover the whole steady-state support (see :func:`explain_support`).
    """
    return expected_phi(explanation, steady_state, kinds=kinds, atol=atol)


def _policy_weighted_phi(explanation: Explanation, policy: np.ndarray) -> np.ndarray:
    """(n_states, F) array of sum_a pi(a|s) phi_i(s, a) for the explained states."""
    res = explanation.results.get("behaviour")
    if res is None:
        raise KeyError("policy weighting needs a behaviour explanation (kinds=('behaviour', ...))")
    pi = np.asarray(policy, float)[np.asarray(explanation.states)]
    if pi.shape[1] != res.phi.shape[2]:
        raise ValueError(
            f"policy has {pi.shape[1]} actions; the explanation has {res.phi.shape[2]}"
        )
    return np.einsum("na,nfa->nf", pi, res.phi)


def policy_weighted(explanation: Explanation, policy: np.ndarray) -> pd.DataFrame:
    """Behaviour credit toward the chosen action: sum_a pi(a|s) phi_i(s, a) (Sec. 10.1).

    Returns one row per explained state and feature: state, state_label, feature, phi.
    """
    phi = _policy_weighted_phi(explanation, policy)
    n, f = phi.shape
    return pd.DataFrame(
        {
            "state": np.repeat(explanation.states, f),
            "state_label": np.repeat(np.asarray(explanation.state_labels, dtype=object), f),
            "feature": np.tile(np.asarray(explanation.feature_names, dtype=object), n),
            "phi": phi.reshape(-1),
        }
    )


def expected_probability_game(explanation: Explanation, policy: np.ndarray) -> np.ndarray:
    """``(n_states, 2**F)`` characteristic v(C) = sum_a pi(a|s) pi_C(a|s) of each explained state.

    By linearity its Shapley values are the pi-weighted behaviour credit of
    :func:`policy_weighted` (SVERL Sec. 10.1, the game of the expected action probability).
    """
    res = explanation.results.get("behaviour")
    if res is None:
        raise KeyError("expected_probability_game needs a behaviour explanation")
    pi = np.asarray(policy, float)[np.asarray(explanation.states)]
    return np.einsum("na,nca->nc", pi, res.characteristic)


def _with_policy_weighted(explanation: Explanation, policy: np.ndarray | None) -> Explanation:
    """A copy of the explanation with a 'behaviour' output for the pi-weighted credit."""
    if policy is None:
        return explanation
    res = explanation.results["behaviour"]
    weighted = _policy_weighted_phi(explanation, policy)[:, :, None]
    results = dict(explanation.results)
    results["behaviour"] = KindResult(
        np.concatenate([res.phi, weighted], axis=2),
        np.concatenate(
            [res.characteristic, np.full(res.characteristic.shape[:2] + (1,), np.nan)], axis=2
        ),
        (*res.outputs, POLICY_WEIGHTED),
    )
    return Explanation(
        explanation.states,
        explanation.state_labels,
        explanation.feature_names,
        results,
        explanation.characteristic_kind,
    )


def policy_weighted_average(
    explanation: Explanation, policy: np.ndarray, distribution: np.ndarray, *, atol: float = 1e-9
) -> pd.DataFrame:
    """E_{s~d}[sum_a pi(a|s) phi_i(s, a)]: average credit toward the chosen actions."""
    frame = expected_phi(
        _with_policy_weighted(explanation, policy), distribution, kinds=("behaviour",), atol=atol
    )
    return frame[frame["output"] == POLICY_WEIGHTED].reset_index(drop=True)


def conditioned_on_feature(
    explanation: Explanation,
    features: np.ndarray,
    distribution: np.ndarray,
    feature: int | str,
    *,
    values: Sequence[float] | None = None,
    kinds: Sequence[str] | None = None,
    policy: np.ndarray | None = None,
    atol: float = 1e-9,
) -> pd.DataFrame:
    """Eq. 12 with d = p(s | s_j = v): attributions averaged over states sharing a feature value.

    ``features`` is the MDP's ``(S, F)`` feature matrix, ``feature`` an index or name. One
    block of rows per value v (default: every value with positive probability), with the
    columns condition, condition_value, probability (= d(s_j = v)) and those of
    :func:`expected_phi`. With ``policy``, behaviour also gets the pi-weighted output.
    """
    names = list(explanation.feature_names)
    j = names.index(feature) if isinstance(feature, str) else int(feature)
    if not 0 <= j < len(names):
        raise IndexError(f"feature {feature!r} is not one of {names}")
    features = np.asarray(features)
    d = np.asarray(distribution, float) / np.sum(distribution)
    _weights_on_states(explanation, d, atol=atol)  # coverage check
    column = features[:, j]
    if values is None:
        values = np.unique(column[d > 0])
    expl = _with_policy_weighted(explanation, policy)
    frames = []
    for v in values:
        mask = (column == v) & (d > 0)
        prob = d[mask].sum()
        if prob <= 0:
            raise ValueError(f"no state with {names[j]} = {v} has positive probability")
        frame = expected_phi(expl, np.where(mask, d, 0.0), kinds=kinds, atol=atol)
        frames.append(frame.assign(condition=names[j], condition_value=v, probability=prob))
    out = pd.concat(frames, ignore_index=True)
    first = ["condition", "condition_value", "probability"]
    return out[first + [c for c in out.columns if c not in first]]


def _tidy(
    explanation: Explanation, kind: str, mean: np.ndarray, outputs: Sequence[str]
) -> pd.DataFrame:
    f, m = mean.shape
    return pd.DataFrame(
        {
            "kind": kind,
            "characteristic": explanation.characteristic_kind,
            "output": np.tile(np.asarray(outputs, dtype=object), f),
            "feature": np.repeat(np.asarray(explanation.feature_names, dtype=object), m),
            "phi": mean.reshape(-1),
        }
    )


def feature_dependence(
    features: np.ndarray, distribution: np.ndarray, feature_names: Sequence[str]
) -> pd.DataFrame:
    """How far the state distribution is from independent features (SVERL Sec. 4.2).

    The marginal characteristic (Eq. 6) equals the conditional one when the features are
    independent under the steady state. Returns, for every pair of features, their mutual
    information (nats) and the total-variation distance between their joint distribution
    and the product of their marginals, plus one row ``all`` comparing the full joint with
    the product of all F marginals.
    """
    features = np.asarray(features)
    d = np.asarray(distribution, float)
    d = d / d.sum()
    keep = d > 0
    x, p = features[keep], d[keep]
    f = x.shape[1]
    codes = [np.unique(x[:, i], return_inverse=True)[1] for i in range(f)]
    marginals = [np.bincount(c, weights=p) for c in codes]
    rows = []
    for i in range(f):
        for k in range(i + 1, f):
            joint = np.zeros((len(marginals[i]), len(marginals[k])))
            np.add.at(joint, (codes[i], codes[k]), p)
            prod = np.outer(marginals[i], marginals[k])
            nz = joint > 0
            mi = float(np.sum(joint[nz] * np.log(joint[nz] / prod[nz])))
            tv = 0.5 * float(np.abs(joint - prod).sum())
            rows.append(
                {
                    "pair": f"{feature_names[i]}–{feature_names[k]}",
                    "mutual_information": mi,
                    "total_variation": tv,
                }
            )
    # Full joint vs product of marginals, over the joint's support and the rest of the grid.
    prod_on_support = np.prod([marginals[i][codes[i]] for i in range(f)], axis=0)
    off_support = 1.0 - prod_on_support.sum()  # product mass on combinations never visited
    tv_all = 0.5 * (float(np.abs(p - prod_on_support).sum()) + off_support)
    mi_all = float(np.sum(p * np.log(p / prod_on_support)))
    rows.append({"pair": "all", "mutual_information": mi_all, "total_variation": tv_all})
    return pd.DataFrame(rows)


def product_of_marginals(features: np.ndarray, distribution: np.ndarray) -> np.ndarray:
    """The distribution over states that makes every feature independent with the same marginals.

    Needs every combination of the visited feature values to be a state (true for dice and
    the 500-state Taxi model); used to check that the conditional and marginal
    characteristics agree under independence (SVERL Sec. 4.2).
    """
    features = np.asarray(features)
    d = np.asarray(distribution, float) / np.sum(distribution)
    f = features.shape[1]
    marginals = []
    for i in range(f):
        vals, inv = np.unique(features[:, i], return_inverse=True)
        marginals.append((vals, np.bincount(inv, weights=d, minlength=len(vals))))
    out = np.ones(len(features))
    for i, (vals, m) in enumerate(marginals):
        out *= m[np.searchsorted(vals, features[:, i])]
    missing = 1.0 - out.sum()
    if missing > 1e-9:
        raise ValueError(
            f"{missing:.3g} of the product distribution falls on feature combinations that are not "
            "states; it is only defined when every combination of feature values is a state"
        )
    return out


def off_support_mass(features: np.ndarray, distribution: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per coalition C, the probability that the marginal characteristic (Eq. 6) of ``x``
    queries a feature combination (x_C, s_{not C}) outside the distribution's support.

    These are the "impossible" or never-visited combinations of SVERL Sec. 4.2. Returns a
    ``(2**F,)`` array (0 for the empty and the full coalition).
    """
    features = np.asarray(features)
    d = np.asarray(distribution, float) / np.sum(distribution)
    keep = d > 0
    support = {tuple(row) for row in features[keep].tolist()}
    f = features.shape[1]
    out = np.zeros(1 << f)
    for mask in range(1 << f):
        known = np.array([(mask >> i) & 1 for i in range(f)], bool)
        hybrid = np.where(known[None, :], np.asarray(x)[None, :], features[keep])
        out[mask] = sum(
            p for row, p in zip(hybrid.tolist(), d[keep], strict=True) if tuple(row) not in support
        )
    return out


def grouped_bars(
    table: pd.DataFrame, *, ax=None, title: str = "", colours: Sequence[str] | None = None
):
    """Horizontal grouped bars: one group per row (feature), one bar per column (series)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    n_rows, n_cols = table.shape
    height = 0.8 / n_cols
    y = np.arange(n_rows)[::-1]
    colours = colours or ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B2"]
    for k, column in enumerate(table.columns):
        ax.barh(
            y + (n_cols - 1 - 2 * k) * height / 2,
            table[column].to_numpy(float),
            height=height,
            color=colours[k % len(colours)],
            label=str(column),
        )
    ax.set_yticks(y, labels=[str(i) for i in table.index])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_title(title, fontsize=9)
    return ax


def conditioned_heatmap(
    frame: pd.DataFrame,
    *,
    ax=None,
    title: str = "",
    value_labels: Sequence[str] | None = None,
    colorbar: bool = True,
):
    """Heatmap of :func:`conditioned_on_feature` output for one kind/output: values x features.

    The colour scale is symmetric around zero and set by this panel's largest |value|; a
    colour bar (and the title) give that scale. Each cell's label is written in white on
    dark cells and black on light ones, so every label stays readable.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    grid = frame.pivot_table(index="condition_value", columns="feature", values="phi", sort=False)
    values = grid.to_numpy()
    lim = max(1e-12, float(np.nanmax(np.abs(values))))
    im = ax.imshow(values, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(grid.shape[1]), labels=list(grid.columns))
    rows = value_labels if value_labels is not None else [str(v) for v in grid.index]
    ax.set_yticks(
        range(grid.shape[0]), labels=[f"{frame['condition'].iloc[0]} = {r}" for r in rows]
    )
    for (i, j), v in np.ndenumerate(values):
        ink = "white" if _luminance(im.cmap(im.norm(v))) < 0.5 else "black"
        ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=7, color=ink)
    ax.set_title(f"{title}\n(colour ±{lim:.2g})" if title else f"colour ±{lim:.2g}", fontsize=9)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    return im


def _luminance(rgba) -> float:
    """Relative luminance (ITU-R BT.709 weights) of an RGB(A) colour in [0, 1]."""
    r, g, b = rgba[:3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
