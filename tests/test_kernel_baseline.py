"""The AVX2 kernel baseline (shaprl.kernel_baseline): what it sets, when, and that it holds."""

import subprocess
import sys

import pytest

from shaprl import kernel_baseline as kb

ZEN4 = {"avx2", "fma", "avx512f", "avx512bw"}


def test_an_avx512_cpu_gets_all_three_variables():
    env = kb.baseline_env(ZEN4)
    assert env == {
        "OPENBLAS_CORETYPE": "Zen",
        "ATEN_CPU_CAPABILITY": "avx2",
        "NPY_DISABLE_CPU_FEATURES": kb.NUMPY_AVX512_TARGETS,
    }


def test_an_avx2_cpu_leaves_numpys_dispatch_alone():
    # numpy refuses to disable a feature the CPU lacks
    assert "NPY_DISABLE_CPU_FEATURES" not in kb.baseline_env({"avx2", "fma"})


@pytest.mark.parametrize("flags", [set(), {"sse4_2", "avx"}, {"avx2"}])
def test_nothing_is_set_without_avx2_and_fma(flags):
    assert kb.baseline_env(flags) == {}
    assert kb.apply({}, flags) == {}


def test_apply_keeps_what_the_user_set_and_reports_what_it_added():
    environ = {"OPENBLAS_CORETYPE": "Haswell"}
    added = kb.apply(environ, ZEN4)
    assert environ["OPENBLAS_CORETYPE"] == "Haswell"
    assert "OPENBLAS_CORETYPE" not in added
    assert added["ATEN_CPU_CAPABILITY"] == "avx2" == environ["ATEN_CPU_CAPABILITY"]


@pytest.mark.parametrize("value, sets", [("1", False), ("yes", False), ("0", True), ("", True)])
def test_the_opt_out(value, sets):
    environ = {kb.OPT_OUT: value}
    assert bool(kb.apply(environ, ZEN4)) is sets


def test_cpu_flags_reads_the_first_cpu(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert kb.cpu_flags(info) == {"fpu", "avx2", "fma"}
    assert kb.cpu_flags(tmp_path / "missing") == set()


def _capability(code: str, launcher: bool = False, **env) -> str:
    """``cpu_capability`` recorded by a fresh process that runs ``code`` (through
    ``python -m shaprl.kernel_baseline`` when ``launcher``), without the baseline inherited."""
    import os

    report = "\nfrom shaprl.repro.report import machine\nprint(machine()['cpu_capability'])"
    argv = [sys.executable, "-c", code + report]
    if launcher:
        argv = [sys.executable, "-m", "shaprl.kernel_baseline", *argv]
    run = subprocess.run(
        argv, capture_output=True, text=True, check=True,
        env={**{k: v for k, v in os.environ.items() if k not in kb.baseline_env(ZEN4)}, **env},
    )  # fmt: skip
    return run.stdout.strip().splitlines()[-1]


@pytest.mark.skipif("avx512f" not in kb.cpu_flags(), reason="needs a CPU with AVX-512")
def test_on_an_avx512_cpu_importing_shaprl_first_runs_at_avx2_and_the_record_says_so():
    assert _capability("import shaprl") == "AVX2"
    # numpy loaded first keeps its AVX-512 loops: recorded as AVX512, not as torch's AVX2
    assert _capability("import numpy\nimport shaprl") == "AVX512"
    assert _capability("import shaprl", SHAPRL_NATIVE_KERNELS="1") == "AVX512"


@pytest.mark.skipif("avx512f" not in kb.cpu_flags(), reason="needs a CPU with AVX-512")
def test_the_test_process_itself_runs_on_the_baseline():
    from shaprl.repro.report import kernel_capability

    assert kernel_capability() == "AVX2"


@pytest.mark.skipif("avx512f" not in kb.cpu_flags(), reason="needs a CPU with AVX-512")
def test_the_launcher_gives_a_command_that_imports_numpy_first_the_baseline():
    assert _capability("import numpy\nimport shaprl", launcher=True) == "AVX2"


def test_the_launcher_needs_a_command():
    with pytest.raises(SystemExit, match="usage"):
        kb.main([])
