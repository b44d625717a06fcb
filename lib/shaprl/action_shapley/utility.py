"""The utility U(d) of Action Shapley as a cached, chunked, parallel valuation game.

``U(d)`` (§2, §3): fit the world model of subset ``d`` (:mod:`.world_model`), train an SAC-PID
or PPO-PID agent inside it (:mod:`.batched_agents`, many subsets at once), run the trained
agent on the simulated system (:func:`~.pid_env.evaluate_on_system`) and return its
cumulative reward, or **null** (NaN) when it never reaches the goal within the horizon or no
world model can be fitted (the empty subset).

:class:`AgentGame` is a :class:`~.game.ValuationGame`: requested subsets are split into
chunks, every chunk is computed once and cached on disk (:func:`shaprl.repro.cached`, keyed
by case study, algorithm, seed, budget, the chunk's subsets, the traces and the library code,
written atomically) and chunks run through ``joblib.Parallel`` (switch the backend with
``joblib.parallel_config`` for Dask or Ray). A GPU is used when present. Each subset's agent
has its own seed, derived from ``(seed, mask)`` alone, and its own random stream, so a
subset's utility does not depend on the chunk it was computed in.

**The multi-run utility (issue 17)** of the committed small-case tables estimates an
expectation instead: :data:`RUNS` training runs per subset, run ``r`` with the agent seed
:func:`run_seed` ``(seed, r)`` for *every* subset (common random numbers), each agent
evaluated in :data:`EPISODES` episodes whose noise seeds (:func:`episode_seeds`) are shared by
all subsets and runs; ``U(d)`` follows :data:`NULL_RULE` (our rule, not the paper's).
:func:`multi_run_outcomes` caches every run separately, so a regeneration resumes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from ..batched import default_device
from ..repro import cached
from .batched_agents import PPO_BUDGET, SAC_BUDGET, train_ppo, train_sac
from .case_studies import CaseStudy, case_study
from .game import ValuationGame
from .pid_env import BatchedPIDEnv, BatchedRBF, evaluate_on_system
from .traces import Traces, load_traces, traces_path
from .world_model import RBFParams, SufficientStatistics

ALGORITHMS = ("sac", "ppo")
#: the modules a utility depends on: the cache key hashes these, not the whole library, so an
#: edit elsewhere (an estimator, a notebook helper) keeps hours of cached utilities valid
UTILITY_CODE = (
    "batched",
    "action_shapley/batched_agents.py",
    "action_shapley/case_studies.py",
    "action_shapley/pid_env.py",
    "action_shapley/traces.py",
    "action_shapley/utility.py",
    "action_shapley/world_model.py",
)
EVAL_SEED = 2024  #: seed of the simulated system's noise during evaluation (all subsets)


def subset_seed(seed: int, mask: int) -> int:
    """The agent seed of subset ``mask`` under run seed ``seed`` (independent of batching)."""
    return int(np.random.SeedSequence([int(seed), int(mask)]).generate_state(1)[0] % (2**31 - 8))


def budget_of(algo: str) -> dict:
    if algo not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algo!r}")
    return (SAC_BUDGET if algo == "sac" else PPO_BUDGET).as_dict()


MEMBER_MULTIPLE = 16  #: batches are padded to a multiple of this many members


def pad_members(
    params: RBFParams, seeds: list[int], multiple: int = MEMBER_MULTIPLE
) -> tuple[RBFParams, list[int]]:
    """Pad a batch of world models and agent seeds with copies of member 0 to a multiple of
    ``multiple`` members (the padding is trained and thrown away).

    Why: torch's fused CPU kernels (the fused Adam of :mod:`.batched_agents`) run vector
    lanes over each stacked parameter and finish a remainder too short for a vector with
    scalar code, which rounds differently. A member whose parameters (``log_alpha`` has one
    number per member) fell in that remainder would get a slightly different agent, and RL
    amplifies the difference into a different utility. With every stacked tensor a multiple
    of the vector width (8 floats with AVX2, 16 with AVX-512) a subset's agent is the same
    in any batch and at any position, so a recomputed subset reproduces its table entry.
    """
    r = len(seeds)
    pad = (-r) % multiple
    if pad == 0:
        return params, list(seeds)
    idx = np.concatenate([np.arange(r), np.zeros(pad, dtype=np.int64)])
    return params.take(idx), list(seeds) + [seeds[0]] * pad


def train_agents(
    case: CaseStudy,
    params: RBFParams,
    algo: str,
    seeds: list[int],
    device: torch.device | str | None = None,
    budget=None,
):
    """Train one agent per stacked world model (batch padded by :func:`pad_members`).

    Returns the batched policy, on the CPU; its first ``len(seeds)`` members are the agents
    asked for. ``budget`` defaults to the fixed :data:`SAC_BUDGET` / :data:`PPO_BUDGET`.
    """
    if algo not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algo!r}")
    torch.set_num_threads(1)
    dev = torch.device(device) if device is not None else default_device()
    params, seeds = pad_members(params, seeds)
    model = BatchedRBF(params, dev)
    if algo == "sac":
        policy = train_sac(BatchedPIDEnv(case, model, 1), seeds, budget or SAC_BUDGET)
    else:
        b = budget or PPO_BUDGET
        policy = train_ppo(BatchedPIDEnv(case, model, b.n_envs), seeds, b)
    return _on_cpu(policy)


def train_and_evaluate(
    case: CaseStudy,
    params: RBFParams,
    algo: str,
    seeds: list[int],
    device: torch.device | str | None = None,
    budget=None,
) -> dict[str, np.ndarray]:
    """Train one agent per stacked world model in ``params`` and evaluate it on the system.

    ``budget`` defaults to the fixed :data:`SAC_BUDGET` / :data:`PPO_BUDGET`.
    """
    policy = train_agents(case, params, algo, seeds, device, budget)
    n_padded = policy.n_members
    out = evaluate_on_system(case, policy, n_padded, EVAL_SEED)
    out = {k: v[: len(seeds)] for k, v in out.items()}
    valid = np.asarray(params.valid, dtype=bool)
    out["utility"] = np.where(out["success"] & valid, out["reward"], np.nan)
    out["success"] = out["success"] & valid
    return out


def _on_cpu(policy):
    net = policy.actor if hasattr(policy, "actor") else policy.pi
    net.to("cpu")
    return policy


def traces_digest(traces: Traces) -> str:
    return hashlib.sha256(np.ascontiguousarray(traces.values).tobytes()).hexdigest()[:16]


def _chunk_config(case_key: str, traces: Traces, algo: str, seed: int, masks: list[int]) -> dict:
    return {
        "case": case_key,
        "algo": algo,
        "seed": seed,
        "budget": budget_of(algo),
        "masks": [int(m) for m in masks],
        "traces": traces_digest(traces),
        "eval_seed": EVAL_SEED,
        "world_model": "fixed-basis",
    }


def _compute(case: CaseStudy, traces: Traces, algo: str, seeds: list[int], masks: list[int]):
    """Utilities of every (seed, mask) pair, all agents in one batch."""
    all_masks = np.array([m for _ in seeds for m in masks], dtype=np.int64)
    agent_seeds = [subset_seed(s, m) for s in seeds for m in masks]
    t0 = time.perf_counter()
    res = train_and_evaluate(case, SufficientStatistics(traces).fit(all_masks), algo, agent_seeds)
    seconds = (time.perf_counter() - t0) / len(seeds)
    out, k = {}, len(masks)
    for i, s in enumerate(seeds):
        out[s] = {
            "mask": [int(m) for m in masks],
            "utility": res["utility"][i * k : (i + 1) * k].tolist(),
            "convergence": res["convergence"][i * k : (i + 1) * k].tolist(),
            "seconds": seconds,  # compute time of this seed's share of the batch
        }
    return out


def _chunk(
    case_key: str,
    traces: Traces,
    algo: str,
    seed: int,
    masks: list[int],
    use_cache: bool,
) -> dict[str, list]:
    case = case_study(case_key)
    config = _chunk_config(case_key, traces, algo, seed, masks)
    compute = lambda: _compute(case, traces, algo, [seed], masks)[seed]  # noqa: E731
    return cached("action_shapley_utility", config, compute, enabled=use_cache, code=UTILITY_CODE)


def precompute_seeds(
    case: CaseStudy, algo: str, seeds: list[int], masks: list[int], traces: Traces | None = None
) -> None:
    """Fill the cache for several seeds at once (one batch of ``len(seeds) * len(masks)``
    agents; bigger batches cost less per agent). Each seed's result is stored under exactly
    the key :class:`AgentGame` uses for a chunk of ``masks``, so it is reused as is.
    """
    traces = traces if traces is not None else load_traces(traces_path(case), case)
    todo = [s for s in seeds if not _is_cached(_chunk_config(case.key, traces, algo, s, masks))]
    if not todo:
        return
    results = _compute(case, traces, algo, todo, list(masks))
    for s in todo:
        cfg = _chunk_config(case.key, traces, algo, s, masks)
        cached("action_shapley_utility", cfg, lambda s=s: results[s], code=UTILITY_CODE)


def _is_cached(config: dict) -> bool:
    from ..repro.cache import is_cached

    return is_cached("action_shapley_utility", config, UTILITY_CODE)


@dataclass
class AgentGame(ValuationGame):
    """U(d) of one case study, algorithm and seed, evaluated in cached chunks."""

    case: CaseStudy
    algo: str = "sac"
    seed: int = 0
    traces: Traces | None = None
    chunk_size: int = 64
    n_jobs: int = 1
    use_cache: bool = True
    convergence: dict[int, int] = field(default_factory=dict)
    compute_seconds: float = 0.0  #: summed compute time of the chunks (cached ones included)

    def __post_init__(self) -> None:
        super().__init__(self.case.n, self.case.points)
        budget_of(self.algo)
        if self.traces is None:
            self.traces = load_traces(traces_path(self.case), self.case)

    def _evaluate(self, masks: np.ndarray) -> np.ndarray:
        chunks = [
            masks[i : i + self.chunk_size].tolist() for i in range(0, masks.size, self.chunk_size)
        ]
        results = Parallel(n_jobs=self.n_jobs, return_as="generator")(
            delayed(_chunk)(self.case.key, self.traces, self.algo, self.seed, c, self.use_cache)
            for c in chunks
        )
        values = {}
        label = f"{self.case.key} {self.algo} seed {self.seed}"
        for res in tqdm(results, total=len(chunks), desc=label, disable=len(chunks) < 4):
            self.compute_seconds += float(res.get("seconds", 0.0))
            for m, u, c in zip(res["mask"], res["utility"], res["convergence"], strict=True):
                values[m] = u
                self.convergence[m] = int(c)
        return np.array([values[int(m)] for m in masks], dtype=float)


def subset_label(case: CaseStudy, mask: int) -> str:
    return "{" + ",".join(p for k, p in enumerate(case.points) if mask >> k & 1) + "}"


# --- a documented sample of subsets for Kubernetes (n = 15) ---------------------------------
def stratified_pairs(n: int, per_stratum: int, seed: int = 0) -> list[tuple[int, int, int]]:
    """``(k, d, d | 1 << k)`` for ``per_stratum`` uniform subsets ``d`` of each size ``i`` of
    ``D \\ {k}``, for every point ``k`` and size ``i = 0..n-1`` (Algorithm 2's sampling).
    """
    rng = np.random.default_rng([seed, n, per_stratum])
    out = []
    for k in range(n):
        others = np.array([j for j in range(n) if j != k])
        for i in range(n):
            for _ in range(per_stratum):
                chosen = rng.choice(others, size=i, replace=False)
                d = int(sum(1 << int(j) for j in chosen))
                out.append((k, d, d | 1 << k))
    return out


def stratified_estimate(
    n: int, pairs: list[tuple[int, int, int]], utility: dict[int, float]
) -> np.ndarray:
    """Unbiased estimate of Eq. 1 (C_f = 1/n, null pairs contribute nothing) from the pairs.

    Eq. 1 gives each size ``i`` the *average* marginal contribution over the ``C(n-1, i)``
    subsets of that size; the sample mean of the drawn pairs of size ``i`` estimates it.
    """
    sums = np.zeros((n, n))
    counts = np.zeros((n, n))
    for k, d, dk in pairs:
        i = bin(d).count("1")
        delta = utility[dk] - utility[d]
        counts[k, i] += 1
        if not np.isnan(delta):
            sums[k, i] += delta
    return (sums / np.maximum(counts, 1)).sum(1) / n


# --- the world-model basis vs the paper's per-subset fit -------------------------------------
def agreement_sample(case: CaseStudy, per_size: int = 8, seed: int = 0) -> list[int]:
    """Non-empty subsets for :func:`world_model_agreement`: up to ``per_size`` of every size
    (all of a size that has fewer), drawn with a seeded generator, sorted."""
    rng = np.random.default_rng(seed)
    masks = np.arange(1, 1 << case.n)
    sizes = np.array([bin(int(m)).count("1") for m in masks])
    pick = []
    for k in range(1, case.n + 1):
        of_size = masks[sizes == k]
        pick += rng.choice(of_size, min(per_size, of_size.size), replace=False).tolist()
    return sorted(int(m) for m in pick)


def world_model_agreement(
    case: CaseStudy, algo: str, masks: list[int], runs: int = 1, base_seed: int = 0
) -> pd.DataFrame:
    """The multi-run utility of the same subsets under our fixed-basis world model and under
    the paper's per-subset fit (PCA and k-means RBF centres on the subset's data alone, §2),
    with the same runs (agent seeds), evaluation episodes and null rule, plus how far the two
    models' predicted statistics are apart on the subset's own transitions (units of the
    statistic). For Kubernetes, where every subset's table uses the fixed basis, this is the
    check of that choice (issue 17); the small case studies have both full tables instead.
    """
    from .world_model import transitions

    traces = load_traces(traces_path(case), case)
    masks = [int(m) for m in masks]
    utilities = {}
    for kind in WORLD_MODELS:
        out = multi_run_outcomes(
            case, algo, masks, runs, base_seed, traces=traces, world_model=kind
        )
        ret = np.array([out[r]["return"] for r in range(runs)], dtype=float).T
        ok = np.array([out[r]["success"] for r in range(runs)], dtype=bool).T
        utilities[kind] = utility_from_runs(ret, ok)[0]
    fixed = world_models(traces, masks, "fixed-basis", base_seed)
    paper = world_models(traces, masks, "per-subset", base_seed)
    xs, _ = transitions(traces)
    gap = []
    for r, m in enumerate(masks):
        x = np.vstack([xs[k] for k in range(case.n) if m >> k & 1])[None]
        diff = fixed.member(r).predict(x) - paper.member(r).predict(x)
        gap.append(float(np.abs(diff)[0, :, 0].mean() * case.cap))
    u_fixed, u_paper = utilities["fixed-basis"], utilities["per-subset"]
    return pd.DataFrame(
        {
            "case": case.key,
            "algo": algo,
            "mask": masks,
            "size": [bin(m).count("1") for m in masks],
            "subset": [subset_label(case, m) for m in masks],
            "runs": runs,
            "utility_fixed_basis": u_fixed,
            "utility_per_subset": u_paper,
            "same_verdict": np.isnan(u_fixed) == np.isnan(u_paper),
            "mean_abs_prediction_gap": gap,
        }
    )


# --- the multi-run utility (issue 17): an estimate of an expectation ---------------------------
#: training runs per subset and evaluation episodes per run of the committed small-case tables
RUNS = 10
EPISODES = 5
#: the null rule of the multi-run utility -- OURS, not the paper's (the paper's rule is per
#: agent: U(d) is null when that agent fails its objective; its 25 episodes belong to §4.2's
#: validation, not to U(d)): a run *reaches the goal* when its agent reaches it in every one of
#: its evaluation episodes; U(d) = mean system return of the runs that reach the goal, and U(d)
#: is null when more than half of the runs fail.
NULL_RULE = (
    "ours: a run reaches the goal when its agent reaches it in every evaluation episode; "
    "U(d) = mean system return (over its episodes) of the runs that reach the goal; "
    "U(d) is null when more than half of the runs fail"
)


def run_seed(base_seed: int, run: int) -> int:
    """Agent seed of run ``run``: the same for every subset (common random numbers), so the
    marginal ``U(d + k) - U(d)`` of one run differs by the data only, not by the seed."""
    ss = np.random.SeedSequence([int(base_seed), int(run), 1717])
    return int(ss.generate_state(1)[0] % (2**31 - 8))


def episode_seeds(base_seed: int, episodes: int = EPISODES) -> list[int]:
    """Noise seeds of the evaluation episodes, shared by every subset and run."""
    return [EVAL_SEED + 1000 * int(base_seed) + j for j in range(episodes)]


def evaluate_episodes(case: CaseStudy, policy, n_members: int, seeds: list[int]) -> dict:
    """:func:`~.pid_env.evaluate_on_system` once per episode seed: ``(members, episodes)``."""
    outs = [evaluate_on_system(case, policy, n_members, s) for s in seeds]
    return {k: np.stack([o[k] for o in outs], 1) for k in ("reward", "convergence", "success")}


def run_outcomes(
    case: CaseStudy,
    traces: Traces,
    algo: str,
    masks: list[int],
    runs: list[int],
    base_seed: int = 0,
    episodes: int = EPISODES,
    budget=None,
    world_model: str = "fixed-basis",
) -> dict[int, dict[str, list]]:
    """Train one agent per (run, subset) -- agent seed :func:`run_seed` (run), the same for
    every subset -- all in one padded batch, and evaluate each on the shared episode seeds.
    ``world_model``: :func:`world_models`.

    Returns per run: ``mask``, ``return`` (mean system return over the episodes),
    ``success`` (goal reached in every episode, :data:`NULL_RULE`), ``convergence`` (mean
    steps over the episodes; ``HORIZON + 1`` for an episode that never converges), and the
    compute ``seconds`` charged to the run.
    """
    masks = [int(m) for m in masks]
    all_masks = np.array([m for _ in runs for m in masks], dtype=np.int64)
    seeds = [run_seed(base_seed, r) for r in runs for _ in masks]
    t0 = time.perf_counter()
    params = world_models(traces, all_masks, world_model, base_seed)
    policy = train_agents(case, params, algo, seeds, None, budget)
    ev = evaluate_episodes(case, policy, policy.n_members, episode_seeds(base_seed, episodes))
    seconds = (time.perf_counter() - t0) / len(runs)
    valid = np.asarray(params.valid, dtype=bool)
    k = len(masks)
    out = {}
    for i, r in enumerate(runs):
        sl = slice(i * k, (i + 1) * k)
        out[r] = {
            "mask": masks,
            "return": ev["reward"][sl].mean(1).tolist(),
            "success": (ev["success"][sl].all(1) & valid[sl]).tolist(),
            "convergence": ev["convergence"][sl].mean(1).tolist(),
            "seconds": seconds,
        }
    return out


WORLD_MODELS = ("fixed-basis", "per-subset")


def world_models(traces: Traces, masks, kind: str = "fixed-basis", seed: int = 0) -> RBFParams:
    """The world models of the subsets ``masks``, stacked.

    ``fixed-basis`` (our default, notebook 20): one RBF basis chosen without data, each
    subset's output layer the ridge solution of its own traces. ``per-subset`` (the paper's
    procedure, §2): PCA and k-means RBF centres fitted on the subset's data alone
    (:func:`~.world_model.fit_per_subset`, seeded by ``seed``, the table's base seed: the
    same model for every run of a subset).
    """
    masks = np.asarray(masks, dtype=np.int64)
    if kind == "fixed-basis":
        return SufficientStatistics(traces).fit(masks)
    if kind == "per-subset":
        from .world_model import fit_per_subset

        fitted = {int(m): fit_per_subset(traces, int(m), seed) for m in np.unique(masks)}
        return RBFParams.stack([fitted[int(m)] for m in masks])
    raise ValueError(f"world_model must be one of {WORLD_MODELS}, got {kind!r}")


def _runs_config(
    case_key, traces, algo, base_seed, run, masks, episodes, world_model="fixed-basis"
) -> dict:
    return {
        "case": case_key,
        "algo": algo,
        "base_seed": base_seed,
        "run": run,
        "agent_seed": run_seed(base_seed, run),
        "episodes": episode_seeds(base_seed, episodes),
        "budget": budget_of(algo),
        "masks": [int(m) for m in masks],
        "traces": traces_digest(traces),
        "world_model": world_model,
    }


def multi_run_outcomes(
    case: CaseStudy,
    algo: str,
    masks: list[int],
    runs: int = RUNS,
    base_seed: int = 0,
    episodes: int = EPISODES,
    traces: Traces | None = None,
    group: int | None = None,
    use_cache: bool = True,
    world_model: str = "fixed-basis",
) -> dict[int, dict[str, list]]:
    """Outcomes of ``runs`` runs of every subset in ``masks``, cached per run (resumable).

    Runs not yet cached are trained ``group`` at a time in one batch (default: as many as
    keep the batch at about 1,024 agents).
    """
    traces = traces if traces is not None else load_traces(traces_path(case), case)
    masks = [int(m) for m in masks]
    group = group or max(1, 1024 // max(1, len(masks)))
    cfg = {
        r: _runs_config(case.key, traces, algo, base_seed, r, masks, episodes, world_model)
        for r in range(runs)
    }
    from ..repro.cache import is_cached

    todo = [
        r for r in range(runs)
        if not (use_cache and is_cached("action_shapley_runs", cfg[r], UTILITY_CODE))
    ]  # fmt: skip
    out: dict[int, dict] = {}
    for i in range(0, len(todo), group):
        part = todo[i : i + group]
        res = run_outcomes(
            case, traces, algo, masks, part, base_seed, episodes, world_model=world_model
        )
        for r in part:
            out[r] = cached(
                "action_shapley_runs", cfg[r], lambda r=r, res=res: res[r], enabled=use_cache,
                code=UTILITY_CODE,
            )  # fmt: skip
    for r in range(runs):
        if r not in out:
            out[r] = cached(
                "action_shapley_runs", cfg[r], lambda: None, enabled=True, code=UTILITY_CODE
            )
    return out


def utility_from_runs(returns: np.ndarray, success: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``U`` and failure counts from per-run arrays ``(..., R)`` under :data:`NULL_RULE`."""
    returns = np.asarray(returns, dtype=float)
    success = np.asarray(success, dtype=bool)
    runs = success.shape[-1]
    fails = runs - success.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(success, returns, 0.0).sum(-1) / success.sum(-1)
    return np.where(2 * fails > runs, np.nan, mean), fails


def plateau_sweep(case: CaseStudy, algo: str, steps: list[int], runs: int = 5) -> pd.DataFrame:
    """All-data agents of ``runs`` runs at each training budget (batched agents), evaluated
    on the shared episodes: the budget-plateau check of issue 17 (:func:`plateau_budget`)."""
    from dataclasses import replace

    from .batched_agents import PPO_BUDGET, SAC_BUDGET

    traces = load_traces(traces_path(case), case)
    rows = []
    for total in steps:
        budget = replace(SAC_BUDGET if algo == "sac" else PPO_BUDGET, total_steps=int(total))
        t0 = time.perf_counter()
        res = run_outcomes(
            case, traces, algo, [(1 << case.n) - 1], list(range(runs)), budget=budget
        )
        secs = (time.perf_counter() - t0) / runs
        rows += [
            {
                "case": case.key,
                "algo": algo,
                "steps": int(total),
                "run": r,
                "system_return": res[r]["return"][0],
                "success": bool(res[r]["success"][0]),
                "convergence": res[r]["convergence"][0],
                "seconds": secs,
            }
            for r in range(runs)
        ]
    return pd.DataFrame(rows)


def plateau_budget(
    sweep: pd.DataFrame, tolerance: float = 0.10, floor: float = 1.0
) -> pd.DataFrame:
    """Per (case, algorithm): the smallest budget at which every run succeeds on all data and
    the mean system return is within ``tolerance`` (relative) of the largest budget's.

    ``floor`` (ours, in the statistic's units: 1 % CPU, 1 ms) is the smallest tolerance: a
    relative one is void when the returns are ~0 (database: the all-data agents reach the goal
    in one step, returns -0.54 / -0.06 / -0.02 at 1x / 2x / 4x).
    """
    out = []
    for (case, algo), g in sweep.groupby(["case", "algo"], sort=False):
        by = g.groupby("steps").agg(
            all_succeed=("success", "all"), mean_return=("system_return", "mean")
        )
        top = by["mean_return"].iloc[-1]
        ok = by["all_succeed"] & (
            (by["mean_return"] - top).abs() <= max(tolerance * abs(top), floor)
        )
        out.append(
            {
                "case": case,
                "algo": algo,
                "budgets": ",".join(str(s) for s in by.index),
                "plateau budget": int(by.index[ok.to_numpy()][0]) if ok.any() else None,
                "mean return at largest": float(top),
            }
        )
    return pd.DataFrame(out)
