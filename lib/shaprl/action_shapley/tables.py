"""Committed utility tables: written, read with validation, and re-checked against the code.

A utility table ``data/action_shapley/utilities/<case>_<algo>_seed<s>.csv`` holds one row per
subset (``mask, subset, utility, convergence``; an empty utility is a null subset) and a JSON
beside it (:mod:`shaprl.repro.data`: ``kind: utility``, ``schema_version``) with the
configuration, the digest of the traces it was built from, the utility code's fingerprint and
the machine it ran on.

:func:`load_table` is the one way to read a table. Beyond the generic checks (header, types,
unique masks) it checks that every ``subset`` label matches its ``mask``, that the masks lie in
``0 .. 2**n - 1``, that a table marked ``complete`` covers all of them exactly (partial tables,
e.g. the committed Kubernetes sample, stay readable), and that the traces it was built from are
the current traces. Every problem names the file, the line, the column and the fix.

:func:`recheck_tables` recomputes a sample of committed subsets and compares: the sample is
seeded by the tables' digests and the utility code's fingerprint (so it changes exactly when
they do), drawn from several (algorithm, seed) tables, and trained as one padded batch per
(case, algorithm).
"""

from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..repro import repo_root
from ..repro.cache import library_fingerprint
from ..repro.data import (
    Column,
    DataFormatError,
    TableSchema,
    check_schema,
    fail,
    read_table,
    write_table,
)
from .case_studies import CaseStudy
from .traces import load_traces, traces_path
from .utility import (
    EVAL_SEED,
    UTILITY_CODE,
    AgentGame,
    budget_of,
    subset_label,
    subset_seed,
    traces_digest,
    train_and_evaluate,
)
from .world_model import SufficientStatistics

TABLE_TOLERANCE = 1e-6  #: recomputed utilities must agree this closely (same code, same seeds)

UTILITY = TableSchema(
    "utility",
    (
        Column("mask", "int"),
        Column("subset", "str"),
        Column("utility", "float", empty=True),
        Column("convergence", "int"),
    ),
    key=("mask",),
)

#: fields of the JSON that describe the machine: a mismatch where they differ is a warning
MACHINE_FIELDS = ("cpu_model", "cpu_capability", "torch", "mkl", "threads")


def tables_dir(root: Path | None = None) -> Path:
    return (
        (Path(root) if root is not None else repo_root()) / "data" / "action_shapley" / "utilities"
    )


def table_path(case: CaseStudy, algo: str, seed: int, root: Path | None = None) -> Path:
    return tables_dir(root) / f"{case.key}_{algo}_seed{seed}.csv"


def regenerate_target(case: CaseStudy) -> str:
    """The make target that (re)computes ``case``'s committed tables."""
    return "action-shapley-kubernetes" if case.key == "kubernetes" else "action-shapley-tables"


def machine() -> dict[str, object]:
    """The CPU, vector capability, torch/MKL versions and thread count of this process."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mkl = next(
        (
            line.strip(" -")
            for line in torch.__config__.show().splitlines()
            if "Math Kernel Library Version" in line
        ),
        "none",
    )
    return {
        "cpu_model": model,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "mkl": mkl,
        "threads": torch.get_num_threads(),
    }


def build_table(
    case: CaseStudy,
    algo: str,
    seed: int,
    masks: np.ndarray | None = None,
    chunk_size: int = 64,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Compute (or read from the cache) the utilities of ``masks`` (default: all subsets).

    Chunks of ``chunk_size`` subsets train as one batch (bigger is cheaper per agent, up to
    about 1,024 on a CPU) and ``n_jobs`` chunks run at once; each finished chunk is cached,
    so an interrupted run resumes where it stopped.
    """
    game = AgentGame(case, algo, seed, chunk_size=chunk_size, n_jobs=n_jobs)
    game.use_cache = True
    masks = np.arange(1 << case.n) if masks is None else np.asarray(masks)
    util = game.utilities(masks)
    frame = pd.DataFrame(
        {
            "mask": masks,
            "subset": [subset_label(case, int(m)) for m in masks],
            "utility": util,
            "convergence": [game.convergence[int(m)] for m in masks],
        }
    )
    frame.attrs["compute_seconds"] = game.compute_seconds
    return frame


def save_table(frame: pd.DataFrame, case: CaseStudy, algo: str, seed: int, seconds: float) -> Path:
    """Write a table and its JSON description atomically (the caller holds the data lock)."""
    traces = load_traces(traces_path(case), case)
    meta = {
        "case": case.key,
        "algorithm": algo,
        "seed": seed,
        "budget": budget_of(algo),
        "eval_seed": EVAL_SEED,
        "world_model": "fixed-basis RBF (5x5x5 grid, sigma 0.25) + ridge 0.1",
        "traces_sha256_16": traces_digest(traces),
        "code_fingerprint": library_fingerprint(UTILITY_CODE),
        "n_subsets": int(len(frame)),
        "complete": bool(len(frame) == 1 << case.n),
        "wall_seconds": round(seconds, 1),
        "compute_seconds": round(float(frame.attrs.get("compute_seconds", seconds)), 1),
        **machine(),
        "regenerate": f"make {regenerate_target(case)}",
    }
    return write_table(frame, table_path(case, algo, seed), meta, UTILITY)


def load_table(case: CaseStudy, algo: str, seed: int) -> tuple[pd.DataFrame, dict]:
    """Read and validate a committed table (see the module docstring); returns (frame, JSON)."""
    path = table_path(case, algo, seed)
    fix = f"regenerate it with `make {regenerate_target(case)}`"
    frame, meta = read_table(path, UTILITY, fix)
    for field in ("case", "algorithm", "seed"):
        want = {"case": case.key, "algorithm": algo, "seed": seed}[field]
        if meta.get(field) != want:
            raise fail(
                path.with_suffix(".json"),
                None,
                field,
                f"expected {want!r}, got {meta.get(field)!r}",
                fix,
            )
    n_all = 1 << case.n
    for line, (m, label) in enumerate(zip(frame["mask"], frame["subset"], strict=True), start=2):
        if not 0 <= m < n_all:
            raise fail(
                path, line, "mask", f"{m} is not a subset of {case.n} points (0..{n_all - 1})", fix
            )
        if label != subset_label(case, int(m)):
            raise fail(
                path,
                line,
                "subset",
                f"{label!r} does not match mask {m} ({subset_label(case, int(m))})",
                fix,
            )
    if meta.get("complete"):
        if len(frame) != n_all:
            absent = sorted(set(range(n_all)) - set(frame["mask"].tolist()))[:5]
            raise fail(
                path,
                len(frame) + 1,
                "mask",
                f"the JSON says complete but the table has {len(frame)} of {n_all} subsets "
                f"(absent: {absent}{' ...' if len(absent) == 5 else ''})",
                fix,
            )
    current = traces_digest(load_traces(traces_path(case), case))
    if meta.get("traces_sha256_16") != current:
        rel = f"{path.parent.name}/{path.name}"
        raise DataFormatError(
            f"{rel} was built from other traces (traces digest {meta.get('traces_sha256_16')}, "
            f"current {current}): run `make {regenerate_target(case)}`"
        )
    return frame, meta


def tables_for(case: CaseStudy, algo: str, seeds: list[int]) -> dict[int, pd.DataFrame]:
    return {s: load_table(case, algo, s)[0] for s in seeds}


def committed_seeds(case: CaseStudy, algo: str) -> list[int]:
    """Run seeds with a committed table for ``case`` and ``algo``."""
    found = sorted(tables_dir().glob(f"{case.key}_{algo}_seed*.csv"))
    return sorted(int(p.stem.rsplit("seed", 1)[1]) for p in found)


def sample_seed(case: CaseStudy, metas: list[dict], frames: list[pd.DataFrame]) -> int:
    """Seed of the re-check sample: the tables' contents and the utility code's fingerprint.

    Nothing that changes from run to run (times, machine) enters it, so the sample is the same
    on every machine until a table or the code changes, and then it moves.
    """
    h = hashlib.sha256(case.key.encode())
    h.update(library_fingerprint(UTILITY_CODE).encode())
    for meta, frame in zip(metas, frames, strict=True):
        h.update(f"{meta['algorithm']}:{meta['seed']}".encode())
        h.update(
            pd.util.hash_pandas_object(frame[["mask", "utility"]], index=False).to_numpy().tobytes()
        )
    return int(h.hexdigest()[:15], 16)


def draw_sample(
    case: CaseStudy, algo: str, seeds: list[int], n_sample: int | None
) -> list[tuple[int, int]]:
    """``(seed, mask)`` pairs to re-check: a null and a non-null subset of each seed's table
    where it has both, the rest uniform over all (seed, mask) pairs; ``None`` = every pair."""
    loaded = [load_table(case, algo, s) for s in seeds]
    frames = [f for f, _ in loaded]
    pairs_all = [(s, int(m)) for s, f in zip(seeds, frames, strict=True) for m in f["mask"]]
    if n_sample is None or n_sample >= len(pairs_all):
        return pairs_all
    rng = np.random.default_rng(sample_seed(case, [m for _, m in loaded], frames))
    pick: list[tuple[int, int]] = []
    for s, f in zip(seeds, frames, strict=True):
        for part in (f[f.utility.isna()], f[f.utility.notna()]):
            if len(part) and len(pick) < n_sample:
                pick.append((s, int(part["mask"].iloc[rng.integers(len(part))])))
    rest = [p for p in pairs_all if p not in pick]
    extra = min(n_sample - len(pick), len(rest))
    if extra > 0:
        pick += [rest[i] for i in rng.choice(len(rest), size=extra, replace=False)]
    return sorted(pick)


def recompute(
    case: CaseStudy, algo: str, pairs: list[tuple[int, int]], chunk: int = 1024
) -> np.ndarray:
    """Utilities of ``(seed, mask)`` pairs with the table's agent seeds, one padded batch per
    ``chunk`` pairs (padding makes a member's agent independent of the batch it is in)."""
    traces = load_traces(traces_path(case), case)
    stats = SufficientStatistics(traces)
    out = []
    for i in range(0, len(pairs), chunk):
        part = pairs[i : i + chunk]
        masks = np.array([m for _, m in part], dtype=np.int64)
        seeds = [subset_seed(s, m) for s, m in part]
        out.append(train_and_evaluate(case, stats.fit(masks), algo, seeds)["utility"])
    return np.concatenate(out) if out else np.zeros(0)


def recheck_tables(
    case: CaseStudy, algo: str, seeds: list[int] | None = None, n_sample: int | None = 4
) -> pd.DataFrame:
    """Recompute a sample of the committed ``(seed, mask)`` utilities and compare.

    Returns one row per checked pair (committed, recomputed, agree) with a ``note``. Traces
    that changed are refused earlier, by :func:`load_table`. A disagreement on the machine
    that made the table (same CPU model, vector capability, torch/MKL version and thread count)
    raises :class:`RuntimeError` naming the cause: the utility code changed since the table was
    made, or, with the same code, a determinism bug. On another machine (or one the table did
    not record) the rows carry a warning in ``note`` instead: floating-point rounding differs
    between CPUs and RL training amplifies it into different agents, so a mismatch there cannot
    be attributed (measured: tables made on the development machine of issue 8 differ on this
    one in up to 37 of 64 database-tuning subsets).
    """
    seeds = committed_seeds(case, algo) if seeds is None else list(seeds)
    pairs = draw_sample(case, algo, seeds, n_sample)
    metas = {s: load_table(case, algo, s) for s in seeds}
    t0 = time.perf_counter()
    fresh = recompute(case, algo, pairs)
    seconds = time.perf_counter() - t0
    old = np.array([metas[s][0].set_index("mask").at[m, "utility"] for s, m in pairs], dtype=float)
    same_null = np.isnan(old) == np.isnan(fresh)
    close = np.isnan(old) | (
        np.abs(np.nan_to_num(old) - np.nan_to_num(fresh))
        <= TABLE_TOLERANCE * (1 + np.abs(np.nan_to_num(old)))
    )
    agree = same_null & close
    here = machine()
    code = library_fingerprint(UTILITY_CODE)
    notes = []
    problems = []
    for (s, m), ok in zip(pairs, agree, strict=True):
        meta = metas[s][1]
        if ok:
            notes.append("")
            continue
        name = table_path(case, algo, s).name
        code_changed = meta.get("code_fingerprint") != code
        differs = [f for f in MACHINE_FIELDS if meta.get(f) is not None and meta.get(f) != here[f]]
        unrecorded = any(meta.get(f) is None for f in MACHINE_FIELDS)
        if differs or unrecorded:
            shown = ", ".join(differs) if differs else "machine not recorded"
            also = "; the utility code changed too" if code_changed else ""
            notes.append(f"warning: made on another machine ({shown}){also}")
            continue
        if code_changed:
            problems.append(
                f"{name} mask {m}: the utility code changed since the table was made "
                f"(fingerprint {meta.get('code_fingerprint')} -> {code}); regenerate it with "
                f"`make {regenerate_target(case)}`"
            )
            notes.append("code changed")
            continue
        problems.append(
            f"{name} mask {m}: recomputed {fresh[pairs.index((s, m))]!r} != committed "
            f"{old[pairs.index((s, m))]!r} with the same code, traces and machine: a determinism bug"
        )
        notes.append("mismatch")
    frame = pd.DataFrame(
        {
            "algorithm": algo,
            "seed": [s for s, _ in pairs],
            "mask": [m for _, m in pairs],
            "subset": [subset_label(case, m) for _, m in pairs],
            "committed": old,
            "recomputed": fresh,
            "agree": agree,
            "note": notes,
        }
    )
    frame.attrs["seconds"] = seconds
    if problems:
        raise RuntimeError("the committed utility tables do not match: " + "; ".join(problems))
    return frame


def recheck_summary(frame: pd.DataFrame) -> str:
    """One line listing the checked subsets for the claims ledger."""
    parts = [
        f"{a} seed {s}: {','.join(str(m) for m in g['mask'])}"
        for (a, s), g in frame.groupby(["algorithm", "seed"], sort=True)
    ]
    warned = int(frame["note"].str.startswith("warning").sum())
    tail = f"; {warned} made on another machine differ (warning)" if warned else ""
    return f"{int(frame['agree'].sum())}/{len(frame)} recomputed subsets agree (masks {'; '.join(parts)}){tail}"


# --- committed checks (budget sweep, SB3 reference, world-model agreement) ----------------------
_C, _F, _I, _B, _S = (
    lambda n: Column(n, "str"),
    lambda n: Column(n, "float", empty=True),
    lambda n: Column(n, "int"),
    lambda n: Column(n, "bool"),
    lambda n: Column(n, "str"),
)
CHECKS: dict[str, TableSchema] = {
    "budget_sweep": check_schema(
        _C("case"),
        _C("algo"),
        _I("steps"),
        _I("seed"),
        _F("model_return"),
        _F("system_return"),
        _B("success"),
        _I("convergence"),
        _F("seconds"),
        key=("case", "algo", "steps", "seed"),
    ),  # fmt: skip
    "sb3_reference": check_schema(
        _C("case"),
        _C("algo"),
        _I("mask"),
        _F("batched_utility"),
        _B("batched_null"),
        _S("sb3_utilities"),
        _F("sb3_null_fraction"),
        _B("same_verdict"),
        key=("case", "algo", "mask"),
    ),  # fmt: skip
    "world_model_agreement": check_schema(
        _C("case"),
        _C("algo"),
        _I("mask"),
        _S("subset"),
        _F("utility_fixed_basis"),
        _F("utility_per_subset"),
        _B("same_verdict"),
        _F("mean_abs_prediction_gap"),
        key=("case", "algo", "mask"),
    ),  # fmt: skip
}


def check_path(name: str, root: Path | None = None) -> Path:
    if name not in CHECKS:
        raise ValueError(f"unknown check table {name!r}; known: {', '.join(CHECKS)}")
    return tables_dir(root).parent / "checks" / f"{name}.csv"


def save_check(frame: pd.DataFrame, name: str) -> Path:
    """Write a committed check table and its JSON (the caller holds the data lock)."""
    cases = sorted(set(frame["case"]))
    from .case_studies import case_study

    digests = {
        c: traces_digest(load_traces(traces_path(case_study(c)), case_study(c))) for c in cases
    }
    meta = {
        "name": name,
        "traces_sha256_16": digests,
        "code_fingerprint": library_fingerprint(UTILITY_CODE),
        **machine(),
        "regenerate": "make action-shapley-checks",
    }
    return write_table(frame, check_path(name), meta, CHECKS[name])


def load_check(name: str) -> pd.DataFrame:
    """Read and validate a committed check table (declared as an input of the notebook)."""
    frame, meta = read_table(
        check_path(name), CHECKS[name], "regenerate it with `make action-shapley-checks`"
    )
    return frame


__all__ = [
    "CHECKS",
    "load_check",
    "save_check",
    "UTILITY",
    "build_table",
    "committed_seeds",
    "load_table",
    "machine",
    "recheck_summary",
    "recheck_tables",
    "regenerate_target",
    "save_table",
    "table_path",
    "tables_dir",
    "tables_for",
]
