"""Run every benchmark module (``python -m benchmarks [name ...]``) and print the results."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import torch

from .harness import Result


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    results: list[Result] = []
    for name in names:
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        for r in module.run():
            print(f"   {r.name}: {r.seconds:.3f} s  [{r.verdict}]  {r.note}", flush=True)
            results.append(r)
    print("\n| benchmark | seconds | target (s) | verdict | note |\n|---|---|---|---|---|")
    for r in results:
        target = "—" if r.target_s is None else f"{r.target_s:g}"
        print(f"| {r.name} | {r.seconds:.3f} | {target} | {r.verdict} | {r.note} |")
    return 1 if any(r.verdict == "FAIL" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
