"""The runner never serves stale, mixed or half-written artefacts (issue: pipeline integrity).

Each test builds a throw-away repository with one tiny notebook and drives
``python -m shaprl.repro.run`` in a subprocess, as ``make reproduce`` does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import pytest

from shaprl import repro
from shaprl.repro.paths import publish_directory, recover_directory
from shaprl.repro.report import stable_numbers
from shaprl.repro.run import parse_params

NOTEBOOK = "01_tiny"


def _write_notebook(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = None\ntag = "first"\nsleep = 0.0')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import time\n"
        "import pandas as pd\n"
        "from shaprl import repro\n"
        f'report = repro.Report("{NOTEBOOK}", profile, title="tiny")\n'
        'report.table(pd.DataFrame({"tag": [tag]}), "t1", paper="P")\n'
        "time.sleep(sleep)\n"
        'report.table(pd.DataFrame({"x": [0.1 + 0.2]}), "t2", paper="P")\n'
        'report.claim("c", paper="P", statement="s", holds=True, measured=tag)\n'
        "report.finalize()"
    )
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    (root / "notebooks").mkdir(parents=True)
    nbformat.write(nb, root / "notebooks" / f"{NOTEBOOK}.ipynb")


@pytest.fixture
def project(tmp_path):
    _write_notebook(tmp_path)
    return tmp_path


def _env(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAPRL_")}
    env["SHAPRL_ROOT"] = str(root)
    env["MPLBACKEND"] = "Agg"
    return env


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "shaprl.repro.run", *args]
    return subprocess.run(cmd, env=_env(root), capture_output=True, text=True, timeout=180)


def _manifest(directory: Path) -> dict:
    return json.loads((directory / NOTEBOOK / "manifest.json").read_text())


def _complete(directory: Path) -> bool:
    """Every file the manifest lists is present with its hash, and nothing else."""
    m = _manifest(directory)
    files = set(m["files"]) | {"manifest.json"}
    present = {p.name for p in (directory / NOTEBOOK).iterdir()}
    hashes_ok = all(
        h is None or repro.report.file_sha256(directory / NOTEBOOK / f) == h
        for f, h in m["files"].items()
    )
    return files == present and hashes_ok


def test_skip_only_when_outputs_are_exactly_the_last_run(project):
    figures = project / "figures"
    first = _run(project, "--profile", "quick")
    assert first.returncode == 0, first.stderr
    assert "[run ]" in first.stdout and _complete(figures)
    assert "[skip]" in _run(project, "--profile", "quick").stdout

    (figures / NOTEBOOK / "t1.csv").unlink()  # a deleted artefact
    out = _run(project, "--profile", "quick").stdout
    assert "t1.csv is missing" in out and (figures / NOTEBOOK / "t1.csv").exists()

    (figures / NOTEBOOK / "t2.csv").write_text("x\n42\n")  # an edited artefact
    assert "t2.csv was modified" in _run(project, "--profile", "quick").stdout

    (figures / NOTEBOOK / "stray.png").write_bytes(b"")  # a mixed directory
    out = _run(project, "--profile", "quick")
    assert "no run listed: stray.png" in out.stdout
    assert not (figures / NOTEBOOK / "stray.png").exists() and _complete(figures)
    # a file we did not write is not ours to delete: it is moved aside, and said so
    assert (figures / ".displaced" / NOTEBOOK / "stray.png").exists()
    assert "stray.png was not written by a run" in out.stderr


def test_profile_switch_never_serves_the_other_profile(project):
    figures, smoke = project / "figures", project / "build" / "figures" / "smoke"
    assert _run(project, "--profile", "quick").returncode == 0
    assert _run(project, "--profile", "smoke").returncode == 0
    assert _manifest(figures)["profile"] == "quick" and _manifest(smoke)["profile"] == "smoke"
    assert "[skip]" in _run(project, "--profile", "quick").stdout
    index = (smoke / "README.md").read_text()
    assert "Profile `smoke`" in index and "every entry comes from a `smoke` run" in index

    # The old failure: another profile's results copied over the quick tree are re-made.
    for f in (smoke / NOTEBOOK).iterdir():
        (figures / NOTEBOOK / f.name).write_bytes(f.read_bytes())
    out = _run(project, "--profile", "quick").stdout
    assert "[run ]" in out and _manifest(figures)["profile"] == "quick"

    # Parameters are part of what is served: a run with others does not count as this one.
    out = _run(project, "--profile", "quick", "--params", "tag='other'").stdout
    assert "[run ]" in out and _manifest(figures)["params"] == {"tag": "other"}
    assert "[run ]" in _run(project, "--profile", "quick").stdout


def test_profile_cannot_come_through_params(project):
    with pytest.raises(SystemExit, match="PROFILE="):
        parse_params("profile=smoke")
    out = _run(project, "--profile", "quick", "--params", "profile=smoke")
    assert out.returncode != 0 and "PROFILE=smoke" in out.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupt_leaves_the_old_complete_directory(project, sig):
    figures = project / "figures"
    assert _run(project, "--profile", "quick").returncode == 0
    before = {p.name: p.read_bytes() for p in (figures / NOTEBOOK).iterdir()}
    cmd = [sys.executable, "-m", "shaprl.repro.run", "--params", "tag='second' sleep=60"]
    proc = subprocess.Popen(
        cmd, env=_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 90
    while not list((figures / ".staging").glob(f"{NOTEBOOK}.*/t1.csv")):
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert "stopped cleanly" in err and "Traceback" not in err
    time.sleep(1.0)  # a kernel left running would publish or stage something by now
    after = {p.name: p.read_bytes() for p in (figures / NOTEBOOK).iterdir()}
    assert after == before and _manifest(figures)["claims"][0]["measured"] == "first"
    assert not (figures / ".staging").exists()
    assert not list((project / "build").rglob("*.partial*"))
    # the interrupted run resumes: same command, new complete results
    done = _run(project, "--params", "tag='second'")
    assert done.returncode == 0 and _manifest(figures)["claims"][0]["measured"] == "second"
    assert _complete(figures)


def test_recover_restores_a_directory_moved_aside_by_a_killed_run(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    aside = tmp_path / ".staging" / f"{NOTEBOOK}.old.{dead.pid}"
    half = tmp_path / ".staging" / f"{NOTEBOOK}.{dead.pid}"
    aside.mkdir(parents=True)
    half.mkdir()
    (aside / "manifest.json").write_text("{}")
    recover_directory(tmp_path, NOTEBOOK)
    assert (tmp_path / NOTEBOOK / "manifest.json").exists()
    assert not (tmp_path / ".staging").exists()


def test_publish_replaces_the_whole_directory(tmp_path):
    target = tmp_path / "nb"
    target.mkdir()
    (target / "old.csv").write_text("1")
    staged = tmp_path / ".staging" / "nb.1"
    staged.mkdir(parents=True)
    (staged / "new.csv").write_text("2")
    publish_directory(staged, target)
    assert [p.name for p in target.iterdir()] == ["new.csv"]
    assert not staged.exists()


def test_report_stages_until_finalize(tmp_path, monkeypatch):
    monkeypatch.setenv("SHAPRL_OUTPUT_DIR", str(tmp_path))
    report = repro.Report("99_test", "quick")
    report.table(pd.DataFrame({"a": [1.0]}), "t", paper="P")
    report.table(pd.DataFrame({"s": [0.5]}), "timing_run", paper="P")
    fig, ax = plt.subplots()
    report.figure(fig, "t", paper="P")  # a figure may share its table's name
    report.table(pd.DataFrame({"a": [2.0]}), "t", paper="P")  # re-saving replaces
    assert not (tmp_path / "99_test").exists()
    report.finalize()
    manifest = json.loads((tmp_path / "99_test" / "manifest.json").read_text())
    kinds = sorted((a["kind"], a["name"]) for a in manifest["artefacts"])
    assert kinds == [("figure", "t"), ("table", "t"), ("table", "timing_run")]
    assert manifest["files"]["timing_run.csv"] is None
    assert len(manifest["files"]["t.csv"]) == 64
    with pytest.raises(RuntimeError, match="already called"):
        report.finalize()


def test_stable_numbers_hide_floating_point_noise():
    a = pd.DataFrame({"v": [1.0, -3.10862446895e-14, 0.1 + 0.2, 2 / 3], "k": list("abcd")})
    b = pd.DataFrame({"v": [1.0, -3.15303338994e-14, 0.3, 2 / 3 + 1e-15], "k": list("abcd")})
    csv_a = stable_numbers(a).to_csv(index=False, float_format="%.10g")
    assert csv_a == stable_numbers(b).to_csv(index=False, float_format="%.10g")
    assert "\n0,b\n" in csv_a and "-0" not in csv_a
    small = pd.DataFrame({"v": [1e-14, 2e-14]})  # a table whose whole scale is tiny keeps it
    assert (stable_numbers(small)["v"] > 0).all()
    assert np.isnan(stable_numbers(pd.DataFrame({"v": [np.nan, 1.0]}))["v"][0])


def test_claim_statuses_and_kinds_reach_the_index(tmp_path, monkeypatch):
    from shaprl.repro.index import render_index

    monkeypatch.setenv("SHAPRL_OUTPUT_DIR", str(tmp_path))
    report = repro.Report("98_claims", "quick")
    report.claim("p", paper="P", statement="half", holds="partly", measured="a holds; b fails")
    report.claim(
        "c", paper="P", statement="built so", holds=True, measured="1", kind="construction"
    )
    report.claim("i", paper="P", statement="budget", holds="partly", measured="x", needs="paper")
    with pytest.raises(ValueError, match="'partly'"):
        report.claim("bad", paper="P", statement="s", holds="mostly", measured="")
    with pytest.raises(ValueError, match="kind"):
        report.claim("bad", paper="P", statement="s", holds=True, measured="", kind="proof")
    claims = report.finalize()
    assert claims["status"].tolist() == ["partly reproduced", "reproduced", "indicative"]
    assert claims["kind"].tolist() == ["evidence", "construction", "evidence"]
    assert "partly holds under quick" in claims["measured"].iloc[2]
    text = render_index([json.loads((tmp_path / "98_claims" / "manifest.json").read_text())])
    assert "**Claims (evidence):** 1 partly reproduced, 1 indicative." in text
    assert "construction check" in text
