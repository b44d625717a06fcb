"""Regenerate the committed Action Shapley data (``make action-shapley-traces`` / ``-tables``).

    python -m shaprl.action_shapley.cli traces
    python -m shaprl.action_shapley.cli tables [--cases vm_right_sizing ...] [--runs 10]
    python -m shaprl.action_shapley.cli kubernetes-sample [--per-stratum 1] [--sample-seeds 0 1]

``tables`` computes, for the small case studies, ``--runs`` training runs of every subset
(both algorithms; common random numbers: run ``r`` has one agent seed for every subset;
:data:`~.utility.EPISODES` evaluation episodes each) and writes schema-2 tables with the
per-run values; each run is cached as soon as its batch finishes, so an interrupted run
resumes from the cache. For Kubernetes (``--cases kubernetes``: 32,768 subsets, one run
each) it values ``--chunk`` subsets at a time (``--jobs`` chunks at once, as joblib workers)
and rewrites a committed partial table after every chunk
(:func:`~.tables.build_chunked_table`), so a run that stops -- or a session that ends --
resumes from what was committed. ``kubernetes-sample`` computes the documented stratified
sample of Kubernetes subsets (:func:`~.utility.stratified_pairs`) chunk by chunk and
rewrites its table after every chunk, so whatever is complete can be committed.

Every command holds the repository-wide data lock only while it writes a file
(:func:`~.tables.save_table` and :func:`~.tables.save_check` take it themselves, ``traces``
around each trace file), so notebooks read ``data/`` between the writes; ``verify`` holds it
shared throughout.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..repro.locks import data_lock, writing_data
from .case_studies import CASE_STUDIES, KUBERNETES
from .tables import build_chunked_table, build_multi_table, build_table, save_check, save_table
from .traces import generate_traces, traces_path, write_traces
from .utility import ALGORITHMS, EPISODES, RUNS, stratified_pairs

SMALL = ("vm_right_sizing", "load_balancing", "database_tuning")
TRACE_SEED = 0


def _pick(frame, n_null: int, n_ok: int, seed: int = 0) -> list[int]:
    """Subsets of a committed table with both verdicts represented (non-empty subsets)."""
    rng = np.random.default_rng(seed)
    frame = frame[frame["mask"] > 0]
    null = frame[frame.utility.isna()]["mask"].to_numpy()
    ok = frame[frame.utility.notna()]["mask"].to_numpy()
    pick = list(rng.choice(null, min(n_null, null.size), replace=False))
    pick += list(rng.choice(ok, min(n_ok, ok.size), replace=False))
    return [int(m) for m in pick]


def run_checks(which: list[str]) -> None:
    """Write the budget plateaus (batched and SB3), the SB3 reference check, Kubernetes'
    world-model agreement and load balancing's action-step sweep (:mod:`.diagnostics`)."""
    import pandas as pd

    from .sb3_reference import reference_check
    from .tables import load_table
    from .traces import load_traces

    if "plateau" in which:  # issue 17: all-data agents, 5 runs, up to 4x the budget
        from .utility import plateau_sweep

        rows = []
        first = {"sac": 6000, "ppo": 6144}  # the budgets before issue 17; swept to 4x
        for key in SMALL:
            for algo in ("ppo", "sac"):
                steps = [first[algo] * k for k in (1, 2, 4)]
                rows.append(plateau_sweep(CASE_STUDIES[key], algo, steps))
                save_check(pd.concat(rows), "budget_plateau")
                print(rows[-1].to_string(), flush=True)
    if "sb3-plateau" in which:  # issue 17: SB3 beside the batched agents
        from .sb3_reference import (
            SB3_PLATEAU_ALGOS,
            SB3_PLATEAU_STEPS,
            committed_block,
            sb3_plateau_sweep,
        )
        from .tables import check_path, load_check

        done = load_check("sb3_plateau") if check_path("sb3_plateau").exists() else None
        rows = []
        for key in SMALL:
            for algo in SB3_PLATEAU_ALGOS:
                steps = SB3_PLATEAU_STEPS[algo]
                if (kept := committed_block(done, key, algo, steps)) is not None:
                    rows.append(kept)  # the committed agents, not trained again
                    continue
                rows.append(sb3_plateau_sweep(CASE_STUDIES[key], algo, steps))
                save_check(pd.concat(rows), "sb3_plateau")
                print(rows[-1].to_string(), flush=True)
    if "step" in which:  # issue 17: is load balancing's degenerate game the action step's doing?
        from .diagnostics import step_sweep

        case = CASE_STUDIES["load_balancing"]
        frame = step_sweep(case, "ppo", [1.0, 2.0, 3.0, 6.0], runs=3)
        save_check(frame, "step_sweep")
        print(frame.groupby("max_step")["success"].mean().to_string(), flush=True)
    if "agreement" in which:  # issue 17: Kubernetes keeps the fixed basis; is it the paper's?
        from .utility import agreement_sample, world_model_agreement

        case = CASE_STUDIES["kubernetes"]
        masks = agreement_sample(case)
        rows = []
        for algo in ("ppo", "sac"):  # the cheaper one first; written after each
            rows.append(world_model_agreement(case, algo, masks))
            save_check(pd.concat(rows), "world_model_agreement")
            print(rows[-1].groupby("size")["same_verdict"].mean().to_string(), flush=True)
    if "reference" in which:
        rows = []
        for key in ("vm_right_sizing", "load_balancing"):
            case = CASE_STUDIES[key]
            tr = load_traces(traces_path(case), case)
            masks = _pick(load_table(case, "ppo", 0)[0], 1, 1)
            for algo in ("ppo", "sac"):  # the cheaper one first; written after each
                rows.append(reference_check(case, tr, masks, algo))
                save_check(pd.concat(rows), "sb3_reference")
                print(rows[-1].to_string(), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shaprl.action_shapley.cli")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("traces")
    t = sub.add_parser("tables")
    t.add_argument("--cases", nargs="*", default=list(SMALL))
    t.add_argument("--algos", nargs="*", default=list(ALGORITHMS))
    t.add_argument("--seeds", nargs="*", type=int, default=[0], help="base seeds (one table each)")
    t.add_argument(
        "--runs", type=int, default=None, help=f"runs per subset (small: {RUNS}, large: 1)"
    )
    t.add_argument("--chunk", type=int, default=1024, help="subsets per batch (large cases)")
    t.add_argument("--max-chunks", type=int, default=None, help="stop after this many chunks")
    t.add_argument(
        "--jobs", type=int, default=1, help="chunks valued at once (large cases; joblib workers)"
    )
    t.add_argument(
        "--world-model",
        default="fixed-basis",
        choices=["fixed-basis", "per-subset"],
        help="small cases: per-subset = the paper's fit (tables <case>_<algo>_seed0_per_subset)",
    )
    c = sub.add_parser(
        "checks",
        help="budget plateau (batched, SB3), SB3 reference, world-model agreement, action step",
    )
    c.add_argument(
        "--which",
        nargs="*",
        choices=["plateau", "sb3-plateau", "reference", "agreement", "step"],
        default=["plateau", "sb3-plateau", "reference", "agreement", "step"],
    )
    v = sub.add_parser("verify", help="recompute every committed utility and compare")
    v.add_argument("--cases", nargs="*", default=list(CASE_STUDIES))
    v.add_argument("--algos", nargs="*", default=list(ALGORITHMS))
    ks = sub.add_parser("kubernetes-seeds", help="Kubernetes seeds 1-4 by corrected Algorithm 2")
    ks.add_argument("--algos", nargs="*", default=list(ALGORITHMS))
    ks.add_argument("--seeds", nargs="*", type=int, default=None)
    k = sub.add_parser("kubernetes-sample")
    k.add_argument("--per-stratum", type=int, default=1)
    k.add_argument("--algos", nargs="*", default=list(ALGORITHMS))
    k.add_argument("--chunk", type=int, default=256)
    k.add_argument("--sample-seeds", nargs="*", type=int, default=[0, 1])
    args = ap.parse_args(argv)
    if args.cmd == "verify":
        with data_lock(shared=True):
            return _verify(args.cases, args.algos)
    return _run(args)  # minutes to hours: the data lock is held only while writing


def _verify(cases: list[str], algos: list[str]) -> int:
    """Recompute every committed (seed, subset) utility (``make action-shapley-verify``)."""
    from .tables import recheck_summary, recheck_tables

    failed = 0
    for key in cases:
        for algo in algos:
            try:
                frame = recheck_tables(CASE_STUDIES[key], algo, n_sample=None)
            except RuntimeError as err:
                failed += 1
                print(f"{key} {algo}: FAILED: {err}", flush=True)
                continue
            print(f"{key} {algo}: {recheck_summary(frame)[:300]}", flush=True)
    return 1 if failed else 0


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "traces":
        for case in CASE_STUDIES.values():
            path = traces_path(case)
            traces = generate_traces(case, TRACE_SEED)
            with writing_data():  # no notebook reads the traces while they change
                write_traces(traces, path)
            print(f"wrote {path}")
    elif args.cmd == "tables":
        for key in args.cases:
            case = CASE_STUDIES[key]
            for algo in args.algos:
                if 1 << case.n > args.chunk:  # Kubernetes: chunked, resumable across sessions
                    for seed in args.seeds:
                        frame = build_chunked_table(
                            case, algo, seed, args.chunk, args.runs or 1, EPISODES,
                            args.max_chunks, n_jobs=args.jobs,
                        )  # fmt: skip
                        state = "complete" if frame is not None else "partial (run again)"
                        print(f"{case.key} {algo} seed {seed}: {state}", flush=True)
                    continue
                for seed in args.seeds:
                    t0 = time.perf_counter()
                    frame = build_multi_table(
                        case, algo, seed, args.runs or RUNS, EPISODES, world_model=args.world_model
                    )
                    secs = time.perf_counter() - t0
                    path = save_table(
                        frame, case, algo, seed, secs, episodes=EPISODES,
                        world_model=args.world_model,
                    )  # fmt: skip
                    nulls = int(frame["utility"].iloc[1:].isna().sum())
                    print(
                        f"wrote {path} ({len(frame)} subsets x {args.runs or RUNS} runs, "
                        f"{nulls} null, "
                        f"{secs:.0f} s wall)",
                        flush=True,
                    )
    elif args.cmd == "checks":
        run_checks(args.which)
    elif args.cmd == "kubernetes-seeds":
        from .seed_spread import EXTRA_SEEDS, seed_estimate

        for algo in args.algos:
            for seed in args.seeds or EXTRA_SEEDS:
                res = seed_estimate(KUBERNETES, algo, seed)
                print(f"kubernetes {algo} seed {seed}: {res.evaluations} subsets", flush=True)
    else:
        import pandas as pd

        # one block of chunks per sample seed, new subsets only: earlier chunks stay cached
        blocks, seen = [], set()
        for sample_seed in args.sample_seeds:
            pairs = stratified_pairs(KUBERNETES.n, args.per_stratum, sample_seed)
            new = np.unique([m for _, d, dk in pairs for m in (d, dk) if m not in seen])
            seen.update(new.tolist())
            blocks.append(new)
        total = sum(b.size for b in blocks)
        for algo in args.algos:
            done: list = []
            t0 = time.perf_counter()
            for masks in blocks:
                for i in range(0, masks.size, args.chunk):
                    chunk = masks[i : i + args.chunk]
                    done.append(build_table(KUBERNETES, algo, 0, chunk, args.chunk))
                    frame = pd.concat(done, ignore_index=True)
                    secs = time.perf_counter() - t0
                    path = save_table(frame, KUBERNETES, algo, 0, secs)
                    print(f"{path}: {len(frame)}/{total} sampled subsets, {secs:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
