"""Measure the README's timing table on fresh clones of this repository (``make timings``).

Each run clones the repository's committed ``HEAD`` into a temporary directory and times, in
that clone, the steps a new user meets:

* ``setup``   -- ``make setup``: create ``.venv`` and install the pins (pip's download cache
  is whatever this machine has; say so when quoting the number);
* ``test``    -- ``make test`` after set-up;
* ``quick``   -- ``make reproduce`` (quick profile) with a cold cache, after set-up;
* ``paper``   -- ``make reproduce PROFILE=paper`` with a cold cache (long; opt in).

It prints the median, minimum and maximum wall time of every step over ``--runs`` runs, and
the machine they were measured on, as the Markdown table the README shows. Only the
standard library is used, so it runs with the system Python before any set-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = {
    "setup": ("set-up (`.venv` + pinned install, first call of either command)", ["setup"]),
    "test": ("`make test` (library tests + notebooks under nbval, smoke)", ["test"]),
    "quick": ("`make reproduce` (quick, cold cache)", ["reproduce"]),
    "paper": ("`make reproduce PROFILE=paper` (cold cache)", ["reproduce", "PROFILE=paper"]),
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        mem = ""
    gpu = "no GPU" if shutil.which("nvidia-smi") is None else "GPU present (not used by CPU runs)"
    return f"{os.cpu_count()} cores ({cpu}){mem}, {gpu}, {platform.system()}"


#: the quick profile's 30-minute budget on 2 cores, allocated per paper (notebook numbers)
GROUPS = (
    ("SVERL", 0, 19, 4),
    ("Action Shapley", 20, 29, 7),
    ("FastSVERL", 30, 39, 12),
    ("your own agent", 40, 49, 6),
)


def group_seconds(clone: Path, profile: str) -> dict[str, float]:
    """Notebook wall time per group, from the runner's stamps of the run just made."""
    out = {name: 0.0 for name, *_ in GROUPS}
    for stamp in sorted((clone / "build" / "stamps" / profile).glob("[0-9][0-9]_*.json")):
        number = int(stamp.name[:2])
        seconds = float(json.loads(stamp.read_text()).get("seconds", 0.0))
        for name, lo, hi, _ in GROUPS:
            if lo <= number <= hi:
                out[name] += seconds
    return out


def print_shares(shares: list[dict[str, float]]) -> None:
    print("\n| group (quick) | median notebook time | budget | within |\n|---|---|---|---|")
    for name, _, _, minutes in GROUPS:
        t = statistics.median(s[name] for s in shares)
        print(f"| {name} | {fmt(t)} | {minutes} min | {'yes' if t <= 60 * minutes else 'NO'} |")


def fmt(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def time_step(clone: Path, step: str, python: str) -> float:
    if step in ("quick", "paper"):
        for path in ("build", "data/cache"):
            shutil.rmtree(clone / path, ignore_errors=True)
    cmd = ["make", *STEPS[step][1], f"PYTHON={python}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=clone, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"error: {' '.join(cmd)} failed in {clone} (exit {proc.returncode})")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh clones to time (median)")
    parser.add_argument("--steps", default="setup,test,quick", help=f"of {','.join(STEPS)}")
    parser.add_argument("--python", default=shutil.which("python3.11") or sys.executable)
    args = parser.parse_args(argv)
    requested = [s for s in args.steps.split(",") if s]
    unknown = [s for s in requested if s not in STEPS]
    steps = [s for s in STEPS if s in requested]  # set-up first
    if unknown or args.runs < 1:
        raise SystemExit(f"error: unknown steps {unknown} (choose from {list(STEPS)}), runs >= 1")
    times: dict[str, list[float]] = {s: [] for s in steps}
    shares: list[dict[str, float]] = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="shaprl-timings-") as tmp:
            clone = Path(tmp) / "repo"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            if "setup" not in steps:  # the others need the environment, untimed
                time_step(clone, "setup", args.python)
            for step in steps:
                times[step].append(time_step(clone, step, args.python))
                print(f"run {run + 1}/{args.runs} {step}: {fmt(times[step][-1])}", flush=True)
                if step in (
                    "quick",
                    "paper",
                ):  # regenerated artefacts must equal the committed ones
                    changed = subprocess.run(
                        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True
                    ).stdout.splitlines()
                    verdict = "clean" if not changed else f"{len(changed)} changed: {changed[:5]}"
                    print(f"  git status after {step}: {verdict}", flush=True)
                if step == "quick":
                    shares.append(group_seconds(clone, "quick"))
                    print(f"  per group: {shares[-1]}", flush=True)
    print(f"\nMeasured on {machine()}, {date.today().isoformat()}, median of {args.runs} run(s)")
    print("of `make timings` (fresh clone each run):\n")
    print("| command | median wall time | range |\n|---|---|---|")
    for step in steps:
        t = times[step]
        print(f"| {STEPS[step][0]} | {fmt(statistics.median(t))} | {fmt(min(t))}–{fmt(max(t))} |")
    if shares:
        print_shares(shares)
    return 0


if __name__ == "__main__":
    sys.exit(main())
