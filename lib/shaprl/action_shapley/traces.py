"""Training traces: one time series per training configuration, as CSV.

File format (``data/action_shapley/traces/<case>.csv``, described in ``SCHEMA.md`` there)::

    point,config_1,config_2,time_s,value
    a1,2,2,0,98.7
    ...

* ``point``: the data point's name (``a1``.. / ``w1``.. / ``p1``.. / ``r1``..);
* ``config_1``, ``config_2``: the configuration held during the trace (Table 6's pairs);
* ``time_s``: seconds since the trace started, starting at 0, one sampling interval apart;
* ``value``: the raw metric (CPU utilisation in %, or latency in ms), finite and in ``[0, cap]``.

A user with real measurements writes the same columns; :func:`load_traces` checks every row
and names the file, line and column of the first problem.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .case_studies import CaseStudy

COLUMNS = ("point", "config_1", "config_2", "time_s", "value")


class TraceFormatError(ValueError):
    """A trace CSV that does not follow the schema (the message names file, line, column)."""


@dataclass(frozen=True)
class Traces:
    """The traces of one case study: ``values[k]`` is point ``k``'s raw series."""

    case: CaseStudy
    configs: np.ndarray  #: (n, 2)
    values: np.ndarray  #: (n, n_samples)

    def statistics(self) -> np.ndarray:
        """The aggregated state statistic per window: ``(n, n_windows)``."""
        return self.case.aggregate(self.values)


def generate_traces(case: CaseStudy, seed: int = 0) -> Traces:
    """Simulate every training configuration of ``case`` (one seeded stream per point)."""
    n_windows = case.n_samples // case.window
    values = []
    for k, config in enumerate(case.configs):
        rng = np.random.default_rng([seed, k])
        raw = case.simulate_windows(np.array([config]), n_windows, rng)[0]
        values.append(np.pad(raw, (0, case.n_samples - raw.size), mode="edge"))
    return Traces(case, np.array(case.configs, dtype=float), np.array(values))


def write_traces(traces: Traces, path: Path) -> None:
    """Write ``traces`` in the CSV format above."""
    case = traces.case
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(COLUMNS)]
    for name, config, series in zip(case.points, traces.configs, traces.values, strict=True):
        for j, v in enumerate(series):
            t = j * case.interval_s
            lines.append(f"{name},{config[0]:g},{config[1]:g},{t:g},{v:.4f}")
    path.write_text("\n".join(lines) + "\n")


def _fail(path: Path, line: int, column: str, problem: str) -> TraceFormatError:
    return TraceFormatError(f"{path}: line {line}, column '{column}': {problem}")


def load_traces(path: Path, case: CaseStudy) -> Traces:
    """Read and validate a trace CSV for ``case``.

    Raises :class:`TraceFormatError` naming the file, the line and the column of the first
    problem and what was expected (header, point names, numbers, constant configuration per
    point, times 0, dt, 2 dt, ... with the case study's interval, values within ``[0, cap]``,
    every point present with the same number of samples).
    """
    from ..repro.inputs import declare_input

    path = declare_input(Path(path))  # an input of the running notebook: a change re-runs it
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no trace file; regenerate with `make action-shapley-traces`"
        )
    series: dict[str, list[float]] = {}
    configs: dict[str, tuple[float, float]] = {}
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise _fail(path, 1, "header", f"expected columns {','.join(COLUMNS)}, got {header}")
        for line, row in enumerate(reader, start=2):
            if len(row) != len(COLUMNS):
                raise _fail(path, line, "row", f"expected {len(COLUMNS)} fields, got {len(row)}")
            name = row[0].strip()
            if name not in case.points:
                raise _fail(
                    path, line, "point", f"expected one of {', '.join(case.points)}, got {name!r}"
                )
            nums = []
            for col, text in zip(COLUMNS[1:], row[1:], strict=True):
                try:
                    x = float(text)
                except ValueError:
                    raise _fail(path, line, col, f"expected a number, got {text!r}") from None
                if not math.isfinite(x):
                    raise _fail(path, line, col, f"expected a finite number, got {text!r}")
                nums.append(x)
            c1, c2, t, v = nums
            if name not in configs:
                configs[name] = (c1, c2)
                series[name] = []
            elif configs[name] != (c1, c2):
                col = "config_1" if configs[name][0] != c1 else "config_2"
                raise _fail(
                    path, line, col, f"point {name} changed configuration from {configs[name]}"
                )
            expected_t = len(series[name]) * case.interval_s
            if abs(t - expected_t) > 1e-6 * max(1.0, case.interval_s):
                raise _fail(
                    path,
                    line,
                    "time_s",
                    f"expected {expected_t:g} (samples every {case.interval_s:g} s from 0), "
                    f"got {t:g}",
                )
            if not 0.0 <= v <= case.cap:
                raise _fail(
                    path, line, "value", f"expected a value in [0, {case.cap:g}], got {v:g}"
                )
            series[name].append(v)
    missing = [p for p in case.points if p not in series]
    if missing:
        raise _fail(path, line if series else 1, "point", f"no samples for point(s) {missing}")
    lengths = {len(s) for s in series.values()}
    if len(lengths) != 1 or lengths.pop() < 2 * case.window:
        raise _fail(
            path,
            line,
            "time_s",
            f"every point needs the same number of samples (>= {2 * case.window}); got "
            f"{ {p: len(s) for p, s in series.items()} }",
        )
    return Traces(
        case,
        np.array([configs[p] for p in case.points], dtype=float),
        np.array([series[p] for p in case.points], dtype=float),
    )


def traces_path(case: CaseStudy, root: Path | None = None) -> Path:
    """Where the committed traces of ``case`` live."""
    from ..repro import repo_root

    base = Path(root) if root is not None else repo_root()
    return base / "data" / "action_shapley" / "traces" / f"{case.key}.csv"
