"""The degeneracy diagnostics of notebook 21: the goal's geometry and the action-step sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shaprl.action_shapley.case_studies import CASE_STUDIES, case_study
from shaprl.action_shapley.diagnostics import geometry_summary, goal_geometry, step_sweep_summary


def test_load_balancing_has_one_effective_knob_and_an_unreachable_threshold():
    case = case_study("load_balancing")
    shape = geometry_summary(case, goal_geometry(case))
    # every mix saturates the 2 vCPUs, and p5 is at most 2/3 of a 100 % peak (plus noise)
    assert shape["effect of CPU workers"] == pytest.approx(0.0, abs=1e-9)
    assert shape["largest statistic"] < case.threshold
    assert not shape["threshold can be crossed"]
    assert shape["effect of memory workers"] > 20


@pytest.mark.parametrize("key", ["vm_right_sizing", "database_tuning", "kubernetes"])
def test_the_other_cases_cross_their_threshold_with_both_knobs(key):
    case = CASE_STUDIES[key]
    shape = geometry_summary(case, goal_geometry(case, points=11))
    assert shape["threshold can be crossed"]
    assert 0 < shape["configurations in the goal"] < 1
    assert min(v for k, v in shape.items() if k.startswith("effect of")) > 1


def test_the_geometry_is_seeded_and_covers_the_bounds():
    case = case_study("database_tuning")
    a, b = goal_geometry(case, points=7, seed=3), goal_geometry(case, points=7, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 49
    assert a[case.dims[0]].min() == case.lower[0] and a[case.dims[0]].max() == case.upper[0]
    lo, hi = case.band
    assert (a["in_goal"] == a["statistic"].between(lo, hi)).all()


def test_step_sweep_summary_counts_the_shared_return():
    rows = []
    for step, returns in ((1.0, [-5.0, -5.0, -5.0, -7.0]), (6.0, [-1.0, -2.0, -3.0, -4.0])):
        for mask, ret in enumerate(returns, start=1):
            rows.append(
                dict(case="c", algo="ppo", max_step=step, run=0, mask=mask,
                     system_return=ret, success=True, convergence=float(mask))
            )  # fmt: skip
    rows.append(dict(rows[0], mask=5, success=False, system_return=-99.0))
    out = step_sweep_summary(pd.DataFrame(rows)).set_index("max step / window")
    assert out.loc[1.0, "successful cells"] == 4 and out.loc[1.0, "cells"] == 5
    assert out.loc[1.0, "distinct returns"] == 2
    assert out.loc[1.0, "share at it"] == pytest.approx(0.75)
    assert out.loc[1.0, "most common return"] == -5.0
    assert out.loc[6.0, "share at it"] == pytest.approx(0.25)
    assert np.isclose(out.loc[6.0, "all-data convergence (steps)"], 4.0)


def test_the_committed_step_sweep_shows_the_step_is_not_the_cause():
    from shaprl.action_shapley.tables import load_check

    sweep = step_sweep_summary(load_check("step_sweep"))
    assert sorted(sweep["max step / window"]) == [1.0, 2.0, 3.0, 6.0]
    assert (sweep["share at it"] > 0.5).all()
