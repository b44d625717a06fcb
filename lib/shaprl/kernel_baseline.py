"""One kernel baseline on every x86-64 CPU, so a seed gives the same numbers on any machine.

numpy (its SIMD ufunc loops), OpenBLAS (numpy's and scipy's) and ATen (torch's CPU kernels)
each pick their kernels for the CPU they load on. On a CPU with AVX-512 they take AVX-512
loops, whose sums, products and transcendental functions round differently in the last bits
from the AVX2 loops, and RL training amplifies those bits into different agents. Measured on
the 16 (subset, run) cells of notebook 20's re-check sample (VM tables made on an AVX2 AMD
EPYC), an AVX-512 AMD EPYC reproduced 10 of them natively and all 16 under this baseline.
numpy's and OpenBLAS's variables were both needed (without either, 4 or 6 cells differed).
ATen's made no difference on those cells; it is kept so that torch's vectorised kernels
follow the same family and report it (``cpu_capability``).

The baseline is the AVX2 family the committed tables were made with:

* ``NPY_DISABLE_CPU_FEATURES``: numpy's AVX-512 dispatch targets off (only set where the CPU
  has AVX-512; numpy refuses to disable what the CPU lacks or what is not dispatched);
* ``OPENBLAS_CORETYPE=Zen``: OpenBLAS's AVX2 kernels with the blocking of the machine that
  made the tables (another AVX2 core type, ``Haswell``, blocks differently);
* ``ATEN_CPU_CAPABILITY=avx2``: torch's vectorised kernels at AVX2.

Each library reads its variable once, when it loads, so the variables must be in the
environment before numpy, scipy or torch is imported. ``import shaprl`` sets the unset ones
(:func:`apply`), which is in time for ``python -m shaprl...`` (``make reproduce``, the make
targets of the long runs), for the tests (``conftest.py`` imports shaprl first), for the
notebook kernels those start (they inherit the environment) and for a script or notebook
that imports shaprl before numpy. ``python -m shaprl.kernel_baseline CMD ...`` runs any other
command on the baseline: ``make test-notebooks``, ``make lab`` and ``make bench`` start
pytest, JupyterLab and the benchmarks so (the notebooks and benchmarks import numpy or torch
before shaprl). A process that loaded numpy or torch first runs natively: the
``cpu_capability`` its tables and manifests record (:func:`shaprl.repro.report.machine`) then
says ``AVX512``, and comparisons with committed tables warn instead of failing.
``SHAPRL_NATIVE_KERNELS=1`` opts out (a little faster on AVX-512 CPUs). Nothing is set on
CPUs without AVX2 and FMA, or where ``/proc/cpuinfo`` is missing (macOS, Windows, ARM).

This module imports nothing outside the standard library: it runs before numpy loads.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

#: numpy 1.26's AVX-512 dispatch targets on x86-64 (``numpy.core._multiarray_umath.__cpu_dispatch__``)
NUMPY_AVX512_TARGETS = (
    "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL"
)
OPT_OUT = "SHAPRL_NATIVE_KERNELS"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The instruction-set flags of the first CPU in ``cpuinfo`` (empty when unreadable)."""
    try:
        with cpuinfo.open() as lines:  # stops at the first CPU's flags (runs on every import)
            for line in lines:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def baseline_env(flags: set[str]) -> dict[str, str]:
    """The variables that put a CPU with ``flags`` on the AVX2 baseline (empty without AVX2)."""
    if not {"avx2", "fma"} <= flags:
        return {}
    env = {"OPENBLAS_CORETYPE": "Zen", "ATEN_CPU_CAPABILITY": "avx2"}
    if "avx512f" in flags:
        env["NPY_DISABLE_CPU_FEATURES"] = NUMPY_AVX512_TARGETS
    return env


def apply(environ: MutableMapping[str, str] | None = None, flags: set[str] | None = None) -> dict:
    """Set the baseline variables that are not set yet in ``environ`` (default: this
    process's environment, inherited by its children); returns the ones it set. A variable
    the user set keeps its value; ``SHAPRL_NATIVE_KERNELS=1`` sets none."""
    environ = os.environ if environ is None else environ
    if environ.get(OPT_OUT, "") not in ("", "0"):
        return {}
    added = {}
    for name, value in baseline_env(cpu_flags() if flags is None else flags).items():
        if name not in environ:
            environ[name] = value
            added[name] = value
    return added


def main(argv: list[str]) -> None:
    """``python -m shaprl.kernel_baseline CMD ...``: run CMD with the baseline set (``import
    shaprl`` has set it already, before this runs)."""
    if not argv:
        raise SystemExit("usage: python -m shaprl.kernel_baseline COMMAND [ARG ...]")
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
