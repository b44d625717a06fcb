"""Validation of the selection policy over episodes (§4.2-4.3, App. A.6, Figs. 1-4, 6-8).

The best and worst training sets (size theta, indispensable points first, then the highest or
lowest exact Action Shapley values), the all-data baseline and a pool of random sets of size
theta get their agents trained once, in one batch, with the same per-subset seeds as the
utility tables (so they are the tables' agents), through Action Shapley I's
:func:`~shaprl.action_shapley.utility.train_and_evaluate` machinery. Each agent then runs
``episodes`` times on the simulated system, one noise seed per episode shared by all agents
(common random numbers). Per episode, ``per_episode`` sets are drawn from the random pool
(4 for load balancing and database tuning, 30 for Kubernetes, as in the paper), giving the
best random agent and the fraction of random agents below the best Action-Shapley agent.

Random sets are drawn from *all* sets of size theta, as the paper describes; an agent whose
set lacks an indispensable point fails its objective and is counted with the cumulative
reward it actually collects (the penalty of never meeting the goal over the horizon).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from .compare import select_training_set
from .result import ActionShapleyResult


def candidate_sets(
    reference: ActionShapleyResult, pool_size: int, seed: int
) -> tuple[dict[str, int], np.ndarray]:
    """Masks of the best, worst and all-data sets, and a pool of random sets of size theta.

    The pool is every set of size theta when there are at most ``pool_size`` of them, else
    ``pool_size`` distinct sets drawn uniformly (seeded).
    """
    n, theta, ind = reference.n_players, reference.global_theta, reference.indispensable
    as_mask = lambda s: int(sum(1 << k for k in s))  # noqa: E731
    named = {
        "best": as_mask(select_training_set(reference.values, theta, ind)),
        "worst": as_mask(select_training_set(reference.values, theta, ind, best=False)),
        "all data": (1 << n) - 1,
    }
    every = np.array([as_mask(s) for s in combinations(range(n), theta)], dtype=np.int64)
    if every.size <= pool_size:
        return named, every
    rng = np.random.default_rng(seed)
    return named, np.sort(rng.choice(every, size=pool_size, replace=False))


def train_and_run(
    case_key: str,
    masks: np.ndarray,
    episodes: int,
    *,
    algo: str = "sac",
    seed: int = 0,
    budget: dict | None = None,
) -> dict[str, np.ndarray]:
    """Train the agents of ``masks`` (one batch) and run each for ``episodes`` episodes.

    ``budget`` overrides fields of the fixed training budget (only for smoke runs: other
    budgets give agents that are not the utility tables' agents).

    Returns ``reward`` and ``convergence`` of shape ``(episodes, len(masks))`` and the
    trajectories (``actions (episodes, R, H+1, 2)``, ``statistics (episodes, R, H+1)``).
    """
    from dataclasses import replace

    from ..batched_agents import PPO_BUDGET, SAC_BUDGET
    from ..case_studies import case_study
    from ..pid_env import evaluate_on_system
    from ..traces import load_traces, traces_path
    from ..utility import subset_seed, train_agents
    from ..world_model import SufficientStatistics

    case = case_study(case_key)
    traces = load_traces(traces_path(case), case)
    params = SufficientStatistics(traces).fit(np.asarray(masks, dtype=np.int64))
    seeds = [subset_seed(seed, int(m)) for m in masks]
    fixed = SAC_BUDGET if algo == "sac" else PPO_BUDGET
    policy = train_agents(case, params, algo, seeds, "cpu", replace(fixed, **(budget or {})))
    r = len(seeds)
    runs = [
        {k: v[:r] for k, v in evaluate_on_system(case, policy, policy.n_members, 1000 + e).items()}
        for e in range(episodes)
    ]
    return {
        "masks": np.asarray(masks, dtype=np.int64),
        "reward": np.stack([r["reward"] for r in runs]),
        "convergence": np.stack([r["convergence"] for r in runs]),
        "actions": np.stack([r["actions"] for r in runs]),
        "statistics": np.stack([r["statistics"] for r in runs]),
    }


def episode_table(
    runs: dict[str, np.ndarray],
    named: dict[str, int],
    pool: np.ndarray,
    per_episode: int,
    seed: int,
) -> pd.DataFrame:
    """Per episode: best, worst, all-data rewards, best of ``per_episode`` random sets, and
    the fraction of those random agents below the best Action-Shapley agent."""
    column = {int(m): i for i, m in enumerate(runs["masks"])}
    reward = runs["reward"]
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(reward.shape[0]):
        drawn = rng.choice(pool, size=per_episode, replace=per_episode > pool.size)
        random = reward[e, [column[int(m)] for m in drawn]]
        best = reward[e, column[named["best"]]]
        if per_episode == 0:  # no random sets (VM right-sizing: only best and worst)
            random = np.array([np.nan])
        rows.append(
            {
                "episode": e + 1,
                "best": best,
                "worst": reward[e, column[named["worst"]]],
                "all data": reward[e, column[named["all data"]]],
                "best random": random.max(),
                "random below best": float(np.mean(random < best)) if per_episode else np.nan,
                "random above best": int(np.sum(random > best)),
            }
        )
    frame = pd.DataFrame(rows)
    frame.attrs["per_episode"] = per_episode
    return frame


def summary_row(
    case_key: str, runs: dict[str, np.ndarray], named: dict[str, int], table: pd.DataFrame
) -> dict:
    """Mean reward and convergence time over episodes of the named agents, and random counts."""
    column = {int(m): i for i, m in enumerate(runs["masks"])}
    row = {"case study": case_key, "episodes": len(table)}
    for name, mask in named.items():
        row[f"reward {name}"] = float(runs["reward"][:, column[mask]].mean())
        row[f"convergence {name}"] = float(runs["convergence"][:, column[mask]].mean())
    row["best random (mean)"] = float(table["best random"].mean())
    drawn = table.attrs.get("per_episode", np.nan)
    row["random above best"] = (
        f"{int(table['random above best'].sum())} of {int(len(table) * drawn)}"
    )
    row["random below best"] = float(table["random below best"].mean())
    return row


def plot_episodes(table: pd.DataFrame, axes, title: str, with_random: bool = True) -> None:
    """Fig. 1-4 style: rewards per episode (a) and fraction of random agents below best (b)."""
    ax = axes[0]
    for name, style in (
        ("best", "o-"),
        ("worst", "s-"),
        ("all data", "^--"),
        ("best random", "x:"),
    ):
        if name == "best random" and not with_random:
            continue
        ax.plot(table["episode"], table[name], style, ms=3, lw=1, label=name)
    ax.set_xlabel("episode")
    ax.set_ylabel("cumulative reward")
    ax.set_title(f"{title} (a)")
    ax.legend(fontsize=7)
    if len(axes) > 1:
        axes[1].bar(table["episode"], table["random below best"], color="tab:grey")
        axes[1].set_ylim(0, 1)
        axes[1].set_xlabel("episode")
        axes[1].set_ylabel("fraction of random agents below best")
        axes[1].set_title(f"{title} (b)")


def plot_trajectories(
    case, runs: dict[str, np.ndarray], named: dict[str, int], axes, episode: int = 0
) -> None:
    """Figs. 6-8 style: actions, state statistic and reward of the best and worst agents."""
    column = {int(m): i for i, m in enumerate(runs["masks"])}
    for name, colour in (("best", "tab:blue"), ("worst", "tab:red")):
        i = column[named[name]]
        acts, stat = runs["actions"][episode, i], runs["statistics"][episode, i]
        steps = np.arange(stat.size)
        axes[0].plot(steps, acts[:, 0], color=colour, label=f"{name}: {case.dims[0]}")
        axes[0].plot(steps, acts[:, 1], color=colour, ls="--", label=f"{name}: {case.dims[1]}")
        axes[1].plot(steps, stat, color=colour, label=name)
        axes[2].plot(steps, case.reward(stat), color=colour, label=name)
    axes[1].axhline(case.threshold, color="k", lw=0.8, ls=":")
    for ax, label in zip(
        axes, ("action", f"{case.statistic} ({case.unit})", "reward"), strict=True
    ):
        ax.set_xlabel("RL step")
        ax.set_ylabel(label)
        ax.legend(fontsize=6)


def validate_case(
    case_key: str,
    *,
    episodes: int,
    pool_size: int,
    per_episode: int,
    budget: dict | None = None,
    algo: str = "sac",
    seed: int = 0,
) -> dict:
    """Everything of one case study: exact reference from the committed table, candidate sets,
    the agents' episodes (cached on disk) and the per-episode table."""
    from ...repro import cached
    from .compare import exact_reference
    from .summary import load_case_game, table_digest

    game, _ = load_case_game(case_key, algo, seed=seed)
    ref = exact_reference(game)
    named, pool = candidate_sets(ref, pool_size, seed=0)
    chosen = estimator_selections(game, ref)
    masks = np.unique(np.r_[list(named.values()), pool, list(chosen.values())])
    config = {"case": case_key, "algo": algo, "seed": seed, "table": table_digest(game),
              "masks": masks.tolist(), "episodes": episodes, "budget": budget}  # fmt: skip
    runs = cached(
        "action_shapley_selection_runs",
        config,
        lambda: train_and_run(case_key, masks, episodes, algo=algo, seed=seed, budget=budget),
    )
    table = episode_table(runs, named, pool, per_episode, seed=0)
    return {"ref": ref, "named": named, "pool": pool, "runs": runs, "episodes": table,
            "chosen": chosen}  # fmt: skip


def episode_claims(val: pd.DataFrame, res: dict, per_episode: dict[str, int]) -> list[dict]:
    """§4.2-4.3 claims over episodes (``report.claim`` keyword arguments).

    Rows of ``val`` whose ``table`` column is :data:`~.summary.LEGACY` (a case study whose
    committed table is a legacy one) are left out of every verdict; ``measured`` names them
    and the make target that builds their table under the paper's goal.
    """
    from .summary import deciding, measured_text, verdict

    current, left_out = deciding(val)
    v = val.set_index("case study")
    cases = [c for c in res if c in set(current["case study"])]
    differs = lambda c, other: res[c]["named"]["best"] != res[c]["named"][other]  # noqa: E731
    rand = [c for c in cases if per_episode[c] > 0]
    rand_out = [c for c in left_out if per_episode[c] > 0]
    best_vs = lambda other: measured_text(  # noqa: E731
        (
            f"{c}: {v.loc[c, 'reward best']:.3g} vs {other} {v.loc[c, f'reward {other}']:.3g}"
            for c in cases
        ),
        left_out,
    )
    return [
        dict(
            key="s42_best_beats_worst_episodes",
            paper="Action Shapley §4.2, Figs. 1-4",
            statement="the best set's agent earns more than the worst set's (mean over episodes)",
            holds=verdict(
                [
                    differs(c, "worst") and v.loc[c, "reward best"] > v.loc[c, "reward worst"]
                    for c in cases
                ],
                left_out,
            ),
            measured=best_vs("worst"),
        ),
        dict(
            key="s42_most_random_below_best",
            paper="Action Shapley §4.2, Figs. 2-4 (b)",
            statement="most random sets of size θ give agents below the best Action-Shapley agent",
            holds=verdict([v.loc[c, "random below best"] >= 0.5 for c in rand], rand_out),
            measured=measured_text(
                (
                    f"{c}: {v.loc[c, 'random below best']:.0%} below, "
                    f"{v.loc[c, 'random above best']} above"
                    for c in rand
                ),
                rand_out,
            ),
        ),
        dict(
            key="s43_best_vs_baseline_episodes",
            paper="Action Shapley §4.3, Table 8",
            statement="the best set beats the all-data baseline except in database tuning",
            holds=verdict(
                [
                    differs(c, "all data")  # theta < n, else best set = all data: no test
                    and (v.loc[c, "reward best"] > v.loc[c, "reward all data"])
                    == (c != "database_tuning")
                    for c in cases
                ],
                left_out,
            ),
            measured=best_vs("all data"),
        ),
    ]


def estimator_selections(
    game, reference: ActionShapleyResult, samples_per_size: int = 8, seed: int = 0
) -> dict[str, int]:
    """The training set (mask) each estimator selects: the paper's estimators at
    ``samples_per_size``, the library baselines at the full budget ``2**n`` (at most 4,096
    distinct evaluations), one seed."""
    from . import study
    from .baselines import PenaltyGame, worst_utility_penalty
    from .compare import selected_set

    penalised = PenaltyGame(game, worst_utility_penalty(game))
    out = {"exact": sum(1 << k for k in selected_set(reference, reference))}
    for name, est in study.ESTIMATORS.items():
        budget = {"none": 0, "samples per size": samples_per_size}.get(
            est.knob, min(1 << game.n_players, 4096)
        )
        target = game if est.values_of == "action shapley" else penalised
        result = est.run(target, budget, seed)
        out[name] = int(sum(1 << k for k in selected_set(result, reference)))
    return out


def selection_rewards(res: dict, names) -> pd.DataFrame:
    """Mean reward over episodes of the agent of the set each estimator selects."""
    rows = []
    for case, r in res.items():
        column = {int(m): i for i, m in enumerate(r["runs"]["masks"])}
        for est, mask in r["chosen"].items():
            rewards = r["runs"]["reward"][:, column[mask]]
            label = "{" + ", ".join(n for k, n in enumerate(names[case]) if mask >> k & 1) + "}"
            rows.append({"case study": case, "estimator": est, "selected": label,
                         "same as exact": mask == r["chosen"]["exact"],
                         "mean reward": float(rewards.mean()),
                         "s.e.": float(rewards.std(ddof=1) / np.sqrt(rewards.size))})  # fmt: skip
    return pd.DataFrame(rows)
