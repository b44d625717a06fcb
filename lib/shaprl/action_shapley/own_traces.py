"""Value your own traces: a case study from a trace CSV and a spec beside it, no built-in simulator.

A user supplies

* a trace CSV in the schema of ``data/action_shapley/traces/SCHEMA.md`` (``point, config_1,
  config_2, time_s, value``; one constant configuration per point), and
* a spec (JSON, or YAML when ``pyyaml`` is installed) beside it declaring ``name``, the
  ``points``, the **two** configuration dimensions ``dims`` (the PID environment of Eq. 3 is
  two-dimensional: each dimension has its own k_p, k_i, k_d), their ``lower`` / ``upper``
  bounds, the ``initial`` action, the ``percentile`` of the state statistic, the ``window``
  (samples per RL step), ``interval_s``, ``threshold``, ``unit``, ``cap`` (largest raw value),
  the ``goal`` (``"below"``: the paper's one-sided goal; ``"band"``: ``[0.9 thr, thr]``) and
  the ``max_step`` per dimension (physical units per RL step), and
* a seeded ``evaluate(policy, seed) -> (success, reward)``: their own simulator or a held-out
  model, run on the trained agent; ``policy(obs (5,)) -> action (6,)`` (obs = normalised error,
  integral / 3, derivative, the two normalised knobs). :func:`pid_rollout` runs Eq. 3's loop
  for a user who only has a function from a configuration to the statistic. Its
  ``evaluate_version`` (a string the user bumps when the evaluator changes) enters the cache
  key with the spec, the traces' digest, the algorithm, runs, episodes and the library code.

:func:`value_own_traces` then computes the multi-run utility of every subset (the rule of
:data:`~.utility.NULL_RULE`, ours; common random numbers: run ``r`` has one agent seed for every
subset; the episode seeds are shared) and returns the same table as the committed small cases
(schema 2), ready for :mod:`.uncertainty`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..repro import cached
from .case_studies import CaseStudy
from .pid_env import HORIZON, I_MAX
from .tables import runs_frame
from .traces import Traces, load_traces
from .utility import UTILITY_CODE, episode_seeds, run_seed, traces_digest, train_agents
from .world_model import SufficientStatistics

REQUIRED = (
    "name", "points", "dims", "lower", "upper", "initial", "percentile", "window",
    "interval_s", "threshold", "unit", "cap", "goal", "max_step",
)  # fmt: skip


class SpecError(ValueError):
    """A spec that cannot describe a two-dimensional PID case study (names the field)."""


def read_spec(path: str | Path) -> dict:
    """Read a JSON (``.json``) or YAML (``.yaml`` / ``.yml``) spec."""
    path = Path(path)
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def _two(spec: dict, key: str) -> tuple[float, float]:
    v = spec[key]
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise SpecError(
            f"spec field {key!r}: expected two numbers (the PID environment is "
            f"two-dimensional: one per configuration dimension), got {v!r}"
        )
    return float(v[0]), float(v[1])


def case_from_spec(spec: dict, n_samples: int) -> CaseStudy:
    """A :class:`~.case_studies.CaseStudy` with no simulator (``peak`` raises)."""
    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        raise SpecError(f"spec lacks field(s) {missing}; required: {list(REQUIRED)}")
    if spec["goal"] not in ("below", "band"):
        raise SpecError(f"spec field 'goal': expected 'below' or 'band', got {spec['goal']!r}")
    dims = spec["dims"]
    if len(dims) != 2:
        raise SpecError(f"spec field 'dims': the PID environment is two-dimensional, got {dims!r}")
    lower, upper = _two(spec, "lower"), _two(spec, "upper")
    if not all(lo < hi for lo, hi in zip(lower, upper, strict=True)):
        raise SpecError(f"spec fields 'lower' < 'upper' required, got {lower} and {upper}")

    def no_simulator(a):
        raise RuntimeError("a user case study has no built-in simulator: use evaluate()")

    window = int(spec["window"])
    return CaseStudy(
        key=str(spec["name"]),
        title=str(spec.get("title", spec["name"])),
        points=tuple(str(p) for p in spec["points"]),
        configs=tuple((0.0, 0.0) for _ in spec["points"]),  # read from the traces
        dims=(str(dims[0]), str(dims[1])),
        statistic=f"p{spec['percentile']:g}",
        percentile=float(spec["percentile"]),
        threshold=float(spec["threshold"]),
        unit=str(spec["unit"]),
        initial=_two(spec, "initial"),
        lower=lower,
        upper=upper,
        interval_s=float(spec["interval_s"]),
        n_samples=int(n_samples),
        duty=(1.0,) * window,
        idle=0.0,
        cap=float(spec["cap"]),
        noise_mult=0.0,
        noise_add=0.0,
        peak=no_simulator,
        goal=str(spec["goal"]),
        max_step=_two(spec, "max_step"),
    )


def load_own(trace_csv: str | Path, spec: dict | str | Path) -> tuple[CaseStudy, Traces]:
    """The user's case study and validated traces (:func:`~.traces.load_traces`'s checks)."""
    spec = spec if isinstance(spec, dict) else read_spec(spec)
    n_samples = len(pd.read_csv(trace_csv).query("point == @spec['points'][0]"))
    case = case_from_spec(spec, n_samples)
    traces = load_traces(Path(trace_csv), case)
    return case, traces


def pid_rollout(
    case: CaseStudy,
    policy: Callable[[np.ndarray], np.ndarray],
    statistic: Callable[[np.ndarray, np.random.Generator], float],
    seed: int,
    horizon: int = HORIZON,
) -> tuple[bool, float]:
    """Eq. 3's loop for a user's ``statistic(config (2,), rng)``: (goal reached, return)."""
    rng = np.random.default_rng(seed)
    lo, hi = case.band
    limit = np.asarray(case.step_limit)
    a = case.normalise(case.initial)
    s = statistic(case.denormalise(a), rng)
    e = float(np.clip((case.threshold - s) / case.threshold, -1, 1))
    i, d, total = float(np.clip(e, -I_MAX, I_MAX)), 0.0, 0.0
    if lo <= s <= hi:
        return True, 0.0
    for _ in range(horizon):
        act = np.clip(np.asarray(policy(np.array([e, i / I_MAX, d, a[0], a[1]])), float), -1, 1)
        gains = 0.5 * act.reshape(2, 3)
        a = np.clip(a + np.clip(gains @ np.array([e, i, d]), -limit, limit), 0.0, 1.0)
        s = statistic(case.denormalise(a), rng)
        if lo <= s <= hi:
            return True, total
        total -= abs(case.threshold - s)
        new_e = float(np.clip((case.threshold - s) / case.threshold, -1, 1))
        d, e = new_e - e, new_e
        i = float(np.clip(i + e, -I_MAX, I_MAX))
    return False, total


def _member_policy(batched, member: int) -> Callable[[np.ndarray], np.ndarray]:
    n = batched.n_members

    def policy(obs: np.ndarray) -> np.ndarray:
        x = torch.zeros(n, 1, 5)
        x[member, 0] = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        with torch.no_grad():
            return batched(x)[member, 0].numpy()

    return policy


def value_own_traces(
    case: CaseStudy,
    traces: Traces,
    evaluate: Callable,
    evaluate_version: str,
    algo: str = "ppo",
    runs: int = 10,
    episodes: int = 5,
    seed: int = 0,
    use_cache: bool = True,
) -> pd.DataFrame:
    """Schema-2 utility table of every subset of the user's points (see the module docstring).

    Every (subset, run) agent is trained in the world model of its subset's traces (the fixed
    basis of :mod:`.world_model`) with the agent seed :func:`~.utility.run_seed` ``(seed, r)``,
    then ``evaluate(policy, s)`` is called for each shared episode seed ``s``; a run reaches
    the goal when every episode does, its return is the episodes' mean.
    """
    masks = list(range(1 << case.n))
    spec_key = {
        "points": case.points, "dims": case.dims, "lower": case.lower, "upper": case.upper,
        "initial": case.initial, "percentile": case.percentile, "window": case.window,
        "threshold": case.threshold, "goal": case.goal, "max_step": case.max_step,
        "cap": case.cap,
    }  # fmt: skip
    config = {
        "spec": spec_key,
        "traces": traces_digest(traces),
        "evaluate_version": str(evaluate_version),
        "algo": algo,
        "runs": runs,
        "episodes": episode_seeds(seed, episodes),
        "seed": seed,
    }

    def compute() -> dict:
        all_masks = np.array([m for _ in range(runs) for m in masks], dtype=np.int64)
        params = SufficientStatistics(traces).fit(all_masks)
        agent_seeds = [run_seed(seed, r) for r in range(runs) for _ in masks]
        batched = train_agents(case, params, algo, agent_seeds, "cpu")
        out = {}
        for r in range(runs):
            rets, oks = [], []
            for j, m in enumerate(masks):
                member = r * len(masks) + j
                pol = _member_policy(batched, member)
                res = [evaluate(pol, s) for s in episode_seeds(seed, episodes)]
                oks.append(bool(m != 0 and all(bool(ok) for ok, _ in res)))
                rets.append(float(np.mean([float(rew) for _, rew in res])))
            out[r] = {
                "mask": masks,
                "return": rets,
                "success": oks,
                "convergence": [0.0] * len(masks),
            }
        return out

    outcomes = cached(
        "action_shapley_own_traces",
        config,
        compute,
        enabled=use_cache,
        code=(*UTILITY_CODE, "action_shapley/own_traces.py"),
    )
    return runs_frame(case, outcomes)
