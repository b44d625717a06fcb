"""Pipeline integrity II: what a notebook reads, the cache, concurrent runs, failure paths.

Each runner test builds a throw-away repository with small synthetic notebooks (not the real
20-26) and drives ``python -m shaprl.repro.run`` in a subprocess, as ``make reproduce`` does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from shaprl import repro
from shaprl.repro import cache as cache_mod
from shaprl.repro import claims, data, inputs
from shaprl.repro.locks import FileLock, data_lock, tree_lock

CURVE_META = {"config": {"updates": 3}, "regenerate": "make thing"}


def _notebook(root: Path, name: str, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = None\ntag = "first"\nsleep = 0.0')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")


READER = """
import time
from shaprl import repro
from shaprl.repro.data import CURVE
report = repro.Report("{name}", profile, title="reads a curve")
frame, meta = repro.read_table(repro.repo_root() / "data" / "{file}", CURVE, "run make thing")
time.sleep(sleep)
report.table(frame, "curve", paper="P")
report.claim("c", paper="P", statement="s", holds=True, measured=str(frame.value.sum()),
             needs="paper", source=repro.committed_run(repro.repo_root() / "data" / "{file}"))
report.finalize()
"""

PLAIN = """
from shaprl import repro
import pandas as pd
report = repro.Report("{name}", profile, title="reads nothing")
report.table(pd.DataFrame({{"x": [1]}}), "t", paper="P")
report.claim("c", paper="P", statement="s", holds=True, measured=tag)
report.finalize()
"""


def _curve(root: Path, file: str, values: list[float], wall: float = 1.0) -> Path:
    frame = pd.DataFrame({"run": 0, "update": range(len(values)), "metric": "mse", "value": values})
    meta = {**CURVE_META, "wall_seconds": wall}
    return data.write_table(frame, root / "data" / file, meta, data.CURVE)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "lib" / "shaprl").mkdir(parents=True)  # marks the repository root
    _curve(tmp_path, "a.csv", [0.3, 0.2, 0.1])
    _curve(tmp_path, "b.csv", [1.0, 2.0])
    _notebook(tmp_path, "01_reads_a", READER.format(name="01_reads_a", file="a.csv"))
    _notebook(tmp_path, "02_reads_b", READER.format(name="02_reads_b", file="b.csv"))
    _notebook(tmp_path, "03_plain", PLAIN.format(name="03_plain"))
    return tmp_path


def _env(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAPRL_")}
    env.update(SHAPRL_ROOT=str(root), MPLBACKEND="Agg")
    return env


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "shaprl.repro.run", "--profile", "quick", *args]
    return subprocess.run(cmd, env=_env(root), capture_output=True, text=True, timeout=300)


def _status(out: str) -> dict[str, str]:
    """``{notebook: "run" | "skip"}`` from the runner's output."""
    found = re.findall(r"^\[(run |skip)\] (\w+)", out, flags=re.M)
    return {name: word.strip() for word, name in found}


# -- 1. inputs in the fingerprint ----------------------------------------------------------------
def test_a_changed_input_reruns_exactly_the_notebooks_that_read_it(project):
    first = _run(project)
    assert first.returncode == 0, first.stderr
    manifest = json.loads((project / "figures" / "01_reads_a" / "manifest.json").read_text())
    assert set(manifest["inputs"]) == {"data/a.csv", "data/a.json"}
    assert manifest["claims"][0]["status"] == "reproduced"  # decided by the committed run
    assert manifest["claims"][0]["source"].startswith("committed run `data/a.csv`")
    assert set(_status(_run(project).stdout).values()) == {"skip"}

    # a regeneration with identical values (only the wall time differs) re-runs nothing
    _curve(project, "a.csv", [0.3, 0.2, 0.1], wall=99.0)
    assert set(_status(_run(project).stdout).values()) == {"skip"}

    # a changed value re-runs 01 only, and the runner names the file
    _curve(project, "a.csv", [0.3, 0.2, 0.05])
    out = _run(project).stdout
    assert _status(out) == {"01_reads_a": "run", "02_reads_b": "skip", "03_plain": "skip"}
    assert "its input data/a.csv changed since its last run" in out

    # a deleted input: named, and the notebook fails loudly instead of being skipped
    (project / "data" / "b.csv").unlink()
    res = _run(project)
    assert "its input data/b.csv is missing" in res.stdout and res.returncode == 1


def test_undeclared_reads_under_data_warn(tmp_path):
    root = tmp_path / "data"
    (root / "cache").mkdir(parents=True)
    for name in ("raw.txt", "ok.txt", "cache/c.txt"):
        (root / name).write_text("x")
    inputs.watch_undeclared(root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (root / "raw.txt").read_text()
        (root / "cache" / "c.txt").read_text()  # the cache is keyed already
        (inputs.declare_input(root / "ok.txt")).read_text()
    flagged = sorted(
        {str(w.message) for w in caught if w.category is inputs.UndeclaredInputWarning}
    )
    assert len(flagged) == 1 and "raw.txt" in flagged[0] and "declare_input" in flagged[0]


def test_json_digest_ignores_volatile_fields(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"x": 1, "wall_seconds": 3, "cpu_model": "A", "torch": "1"}))
    b.write_text(json.dumps({"torch": "2", "x": 1, "wall_seconds": 9, "compute_seconds": 1}))
    assert inputs.input_digest(a) == inputs.input_digest(b)
    b.write_text(json.dumps({"x": 2}))
    assert inputs.input_digest(a) != inputs.input_digest(b)


# -- 2. validated, versioned committed data -----------------------------------------------------
def test_curve_tables_are_validated_with_file_line_column_and_fix(tmp_path):
    path = _curve(tmp_path, "c.csv", [0.1, 0.2, 0.3])
    frame, meta = data.read_table(path, data.CURVE, "run make thing")
    assert meta["schema_version"] == 1 and meta["kind"] == "curve" and len(frame) == 3

    text = path.read_text().splitlines()
    path.write_text("\n".join([*text, text[2]]) + "\n")  # a duplicated row
    with pytest.raises(
        data.DataFormatError,
        match=r"line 5, column 'run'.*first seen on line 3.*Fix: run make thing",
    ):
        data.read_table(path, data.CURVE, "run make thing")
    path.write_text("\n".join([*text[:2], text[2].replace("0.2", "abc")]) + "\n")
    with pytest.raises(
        data.DataFormatError, match=r"line 3, column 'value': expected a number, got 'abc'"
    ):
        data.read_table(path, data.CURVE, "run make thing")

    meta_path = path.with_suffix(".json")
    newer = {**json.loads(meta_path.read_text()), "schema_version": 7}
    meta_path.write_text(json.dumps(newer))
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(data.DataFormatError, match="newer than this code reads"):
        data.read_table(path, data.CURVE, "run make thing")
    meta_path.write_text("{not json")
    with pytest.raises(data.DataFormatError, match=r"c.json: line 1.*not valid JSON"):
        data.read_table(path, data.CURVE, "run make thing")


# -- 4. the cache ------------------------------------------------------------------------------
def _notebook_function(source: str):
    """A function defined as a notebook defines it (module ``__main__``, no source file)."""
    namespace = {"__name__": "__main__"}
    exec(compile(source, "<cell>", "exec"), namespace)
    return namespace["compute"]


class _Calls(list):
    """A call log (its own type: it enters a cache key by type, not by content)."""


def test_cache_key_covers_the_calling_code_and_what_it_references(tmp_path):
    calls = _Calls()

    def run(source):
        fn = _notebook_function(source)
        return repro.cached("nb", {"n": 1}, lambda: calls.append(1) or fn(), directory=tmp_path)

    v1 = "seed = 3\ndef helper(s):\n    return s * 2\ndef compute():\n    return helper(seed)\n"
    assert run(v1) == 6 and run(v1) == 6 and len(calls) == 1
    assert run(v1.replace("return helper(seed)", "return helper(seed + 1)")) == 8  # edited call
    assert run(v1.replace("s * 2", "s * 3")) == 9  # an edited helper it calls
    assert run(v1.replace("seed = 3", "seed = 4")) == 8  # a changed global it reads
    assert len(calls) == 4
    key = cache_mod.config_key("nb", {"n": 1})
    assert len(key) == 20 and cache_mod.pins_fingerprint() != "x"


def test_bad_cache_entries_are_recomputed_naming_the_file(tmp_path, capsys):
    def compute():
        return {"ok": 1}

    assert repro.cached("t", {}, compute, directory=tmp_path) == {"ok": 1}
    (entry,) = (tmp_path / "t").glob("*.pkl")
    entry.write_bytes(b"garbage")
    assert repro.cached("t", {}, compute, directory=tmp_path) == {"ok": 1}
    assert f"{entry}: unreadable" in capsys.readouterr().err
    import pickle

    entry.write_bytes(pickle.dumps(np.ones(36)))  # the right file, the wrong content
    assert repro.cached("t", {}, compute, directory=tmp_path) == {"ok": 1}
    assert "not a shaprl cache entry (ndarray)" in capsys.readouterr().err
    assert repro.cached("t", {}, compute, directory=tmp_path, expect=list) == {"ok": 1}
    assert "expected" in capsys.readouterr().err


def test_a_failed_cache_write_warns_and_keeps_the_result(tmp_path, monkeypatch):
    def boom(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_mod, "atomic_write_bytes", boom)
    with pytest.warns(cache_mod.CacheWarning, match="not cached"):
        assert repro.cached("t", {}, lambda: 5, directory=tmp_path) == 5


def test_an_untrusted_cache_directory_is_not_read(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.warns(cache_mod.CacheWarning, match="writable by every user"):
        assert repro.cached("t", {}, lambda: 1, directory=shared) == 1
    assert not (shared / "t").exists()


# -- 5. locks ----------------------------------------------------------------------------------
def test_a_second_run_on_the_same_tree_waits_for_the_first(project):
    env = _env(project)
    os.environ["SHAPRL_ROOT"] = str(project)
    try:
        lock = tree_lock(project / "figures").acquire()
    finally:
        del os.environ["SHAPRL_ROOT"]
    cmd = [sys.executable, "-m", "shaprl.repro.run", "--profile", "quick", "--notebooks", "03"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()  # blocks until the runner says it waits
    assert proc.poll() is None  # still waiting
    lock.release()
    out, err = proc.communicate(timeout=120)
    err = first + err
    assert proc.returncode == 0, err
    assert "[wait] output tree" in err and f"pid {os.getpid()}" in err


def test_data_lock_is_shared_by_readers_and_exclusive_for_writers(tmp_path, monkeypatch):
    monkeypatch.setenv("SHAPRL_ROOT", str(tmp_path))
    r1 = data_lock(shared=True).acquire()
    r2 = data_lock(shared=True).acquire(timeout=1)  # readers share
    with pytest.raises(TimeoutError, match="data/"):
        data_lock(shared=False).acquire(timeout=1, poll=0.1)
    r1.release()
    r2.release()
    FileLock(data_lock(shared=False).path).acquire(timeout=1).release()


# -- 6. failure paths --------------------------------------------------------------------------
def test_failure_paths_cannot_fail_twice(project, monkeypatch):
    from shaprl.repro import run as run_mod

    def full(_tree):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_mod, "write_index", full)
    run_mod._best_effort_index(project / "figures")  # one line, no exception

    _notebook(project, "04_fails", "raise RuntimeError('boom')")
    res = _run(project, "--notebooks", "04")
    assert res.returncode == 1 and "[fail] 04_fails" in res.stderr
    assert (project / "build" / "notebooks" / "quick" / "04_fails.failed.ipynb").exists()
    _notebook(project, "04_fails", PLAIN.format(name="04_fails"))
    assert _run(project, "--notebooks", "04").returncode == 0
    assert not (project / "build" / "notebooks" / "quick" / "04_fails.failed.ipynb").exists()
    assert not (project / "figures" / ".staging").exists()
    assert not list((project / "build").rglob("*.partial.ipynb"))
    for f in (project / "figures" / "04_fails").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


def test_a_second_interrupt_during_cleanup_still_exits_130(project):
    cmd = [sys.executable, "-m", "shaprl.repro.run", "--notebooks", "01", "--params", "sleep=60"]
    proc = subprocess.Popen(
        cmd, env=_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while not list((project / "figures" / ".staging").glob("01_reads_a.*")):
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.count("[stop]") == 1


# -- 7. paths ----------------------------------------------------------------------------------
def test_a_relative_output_dir_is_relative_to_the_repository(tmp_path, monkeypatch):
    (tmp_path / "lib" / "shaprl").mkdir(parents=True)
    monkeypatch.setenv("SHAPRL_ROOT", str(tmp_path))
    monkeypatch.setenv("SHAPRL_OUTPUT_DIR", "build/smoke/figures")
    monkeypatch.chdir(tmp_path / "lib")  # a kernel started in notebooks/ resolved it there
    assert repro.output_dir("smoke") == tmp_path / "build" / "smoke" / "figures"


def test_makefile_writes_nbval_outputs_under_build_and_clean_removes_them():
    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert "SMOKE_OUT  := $(CURDIR)/build/smoke" in text
    assert "rm -rf build data/cache figures/.staging notebooks/build" in text


# -- 8. the claim schema -----------------------------------------------------------------------
def test_claim_schema_statuses_and_sources(tmp_path, monkeypatch):
    (tmp_path / "lib" / "shaprl").mkdir(parents=True)
    monkeypatch.setenv("SHAPRL_ROOT", str(tmp_path))
    monkeypatch.setenv("SHAPRL_OUTPUT_DIR", str(tmp_path / "out"))
    _curve(tmp_path, "long.csv", [0.5, 0.1])
    report = repro.Report("09_claims", "quick")
    assert (
        report.claim("a", paper="P", statement="s", holds=True, measured="m", needs="paper").status
        == "indicative"
    )
    evidence = repro.committed_run("data/long.csv")
    decided = report.claim(
        "b", paper="P", statement="s", holds=False, measured="m", needs="paper", source=evidence
    )
    assert decided.status == "not reproduced" and decided.source.startswith(
        "committed run `data/long.csv`"
    )
    _curve(tmp_path, "long2.csv", [0.4, 0.2])
    both = repro.committed_run(["data/long.csv", "data/long2.csv"], budget="two chunks")
    assert both.path == "data/long.csv + data/long2.csv" and both.budget == "two chunks"
    assert both.config_hash not in (
        evidence.config_hash,
        repro.committed_run("data/long2.csv").config_hash,
    )
    with pytest.raises(ValueError, match="no path"):
        repro.committed_run([])
    nt = report.claim(
        "c", paper="P", statement="w3 is best", holds="not testable", measured="their traces"
    )
    assert nt.status == claims.NOT_TESTABLE
    with pytest.raises(ValueError, match="not testable"):
        report.claim("d", paper="P", statement="s", holds="maybe", measured="m")
    report.finalize()
    from shaprl.repro.index import write_index

    text = write_index(tmp_path / "out").read_text()
    assert "∅ not testable here" in text and "**Not testable here**" in text
    assert "**Decided by a committed long run** (evidence under `data/`): 1" in text
