"""Dice and Taxi (SVERL App. B): model building and exact explanations, single core.

Targets are budgets that keep notebooks 03, 07 and 08 inside their time limits.
"""

from __future__ import annotations

from shaprl.domains import dice as D
from shaprl.domains import taxi as T
from shaprl.mdp import greedy_policy, steady_state, value_iteration
from shaprl.sverl import SVERLExplainer
from shaprl.sverl import aggregate as ag

from .harness import Result, timed


def _solve(mdp):
    q, v = value_iteration(mdp)
    policy = greedy_policy(mdp, q)
    return policy, v, steady_state(mdp, policy)


def run() -> list[Result]:
    out = []
    t, mdp = timed(T.taxi)
    out.append(Result("taxi: build 500-state MDP from gymnasium", t, 5.0))
    t, (policy, v, p) = timed(lambda: _solve(mdp))
    out.append(Result("taxi: value iteration + greedy policy + exact steady state", t, 5.0))
    cond = SVERLExplainer(mdp, policy, values=v, steady_state=p)
    marg = SVERLExplainer(
        mdp,
        policy,
        values=v,
        steady_state=p,
        characteristic="marginal",
    )
    states = [mdp.index_of(T.TOP_STATE), mdp.index_of(T.BOTTOM_STATE)]
    t, _ = timed(lambda: cond.explain(states), repeats=3)
    out.append(Result("taxi: explain Fig. 10 states (3 kinds, conditional)", t, 1.0))
    t, e = timed(lambda: ag.explain_support(cond))
    out.append(
        Result(
            "taxi: explain all 376 support states (3 kinds, conditional)", t, 10.0, "Eq. 12 input"
        )
    )
    t, _ = timed(lambda: ag.steady_state_average(e, p), repeats=3)
    out.append(Result("taxi: steady-state averages (Eq. 12)", t, 1.0))
    t, _ = timed(lambda: ag.explain_support(marg, kinds=("behaviour", "prediction")))
    out.append(Result("taxi: explain all 376 support states (marginal, 2 kinds)", t, 10.0))

    dice = D.dice()
    t, (dpol, dv, dp) = timed(lambda: _solve(dice), repeats=3)
    out.append(Result("dice: value iteration + policy + exact steady state", t, 1.0))
    dex = SVERLExplainer(dice, dpol, values=dv, steady_state=dp)
    t, _ = timed(lambda: dex.explain(range(36)), repeats=3)
    out.append(Result("dice: explain all 36 states (3 kinds)", t, 2.0))
    return out
