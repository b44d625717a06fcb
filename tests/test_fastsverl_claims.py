"""Notebook 30's claims as the paper makes them; the Hypercube policy the authors explain."""

from __future__ import annotations

import pandas as pd
import pytest

from shaprl.fastsverl import experiments as ex


@pytest.mark.parametrize(("side", "dims"), [(2, 2), (3, 2), (4, 3), (2, 5)])
def test_hypercube_greedy_policy_visits_one_shortest_path(side, dims):
    greedy = ex.hypercube_problem(side, dims, max_eval_rows=64)
    assert len(greedy.support) == dims * (side - 1)  # the path bound n(l-1)+1 minus the goal
    ties = ex.hypercube_problem(side, dims, policy="uniform-ties", max_eval_rows=64)
    assert len(ties.support) == side**dims - 1
    table = ex.hypercube_support([(side, dims)])
    assert table.iloc[0]["cells (l^n)"] == side**dims
    assert table.iloc[0]["path bound n(l-1)+1"] == dims * (side - 1) + 1
    with pytest.raises(ValueError, match="policy"):
        ex.hypercube_problem(side, dims, policy="softmax")


def _row(domain, model, kind, upstream, updates, mse):
    return dict(
        domain=domain,
        model=model,
        kind=kind,
        upstream=upstream,
        updates=updates,
        runs=5,
        **{"final exact MSE": mse, "stderr": 0.0},
    )


def test_grading_rule_against_the_authors_values():
    summary = pd.DataFrame(
        [
            _row("Gridworld", "characteristic", "prediction", "exact", 1_860, 0.24),  # 2x 0.121
            _row("Gridworld", "characteristic", "behaviour", "exact", 3_100, 0.0009),  # < 1e-3
            _row("Mastermind-222", "characteristic", "prediction", "exact", 2_000, 0.005),
            _row(
                "Mastermind-222",
                "outcome characteristic (on-policy)",
                "outcome",
                "exact",
                12_500,
                0.0199,
            ),
        ]
    )
    g = ex.grade_against_authors(summary).set_index(["domain", "kind"])
    assert g.loc[("Gridworld", "prediction"), "within"]
    assert g.loc[("Gridworld", "prediction"), "authors"] == pytest.approx(0.121, abs=2e-3)
    assert g.loc[("Gridworld", "behaviour"), "within"]
    assert not g.loc[("Mastermind-222", "prediction"), "within"]  # 0.005 > 2 x 0.00073
    assert not g.loc[("Mastermind-222", "prediction"), "settled"]  # 2,000 < 4,526
    on = g.loc[("Mastermind-222", "outcome")]
    assert on["authors' updates"] == 12_494 and on["settled"] and not on["within"]


def test_claims_without_committed_runs_stay_indicative_with_their_reason():
    summary = pd.DataFrame(
        [
            _row("Mastermind-222", "characteristic", "behaviour", "exact", 3_100, 0.0017),
            _row("Mastermind-222", "shapley", "outcome", "exact", 6_200, 0.0012),
            _row(
                "Mastermind-222",
                "outcome characteristic (on-policy)",
                "outcome",
                "exact",
                2_500,
                0.05,
            ),
            _row(
                "Mastermind-222",
                "outcome characteristic (off-policy)",
                "outcome",
                "exact",
                2_500,
                0.01,
            ),
        ]
    )
    claims = {c["key"]: c for c in ex.accuracy_claims(summary, {})}
    fig1 = claims["fig1_mm222_below_0.01"]
    assert fig1["needs"] == "paper" and fig1["source"] is None and fig1["holds"] is False
    assert "[settle budget 12,425 updates" in fig1["measured"]
    assert claims["appC_mm333_low_error_vs_authors"]["needs"] == "paper"
    assert set(claims) == {
        "fig1_mm222_below_0.01",
        "appC_low_error_vs_authors",
        "appC_outcome_low_error_vs_authors",
        "appC_mm333_low_error_vs_authors",
        "fig1_learned_upstream_less_accurate",
        "fig4_mm333_learned_upstream_less_accurate",
        "fig1b_off_policy_faster",
    }
    assert set(claims) <= set(ex.SETTLE_BUDGETS)
