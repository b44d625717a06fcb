"""Settle chunks: written with config and code fingerprint, resumable, validated, re-checked."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shaprl.fastsverl import settle
from shaprl.repro.data import DataFormatError


def _toy(cfg, device):
    u = np.arange(0, cfg["updates"] + 1, 10)
    rows = [
        pd.DataFrame({"run": r, "update": u, "metric": "m", "value": 1.0 / (1 + u + r)})
        for r in range(cfg["runs"])
    ]
    return pd.concat(rows, ignore_index=True)


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "lib" / "shaprl").mkdir(parents=True)
    monkeypatch.setenv("SHAPRL_ROOT", str(tmp_path))
    chunk = settle.Chunk("toy", ("claim_a",), {"updates": 100, "runs": 3}, _toy)
    monkeypatch.setitem(settle.CHUNKS, "toy", chunk)
    return tmp_path


def test_run_load_resume_and_stale(toy):
    assert settle.status("toy") == "missing"
    assert settle.main(["--chunks", "toy"]) == 0
    meta = json.loads((toy / "data/fastsverl/settle/toy.json").read_text())
    assert meta["config"] == {"updates": 100, "runs": 3} and meta["claims"] == ["claim_a"]
    assert len(meta["code_fingerprint"]) == 16 and meta["compute_seconds"] >= 0
    assert settle.status("toy") == "done"
    mtime = settle.path("toy").stat().st_mtime_ns
    assert settle.main(["--chunks", "toy"]) == 0  # resumable: a done chunk is skipped
    assert settle.path("toy").stat().st_mtime_ns == mtime
    frame, _, evidence = settle.load("toy")
    assert len(frame) == 3 * 11 and evidence.path == "data/fastsverl/settle/toy.csv"
    check = settle.prefix_check("toy", updates=30, runs=2)
    assert check["agrees"] and check["points compared"] == 3 and check["largest gap"] < 1e-9
    settle.CHUNKS["toy"] = settle.Chunk("toy", ("claim_a",), {"updates": 200, "runs": 3}, _toy)
    assert settle.status("toy") == "stale config"
    with pytest.raises(ValueError, match="another configuration"):
        settle.load("toy")


def test_chunks_fan_out_through_joblib(toy, monkeypatch):
    from joblib import parallel_config

    twin = settle.Chunk("toy2", ("claim_a",), {"updates": 50, "runs": 2}, _toy)
    monkeypatch.setitem(settle.CHUNKS, "toy2", twin)
    # the threading backend sees the monkeypatched chunks; --jobs sets only the worker count
    with parallel_config(backend="threading"):
        assert settle.main(["--chunks", "toy toy2", "--jobs", "2"]) == 0
    assert settle.status("toy") == settle.status("toy2") == "done"
    assert len(settle.load("toy2")[0]) == 2 * 6


def test_chunk_made_by_other_code_is_flagged(toy, monkeypatch):
    from shaprl.repro import cache
    from shaprl.repro.claims import decide

    settle.run_chunk("toy")
    _, meta, evidence = settle.load("toy")
    assert evidence.warning == ""  # same code: used silently
    decided = decide("k", holds=True, measured="x", profile="quick", source=evidence)
    assert decided[:2] == ("reproduced", "x")
    # one file of settle.CODE edited since the chunk was made: the warning names it
    _, files = cache.library_provenance(settle.CODE)
    edited = {**files, "fastsverl/continual_claims.py": "0" * 16}
    monkeypatch.setattr(cache, "library_provenance", lambda code=None: ("0123456789abcdef", edited))
    _, _, evidence = settle.load("toy")
    assert "(toy: fastsverl/continual_claims.py changed; now 0123456789abcdef)" in evidence.warning
    assert "--force --chunks toy" in evidence.warning
    status, measured, source = decide(
        "k", holds=True, measured="x", profile="quick", source=evidence
    )
    assert status == "reproduced" and measured == f"x [{evidence.warning}]"
    assert source == evidence.describe()


def test_chunk_records_its_code_files_and_machine(toy):
    from shaprl.repro import cache
    from shaprl.repro.report import machine

    settle.run_chunk("toy")
    meta = json.loads(settle.path("toy").with_suffix(".json").read_text())
    assert meta["code_fingerprint"] == cache.library_fingerprint(settle.CODE)
    assert meta["code_files"] == cache.file_hashes(settle.CODE)
    assert (
        "fastsverl/settle.py" in meta["code_files"] and "repro/cache.py" not in meta["code_files"]
    )
    assert meta["machine"] == machine() and meta["torch"] == machine()["torch"]


def _meta(fingerprint: str, files: dict[str, str] | None) -> dict:
    meta = {"code_fingerprint": fingerprint}
    return meta if files is None else {**meta, "code_files": files}


def test_code_warning_names_what_changed(monkeypatch):
    from shaprl.repro import cache

    now = {"fastsverl/a.py": "1" * 16, "fastsverl/b.py": "2" * 16, "mdp/c.py": "3" * 16}
    monkeypatch.setattr(cache, "library_provenance", lambda code=None: ("f" * 16, dict(now)))
    same = {"kept": _meta("f" * 16, now)}
    assert settle.code_warning(same) == ""  # nothing differs: no warning
    then = {"fastsverl/a.py": "0" * 16, "mdp/c.py": "3" * 16, "old.py": "4" * 16}
    warning = settle.code_warning({**same, "y": _meta("e" * 16, then)})
    assert "(y: fastsverl/a.py changed, fastsverl/b.py added, old.py removed; now ffff" in warning
    assert "kept" not in warning and warning.endswith(
        "Fix: python -m shaprl.fastsverl.settle --force --chunks y"
    )
    # same files but another fingerprint: the package version (also hashed) changed
    assert "y: same files, fingerprint eeee" in settle.code_warning({"y": _meta("e" * 16, now)})
    # chunks with the same difference share one line, named together
    grouped = settle.code_warning({"y": _meta("e" * 16, then), "z": _meta("e" * 16, then)})
    assert "(y, z: fastsverl/a.py changed" in grouped and grouped.count("a.py changed") == 1
    # many files: the first few are named, the rest counted
    many = {f"f{i}.py": "9" * 16 for i in range(settle.NAMED_FILES + 3)}
    assert "3 more files; now" in settle.code_warning({"z": _meta("e" * 16, {**now, **many})})


def test_code_warning_without_code_files_compares_fingerprints(monkeypatch):
    from shaprl.repro import cache

    monkeypatch.setattr(cache, "library_provenance", lambda code=None: ("f" * 16, {}))
    assert settle.code_warning({"x": _meta("f" * 16, None)}) == ""
    warning = settle.code_warning({"x": _meta("e" * 16, None), "y": {}})
    assert "(x: by code eeeeeeeeeeeeeeee, files not recorded; y: by code not recorded" in warning
    assert "--force --chunks x,y" in warning


def test_tampered_chunk_is_refused(toy):
    settle.run_chunk("toy")
    p = settle.path("toy")
    lines = p.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",nan?"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="line 3, column 'value'"):
        settle.load("toy")


def test_prefix_check_flags_a_different_curve(toy, monkeypatch):
    settle.run_chunk("toy")
    shifted = settle.Chunk(
        "toy",
        ("claim_a",),
        {"updates": 100, "runs": 3},
        lambda cfg, d: _toy(cfg, d).assign(value=lambda f: f.value * 3 + 0.01),
    )
    monkeypatch.setitem(settle.CHUNKS, "toy", shifted)
    assert not settle.prefix_check("toy", updates=30, runs=2)["agrees"]


def test_off_policy_frame_round_trip():
    f = pd.DataFrame(
        {
            "run": [0, 1],
            "update": [0, 93],
            "metric": ["behaviour | buffer, IS clipped c=0.99"] * 2,
            "value": [0.2, 0.1],
        }
    )
    g = settle.off_policy_frame(f, "Gridworld")
    assert (
        list(g.kind) == ["behaviour"] * 2 and list(g.condition) == ["buffer, IS clipped c=0.99"] * 2
    )
    assert list(g.agent) == [0, 1] and list(g.exact_mse) == [0.2, 0.1]


def test_every_chunk_names_budgeted_claims():
    from shaprl.fastsverl.experiments import SETTLE_BUDGETS

    for name, chunk in settle.CHUNKS.items():
        assert chunk.claims and all(c in SETTLE_BUDGETS for c in chunk.claims), name


def test_gpu_device_is_refused_with_a_reason(capsys):
    assert settle.main(["--chunks", "mm222_outcome_on_policy", "--device", "cuda"]) == 2
    assert "CPU only" in capsys.readouterr().err
