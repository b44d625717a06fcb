"""Committed utility tables: written, read with validation, and re-checked against the code.

A utility table ``data/action_shapley/utilities/<case>_<algo>_seed<s>.csv`` holds one row per
subset (``mask, subset, utility, convergence``; an empty utility is a null subset) and a JSON
beside it (:mod:`shaprl.repro.data`: ``kind: utility``, ``schema_version``) with the
configuration, the digest of the traces it was built from, the utility code's fingerprint and
the machine it ran on.

**Schema version 2** (issue 17) adds the runs behind each utility: ``runs`` (R), ``failures``
(runs that did not reach the goal), ``run_returns`` / ``run_success`` / ``run_convergence``
(``;``-separated, run 0 first; run ``r`` used the agent seed
:func:`~.utility.run_seed` ``(seed, r)`` for every subset). ``utility`` is
:func:`~.utility.utility_from_runs` of them (:data:`~.utility.NULL_RULE`, our rule) and
:func:`load_table` checks that it is. Version-1 tables (one agent per subset; the committed
Kubernetes SAC table) stay readable: they are read as ``R = 1`` and their JSON is marked
``legacy`` (made under the [0.9 thr, thr] band for every case, horizon 30, no action step).
:func:`is_legacy` says so from the JSON alone: a legacy table is shown for reference and
decides no claim.

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
import json
import re
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
    read_meta,
    read_table,
    write_table,
)
from ..repro.report import machine as process_machine
from .case_studies import CaseStudy
from .traces import load_traces, traces_path
from .utility import (
    EVAL_SEED,
    UTILITY_CODE,
    AgentGame,
    budget_of,
    subset_label,
    traces_digest,
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
        Column("runs", "int", since=2),
        Column("failures", "int", since=2),
        Column("run_returns", "str", since=2),
        Column("run_success", "str", since=2),
        Column("run_convergence", "str", since=2),
    ),
    key=("mask",),
    versions=(1, 2),
)
LEGACY_GOAL = (
    "legacy: made before issue 17 under the band [0.9 thr, thr] for every case study, "
    "horizon 30, no action step, one agent (one evaluation episode) per subset"
)


def _join(values, fmt: str = "{:.10g}") -> str:
    return ";".join(fmt.format(v) for v in values)


def runs_frame(case: CaseStudy, outcomes: dict[int, dict]) -> pd.DataFrame:
    """A schema-2 table from :func:`~.utility.multi_run_outcomes` (runs in order)."""
    from .pid_env import HORIZON
    from .utility import utility_from_runs

    runs = sorted(outcomes)
    masks = outcomes[runs[0]]["mask"]
    ret = np.array([outcomes[r]["return"] for r in runs], dtype=float).T  # (masks, R)
    ok = np.array([outcomes[r]["success"] for r in runs], dtype=bool).T
    conv = np.array([outcomes[r]["convergence"] for r in runs], dtype=float).T
    util, fails = utility_from_runs(ret, ok)
    med = [
        int(round(float(np.median(c[o])))) if o.any() and not np.isnan(u) else HORIZON + 1
        for c, o, u in zip(conv, ok, util, strict=True)
    ]
    frame = pd.DataFrame(
        {
            "mask": masks,
            "subset": [subset_label(case, int(m)) for m in masks],
            "utility": util,
            "convergence": med,  # median over the runs that reached the goal
            "runs": len(runs),
            "failures": fails.astype(int),
            "run_returns": [_join(r) for r in ret],
            "run_success": [_join(o.astype(int), "{}") for o in ok],
            "run_convergence": [_join(c, "{:g}") for c in conv],
        }
    )
    frame.attrs["compute_seconds"] = float(sum(outcomes[r].get("seconds", 0.0) for r in runs))
    return frame


def run_arrays(frame: pd.DataFrame, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-run returns and successes ``(2**n, R)`` by mask (a version-1 table: ``R = 1``,
    success = non-null). Subsets absent from a partial table are null in every run."""
    f = frame.sort_values("mask")
    if "run_returns" not in f.columns:
        ret = np.full((1 << n, 1), np.nan)
        ret[f["mask"].to_numpy(), 0] = f["utility"].to_numpy()
        return np.nan_to_num(ret), ~np.isnan(ret)
    r = int(f["runs"].iloc[0])
    ret = np.zeros((1 << n, r))
    ok = np.zeros((1 << n, r), dtype=bool)
    m = f["mask"].to_numpy()
    ret[m] = np.array([[float(x) for x in s.split(";")] for s in f["run_returns"]])
    ok[m] = np.array([[c == "1" for c in s.split(";")] for s in f["run_success"]])
    return ret, ok


#: fields of the JSON that describe the machine: a mismatch where they differ is a warning
MACHINE_FIELDS = ("cpu_model", "cpu_capability", "torch", "mkl", "threads")


def tables_dir(root: Path | None = None) -> Path:
    return (
        (Path(root) if root is not None else repo_root()) / "data" / "action_shapley" / "utilities"
    )


def table_path(
    case: CaseStudy,
    algo: str,
    seed: int,
    root: Path | None = None,
    world_model: str = "fixed-basis",
) -> Path:
    """``<case>_<algo>_seed<s>.csv``; the paper's per-subset world model adds ``_per_subset``."""
    tail = "" if world_model == "fixed-basis" else "_" + world_model.replace("-", "_")
    return tables_dir(root) / f"{case.key}_{algo}_seed{seed}{tail}.csv"


def regenerate_target(case: CaseStudy) -> str:
    """The make target that (re)computes ``case``'s committed tables."""
    return "action-shapley-kubernetes" if case.key == "kubernetes" else "action-shapley-tables"


def machine() -> dict[str, object]:
    """The process's machine (:func:`shaprl.repro.report.machine`: CPU, vector capability,
    torch/MKL versions) and its torch thread count, as recorded beside each utility table."""
    return {**process_machine(), "threads": torch.get_num_threads()}


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
            "runs": 1,
            "failures": np.isnan(util).astype(int),
            "run_returns": [_join([0.0 if np.isnan(u) else u]) for u in util],
            "run_success": ["0" if np.isnan(u) else "1" for u in util],
            "run_convergence": [str(game.convergence[int(m)]) for m in masks],
        }
    )
    frame.attrs["compute_seconds"] = game.compute_seconds
    return frame


def build_multi_table(
    case: CaseStudy,
    algo: str,
    seed: int = 0,
    runs: int | None = None,
    episodes: int | None = None,
    masks: np.ndarray | None = None,
    world_model: str = "fixed-basis",
) -> pd.DataFrame:
    """Schema-2 table of ``runs`` runs per subset (common random numbers, cached per run)."""
    from .utility import EPISODES, RUNS, multi_run_outcomes

    masks = np.arange(1 << case.n) if masks is None else np.asarray(masks)
    out = multi_run_outcomes(
        case, algo, masks.tolist(), runs or RUNS, seed, episodes or EPISODES,
        world_model=world_model,
    )  # fmt: skip
    return runs_frame(case, out)


def partial_path(case: CaseStudy, algo: str, seed: int, root: Path | None = None) -> Path:
    """Where a large case's schema-2 table grows chunk by chunk (committed, never read by a
    notebook) until it covers every subset and replaces :func:`table_path`."""
    return tables_dir(root) / f"{case.key}_{algo}_seed{seed}.partial.csv"


def partial_progress(case: CaseStudy, algo: str, seed: int) -> int | None:
    """Subsets valued so far in the committed partial table (None when there is none); the
    file is declared as an input of the running notebook (its progress is shown)."""
    return recorded_subsets(partial_path(case, algo, seed))


def recorded_subsets(path: Path) -> int | None:
    """``n_subsets`` from the JSON beside a committed table ``path`` (a partial table or a
    seed sample; None when there is none), the JSON declared as an input of the running
    notebook."""
    from ..repro.inputs import declare_input

    meta_path = path.with_suffix(".json")
    if not meta_path.exists():
        return None
    return int(json.loads(declare_input(meta_path).read_text())["n_subsets"])


def build_chunked_table(
    case: CaseStudy,
    algo: str,
    seed: int = 0,
    chunk: int = 1024,
    runs: int = 1,
    episodes: int | None = None,
    max_chunks: int | None = None,
    n_jobs: int | None = None,
) -> pd.DataFrame | None:
    """A large case's schema-2 table (Kubernetes: 32,768 subsets), resumable across sessions.

    Subsets are valued ``chunk`` at a time (:func:`grow_table`: ``runs`` runs with common
    random numbers, the shared evaluation episodes). After every chunk the table so far is
    written to :func:`partial_path` (atomically, with the same JSON as a finished table and
    ``complete: false``), so a run stopped midway -- or a session that ends -- resumes from
    the committed partial table at the next missing chunk. A partial table made under another
    configuration (:func:`table_config`: goal, action step, horizon, budget, runs, episodes,
    traces) is refused with the fix. When every subset is valued the table is written to
    :func:`table_path` (replacing a legacy table), the partial file is removed and the
    finished frame returned; ``None`` while subsets remain (``max_chunks`` stops early). A
    finished table of the same configuration is returned as it is (a rerun of the make target
    trains nothing for it).

    Chunks are joblib jobs (:func:`value_chunk`; ``n_jobs`` of them at once, default: the
    active ``joblib.parallel_config``, so a cluster user switches the backend) and are added to
    the table in the order they finish. A subset's utility does not depend on which chunk it is
    trained in (every agent has its own seeded draws), so the table does not depend on
    ``n_jobs`` or ``chunk``; a stop loses at most the chunks in flight. The JSON's
    ``wall_seconds`` adds up the resumed runs' wall time (``compute_seconds`` the agents').
    """
    from joblib import Parallel, delayed

    from .utility import EPISODES

    episodes = episodes or EPISODES
    part = partial_path(case, algo, seed)
    final = table_path(case, algo, seed)
    frame = _resume(part, case, algo, seed, runs, episodes)
    if frame is None and (done := _finished(final, case, algo, seed, runs, episodes)) is not None:
        print(f"{final.name}: complete under this configuration (delete it to rebuild)")
        return done
    have = set() if frame is None else set(frame["mask"].tolist())
    todo = [m for m in range(1 << case.n) if m not in have]
    pieces = [todo[start : start + chunk] for start in range(0, len(todo), chunk)][:max_chunks]
    before = 0.0 if frame is None else float(frame.attrs.get("wall_seconds", 0.0))
    if frame is not None and not todo:  # a partial file that covers every subset: finish it
        _write_grown(frame, case, algo, seed, episodes, before, final, part)
        return frame
    t0 = time.perf_counter()
    jobs = (delayed(value_chunk)(case, algo, seed, masks, runs, episodes) for masks in pieces)
    for piece in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
        wall = before + time.perf_counter() - t0
        frame = add_chunk(frame, piece, case, algo, seed, episodes, part, wall, final)
        if len(frame) == 1 << case.n:
            return frame
    return None


def _finished(
    final: Path, case: CaseStudy, algo: str, seed: int, runs: int, episodes: int
) -> pd.DataFrame | None:
    """The committed finished table at ``final`` when it covers every subset under this
    :func:`table_config` (not legacy), so a rerun of the make target skips it; else None (a
    legacy table or another configuration is rebuilt, and replaced when the new one is done)."""
    if not final.exists():
        return None
    meta = read_meta(final, UTILITY, f"regenerate it with `make {regenerate_target(case)}`")
    if _legacy(meta) or _config_differs(meta, case, algo, seed, runs, episodes):
        return None
    if meta.get("n_subsets") != 1 << case.n:
        return None
    frame, _ = read_table(final, UTILITY, f"delete {final.name} to rebuild it")
    return frame


def _config_differs(
    meta: dict, case: CaseStudy, algo: str, seed: int, runs: int, episodes: int
) -> list[str]:
    """The :func:`table_config` fields on which a table's JSON ``meta`` differs from this
    configuration (compared as JSON values)."""
    want = json.loads(json.dumps(table_config(case, algo, seed, runs, episodes)))
    return [k for k, v in want.items() if meta.get(k) != v]


def _resume(
    part: Path, case: CaseStudy, algo: str, seed: int, runs: int, episodes: int
) -> pd.DataFrame | None:
    """The partial table at ``part`` (None when there is none), its ``compute_seconds`` in
    ``attrs``; refused when made under another :func:`table_config`, with a warning when
    other utility code started it."""
    if not part.exists():
        return None
    frame, meta = read_table(part, UTILITY, f"delete {part.name} to start over")
    if differs := ", ".join(_config_differs(meta, case, algo, seed, runs, episodes)):
        raise DataFormatError(
            f"{part.name} was made under another configuration ({differs}); delete it to "
            "start over, or restore the configuration it was made with"
        )
    if meta.get("code_fingerprint") != library_fingerprint(UTILITY_CODE):
        print(
            f"warning: {part.name} was started by other utility code (fingerprint "
            f"{meta.get('code_fingerprint')}); resuming -- the table's re-check compares "
            "values, not code",
            flush=True,
        )
    frame.attrs["compute_seconds"] = float(meta.get("compute_seconds", 0.0))
    frame.attrs["wall_seconds"] = float(meta.get("wall_seconds", 0.0))
    # a partial file from before the history was kept: all of it by its recorded code
    frame.attrs["code_history"] = dict(
        meta.get("code_history") or {meta.get("code_fingerprint"): int(meta["n_subsets"])}
    )
    return frame


def grow_table(
    so_far: pd.DataFrame | None,
    case: CaseStudy,
    algo: str,
    seed: int,
    masks: list[int],
    runs: int,
    episodes: int,
    path: Path,
    seconds: float,
    final: Path | None = None,
) -> pd.DataFrame:
    """Value ``masks`` and write the table grown by them; returns it.

    The chunk is valued by :func:`~.utility.multi_run_outcomes` (``runs`` runs, ``episodes``
    evaluation episodes, not cached: the table is the record) and added to ``so_far``
    (:func:`append_rows`). The table is written (:func:`save_table`) to ``path`` with
    ``seconds`` (wall seconds before this chunk) plus this chunk's as its wall time -- or,
    when ``final`` is given and every subset is valued, to ``final``, and ``path`` with its
    JSON is removed under the same hold of the data lock. Prints the progress.
    """
    t0 = time.perf_counter()
    piece = value_chunk(case, algo, seed, masks, runs, episodes)
    wall = seconds + time.perf_counter() - t0
    return add_chunk(so_far, piece, case, algo, seed, episodes, path, wall, final)


def value_chunk(
    case: CaseStudy, algo: str, seed: int, masks: list[int], runs: int, episodes: int
) -> pd.DataFrame:
    """The table rows of ``masks``: :func:`~.utility.multi_run_outcomes` (``runs`` runs,
    ``episodes`` evaluation episodes, not cached: the table is the record), with the agents'
    ``compute_seconds`` in ``attrs``. One chunk of :func:`build_chunked_table` (a joblib job)."""
    from .utility import multi_run_outcomes

    out = multi_run_outcomes(case, algo, masks, runs, seed, episodes, use_cache=False)
    return runs_frame(case, out)


def add_chunk(
    so_far: pd.DataFrame | None,
    piece: pd.DataFrame,
    case: CaseStudy,
    algo: str,
    seed: int,
    episodes: int,
    path: Path,
    wall: float,
    final: Path | None = None,
) -> pd.DataFrame:
    """``so_far`` grown by the valued chunk ``piece`` (:func:`append_rows`), written with
    ``wall`` seconds as its wall time (see :func:`grow_table`: to ``final`` when complete);
    prints the progress and returns the table.

    ``attrs["code_history"]`` (written as the JSON's ``code_history``) counts the subsets
    valued by each utility-code fingerprint, so a table grown across code changes says so.
    """
    history = dict(so_far.attrs.get("code_history", {})) if so_far is not None else {}
    code = library_fingerprint(UTILITY_CODE)
    history[code] = history.get(code, 0) + len(piece)
    frame = append_rows(so_far, piece)
    frame.attrs["wall_seconds"] = wall
    frame.attrs["code_history"] = history
    complete = len(frame) == 1 << case.n
    target = final if complete and final is not None else path
    _write_grown(frame, case, algo, seed, episodes, wall, target, path)
    print(f"{target.name}: {len(frame)}/{1 << case.n} subsets ({wall:.0f} s)", flush=True)
    return frame


def append_rows(so_far: pd.DataFrame | None, piece: pd.DataFrame) -> pd.DataFrame:
    """``so_far`` and ``piece`` in one table sorted by mask; ``attrs["compute_seconds"]`` is
    the sum of theirs (``so_far`` without one counts 0)."""
    if so_far is None:
        parts, before = [piece], 0.0
    else:
        parts, before = [so_far, piece], float(so_far.attrs.get("compute_seconds", 0.0))
    frame = pd.concat(parts, ignore_index=True).sort_values("mask", ignore_index=True)
    frame.attrs["compute_seconds"] = before + float(piece.attrs["compute_seconds"])
    return frame


def _write_grown(
    frame: pd.DataFrame,
    case: CaseStudy,
    algo: str,
    seed: int,
    episodes: int,
    wall: float,
    target: Path,
    path: Path,
) -> None:
    """Write ``frame`` to ``target``; when that is not ``path`` (a finished table), remove
    ``path`` and its JSON while still holding the data lock (held only while writing:
    notebooks may run between chunks)."""
    from ..repro.locks import writing_data

    with writing_data():  # re-entrant: save_table takes it too
        save_table(frame, case, algo, seed, wall, episodes=episodes, path=target)
        if target != path:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)


def table_config(
    case: CaseStudy, algo: str, seed: int, runs: int, episodes: int | None
) -> dict[str, object]:
    """The configuration a table is made under, as its JSON records it: what a partial table
    must agree on to be resumed (:func:`build_chunked_table`) and the configuration part of
    :func:`table_meta`. ``episodes=None``: a single-run table of :func:`build_table` (one
    evaluation episode, :data:`~.utility.EVAL_SEED`)."""
    from .pid_env import HORIZON
    from .utility import episode_seeds

    traces = load_traces(traces_path(case), case)
    return {
        "case": case.key,
        "algorithm": algo,
        "seed": seed,
        "budget": budget_of(algo),
        "goal": case.goal,
        "band": list(case.band),
        "max_step": list(case.max_step),
        "horizon": HORIZON,
        "runs": runs,
        "episode_seeds": [EVAL_SEED] if episodes is None else episode_seeds(seed, episodes),
        "traces_sha256_16": traces_digest(traces),
    }


#: the order of a table's JSON fields before the machine (committed JSONs keep it)
META_ORDER = (
    "case",
    "algorithm",
    "seed",
    "budget",
    "goal",
    "band",
    "max_step",
    "horizon",
    "runs",
    "agent_seeds",
    "episode_seeds",
    "null_rule",
    "eval_seed",
    "world_model",
    "traces_sha256_16",
    "code_fingerprint",
    "n_subsets",
    "complete",
    "wall_seconds",
    "compute_seconds",
)


def table_meta(
    frame: pd.DataFrame,
    case: CaseStudy,
    algo: str,
    seed: int,
    seconds: float,
    episodes: int | None = None,
    world_model: str = "fixed-basis",
) -> dict[str, object]:
    """The JSON :func:`save_table` writes beside ``frame``: :func:`table_config` and what this
    run adds (agent seeds, null rule, world model, code fingerprint, size, times), in
    :data:`META_ORDER`, then the :func:`machine` and the make target that regenerates it."""
    from .utility import NULL_RULE, run_seed

    runs = int(frame["runs"].iloc[0])
    multi = episodes is not None
    fields = {
        **table_config(case, algo, seed, runs, episodes),
        "agent_seeds": [run_seed(seed, r) for r in range(runs)] if multi else "subset_seed",
        "null_rule": NULL_RULE if multi else "the agent fails its objective (paper's rule)",
        "eval_seed": EVAL_SEED,
        "world_model": WORLD_MODEL_TEXT[world_model],
        "code_fingerprint": library_fingerprint(UTILITY_CODE),
        "n_subsets": int(len(frame)),
        "complete": bool(len(frame) == 1 << case.n),
        "wall_seconds": round(seconds, 1),
        "compute_seconds": round(float(frame.attrs.get("compute_seconds", seconds)), 1),
    }
    history = frame.attrs.get("code_history")  # a table grown chunk by chunk (add_chunk)
    return {
        **{k: fields[k] for k in META_ORDER},
        **({"code_history": dict(history)} if history else {}),
        **machine(),
        "regenerate": f"make {regenerate_target(case)}",
    }


def save_table(
    frame: pd.DataFrame,
    case: CaseStudy,
    algo: str,
    seed: int,
    seconds: float,
    episodes: int | None = None,
    path: Path | None = None,
    world_model: str = "fixed-basis",
) -> Path:
    """Write a table and its JSON description (:func:`table_meta`) atomically, holding the
    data lock only while writing; ``path`` defaults to :func:`table_path`
    (:func:`partial_path` for a growing table)."""
    from ..repro.locks import writing_data

    meta = table_meta(frame, case, algo, seed, seconds, episodes, world_model)
    target = path or table_path(case, algo, seed, world_model=world_model)
    with writing_data():
        return write_table(frame, target, meta, UTILITY)


WORLD_MODEL_TEXT = {
    "fixed-basis": "fixed-basis RBF (5x5x5 grid, sigma 0.25) + ridge 0.1",
    "per-subset": "per-subset PCA + k-means RBF (the paper's procedure) + ridge 0.1",
}


def load_table(
    case: CaseStudy, algo: str, seed: int, world_model: str = "fixed-basis"
) -> tuple[pd.DataFrame, dict]:
    """Read and validate a committed table (see the module docstring); returns (frame, JSON).
    ``world_model="per-subset"`` reads the table made with the paper's per-subset fit."""
    path = table_path(case, algo, seed, world_model=world_model)
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
    if _legacy(meta):
        meta["goal"] = LEGACY_GOAL
        meta["legacy"] = True
    else:
        from .utility import utility_from_runs

        meta["legacy"] = False
        ret, ok = run_arrays(frame, case.n)
        util, fails = utility_from_runs(ret, ok)
        m = frame["mask"].to_numpy()
        got, want = frame["utility"].to_numpy(), util[m]
        bad = (
            (np.isnan(got) != np.isnan(want))
            | (
                np.abs(np.nan_to_num(got) - np.nan_to_num(want))
                > 1e-6 * (1 + np.abs(np.nan_to_num(want)))
            )
            | (frame["failures"].to_numpy() != fails[m])
        )
        if bad.any():
            line = int(np.flatnonzero(bad)[0]) + 2
            raise fail(
                path, line, "utility",
                "utility / failures do not follow from run_returns and run_success "
                f"under the null rule ({meta.get('null_rule', '?')})", fix,
            )  # fmt: skip
    current = traces_digest(load_traces(traces_path(case), case))
    if meta.get("traces_sha256_16") != current:
        rel = f"{path.parent.name}/{path.name}"
        raise DataFormatError(
            f"{rel} was built from other traces (traces digest {meta.get('traces_sha256_16')}, "
            f"current {current}): run `make {regenerate_target(case)}`"
        )
    return frame, meta


def _legacy(meta: dict) -> bool:
    """A version-1 table (made before issue 17 under :data:`LEGACY_GOAL`) is legacy."""
    return meta["schema_version"] < 2


def is_legacy(case: CaseStudy | str, algo: str, seed: int = 0) -> bool:
    """Whether the committed ``case``/``algo``/``seed`` table is a **legacy** table.

    Legacy tables (schema version 1: the old band goal, horizon 30, one agent per subset;
    :data:`LEGACY_GOAL`) stay readable and are shown for reference, but never decide a
    claim: they value another game than the paper's. The same rule as ``meta["legacy"]`` of
    :func:`load_table`, read from the JSON alone (declared as an input of the running
    notebook), so it is cheap even for Kubernetes' 32,768-row tables. ``case`` is a
    :class:`~.case_studies.CaseStudy` or its key; a missing table raises as :func:`load_table`
    does, naming the make target.
    """
    if isinstance(case, str):
        from .case_studies import case_study

        case = case_study(case)
    path = table_path(case, algo, seed)
    fix = f"regenerate it with `make {regenerate_target(case)}`"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such committed table. Fix: {fix}")
    return _legacy(read_meta(path, UTILITY, fix))


def tables_for(case: CaseStudy, algo: str, seeds: list[int]) -> dict[int, pd.DataFrame]:
    return {s: load_table(case, algo, s)[0] for s in seeds}


def committed_seeds(case: CaseStudy, algo: str) -> list[int]:
    """Run seeds with a committed table for ``case`` and ``algo`` (not partial or sample
    files such as ``<case>_<algo>_seed0.partial.csv``)."""
    pattern = re.compile(rf"{re.escape(case.key)}_{re.escape(algo)}_seed(\d+)\.csv")
    found = (pattern.fullmatch(p.name) for p in tables_dir().iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def sample_seed(case: CaseStudy, metas: list[dict], frames: list[pd.DataFrame]) -> int:
    """Seed of the re-check sample: the tables' contents and the utility code's fingerprint.

    Nothing that changes from run to run (times, machine) enters it, so the sample is the same
    on every machine until a table or the code changes, and then it moves.
    """
    h = hashlib.sha256(case.key.encode())
    h.update(library_fingerprint(UTILITY_CODE).encode())
    for meta, frame in zip(metas, frames, strict=True):
        h.update(f"{meta['algorithm']}:{meta['seed']}".encode())
        cols = [c for c in ("mask", "utility", "run_returns", "run_success") if c in frame]
        h.update(pd.util.hash_pandas_object(frame[cols], index=False).to_numpy().tobytes())
    return int(h.hexdigest()[:15], 16)


def draw_sample(
    case: CaseStudy, algo: str, seeds: list[int], n_sample: int | None
) -> list[tuple[int, int, int]]:
    """``(seed, mask, run)`` cells to re-check: a failed and a successful run of each seed's
    table where it has both, the rest uniform over all cells; ``None`` = every cell."""
    loaded = [load_table(case, algo, s) for s in seeds]
    frames = [f for f, _ in loaded]
    cells_all, failed = [], []
    for s, f in zip(seeds, frames, strict=True):
        ret, ok = run_arrays(f, case.n)
        for m in f["mask"].astype(int):
            for r in range(ok.shape[1]):
                cells_all.append((s, int(m), r))
                failed.append(not ok[m, r])
    if n_sample is None or n_sample >= len(cells_all):
        return cells_all
    rng = np.random.default_rng(sample_seed(case, [m for _, m in loaded], frames))
    pick: list[tuple[int, int, int]] = []
    for s in seeds:
        for want in (True, False):
            part = [
                c for c, bad in zip(cells_all, failed, strict=True) if c[0] == s and bad == want
            ]
            if part and len(pick) < n_sample:
                pick.append(part[rng.integers(len(part))])
    rest = [c for c in cells_all if c not in pick]
    extra = min(n_sample - len(pick), len(rest))
    if extra > 0:
        pick += [rest[i] for i in rng.choice(len(rest), size=extra, replace=False)]
    return sorted(pick)


def recompute(
    case: CaseStudy,
    algo: str,
    cells: list[tuple[int, int, int]],
    episodes: int,
    chunk: int = 1024,
    per_subset_seeds: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-run return and success of ``(seed, mask, run)`` cells with the table's agent and
    episode seeds, one padded batch per base seed and ``chunk`` cells (padding makes a
    member's agent independent of the batch it is in). ``per_subset_seeds``: single-run
    tables built by :func:`build_table` (agent seed :func:`~.utility.subset_seed`, one
    episode with :data:`~.utility.EVAL_SEED`)."""
    from .utility import (
        EVAL_SEED,
        episode_seeds,
        evaluate_episodes,
        run_seed,
        subset_seed,
        train_agents,
    )

    traces = load_traces(traces_path(case), case)
    stats = SufficientStatistics(traces)
    ret, ok = np.zeros(len(cells)), np.zeros(len(cells), dtype=bool)
    for seed in sorted({c[0] for c in cells}):
        idx = [i for i, c in enumerate(cells) if c[0] == seed]
        for j in range(0, len(idx), chunk):
            part = idx[j : j + chunk]
            masks = np.array([cells[i][1] for i in part], dtype=np.int64)
            params = stats.fit(masks)
            if per_subset_seeds:
                agent_seeds = [subset_seed(seed, cells[i][1]) for i in part]
                eps = [EVAL_SEED]
            else:
                agent_seeds = [run_seed(seed, cells[i][2]) for i in part]
                eps = episode_seeds(seed, episodes)
            policy = train_agents(case, params, algo, agent_seeds)
            ev = evaluate_episodes(case, policy, policy.n_members, eps)
            ret[part] = ev["reward"][: len(part)].mean(1)
            ok[part] = ev["success"][: len(part)].all(1) & np.asarray(params.valid, bool)
            if per_subset_seeds:  # build_table stores 0.0 as a failed agent's return
                ret[part] = np.where(ok[part], ret[part], 0.0)
    return ret, ok


def recheck_tables(
    case: CaseStudy, algo: str, seeds: list[int] | None = None, n_sample: int | None = 4
) -> pd.DataFrame:
    """Recompute a sample of the committed ``(seed, mask, run)`` cells and compare.

    Returns one row per checked cell (committed and recomputed run return and success,
    agree) with a ``note``. Traces that changed are refused earlier, by :func:`load_table`.
    Version-1 (legacy) tables were made under another goal and utility: they are not
    recomputed; their rows say so (``agree`` False, note ``legacy``). A disagreement on the
    machine that made the table (same CPU model, vector capability, torch/MKL version and
    thread count) raises :class:`RuntimeError` naming the cause: the utility code changed
    since the table was made, or, with the same code, a determinism bug. On another machine
    (or one the table did not record) the rows carry a warning in ``note`` instead:
    floating-point rounding differs between CPUs and RL training amplifies it into different
    agents, so a mismatch there cannot be attributed.
    """
    seeds = committed_seeds(case, algo) if seeds is None else list(seeds)
    metas = {s: load_table(case, algo, s) for s in seeds}
    legacy = [s for s in seeds if metas[s][1].get("legacy")]
    if legacy:
        frame = pd.DataFrame(
            {
                "algorithm": algo,
                "seed": legacy,
                "mask": -1,
                "run": -1,
                "subset": "",
                "committed": np.nan,
                "recomputed": np.nan,
                "agree": False,
                "note": "legacy: " + LEGACY_GOAL.split(": ", 1)[1] + "; not recomputed",
            }
        )
        frame.attrs["seconds"] = 0.0
        return frame
    cells = draw_sample(case, algo, seeds, n_sample)
    episodes = {len(metas[s][1]["episode_seeds"]) for s in seeds}
    t0 = time.perf_counter()
    single = any(metas[s][1].get("agent_seeds") == "subset_seed" for s in seeds)
    fresh_ret, fresh_ok = recompute(case, algo, cells, max(episodes), per_subset_seeds=single)
    seconds = time.perf_counter() - t0
    arrays = {s: run_arrays(metas[s][0], case.n) for s in seeds}
    old_ret = np.array([arrays[s][0][m, r] for s, m, r in cells], dtype=float)
    old_ok = np.array([arrays[s][1][m, r] for s, m, r in cells], dtype=bool)
    agree = (old_ok == fresh_ok) & (
        np.abs(old_ret - fresh_ret) <= TABLE_TOLERANCE * (1 + np.abs(old_ret))
    )
    here = machine()
    code = library_fingerprint(UTILITY_CODE)
    notes = []
    problems = []
    for i, ((s, m, r), ok) in enumerate(zip(cells, agree, strict=True)):
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
                f"{name} mask {m} run {r}: the utility code changed since the table was made "
                f"(fingerprint {meta.get('code_fingerprint')} -> {code}); regenerate it with "
                f"`make {regenerate_target(case)}`"
            )
            notes.append("code changed")
            continue
        problems.append(
            f"{name} mask {m} run {r}: recomputed {fresh_ret[i]!r} (goal {bool(fresh_ok[i])}) != "
            f"committed {old_ret[i]!r} (goal {bool(old_ok[i])}) with the same code, traces and "
            "machine: a determinism bug"
        )
        notes.append("mismatch")
    frame = pd.DataFrame(
        {
            "algorithm": algo,
            "seed": [s for s, _, _ in cells],
            "mask": [m for _, m, _ in cells],
            "run": [r for _, _, r in cells],
            "subset": [subset_label(case, m) for _, m, _ in cells],
            "committed": old_ret,
            "recomputed": fresh_ret,
            "committed_goal": old_ok,
            "recomputed_goal": fresh_ok,
            "agree": agree,
            "note": notes,
        }
    )
    frame.attrs["seconds"] = seconds
    if problems:
        raise RuntimeError("the committed utility tables do not match: " + "; ".join(problems))
    return frame


def recheck_holds(frame: pd.DataFrame) -> bool | str:
    """The verdict of a :func:`recheck_tables` frame for the ``tables_match_code`` claim.

    Legacy tables are not recomputed (their rows carry a ``legacy`` note) and do not count:
    ``"not testable"`` when every table is legacy; ``"partly"`` when some recomputed cell was
    made on another machine and differs (a ``warning`` note); else whether every recomputed
    cell agrees.
    """
    legacy = frame["note"].str.startswith("legacy")
    if legacy.all():
        return "not testable"
    checked = frame[~legacy]
    if checked["note"].str.startswith("warning").any():
        return "partly"
    return bool(checked["agree"].all())


def recheck_summary(frame: pd.DataFrame) -> str:
    """One line listing the checked subsets for the claims ledger (legacy tables named apart)."""
    legacy = frame["note"].str.startswith("legacy")
    if legacy.all():
        return "legacy tables (" + LEGACY_GOAL + "): not recomputed with this code"
    skipped = sorted(set(frame.loc[legacy, "algorithm"]))
    frame = frame[~legacy]
    parts = [
        f"{a} seed {s}: {','.join(f'{m}/r{r}' for m, r in zip(g['mask'], g['run'], strict=True))}"
        for (a, s), g in frame.groupby(["algorithm", "seed"], sort=True)
    ]
    warned = int(frame["note"].str.startswith("warning").sum())
    tail = f"; {warned} made on another machine differ (warning)" if warned else ""
    if skipped:
        tail += f"; legacy table(s) not recomputed: {', '.join(skipped)}"
    return (
        f"{int(frame['agree'].sum())}/{len(frame)} recomputed (subset, run) cells agree "
        f"(mask/run {'; '.join(parts)}){tail}"
    )


# --- committed checks (budget plateau, SB3, world-model agreement, action step) ---------
_C, _F, _I, _B, _S = (
    lambda n: Column(n, "str"),
    lambda n: Column(n, "float", empty=True),
    lambda n: Column(n, "int"),
    lambda n: Column(n, "bool"),
    lambda n: Column(n, "str"),
)
CHECKS: dict[str, TableSchema] = {
    "sb3_reference": check_schema(
        _C("case"),
        _C("algo"),
        _I("mask"),
        _F("batched_utility"),
        _B("batched_null"),
        _S("sb3_utilities"),
        _F("sb3_null_fraction"),
        _B("same_verdict"),
        _B("sb3_majority_null"),
        _B("inside_sb3_spread"),
        key=("case", "algo", "mask"),
    ),  # fmt: skip
    "budget_plateau": check_schema(
        _C("case"),
        _C("algo"),
        _I("steps"),
        _I("run"),
        _F("system_return"),
        _B("success"),
        _F("convergence"),
        _F("seconds"),
        key=("case", "algo", "steps", "run"),
    ),  # fmt: skip
    "sb3_plateau": check_schema(  # budget_plateau's columns for SB3 agents (issue 17)
        _C("case"),
        _C("algo"),
        _I("steps"),
        _I("run"),
        _F("system_return"),
        _B("success"),
        _F("convergence"),
        _F("seconds"),
        _C("agent"),
        key=("case", "algo", "steps", "run"),
    ),  # fmt: skip
    "step_sweep": check_schema(
        _C("case"),
        _C("algo"),
        _F("max_step"),
        _I("run"),
        _I("mask"),
        _F("system_return"),
        _B("success"),
        _F("convergence"),
        key=("case", "algo", "max_step", "run", "mask"),
    ),  # fmt: skip
    "world_model_agreement": check_schema(
        _C("case"),
        _C("algo"),
        _I("mask"),
        _I("size"),
        _S("subset"),
        _I("runs"),
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


#: the modules a check depends on: the utility's, plus the SB3 reference and the diagnostics
CHECK_CODE = (*UTILITY_CODE, "action_shapley/sb3_reference.py", "action_shapley/diagnostics.py")


def save_check(frame: pd.DataFrame, name: str) -> Path:
    """Write a committed check table and its JSON (code fingerprint of :data:`CHECK_CODE`),
    holding the data lock only while writing (checks take minutes to hours: notebooks and
    other writers go on between them)."""
    from ..repro.locks import writing_data
    from .case_studies import case_study

    cases = sorted(set(frame["case"]))

    digests = {
        c: traces_digest(load_traces(traces_path(case_study(c)), case_study(c))) for c in cases
    }
    meta = {
        "name": name,
        "traces_sha256_16": digests,
        "code_fingerprint": library_fingerprint(CHECK_CODE),
        **machine(),
        "regenerate": "make action-shapley-checks",
    }
    with writing_data():
        return write_table(frame, check_path(name), meta, CHECKS[name])


def load_check(name: str) -> pd.DataFrame:
    """Read and validate a committed check table (declared as an input of the notebook)."""
    frame, meta = read_table(
        check_path(name), CHECKS[name], "regenerate it with `make action-shapley-checks`"
    )
    return frame


__all__ = [
    "CHECK_CODE",
    "recorded_subsets",
    "CHECKS",
    "load_check",
    "save_check",
    "UTILITY",
    "build_table",
    "committed_seeds",
    "is_legacy",
    "load_table",
    "machine",
    "recheck_summary",
    "recheck_tables",
    "regenerate_target",
    "run_arrays",
    "runs_frame",
    "build_multi_table",
    "save_table",
    "table_config",
    "table_meta",
    "grow_table",
    "append_rows",
    "table_path",
    "tables_dir",
    "tables_for",
]
