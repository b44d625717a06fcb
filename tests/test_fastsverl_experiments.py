"""Summaries of the FastSVERL experiments: log-log fits, feature comparisons, on/off-policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shaprl.fastsverl import experiments as ex
from shaprl.repro import PROFILES


def test_loglog_fit_recovers_a_power_law():
    states = np.array([3, 8, 15, 24, 35])
    stats = pd.DataFrame(
        {
            "kind": "behaviour",
            "model": "characteristic",
            "dims": 2,
            "states": states,
            "mean": 5.0 * states**1.5,
        }
    )
    fit = ex.loglog_fits(stats)
    assert fit.slope.iloc[0] == pytest.approx(1.5) and fit.r2.iloc[0] == pytest.approx(1.0)
    assert ex.loglog_fits(stats.iloc[:2]).empty  # fewer than 3 sizes: no fit


def test_features_at_fixed_states_pairs_close_cubes():
    stats = pd.DataFrame(
        {
            "kind": "behaviour",
            "model": "shapley",
            "dims": [2, 4, 2],
            "side": [4, 2, 6],
            "states": [15, 15, 35],
            "mean": [100.0, 150.0, 400.0],
        }
    )
    pairs = ex.features_at_fixed_states(stats)
    assert pairs.cubes.tolist() == ["4^2 vs 2^4"] and pairs.ratio.iloc[0] == pytest.approx(1.5)


def test_off_policy_comparison():
    rows = []
    for model, scale in (
        ("outcome characteristic (on-policy)", 1.0),
        ("outcome characteristic (off-policy)", 0.1),
    ):
        for u in (0, 10, 20):
            rows.append(
                {
                    "domain": "d",
                    "model": model,
                    "upstream": "exact",
                    "update": u,
                    "run": 0,
                    "exact_mse": scale / (1 + u),
                }
            )
    out = ex.off_policy_comparison(pd.DataFrame(rows))
    assert out["off-policy final"].iloc[0] < out["on-policy final"].iloc[0]
    assert bool(out["off-policy lower over the curve"].iloc[0])


@pytest.mark.parametrize("table", [ex.ACCURACY_PROFILES, ex.SCALING_PROFILES, ex.LARGE_PROFILES])
def test_profiles_are_complete(table):
    assert set(table) == set(PROFILES)
    keys = {frozenset(v) for v in table.values()}
    assert len(keys) == 1


def test_agent_buffer_maps_transitions_to_model_states():
    import torch

    from shaprl.agents import DQNConfig, train_dqn
    from shaprl.domains import mastermind as mm
    from shaprl.fastsverl import tabular_problem

    torch.set_num_threads(1)
    agent = train_dqn(
        mm.MastermindEnv(2, 2, 2, conventions="fastsverl"),
        DQNConfig(total_steps=600),
        progress=False,
        record=True,
    )
    mdp = mm.build_model(mm.MastermindSpec(2, 2, 2, 2.0))
    prob = tabular_problem(mdp, agent.policy(mdp.features), agent.value(mdp.features))
    buf = ex.agent_buffer(agent, prob)
    assert len(buf["s"]) == 600 and (buf["s"] >= 0).all()
    assert (
        (buf["s2"] < 0) == buf["done"]
    ).all()  # Mastermind-222: every successor is a state or the end
    np.testing.assert_allclose(buf["r"][buf["done"] & (buf["r"] > 0)], 1.0)  # -1 + g for a win
