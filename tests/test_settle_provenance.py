"""Provenance of settle chunks: per-file code hashes consistent with the library fingerprint,
and their backfill from git history for chunks that recorded only the fingerprint."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from shaprl.fastsverl import settle
from shaprl.repro import cache
from shaprl.repro.history import GitHistory, select_sources, version_of


def _historical_fingerprint(code: tuple[str, ...] | None) -> str:
    """library_fingerprint as it was written before the file set was factored out (the
    value existing cache entries and chunk JSONs are keyed by)."""
    h = hashlib.sha256(cache.__version__.encode())
    root = Path(cache.__file__).resolve().parents[1]
    if code is None:
        files = sorted(root.rglob("*.py"))
    else:
        files = []
        for part in code:
            path = root / part
            files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
        files = sorted(set(files))
    for path in files:
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


@pytest.fixture
def fresh_fingerprints():
    cache.library_fingerprint.cache_clear()
    yield
    cache.library_fingerprint.cache_clear()


@pytest.mark.parametrize("code", [settle.CODE, None, ("batched", "action_shapley/pid_env.py")])
def test_fingerprint_and_file_hashes_cover_the_same_files(code, fresh_fingerprints):
    assert cache.library_fingerprint(code) == _historical_fingerprint(code)  # bitwise as before
    files = cache.file_hashes(code)
    root = Path(cache.__file__).resolve().parents[1]
    assert files == {
        rel: hashlib.sha256((root / rel).read_bytes()).hexdigest()[:16] for rel in files
    }
    assert cache.library_provenance(code) == (cache.library_fingerprint(code), files)
    if code is None:
        assert set(files) == {p.relative_to(root).as_posix() for p in root.rglob("*.py")}


def test_fingerprint_keeps_the_path_order(tmp_path, monkeypatch, fresh_fingerprints):
    """Files sort by path parts, as Path objects do ('a/b.py' before 'a-c.py'), not as text."""
    pkg = tmp_path / "shaprl"
    (pkg / "a").mkdir(parents=True)
    (pkg / "a" / "b.py").write_text("b = 1\n")
    (pkg / "a-c.py").write_text("c = 1\n")
    monkeypatch.setattr(cache, "__file__", str(pkg / "repro" / "cache.py"))
    assert list(cache.library_sources()) == ["a/b.py", "a-c.py"]
    assert cache.library_fingerprint() == _historical_fingerprint(None)
    sources = {"a-c.py": b"c = 1\n", "a/b.py": b"b = 1\n"}  # given in text order
    assert cache.fingerprint_sources(sources, cache.__version__) == _historical_fingerprint(None)


def test_sources_selected_from_a_tree_listing():
    entries = {
        "lib/shaprl/fastsverl/a.py": "1",
        "lib/shaprl/fastsverl/sub/b.py": "2",
        "lib/shaprl/fastsverl/notes.txt": "3",
        "lib/shaprl/mdp.py": "4",
        "lib/shaprl/mdpx/c.py": "5",
        "tests/t.py": "6",
    }
    assert select_sources(entries, ("fastsverl", "mdp.py")) == {
        "fastsverl/a.py": "1",
        "fastsverl/sub/b.py": "2",
        "mdp.py": "4",
    }
    assert select_sources(entries, ("mdp",)) is None  # 'mdpx' is not 'mdp': missing there
    assert set(select_sources(entries, None)) == {
        "fastsverl/a.py",
        "fastsverl/sub/b.py",
        "mdp.py",
        "mdpx/c.py",
    }
    assert version_of(b'"""doc"""\n__version__ = "1.2"\n') == "1.2"
    assert version_of(b"from ._version import __version__\n") is None


# -- backfill on a synthetic repository --------------------------------------------------------
CODE = settle.CODE


def _git(root: Path, *args: str) -> str:
    cmd = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def _commit(root: Path, message: str) -> str:
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", message)
    return _git(root, "rev-parse", "HEAD")


def _chunk(root: Path, name: str, **fields) -> Path:
    """A chunk CSV and its JSON in write_table's format (with what the old run_chunk wrote)."""
    d = root / "data" / "fastsverl" / "settle"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.csv").write_text(f"run,update,metric,value\n0,0,{name},1.0\n")
    meta = {"kind": "curve", "chunk": name, "code_fingerprint": "", **fields, "machine": "x86_64"}
    (d / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return d / f"{name}.json"


@pytest.fixture
def repo(tmp_path, monkeypatch, fresh_fingerprints):
    """A repository whose package has a version of its own and settle.CODE's sub-packages."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    pkg = tmp_path / "lib" / "shaprl"
    (pkg / "fastsverl" / "sub").mkdir(parents=True)
    (pkg / "_version.py").write_text('__version__ = "7.7"\n')
    (pkg / "fastsverl" / "a.py").write_text("x = 1\n")
    (pkg / "fastsverl" / "sub" / "b.py").write_text("y = 1\n")
    (pkg / "other.py").write_text("z = 1\n")
    for part in CODE[1:]:
        (pkg / part).mkdir()
        (pkg / part / "__init__.py").write_text(f'"""{part}"""\n')
    monkeypatch.setenv("SHAPRL_ROOT", str(tmp_path))
    monkeypatch.setattr(cache, "__file__", str(pkg / "repro" / "cache.py"))
    monkeypatch.setattr(cache, "__version__", "7.7")
    _git(tmp_path, "init", "-q")
    return tmp_path


def _code_now(root: Path) -> tuple[str, dict[str, str]]:
    cache.library_fingerprint.cache_clear()
    return cache.library_provenance(CODE)


def test_backfill_adds_code_files_only_from_the_code_that_made_the_chunk(repo):
    a = repo / "lib" / "shaprl" / "fastsverl" / "a.py"
    v1 = _commit(repo, "code v1")
    fp1, files1 = _code_now(repo)
    (repo / "lib" / "shaprl" / "other.py").write_text("z = 2\n")  # outside CODE: same code
    v1_later = _commit(repo, "elsewhere")
    a.write_text("x = 2\n")
    _commit(repo, "code v2")
    fp2, files2 = _code_now(repo)
    a.write_text("x = 3\n")  # a chunk computed from code never committed
    fp3, _ = _code_now(repo)
    a.write_text("x = 2\n")
    made_by_v1 = _chunk(repo, "made_by_v1", code_fingerprint=fp1)
    uncommitted = _chunk(repo, "uncommitted", code_fingerprint=fp3)
    recorded = _chunk(repo, "recorded", code_fingerprint=fp1, code_files={"x.py": "0"})
    _commit(repo, "chunks")
    fresh = _chunk(repo, "fresh", code_fingerprint=fp2)  # in the working tree only: HEAD's code
    before = {p: p.read_bytes() for p in (repo / "data").rglob("*.*")}

    # the code is two commits back: a search of two finds nothing and writes nothing
    short = settle.backfill_provenance(["made_by_v1"], code=CODE, depth=2)
    assert short == {"made_by_v1": short["made_by_v1"]}
    assert short["made_by_v1"].startswith("left: no commit within 2")
    assert made_by_v1.read_bytes() == before[made_by_v1]

    out = settle.backfill_provenance(code=CODE)
    # the newest commit with that code (v1's code is unchanged by 'elsewhere')
    assert out["made_by_v1"] == f"backfilled from commit {v1_later[:10]}" and v1 != v1_later
    assert out["fresh"].startswith("backfilled from commit")
    assert out["uncommitted"].startswith("left: no commit within 40")
    assert out["recorded"] == "already recorded"
    meta = json.loads(made_by_v1.read_text())
    assert meta["code_files"] == files1 and files1 != files2
    assert list(meta)[list(meta).index("code_fingerprint") + 1] == "code_files"
    assert json.loads(fresh.read_text())["code_files"] == files2
    # nothing else changed: the CSVs, the other JSONs, and every other field byte for byte
    changed = {p for p, data in before.items() if p.read_bytes() != data}
    assert changed == {made_by_v1, fresh}
    del meta["code_files"]
    assert json.dumps(meta, indent=2) + "\n" == before[made_by_v1].decode()
    assert uncommitted.read_bytes() == before[uncommitted]
    assert recorded.read_bytes() == before[recorded]

    # idempotent, and the CLI says the same
    after = {p: p.read_bytes() for p in before}
    assert set(settle.backfill_provenance(code=CODE).values()) <= {
        "already recorded",
        out["uncommitted"],
    }
    assert {p: p.read_bytes() for p in before} == after


def test_backfill_reads_the_version_where_that_commit_kept_it(repo):
    """A commit whose package kept ``__version__`` in ``__init__`` (no _version.py)."""
    pkg = repo / "lib" / "shaprl"
    (pkg / "_version.py").unlink()
    (pkg / "__init__.py").write_text('"""pkg"""\n\n__version__ = "7.7"\n')
    commit = _commit(repo, "old layout")
    fp, files = _code_now(repo)
    history = GitHistory(repo)
    sources, version = history.sources(commit, CODE)
    assert version == "7.7" and cache.source_hashes(sources) == files
    assert cache.fingerprint_sources(sources, version) == fp
    assert history.sources(commit, ("fastsverl", "missing")) is None


def test_cli_backfill_reports_each_chunk(repo, capsys):
    _commit(repo, "code")
    fp, _ = _code_now(repo)
    _chunk(repo, "c1", code_fingerprint=fp)
    _chunk(repo, "c2", code_fingerprint="0" * 16)
    _commit(repo, "chunks")
    assert settle.main(["--backfill-provenance"]) == 0
    out = capsys.readouterr().out
    assert "c1" in out and "1 backfilled, 1 left without code_files, 2 chunk JSONs" in out
    assert settle.main(["--backfill-provenance", "--chunks", "c1"]) == 0
    assert "c1" in capsys.readouterr().out.splitlines()[0].split()[0]
    assert "already recorded" in json.dumps(settle.backfill_provenance(["c1"]))
