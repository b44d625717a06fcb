"""Monte Carlo SVERL (SVERL Sec. 10.2): sampling, rollouts and permutation Shapley, one core.

Targets keep notebook 09 inside its quick budget and show the path scales past the exact
engine's feature limit (2**F coalitions).
"""

from __future__ import annotations

import numpy as np

from shaprl.domains import taxi as T
from shaprl.domains import tic_tac_toe as TTT
from shaprl.domains.simulators import taxi_simulator, tic_tac_toe_simulator
from shaprl.mdp import greedy_policy, value_iteration
from shaprl.sverl import MonteCarloSVERL, collect_states

from .harness import Result, timed


def _table_fn(features, table):
    index = {r.tobytes(): i for i, r in enumerate(np.ascontiguousarray(features, np.int64))}
    return lambda rows: table[
        [index[r.tobytes()] for r in np.ascontiguousarray(np.atleast_2d(rows), np.int64)]
    ]


class _Names:
    """A simulator stand-in for behaviour and prediction only (no dynamics needed)."""

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions

    def reset(self, seed=None):
        raise NotImplementedError

    reset_to = step = reset

    def valid_actions(self, features):
        return np.ones(self.n_actions, bool)


def run() -> list[Result]:
    out = []
    mdp = T.taxi()
    q, v = value_iteration(mdp)
    pol, val = _table_fn(mdp.features, greedy_policy(mdp, q)), _table_fn(mdp.features, v)
    sim = taxi_simulator()
    t, sample = timed(lambda: collect_states(sim, pol, 50_000, seed=0, progress=False))
    out.append(
        Result(
            "taxi: collect 50,000 steady-state steps", t, 5.0, f"{sample.steps / t:,.0f} steps/s"
        )
    )
    mc = MonteCarloSVERL(sim, pol, sample, value_fn=val)
    rows = np.array([T.TOP_STATE, T.BOTTOM_STATE])
    t, e = timed(lambda: MonteCarloSVERL(sim, pol, sample, value_fn=val).explain(
        rows, n_permutations=512, n_rollouts=64, seed=0, progress=False))  # fmt: skip
    steps = e.results["outcome"].samples["simulator_steps"]
    out.append(Result("taxi: explain Fig. 10 states (3 kinds, 512 orders, 64 rollouts)", t, 5.0,
                      f"{steps} rollout steps"))  # fmt: skip
    t, _ = timed(lambda: mc.explain(rows, ("behaviour", "prediction"), n_permutations=512))
    out.append(Result("taxi: behaviour + prediction only (512 orders, bootstrap 64)", t, 2.0))

    ttt = TTT.tic_tac_toe()
    policy, _, tv = TTT.optimal_policy(ttt)
    tpol, tval = _table_fn(ttt.features, policy), _table_fn(ttt.features, tv)
    tsim = tic_tac_toe_simulator()
    t, tsample = timed(lambda: collect_states(tsim, tpol, 20_000, seed=0, progress=False))
    out.append(
        Result("tic-tac-toe: collect 20,000 steps", t, 5.0, f"{tsample.steps / t:,.0f} steps/s")
    )
    t, _ = timed(lambda: MonteCarloSVERL(tsim, tpol, tsample, value_fn=tval).explain(
        [TTT.FIG2_STATE], n_permutations=512, n_rollouts=64, seed=0, progress=False))  # fmt: skip
    out.append(
        Result("tic-tac-toe: explain Fig. 2 state (3 kinds, 512 orders, 64 rollouts)", t, 5.0)
    )

    # Beyond the exact engine: 40 binary features, 20,000 sampled rows, a logistic policy.
    rng = np.random.default_rng(0)
    feats = rng.integers(0, 2, size=(20_000, 40))
    w = rng.normal(size=(40, 4))

    def logistic(r):
        z = np.asarray(r, float) @ w
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    big = MonteCarloSVERL(_Names(4), logistic, feats, value_fn=lambda r: logistic(r)[:, 0])
    t, _ = timed(lambda: big.explain(feats[:4], ("behaviour", "prediction"), n_permutations=256,
                                     n_bootstrap=0))  # fmt: skip
    out.append(Result("40 features, 20,000 rows: 4 states, behaviour + prediction, 256 orders",
                      t, 10.0, "2**40 coalitions: no exact table"))  # fmt: skip
    return out
