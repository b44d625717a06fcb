"""Regenerate the committed Action Shapley data (``make action-shapley-traces`` / ``-tables``).

    python -m shaprl.action_shapley.cli traces
    python -m shaprl.action_shapley.cli tables [--cases vm_right_sizing ...] [--seeds 0 1 2]
    python -m shaprl.action_shapley.cli kubernetes-sample [--per-stratum 2]

``tables`` computes every subset's utility (both algorithms) in cached chunks: an interrupted
run resumes from the cache. ``kubernetes-sample`` computes the documented stratified sample
of Kubernetes subsets (:func:`~.utility.stratified_pairs`) chunk by chunk and rewrites its
table after every chunk, so whatever is complete can be committed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .case_studies import CASE_STUDIES, KUBERNETES
from .traces import generate_traces, traces_path, write_traces
from .utility import ALGORITHMS, build_table, stratified_pairs, write_table

SMALL = ("vm_right_sizing", "load_balancing", "database_tuning")
TRACE_SEED = 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shaprl.action_shapley.cli")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("traces")
    t = sub.add_parser("tables")
    t.add_argument("--cases", nargs="*", default=list(SMALL))
    t.add_argument("--algos", nargs="*", default=list(ALGORITHMS))
    t.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    k = sub.add_parser("kubernetes-sample")
    k.add_argument("--per-stratum", type=int, default=2)
    k.add_argument("--algos", nargs="*", default=list(ALGORITHMS))
    k.add_argument("--chunk", type=int, default=64)
    args = ap.parse_args(argv)
    if args.cmd == "traces":
        for case in CASE_STUDIES.values():
            path = traces_path(case)
            write_traces(generate_traces(case, TRACE_SEED), path)
            print(f"wrote {path}")
    elif args.cmd == "tables":
        for key in args.cases:
            case = CASE_STUDIES[key]
            for algo in args.algos:
                for seed in args.seeds:
                    t0 = time.perf_counter()
                    frame = build_table(case, algo, seed)
                    secs = time.perf_counter() - t0
                    path = write_table(frame, case, algo, seed, secs)
                    print(f"wrote {path} ({len(frame)} subsets, {secs:.0f} s)", flush=True)
    else:
        masks = np.unique(
            [m for _, d, dk in stratified_pairs(KUBERNETES.n, args.per_stratum) for m in (d, dk)]
        )
        for algo in args.algos:
            done: list = []
            t0 = time.perf_counter()
            for i in range(0, masks.size, args.chunk):
                done.append(build_table(KUBERNETES, algo, 0, masks[i : i + args.chunk]))
                import pandas as pd

                frame = pd.concat(done, ignore_index=True)
                secs = time.perf_counter() - t0
                path = write_table(frame, KUBERNETES, algo, 0, secs)
                print(
                    f"{path}: {len(frame)}/{masks.size} sampled subsets, {secs:.0f} s", flush=True
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
