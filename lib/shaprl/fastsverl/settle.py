"""Committed long runs ("settle chunks") for the FastSVERL claims that do not settle in quick.

``make fastsverl-settle`` (``python -m shaprl.fastsverl.settle``) runs every chunk of
:data:`CHUNKS` that is not yet under ``data/fastsverl/settle/`` (or whose configuration
changed), ``--jobs`` at a time through joblib; each chunk is written as soon as it finishes,
so an interrupted run resumes at the next missing chunk. A chunk is a ``curve`` table
(``run, update, metric, value``: compact learning curves, one metric per condition) with its
JSON: the configuration, the library's code fingerprint
(:func:`shaprl.repro.cache.library_fingerprint` of the FastSVERL code and what it builds on,
:data:`CODE`) and the short hash of each of its files (``code_files``), the device, the
machine (:func:`shaprl.repro.report.machine`: CPU model, vector capability, torch/MKL --
floating-point results differ between CPUs), and the measured wall and CPU seconds.

Notebooks read a chunk with :func:`load` (validated; the claim's ``source`` becomes the
committed run) and, under ``quick``, re-run a *prefix* of a sample of its runs with
:func:`prefix_check`: the same code and seeds for the first few hundred updates, compared
within a stated tolerance -- batched runs are not bitwise stable across batch
compositions, so equality is not expected.

Provenance: a notebook reading a chunk made by other code than the current one says so and
names the files that changed (:func:`code_warning`), so a reader can tell an edit of grading
code from one of the computation. Chunks written before ``code_files`` was recorded get it
from git history with ``--backfill-provenance`` (:func:`backfill_provenance`): the commit
whose code reproduces the recorded fingerprint exactly, searched from the chunk's commit back
:data:`BACKFILL_DEPTH` commits; a chunk made from uncommitted code keeps only its fingerprint
(then the warning compares fingerprints, as before). Idempotent: run it after committing
chunks made by an older ``run_chunk``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed, parallel_config

from ..repro.claims import Evidence, committed_run
from ..repro.data import CURVE, TableSchema, read_table, write_table
from ..repro.locks import writing_data
from ..repro.paths import repo_root

if TYPE_CHECKING:
    from ..repro.history import GitHistory

#: the library parts a chunk's numbers depend on (its code fingerprint)
CODE = ("fastsverl", "batched", "agents", "domains", "mdp", "shapley", "sverl")


@dataclass(frozen=True)
class Chunk:
    """One resumable unit of ``make fastsverl-settle``."""

    name: str
    claims: tuple[str, ...]  #: claim keys it decides
    config: dict[str, Any]
    compute: Callable[[dict[str, Any], str], pd.DataFrame] = field(repr=False, compare=False)
    estimate_cpu_s: float = 0.0  #: measured or estimated CPU seconds on 2 cores (README)
    #: the committed table's schema (``curve``; the Hypercube chunks: ``hypercube_scaling``)
    schema: TableSchema = field(default=CURVE, compare=False)


def directory() -> Path:
    return repo_root() / "data" / "fastsverl" / "settle"


def path(name: str) -> Path:
    return directory() / f"{name}.csv"


def fix(name: str) -> str:
    return f"make fastsverl-settle CHUNKS={name}"


def _curves_frame(updates: np.ndarray, values: np.ndarray, metric: str) -> pd.DataFrame:
    r, t = values.shape
    return pd.DataFrame(
        {
            "run": np.repeat(np.arange(r), t),
            "update": np.tile(np.asarray(updates, dtype=np.int64), r),
            "metric": metric,
            "value": values.reshape(-1).astype(float),
        }
    )


# -- chunk computations ----------------------------------------------------------------------------
def _mm222_outcome(cfg: dict[str, Any], device: str) -> pd.DataFrame:
    """Outcome characteristic on Mastermind-222 (Fig. 1b): on- and off-policy, exact behaviour."""
    from . import outcome as oc
    from .experiments import agent_buffer, domain_problem

    agent, prob = domain_problem("Mastermind-222", dqn_steps=cfg["dqn"], seed=cfg["seed"])
    beh = oc.exact_behaviour(prob)
    ocfg = oc.OutcomeConfig(
        n_runs=cfg["runs"], eval_every=cfg["eval_every"], seed=cfg["seed"], updates=cfg["updates"]
    )
    if cfg["regime"] == "on-policy":
        _, curves = oc.train_outcome_on_policy(prob, beh, ocfg)
    else:
        buffer = agent_buffer(agent, prob)
        _, curves = oc.train_outcome_off_policy(prob, beh, buffer, ocfg)
    return _curves_frame(
        curves.updates, curves.exact_mse, f"outcome characteristic ({cfg['regime']})"
    )


def _gw_off_policy(cfg: dict[str, Any], device: str) -> pd.DataFrame:
    """Gridworld characteristics on the agent's buffer under every IS condition (Figs. 8-9)."""
    from . import off_policy as op
    from .training import TrainConfig

    tc = TrainConfig(
        hidden=(64, 64),
        updates=cfg["updates"],
        eval_every=cfg["eval_every"],
        n_runs=1,
        seed=cfg["seed"],
    )
    seeds = [cfg["seed"] + a for a in range(cfg["runs"])]
    f = op.off_policy_curves("Gridworld", op.GW_CONDITIONS, agent_seeds=seeds, cfg=tc)
    return pd.DataFrame(
        {
            "run": f["agent"].astype(int),
            "update": f["update"].astype(np.int64),
            "metric": f["kind"] + " | " + f["condition"],
            "value": f["exact_mse"].astype(float),
        }
    )


def _mm222_off_policy(cfg: dict[str, Any], device: str) -> pd.DataFrame:
    """One Mastermind-222 agent of notebook 33's Fig. 3a / App. D Fig. 7 run: its buffer under
    on-policy, no-IS and IS training, both kinds (exactly the notebook's per-agent job,
    :func:`.off_policy.off_policy_curves` with ``agent_seeds=[agent]``); ``run`` is the seeded
    run of that agent (the agent is in the configuration)."""
    from . import off_policy as op
    from .training import TrainConfig

    tc = TrainConfig(
        hidden=(64, 64),
        updates=cfg["updates"],
        eval_every=cfg["eval_every"],
        n_runs=cfg["runs"],
        seed=cfg["seed"],
    )
    f = op.off_policy_curves("Mastermind-222", op.MM_CONDITIONS, agent_seeds=[cfg["agent"]], cfg=tc)
    return pd.DataFrame(
        {
            "run": f["seed"].astype(int),
            "update": f["update"].astype(np.int64),
            "metric": f["kind"] + " | " + f["condition"],
            "value": f["exact_mse"].astype(float),
        }
    )


#: agents of the Mastermind-222 off-policy chunks (notebook 33; the authors train 20)
MM222_OFF_POLICY_AGENTS = 5


def mm222_off_policy_name(agent: int) -> str:
    return f"mm222_off_policy_is_agent{agent}"


def off_policy_frame(frame: pd.DataFrame, domain: str) -> pd.DataFrame:
    """A settle chunk of :func:`_gw_off_policy` back in :func:`.off_policy.off_policy_curves`' layout."""
    parts = frame["metric"].str.split(" | ", n=1, regex=False)
    kind, condition = parts.str[0], parts.str[1]
    return pd.DataFrame(
        {
            "domain": domain,
            "kind": kind,
            "agent": frame["run"],
            "seed": 0,
            "condition": condition,
            "update": frame["update"],
            "exact_mse": frame["value"],
        }
    )


def _mm222_sampling_outcome(cfg: dict[str, Any], device: str) -> pd.DataFrame:
    """Notebook 35's on-policy outcome characteristic on Mastermind-222 (App. F Fig. 11) with
    single-sample, exact and model-based behaviour (one metric per method)."""
    from . import outcome as oc
    from . import single_sample as ss
    from .experiments import DOMAINS, domain_problem

    name = "Mastermind-222"
    _, prob = domain_problem(name, dqn_steps=cfg["dqn"], seed=cfg["seed"], max_eval_rows=4_000)
    ocfg = oc.OutcomeConfig(
        updates=cfg["updates"], eval_every=cfg["eval_every"], n_runs=cfg["runs"], seed=cfg["seed"]
    )
    f = ss.outcome_sampling_curves(
        prob, ocfg, char_updates=cfg["char"], hidden=DOMAINS[name]["hidden"], domain=name
    )
    return pd.DataFrame(
        {
            "run": f["run"].astype(int),
            "update": f["update"].astype(np.int64),
            "metric": f["method"],
            "value": f["exact_mse"].astype(float),
        }
    )


def sampling_outcome_frame(frame: pd.DataFrame, domain: str) -> pd.DataFrame:
    """A chunk of :func:`_mm222_sampling_outcome` back in
    :func:`.single_sample.outcome_sampling_curves`' layout."""
    return pd.DataFrame(
        {
            "domain": domain,
            "kind": "outcome characteristic",
            "method": frame["metric"],
            "run": frame["run"],
            "update": frame["update"],
            "exact_mse": frame["value"],
        }
    )


def _hypercube_dqn(cfg: dict[str, Any], device: str) -> pd.DataFrame:
    """Fig. 2 / App. C Fig. 5 in the authors' setting: per cube, the authors' DQN agent, its
    greedy path from the origin and the updates to reach the target exact MSE
    (:func:`.hypercube_dqn.scaling_chunk`)."""
    from .hypercube_dqn import scaling_chunk

    return scaling_chunk(cfg)


def _hypercube_chunks() -> tuple[Chunk, ...]:
    """One chunk per number of dimensions n (sides 2-6, the authors' cube set): the DQN
    agents of larger n cost most (n = 5: 2.15M environment steps), so the smaller ones are
    committed first. Behaviour only (Fig. 2), 5 runs, the authors' cap of 10k epochs."""
    from .hypercube_dqn import SCALING

    return tuple(
        Chunk(
            f"hypercube_dqn_n{n}",
            HYPERCUBE_CLAIMS,
            {
                "cubes": [[side, n] for side in (2, 3, 4, 5, 6)],
                "kinds": ["behaviour"],
                "runs": 5,
                "max_updates": 620_000,
                "seed": 0,
                "dqn_steps": None,  # the authors' per-cube budget (hypercube_dqn.AUTHORS_DQN_STEPS)
            },
            _hypercube_dqn,
            schema=SCALING,
        )
        for n in (2, 3, 4, 5)
    )


#: the claims of notebook 31 the Hypercube chunks decide
HYPERCUBE_CLAIMS = (
    "fig2_polynomial_in_states",
    "fig2_features_matter_little",
    "fig2_characteristic_needs_more",
)
HYPERCUBE_CHUNKS = tuple(f"hypercube_dqn_n{n}" for n in (2, 3, 4, 5))


def _continual(cfg: dict[str, Any], device: str) -> pd.DataFrame:
    """One agent's joint run of notebook 34 (Fig. 3b / App. E Fig. 10): :mod:`.continual_claims`."""
    from .continual_claims import compute_chunk

    return compute_chunk(cfg, device)


def _continual_chunks() -> list[Chunk]:
    """Notebook 34's chunks: one per (domain, agent) of :mod:`.continual_claims`, each the
    authors' whole 100k-step run (9,000 agent updates). CPU seconds estimated from 200-update
    prefixes on one thread (Mastermind-222 35.2 s, Gridworld 30.6 s, 2026-12-07)."""
    from .continual_claims import AGENTS, CLAIM_DOMAINS, DOMAINS, chunk_config, chunk_name

    cost = {"Mastermind-222": 1_420.0, "Gridworld": 1_200.0}
    return [
        Chunk(
            chunk_name(d, a),
            tuple(k for k, doms in CLAIM_DOMAINS.items() if d in doms),
            chunk_config(d, a),
            _continual,
            cost[d],
        )
        for d in DOMAINS
        for a in range(AGENTS)
    ]


# -- Mastermind-333 accuracy (notebook 30, App. C Fig. 4) -----------------------------------------
#: the authors' Mastermind-333 updates per kind: (characteristic, Shapley) -- App. C Fig. 4,
#: ``data/fastsverl/authors_curves.csv`` panels 18/48-49 (behaviour) and 19/50-51 (prediction)
MM333_BUDGETS = {"behaviour": (62_000, 18_600), "prediction": (124_000, 31_000)}
#: estimated CPU seconds per kind (not measured; see :func:`_mm333_accuracy`)
MM333_CPU_S = {"behaviour": 1_500.0, "prediction": 1_100.0}


def mm333_accuracy_name(kind: str) -> str:
    return f"mm333_accuracy_{kind}"


#: notebook 30's Mastermind-333 chunks (one per kind) and the claims they decide
MM333_ACCURACY_CHUNKS = tuple(mm333_accuracy_name(k) for k in MM333_BUDGETS)
MM333_CLAIMS = ("appC_mm333_low_error_vs_authors", "fig4_mm333_learned_upstream_less_accurate")


def mm333_accuracy_config(kind: str) -> dict[str, Any]:
    """One kind's chunk: notebook 30's Mastermind-333 run at the authors' budgets, 5 runs."""
    char, shapley = MM333_BUDGETS[kind]
    return {
        "domain": "Mastermind-333",
        "dqn": 1_000_000,
        "seed": 0,
        "runs": 5,
        "eval_every": 620,
        "max_eval_rows": 4_000,  # notebook 30's seeded subset of distinct masked inputs
        "kind": kind,
        "char": char,
        "shapley": shapley,
    }


def accuracy_metric(model: str, kind: str, upstream: str, validation: bool = False) -> str:
    """A chunk metric of :func:`.experiments.accuracy_curves`' curves: ``"<model> <kind>
    <upstream>"`` (exact MSE), with `` | validation loss`` for the loss that selects a run's
    model."""
    return f"{model} {kind} {upstream}" + (" | validation loss" if validation else "")


def accuracy_table(curves: pd.DataFrame) -> pd.DataFrame:
    """:func:`.experiments.accuracy_curves`' curves (with ``val_loss``) as a ``curve`` table."""
    parts = []
    for (model, kind, upstream), g in curves.groupby(["model", "kind", "upstream"], sort=False):
        for col, validation in (("exact_mse", False), ("val_loss", True)):
            parts.append(
                pd.DataFrame(
                    {
                        "run": g["run"].astype(int),
                        "update": g["update"].astype(np.int64),
                        "metric": accuracy_metric(model, kind, upstream, validation),
                        "value": g[col].astype(float),
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def accuracy_frame(frame: pd.DataFrame, domain: str) -> pd.DataFrame:
    """A chunk of :func:`accuracy_table` back in :func:`.experiments.accuracy_curves`' curves
    layout (``update, run, exact_mse, val_loss, model, kind, upstream, domain``)."""
    val = frame["metric"].str.endswith(" | validation loss")
    exact = frame[~val].rename(columns={"value": "exact_mse"})
    loss = frame[val].assign(metric=lambda f: f["metric"].str.removesuffix(" | validation loss"))
    out = exact.merge(
        loss.rename(columns={"value": "val_loss"}), on=["run", "update", "metric"], how="left"
    )
    parts = out["metric"].str.split(" ", n=2, expand=True)
    return pd.DataFrame(
        {
            "update": out["update"].astype(np.int64),
            "run": out["run"].astype(int),
            "exact_mse": out["exact_mse"].astype(float),
            "val_loss": out["val_loss"].astype(float),
            "model": parts[0],
            "kind": parts[1],
            "upstream": parts[2],
            "domain": domain,
        }
    )


def accuracy_summary(frame: pd.DataFrame, domain: str) -> pd.DataFrame:
    """A chunk's summary in :func:`.experiments.accuracy_curves`' layout: per model, the mean
    (and standard error) over runs of the exact MSE of each run's *selected* model -- at its
    lowest validation loss, the first if tied, as the trainers' ``_BestKeeper`` keeps it --
    so the rows are graded exactly as notebook 30 grades its own summary."""
    curves = accuracy_frame(frame, domain)
    rows = []
    for (model, kind, upstream), g in curves.groupby(["model", "kind", "upstream"], sort=False):
        g = g.sort_values(["run", "update"])
        best = g.loc[g.groupby("run")["val_loss"].idxmin(), "exact_mse"].to_numpy()
        rows.append(
            {
                "domain": domain,
                "model": model,
                "kind": kind,
                "upstream": upstream,
                "updates": int(g["update"].max()),
                "runs": len(best),
                "final exact MSE": float(best.mean()),
                "stderr": float(best.std(ddof=1) / np.sqrt(len(best))) if len(best) > 1 else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _mm333_accuracy(cfg: dict[str, Any], device: str) -> pd.DataFrame:
    """Notebook 30's Mastermind-333 accuracy run (App. C Fig. 4) for one kind: its
    characteristic models (``runs`` batched) and Shapley models on the exact and on the
    learned (run 0) characteristic, at the authors' budgets, exact MSE and validation loss
    every ``eval_every`` updates (:func:`.experiments.accuracy_curves` with
    ``kinds=(kind,)``).

    Splitting by kind changes no procedure and no random draw: in ``accuracy_curves`` each
    kind's characteristic and Shapley models are trained on their own -- every model draws
    from generators seeded by the budget's seed (characteristic) or seed + 1 (Shapley), its
    weights are initialised under ``torch.manual_seed`` of its member seeds at construction,
    and a kind's learned upstream is its own characteristic run 0; the exact problem (agent,
    buffers, evaluation subset) is seeded and the same in both chunks. Nothing random depends
    on the other kind being trained in the same call (tested on a small problem: bitwise
    equal). What does differ from the ``paper`` profile's run is only its size: 5 runs
    instead of 20 (the first 5 member seeds, :func:`shaprl.batched.member_seeds`, which are
    prefix-stable; batched groups are not bitwise stable across group sizes).

    Cost (an *estimate*, not measured: the real problem was never computed while writing
    this): each chunk builds the exact Mastermind-333 problem (~6 min and ~5 GB, README), the
    behaviour chunk first trains the 1M-step DQN agent (~5 min; cached for the second); a
    micro-benchmark of Mastermind-333-sized models (15 features, 23 states, 128x128, 5 runs
    batched, one thread, loaded 2-core machine) gave 4.5 / 6.3 / 6.7 ms per update
    (behaviour characteristic / Shapley on exact / on learned) and 2.5 / 2.7 / 3.2 ms
    (prediction): behaviour ~5 + 6 + 4.6 + 2 x 2 min ≈ 20 min, prediction ~6 + 5.2 + 3.1 min
    ≈ 14 min, rounded up in :data:`MM333_CPU_S` for evaluation, exact Shapley values and load.
    """
    from .experiments import DOMAINS, AccuracyBudget, accuracy_curves, domain_problem

    domain, kind = cfg["domain"], cfg["kind"]
    _, prob = domain_problem(
        domain, dqn_steps=cfg["dqn"], seed=cfg["seed"], max_eval_rows=cfg["max_eval_rows"]
    )
    budget = AccuracyBudget(
        behaviour_char=cfg["char"],
        prediction_char=cfg["char"],
        shapley=cfg["shapley"],
        n_runs=cfg["runs"],
        eval_every=cfg["eval_every"],
        seed=cfg["seed"],
        hidden=DOMAINS[domain]["hidden"],
        kinds=(kind,),
    )
    curves, _ = accuracy_curves(prob, budget, domain=domain, validation=True)
    return accuracy_table(curves)


def read_mm333_accuracy(
    chunks: dict[str, tuple],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, Any]]] | None:
    """Notebook 30's Mastermind-333 chunks among loaded ``chunks`` (name -> :func:`load`'s
    triple): curves and summary in :func:`.experiments.accuracy_curves`' layout and name ->
    JSON of each; None unless both kinds' chunks are there."""
    if not all(n in chunks for n in MM333_ACCURACY_CHUNKS):
        return None
    domain = "Mastermind-333"
    frames = [chunks[n][0] for n in MM333_ACCURACY_CHUNKS]
    curves = pd.concat([accuracy_frame(f, domain) for f in frames], ignore_index=True)
    summary = pd.concat([accuracy_summary(f, domain) for f in frames], ignore_index=True)
    return curves, summary, {n: chunks[n][1] for n in MM333_ACCURACY_CHUNKS}


#: estimated CPU seconds of one Mastermind-222 off-policy agent (374k updates, 6 models): a
#: 3,740-update prefix took 11.8 s CPU on one thread with the agent cached (2026-12-07), x 100
MM222_OFF_POLICY_CPU_S = 1_200.0


def prefix(chunk: Chunk, updates: int, runs: int) -> dict[str, Any]:
    """The configuration of a short prefix of ``chunk`` (its first ``runs`` runs)."""
    cfg = dict(chunk.config, updates=updates, runs=runs)
    return cfg


CHUNKS: dict[str, Chunk] = {
    c.name: c
    for c in (
        Chunk(
            "mm222_outcome_on_policy",
            ("fig1_mm222_below_0.01", "fig1b_off_policy_faster"),
            {
                "dqn": 100_000,
                "seed": 0,
                "runs": 5,
                "eval_every": 250,
                "updates": 12_500,
                "regime": "on-policy",
            },
            _mm222_outcome,
        ),
        Chunk(
            "mm222_outcome_off_policy",
            ("fig1_mm222_below_0.01", "fig1b_off_policy_faster"),
            {
                "dqn": 100_000,
                "seed": 0,
                "runs": 5,
                "eval_every": 2_000,
                "updates": 200_000,
                "regime": "off-policy",
            },
            _mm222_outcome,
        ),
        Chunk(
            "gw_off_policy_is",
            ("fig8_normalised_best_unnormalised_worst", "fig9_tighter_clipping_harms"),
            # authors: 20 agents, 4,650 (behaviour) / 9,300 (prediction) updates; both 9,300
            {"runs": 5, "updates": 9_300, "eval_every": 93, "seed": 0},
            _gw_off_policy,
        ),
        Chunk(
            "mm222_sampling_outcome",
            ("fig11_outcome_sampled_behaviour_matches_exact",),
            # notebook 35's quick budget: the authors' 12,500 updates, 5 runs, 3,100 behaviour
            # pre-training updates for the model-based upstream
            {
                "dqn": 100_000,
                "seed": 0,
                "runs": 5,
                "eval_every": 250,
                "updates": 12_500,
                "char": 3_100,
            },
            _mm222_sampling_outcome,
        ),
        # notebook 30, App. C Fig. 4: Mastermind-333 split by kind (no number changes:
        # _mm333_accuracy); estimated CPU seconds, not measured
        *(
            Chunk(
                mm333_accuracy_name(kind),
                MM333_CLAIMS,
                mm333_accuracy_config(kind),
                _mm333_accuracy,
                MM333_CPU_S[kind],
            )
            for kind in MM333_BUDGETS
        ),
        *_hypercube_chunks(),
        *_continual_chunks(),
        # notebook 33, Fig. 3a / 7: one chunk per agent (agents are independent jobs, so the
        # split changes no number); the authors' 2,000 epochs x 187 batches = 374k updates,
        # logged every 1,870 as notebook 33's paper profile; CPU estimate from a prefix
        *(
            Chunk(
                mm222_off_policy_name(a),
                ("fig3a_is_lowers_buffer_error", "fig3a_is_short_of_on_policy"),
                {"agent": a, "runs": 1, "updates": 374_000, "eval_every": 1_870, "seed": 0},
                _mm222_off_policy,
                MM222_OFF_POLICY_CPU_S,
            )
            for a in range(MM222_OFF_POLICY_AGENTS)
        ),
    )
}


# -- running, reading, checking --------------------------------------------------------------------
def _config_hash(config: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def status(name: str) -> str:
    """``missing`` / ``stale config`` / ``done`` for a chunk's committed table."""
    p = path(name)
    if not p.exists() or not p.with_suffix(".json").exists():
        return "missing"
    meta = json.loads(p.with_suffix(".json").read_text())
    if meta.get("config_hash") != _config_hash(CHUNKS[name].config):
        return "stale config"
    return "done"


def run_chunk(name: str, device: str = "cpu") -> Path:
    """Compute one chunk and write it (atomically) under ``data/fastsverl/settle/``.

    The JSON records the code that made it -- the fingerprint of :data:`CODE` and the short
    hash of each of its files, from one read of the sources so the two agree -- and the
    machine (:func:`shaprl.repro.report.machine`: CPU model, vector capability, torch/MKL),
    since floating-point results differ between CPUs.
    """
    from ..repro.cache import library_provenance
    from ..repro.report import machine

    chunk = CHUNKS[name]
    torch.set_num_threads(1)
    fingerprint, files = library_provenance(CODE)  # the code as it was when the chunk started
    t0, c0 = time.perf_counter(), time.process_time()
    frame = chunk.compute(chunk.config, device)
    meta = {
        "chunk": name,
        "claims": list(chunk.claims),
        "config": chunk.config,
        "config_hash": _config_hash(chunk.config),
        "code_fingerprint": fingerprint,
        "code_files": files,
        "device": device,
        "regenerate": fix(name),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "compute_seconds": round(time.process_time() - c0, 1),
        "threads": torch.get_num_threads(),
        "machine": machine(),
        "torch": torch.__version__,
    }
    with writing_data():  # no notebook reads data/ while a chunk is written
        return write_table(frame, path(name), meta, chunk.schema)


#: at most this many changed files are named per chunk in :func:`code_warning`
NAMED_FILES = 6


def files_changed(recorded: dict[str, str], now: dict[str, str]) -> list[str]:
    """``"<file> changed|added|removed"`` for each file of :data:`CODE` whose recorded short
    hash differs from the current one (added: in the code now, not when the chunk was made)."""
    out = []
    for rel in sorted(set(recorded) | set(now)):
        if rel not in now:
            out.append(f"{rel} removed")
        elif rel not in recorded:
            out.append(f"{rel} added")
        elif recorded[rel] != now[rel]:
            out.append(f"{rel} changed")
    return out


def _code_difference(meta: dict[str, Any], now_files: dict[str, str], now: str) -> str:
    """What differs between the code that made a chunk and the current code; ``""`` if nothing.

    With recorded ``code_files``: the files that changed (or, when none did, the package
    version, which the fingerprint also covers). Without (chunks made before the files were
    recorded and not backfilled): only the fingerprints can be compared.
    """
    old = meta.get("code_fingerprint")
    recorded = meta.get("code_files")
    if not isinstance(recorded, dict):
        return "" if old == now else f"by code {old or 'not recorded'}, files not recorded"
    diff = files_changed(recorded, now_files)
    if len(diff) > NAMED_FILES:
        diff = diff[:NAMED_FILES] + [f"{len(diff) - NAMED_FILES} more files"]
    if not diff and old != now:
        diff = [f"same files, fingerprint {old} (package version or file set)"]
    return ", ".join(diff)


def code_warning(metas: dict[str, dict[str, Any]]) -> str:
    """A warning naming, per chunk (name -> JSON), what differs from the current code.

    A chunk JSON records the fingerprint of :data:`CODE` and (since provenance was recorded,
    or backfilled by :func:`backfill_provenance`) each file's short hash. A difference means
    the code that made the numbers is not the code being run: the chunk may still be right
    (the edit may not touch its computation; the quick profile's :func:`prefix_check` re-runs
    a prefix), but a claim decided by it says so -- naming the files, so a reader can judge
    whether they matter -- instead of using it silently. ``""`` when every chunk matches.
    """
    from ..repro.cache import library_provenance

    now, now_files = library_provenance(CODE)
    stale = {n: _code_difference(m, now_files, now) for n, m in metas.items()}
    stale = {n: d for n, d in stale.items() if d}
    if not stale:
        return ""
    groups: dict[str, list[str]] = {}  # one line per distinct difference, not per chunk
    for n, d in stale.items():
        groups.setdefault(d, []).append(n)
    made = "; ".join(f"{', '.join(names)}: {d}" for d, names in groups.items())
    return (
        f"warning: committed run made with other code than the current one ({made}; now "
        f"{now}): its numbers are not re-checked by this code beyond the prefix check. "
        f"Fix: python -m shaprl.fastsverl.settle --force --chunks {','.join(stale)}"
    )


def load(name: str) -> tuple[pd.DataFrame, dict[str, Any], Evidence]:
    """A committed chunk (validated, declared as a notebook input) and its evidence handle.

    The evidence carries a warning (shown in the claim's ``measured`` text) when the chunk's
    code fingerprint differs from the current code's (:func:`code_warning`).
    """
    frame, meta = read_table(path(name), CHUNKS[name].schema, fix(name))
    if meta.get("config_hash") != _config_hash(CHUNKS[name].config):
        raise ValueError(
            f"{path(name)}: computed with another configuration than CHUNKS[{name!r}]. "
            f"Fix: {fix(name)}"
        )
    evidence = committed_run(path(name), budget=f"settle chunk {name}")
    return frame, meta, replace(evidence, warning=code_warning({name: meta}))


def available(name: str) -> bool:
    return status(name) == "done"


def chunks_evidence(names: list[str], metas: dict[str, dict[str, Any]]) -> Evidence:
    """One evidence handle for a claim decided by several loaded chunks (name -> JSON), with
    :func:`code_warning` of them all."""
    ev = committed_run([path(n) for n in names], budget=f"settle chunks {names[0]}..{names[-1]}")
    return replace(ev, warning=code_warning(metas))


def read_mm222_off_policy() -> tuple[pd.DataFrame, dict[str, dict[str, Any]]] | None:
    """Notebook 33's Mastermind-222 chunks in :func:`.off_policy.off_policy_curves`' layout and
    name -> JSON of each; None unless every agent's chunk is committed."""
    names = [mm222_off_policy_name(a) for a in range(MM222_OFF_POLICY_AGENTS)]
    if not all(available(n) for n in names):
        return None
    frames, metas = [], {}
    for a, n in enumerate(names):
        f, metas[n], _ = load(n)
        frames.append(off_policy_frame(f, "Mastermind-222").assign(agent=a, seed=f["run"]))
    return pd.concat(frames, ignore_index=True), metas


# -- provenance of chunks committed before code_files was recorded -------------------------------
#: how many commits back from a chunk's commit the backfill looks for the code that made it
BACKFILL_DEPTH = 40


def _with_code_files(meta: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """``meta`` with ``code_files`` added right after ``code_fingerprint``, all else in order."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        out[key] = value
        if key == "code_fingerprint":
            out["code_files"] = files
    out.setdefault("code_files", files)
    return out


def _json_text(meta: dict[str, Any]) -> str:
    """A chunk JSON's text exactly as :func:`shaprl.repro.data.write_table` writes it."""
    return json.dumps(meta, indent=2, default=str) + "\n"


def find_code(
    history: GitHistory,
    paths: list[str],
    fingerprint: str,
    *,
    code: tuple[str, ...] = CODE,
    depth: int = BACKFILL_DEPTH,
    tried: dict[str, str | None] | None = None,
) -> tuple[str, dict[str, bytes]] | None:
    """The commit whose ``code`` has ``fingerprint``, and its sources; ``None`` if none has.

    Searched from each commit that changed ``paths`` (newest first; ``HEAD`` when none did:
    a chunk not committed yet) back ``depth`` commits: a chunk is computed from code
    committed before it (or with it). ``tried`` (commit -> fingerprint, ``None`` when not reconstructable) is shared between
    chunks, since most of them search the same commits.
    """
    from ..repro.cache import fingerprint_sources

    tried = {} if tried is None else tried
    for start in history.commits_touching(paths) or [history.head()]:
        for commit in history.ancestors(start, depth):
            if commit not in tried:
                got = history.sources(commit, code)
                tried[commit] = None if got is None else fingerprint_sources(got[0], got[1])
            if tried[commit] == fingerprint:
                return commit, history.sources(commit, code)[0]
    return None


def backfill_one(
    meta_path: Path,
    history: GitHistory,
    *,
    code: tuple[str, ...] = CODE,
    depth: int = BACKFILL_DEPTH,
    tried: dict[str, str | None] | None = None,
) -> str:
    """Add ``code_files`` to one chunk JSON lacking it, from the commit whose code has the
    recorded ``code_fingerprint`` (:func:`find_code`); return what was done, in words.

    Only that field is added (the CSV and every other field stay byte for byte); nothing is
    written unless the reconstruction's fingerprint equals the recorded one exactly, so a
    chunk computed from uncommitted code keeps only its fingerprint. Idempotent.
    """
    from ..repro.cache import source_hashes
    from ..repro.history import GitError
    from ..repro.paths import atomic_write_text

    text = meta_path.read_text()
    meta = json.loads(text)
    if "code_files" in meta:
        return "already recorded"
    fingerprint = meta.get("code_fingerprint")
    if not fingerprint:
        return "left: no code_fingerprint recorded"
    if _json_text(meta) != text:
        return "left: the JSON is not as write_table writes it (would change other bytes)"
    root = repo_root()
    paths = [p.relative_to(root).as_posix() for p in (meta_path.with_suffix(".csv"), meta_path)]
    try:
        found = find_code(history, paths, fingerprint, code=code, depth=depth, tried=tried)
    except GitError as err:
        return f"left: git history unavailable ({err})"
    if found is None:
        return (
            f"left: no commit within {depth} of its commit(s) has code {fingerprint} "
            "(computed from uncommitted code?)"
        )
    commit, sources = found
    with writing_data():
        atomic_write_text(meta_path, _json_text(_with_code_files(meta, source_hashes(sources))))
    return f"backfilled from commit {commit[:10]}"


def backfill_provenance(
    names: list[str] | None = None, *, code: tuple[str, ...] = CODE, depth: int = BACKFILL_DEPTH
) -> dict[str, str]:
    """:func:`backfill_one` for every chunk JSON under ``data/fastsverl/settle/`` (or the
    chunks ``names``): name -> outcome. Run it after committing chunks made by a
    ``run_chunk`` that did not record ``code_files`` (``--backfill-provenance``)."""
    from ..repro.history import GitHistory

    history = GitHistory(repo_root())
    tried: dict[str, str | None] = {}
    metas = sorted(directory().glob("*.json"))
    if names is not None:
        metas = [m for m in metas if m.stem in names]
    return {m.stem: backfill_one(m, history, code=code, depth=depth, tried=tried) for m in metas}


def prefix_check(
    name: str, updates: int, runs: int, *, rtol: float = 0.5, atol: float = 2e-3
) -> dict[str, Any]:
    """Re-run the first ``updates`` of ``runs`` runs of a chunk; compare the mean curve with the
    committed one at the common logged updates (``|ours - committed| <= atol + rtol x |committed|``;
    the absolute value matters only for signed metrics such as a return).
    """
    chunk = CHUNKS[name]
    committed, _, _ = load(name)
    cfg = prefix(chunk, updates, runs)
    fresh = chunk.compute(cfg, "cpu")
    a = committed[committed.run < runs].groupby(["metric", "update"]).value.mean()
    b = fresh.groupby(["metric", "update"]).value.mean()
    both = pd.concat({"committed": a, "re-run": b}, axis=1).dropna()
    both = both[both.index.get_level_values("update") > 0]
    ok = (both["re-run"] - both["committed"]).abs() <= atol + rtol * both["committed"].abs()
    return {
        "chunk": name,
        "prefix updates": updates,
        "runs": runs,
        "points compared": len(both),
        "largest gap": float((both["re-run"] - both["committed"]).abs().max()),
        "tolerance": f"{atol:g} + {rtol:g} x |committed|",
        "agrees": bool(len(both)) and bool(ok.all()),
    }


def hypercube_prefix_check(
    name: str, cubes: list[tuple[int, int]], runs: int, *, rtol: float = 0.5, atol: float = 8.0
) -> dict[str, Any]:
    """Re-run a Hypercube chunk on a few of its cubes and its first ``runs`` runs (the agents
    are retrained with the same seed) and compare (:func:`.hypercube_dqn.compare_prefix`)."""
    from .hypercube_dqn import compare_prefix

    chunk = CHUNKS[name]
    committed, _, _ = load(name)
    cfg = dict(chunk.config, cubes=[list(c) for c in cubes], runs=runs)
    return {
        "chunk": name,
        **compare_prefix(committed, chunk.compute(cfg, "cpu"), rtol=rtol, atol=atol),
    }


def summary_rows(frame: pd.DataFrame, domain: str, upstream: str = "exact") -> pd.DataFrame:
    """A chunk's final values in the layout of :func:`.experiments.accuracy_curves`' summary."""
    rows = []
    for metric, g in frame.groupby("metric"):
        last = g[g["update"] == g["update"].max()].value.to_numpy()
        kind = "outcome" if metric.startswith("outcome") else metric.split()[0]
        rows.append(
            {
                "domain": domain,
                "model": metric,
                "kind": kind,
                "upstream": upstream,
                "updates": int(g["update"].max()),
                "runs": len(last),
                "final exact MSE": float(last.mean()),
                "stderr": float(last.std(ddof=1) / np.sqrt(len(last))) if len(last) > 1 else np.nan,
            }
        )
    return pd.DataFrame(rows)


def mean_curve(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Mean over runs of one metric, indexed by update."""
    return frame[frame.metric == metric].groupby("update").value.mean()


def _print_backfill(outcomes: dict[str, str]) -> int:
    """One line per chunk JSON and a count (``--backfill-provenance``); exit status 0."""
    for name, outcome in outcomes.items():
        print(f"{name:32s} {outcome}")
    done = sum(o.startswith("backfilled") for o in outcomes.values())
    left = sum(o.startswith("left") for o in outcomes.values())
    print(f"{done} backfilled, {left} left without code_files, {len(outcomes)} chunk JSONs")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shaprl.fastsverl.settle", description=__doc__)
    ap.add_argument("--chunks", default="", help="names (comma/space separated); default all")
    ap.add_argument("--device", default=os.environ.get("DEVICE", "cpu"))
    ap.add_argument("--force", action="store_true", help="recompute chunks that are done")
    ap.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("JOBS") or 1),
        help="chunks computed at once (joblib workers, one thread each); default 1",
    )
    ap.add_argument("--list", action="store_true", help="list chunks and their status")
    ap.add_argument(
        "--backfill-provenance",
        action="store_true",
        help="add code_files to committed chunk JSONs lacking it, from git history",
    )
    args = ap.parse_args(argv)
    chosen = [n for n in args.chunks.replace(",", " ").split() if n]
    if args.backfill_provenance:
        return _print_backfill(backfill_provenance(chosen or None))
    names = chosen or list(CHUNKS)
    unknown = [n for n in names if n not in CHUNKS]
    if unknown:
        print(f"unknown chunk(s) {unknown}; known: {list(CHUNKS)}", file=sys.stderr)
        return 2
    if args.device != "cpu":
        # the trainers behind the current chunks (outcome, off-policy) run on CPU only
        print(
            f"DEVICE={args.device}: not implemented -- the current chunks' trainers "
            "(outcome, off-policy characteristics, continual explanation) run on CPU only",
            file=sys.stderr,
        )
        return 2
    todo = []
    for n in names:
        st = status(n)
        if args.list:
            code = ""
            if st == "done":
                meta = json.loads(path(n).with_suffix(".json").read_text())
                code = "other code" if code_warning({n: meta}) else "current code"
            print(f"{n:32s} {st:14s} {code:12s} claims: {', '.join(CHUNKS[n].claims)}")
        elif st == "done" and not args.force:
            print(f"{n}: done (data/fastsverl/settle/{n}.csv)")
        else:
            todo.append(n)
    # chunks are independent, one thread each: fanned out through joblib (``--jobs``; a
    # cluster user wraps the call in ``joblib.parallel_config(backend=...)``); each chunk is
    # written as soon as it finishes, so a stopped run keeps the finished ones
    with parallel_config(n_jobs=args.jobs):
        Parallel()(delayed(_compute_and_report)(n, args.device) for n in todo)
    return 0


def _compute_and_report(name: str, device: str) -> None:
    print(f"{name}: computing ({status(name)}) ...", flush=True)
    out = run_chunk(name, device)
    meta = json.loads(out.with_suffix(".json").read_text())
    print(
        f"{name}: written {out} in {meta['wall_seconds']} s wall, {meta['compute_seconds']} s CPU",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
