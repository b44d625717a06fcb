"""Pipeline pieces: profiles, report artefacts and claims, cache, runner validation, notebooks."""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pandas as pd
import pytest

from shaprl import repro
from shaprl.repro.index import render_index
from shaprl.repro.run import discover, notebook_parameters, parse_params, run

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_profiles(monkeypatch):
    monkeypatch.delenv("SHAPRL_PROFILE", raising=False)
    assert repro.resolve_profile(None) == "quick"
    monkeypatch.setenv("SHAPRL_PROFILE", "smoke")
    assert repro.resolve_profile(None) == "smoke"
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        repro.resolve_profile("fast")
    cfg = repro.settings("paper", smoke={"n": 1}, quick={"n": 2}, paper={"n": 3})
    assert cfg == {"profile": "paper", "n": 3}
    with pytest.raises(ValueError, match="missing"):
        repro.settings("quick", quick={"n": 2})
    with pytest.raises(ValueError, match="same keys"):
        repro.settings("quick", smoke={"n": 1}, quick={"m": 2}, paper={"n": 3})


def test_report_writes_artefacts_and_claims(tmp_path, monkeypatch):
    monkeypatch.setenv("SHAPRL_OUTPUT_DIR", str(tmp_path))
    report = repro.Report("99_test", "quick", title="test")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    report.table(frame, "t1", paper="Paper Table 1", caption="c")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    report.figure(fig, "f1", paper="Paper Fig. 1")
    report.claim("ok", paper="Paper Table 1", statement="holds", holds=True, measured="1")
    report.claim("bad", paper="Paper Fig. 1", statement="fails", holds=False, measured="2")
    report.claim(
        "big",
        paper="Paper Fig. 1",
        statement="needs budget",
        holds=True,
        measured="3",
        needs="paper",
    )
    claims = report.finalize()
    assert claims["status"].tolist() == ["reproduced", "not reproduced", "indicative"]
    for name in ("t1.csv", "t1.md", "t1.html", "f1.png", "f1.pdf", "claims.csv", "manifest.json"):
        assert (tmp_path / "99_test" / name).exists()
    assert not list((tmp_path / "99_test").glob("*.tmp"))
    manifest = json.loads((tmp_path / "99_test" / "manifest.json").read_text())
    assert set(manifest["machine"]) == {"cpu_model", "cpu_capability", "torch", "mkl"}
    text = render_index([manifest])
    assert "Paper Table 1" in text and "not reproduced" in text and "indicative" in text


class _Calls(list):
    """A call log: an object of its own type enters the cache key by type, not content."""


def test_cache_reuses_results(tmp_path):
    calls = _Calls()

    def compute():
        calls.append(1)
        return {"x": 1}

    assert repro.cached("thing", {"n": 1}, compute, directory=tmp_path) == {"x": 1}
    assert repro.cached("thing", {"n": 1}, compute, directory=tmp_path) == {"x": 1}
    assert len(calls) == 1
    repro.cached("thing", {"n": 2}, compute, directory=tmp_path)
    assert len(calls) == 2


def test_cache_key_can_be_scoped_to_the_code_a_result_depends_on(tmp_path, monkeypatch):
    from shaprl.repro import cache

    whole = cache.library_fingerprint()
    scoped = cache.library_fingerprint(("batched", "action_shapley/pid_env.py"))
    assert scoped != whole
    assert scoped == cache.library_fingerprint(("action_shapley/pid_env.py", "batched"))
    assert cache.config_key("t", {"n": 1}, ("batched",)) != cache.config_key("t", {"n": 1})
    with pytest.raises(FileNotFoundError, match="no module or package 'nope'"):
        cache.library_fingerprint(("nope",))
    # an edit outside the scope leaves the scoped key alone; one inside changes it
    fake = tmp_path / "shaprl"
    (fake / "repro").mkdir(parents=True)
    (fake / "repro" / "cache.py").write_text("")
    (fake / "a.py").write_text("x = 1\n")
    (fake / "b.py").write_text("y = 1\n")
    monkeypatch.setattr(cache, "__file__", str(fake / "repro" / "cache.py"))
    cache.library_fingerprint.cache_clear()
    before_a, before_all = cache.library_fingerprint(("a.py",)), cache.library_fingerprint()
    (fake / "b.py").write_text("y = 2\n")
    cache.library_fingerprint.cache_clear()
    assert cache.library_fingerprint(("a.py",)) == before_a
    assert cache.library_fingerprint() != before_all
    (fake / "a.py").write_text("x = 2\n")
    cache.library_fingerprint.cache_clear()
    assert cache.library_fingerprint(("a.py",)) != before_a
    cache.library_fingerprint.cache_clear()


def test_params_and_selection_validation():
    assert parse_params("seed=3 name=abc") == {"seed": 3, "name": "abc"}
    with pytest.raises(SystemExit, match="name=value"):
        parse_params("seed")
    with pytest.raises(SystemExit, match="no notebook matches"):
        discover(ROOT / "notebooks", "77")


def test_unknown_parameter_fails_before_running(capsys):
    with pytest.raises(SystemExit, match="has no parameter"):
        run("quick", NOTEBOOKS[0].name[:2], "no_such_parameter=1")


def test_unknown_profile_fails():
    with pytest.raises(ValueError, match="unknown profile"):
        run("fastest", "", "")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_clean_and_parameterised(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} is committed with outputs"
            assert cell.execution_count is None
    assert "profile" in notebook_parameters(path)


def test_a_claim_not_run_in_this_profile_is_indicative_without_a_verdict():
    from shaprl.repro.claims import decide

    assert decide("k", holds=None, measured="not run here", profile="quick", needs="paper") == (
        "indicative",
        "not run here",
        "this run (quick)",
    )
