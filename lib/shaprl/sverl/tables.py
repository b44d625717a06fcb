"""Paper-style tables of an explanation: characteristic values v(C) next to Shapley values.

SVERL prints its worked examples (Tables 1-7, Figs. 7-8) as one row per state and output:
the characteristic value of every coalition C, then the Shapley value of every feature
(SVERL Eq. 1). :func:`characteristic_and_phi` builds that table from an
:class:`~shaprl.sverl.explanation.Explanation` in two shapes: a tidy frame for the CSV
(one value per row, ``quantity`` telling v(C) from φ) and a pivot for display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from .explanation import Explanation

V_LABEL, PHI_LABEL = "v(C)", "φ"


def characteristic_and_phi(
    explanations: Explanation | Mapping[str, Explanation],
    kind: str,
    *,
    by: str = "agent",
    states: Sequence[int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Characteristic values and Shapley values of one explanation kind, tidy and pivoted.

    Parameters
    ----------
    explanations:
        One explanation, or several keyed by a name (e.g. the road-sign agents A and B);
        the names go to a column called ``by``.
    kind:
        ``"behaviour"``, ``"outcome"`` or ``"prediction"``.
    states:
        Keep only these state indices (default: every explained state).

    Returns
    -------
    ``(tidy, display)``. ``tidy`` holds the characteristic frame's columns plus
    ``quantity`` (``"v(C)"`` or ``"φ"``); φ rows carry the feature name in
    ``coalition_label`` and the Shapley value in ``value``. ``display`` has one row per
    (name,) state and output, the coalitions' v(C) as columns followed by ``φ_<feature>``;
    index levels that take a single value (one state, or the single output ``value``) are
    dropped.
    """
    named = explanations if isinstance(explanations, Mapping) else {None: explanations}
    chars, phis = [], []
    for name, expl in named.items():
        if kind not in expl.kinds:
            raise ValueError(f"the explanation has no {kind!r} results; it has {expl.kinds}")
        c = expl.characteristic_frame().query("kind == @kind")
        p = expl.to_frame().query("kind == @kind")
        if states is not None:
            c, p = c[c["state"].isin(states)], p[p["state"].isin(states)]
        if name is not None:
            c, p = c.assign(**{by: name}), p.assign(**{by: name})
        chars.append(c)
        phis.append(p)
    chars = pd.concat(chars, ignore_index=True)
    phis = pd.concat(phis, ignore_index=True)
    tidy = pd.concat(
        [
            chars.assign(quantity=V_LABEL),
            phis.rename(columns={"feature": "coalition_label", "phi": "value"}).assign(
                quantity=PHI_LABEL
            ),
        ],
        ignore_index=True,
    )
    index = ([by] if isinstance(explanations, Mapping) else []) + ["state_label", "output"]
    index = [i for i in index if chars[i].nunique() > 1] or ["state_label"]
    display = pd.concat(
        [
            chars.pivot_table(index=index, columns="coalition_label", values="value", sort=False),
            phis.pivot_table(index=index, columns="feature", values="phi", sort=False).add_prefix(
                "φ_"
            ),
        ],
        axis=1,
    )
    display.columns.name = None
    return tidy, display


def split_characteristic_and_phi(
    tidy: pd.DataFrame, display: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split :func:`characteristic_and_phi`'s output into its v(C) part and its φ part.

    For papers that print the characteristic and the Shapley values as two tables (SVERL
    Tables 1-2 and 4-5). Returns ``(v_tidy, v_display, phi_tidy, phi_display)``; the tidy
    parts have the layouts of ``Explanation.characteristic_frame`` and ``to_frame``.
    """
    is_v = tidy["quantity"] == V_LABEL
    is_phi = display.columns.str.startswith("φ_")
    v = tidy[is_v].drop(columns="quantity").reset_index(drop=True)
    phi = (
        tidy[~is_v]
        .drop(columns=["quantity", "coalition"])
        .rename(columns={"coalition_label": "feature", "value": "phi"})
        .reset_index(drop=True)
    )
    return v, display.loc[:, ~is_phi], phi, display.loc[:, is_phi]
