"""Writing committed Action Shapley data: one table configuration, one way to grow a table
chunk by chunk, and the data lock held by the writers themselves, only while they write."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shaprl.action_shapley import cli, tables
from shaprl.action_shapley.case_studies import case_study
from shaprl.repro import locks
from shaprl.repro.data import read_table, write_table

#: JSON fields that change from run to run (times, machine, code): not compared
VOLATILE = ("code_fingerprint", "wall_seconds", "compute_seconds", *tables.MACHINE_FIELDS)


@pytest.fixture
def tmp_tables(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "tables_dir", lambda root=None: tmp_path)
    monkeypatch.setattr(locks, "locks_dir", lambda: tmp_path / "locks")  # not the tree's lock
    return tmp_path


@pytest.fixture
def lock_events(monkeypatch) -> list[str]:
    """Replace the data lock by a recorder: ``enter`` / ``exit`` in the order they happen."""
    events: list[str] = []

    @contextlib.contextmanager
    def recording():
        events.append("enter")
        try:
            yield
        finally:
            events.append("exit")

    monkeypatch.setattr(locks, "writing_data", recording)
    monkeypatch.setattr(cli, "writing_data", recording)
    return events


def _lock_held(events: list[str]) -> bool:
    return events.count("enter") > events.count("exit")


# -- one description of a table's configuration -------------------------------------------------
@pytest.mark.parametrize(
    ("key", "algo", "world_model"),
    [("vm_right_sizing", "ppo", "fixed-basis"), ("load_balancing", "sac", "per-subset")],
)
def test_table_meta_rewrites_a_committed_table_byte_for_byte(tmp_path, key, algo, world_model):
    case = case_study(key)
    path = tables.table_path(case, algo, 0, world_model=world_model)
    committed = json.loads(path.with_suffix(".json").read_text())
    frame, _ = tables.load_table(case, algo, 0, world_model=world_model)
    episodes = len(committed["episode_seeds"])
    meta = tables.table_meta(frame, case, algo, 0, 1.0, episodes, world_model)
    assert list(meta) == [k for k in committed if k not in ("kind", "schema_version")]
    config = tables.table_config(case, algo, 0, int(frame["runs"].iloc[0]), episodes)
    assert json.loads(json.dumps(config)) == {k: committed[k] for k in config}
    assert [k for k in meta if k in config] == list(config)  # the same order in the JSON
    assert {k: meta[k] for k in config} == config  # the meta's configuration is table_config
    meta.update({k: committed[k] for k in VOLATILE})  # keeps each key's place
    out = write_table(frame, tmp_path / path.name, meta, tables.UTILITY)
    assert out.read_bytes() == path.read_bytes()
    assert out.with_suffix(".json").read_bytes() == path.with_suffix(".json").read_bytes()


def test_a_single_run_table_records_the_evaluation_seed():
    case = case_study("vm_right_sizing")
    config = tables.table_config(case, "ppo", 3, 1, None)
    assert config["episode_seeds"] == [tables.EVAL_SEED] and config["seed"] == 3
    frame = pd.DataFrame({"mask": [0, 1], "runs": 1})
    meta = tables.table_meta(frame, case, "ppo", 3, 2.0)
    assert meta["agent_seeds"] == "subset_seed" and meta["episode_seeds"] == [tables.EVAL_SEED]
    assert meta["n_subsets"] == 2 and meta["complete"] is False and meta["wall_seconds"] == 2.0


# -- one way to grow a table chunk by chunk ------------------------------------------------------
def _fake_outcomes(case, algo, masks, runs, seed, episodes, use_cache=True):
    """Deterministic outcomes: return -mask, every run reaches the goal except on odd masks of
    run 1; 0.5 compute seconds a run."""
    assert use_cache is False  # the table is the record
    masks = [int(m) for m in masks]
    return {
        r: {
            "mask": masks,
            "return": [-float(m) - r for m in masks],
            "success": [not (r == 1 and m % 2) for m in masks],
            "convergence": [3.0] * len(masks),
            "seconds": 0.5,
        }
        for r in range(runs)
    }


def test_grow_table_appends_sorts_and_finishes_in_the_final_file(tmp_tables, monkeypatch):
    from shaprl.action_shapley import utility

    monkeypatch.setattr(utility, "multi_run_outcomes", _fake_outcomes)
    case = case_study("vm_right_sizing")  # 32 subsets
    part, final = tmp_tables / "grow.partial.csv", tmp_tables / "grow.csv"
    frame = tables.grow_table(None, case, "ppo", 0, [5, 1, 3], 2, 5, part, 10.0, final)
    assert frame["mask"].tolist() == [1, 3, 5] and frame.attrs["compute_seconds"] == 1.0
    frame = tables.grow_table(frame, case, "ppo", 0, [4, 0, 2], 2, 5, part, 20.0, final)
    assert frame["mask"].tolist() == list(range(6)) and frame.attrs["compute_seconds"] == 2.0
    written, meta = read_table(part, tables.UTILITY, "")
    assert written["mask"].tolist() == list(range(6)) and not final.exists()
    assert meta["n_subsets"] == 6 and meta["complete"] is False and meta["runs"] == 2
    assert meta["compute_seconds"] == 2.0 and meta["wall_seconds"] >= 20.0
    one = tables.runs_frame(case, _fake_outcomes(case, "ppo", range(32), 2, 0, 5, False))
    full = tables.grow_table(frame, case, "ppo", 0, list(range(6, 32)), 2, 5, part, 30.0, final)
    pd.testing.assert_frame_equal(full, one)  # chunks in any order = one batch, sorted
    assert not part.exists() and not part.with_suffix(".json").exists()
    written, meta = read_table(final, tables.UTILITY, "")
    assert meta["complete"] is True and len(written) == 32
    assert np.isnan(written["utility"]).sum() == 0  # run 1 fails odd masks: 1 of 2 is not >half


def test_grow_table_without_a_final_file_keeps_writing_its_path(tmp_tables, monkeypatch):
    from shaprl.action_shapley import utility

    monkeypatch.setattr(utility, "multi_run_outcomes", _fake_outcomes)
    case = case_study("vm_right_sizing")
    sample = tmp_tables / "sample.csv"  # a seed sample may cover every subset of a small case
    full = tables.grow_table(None, case, "ppo", 1, list(range(32)), 1, 5, sample, 0.0)
    written, meta = read_table(sample, tables.UTILITY, "")
    assert len(full) == 32 and meta["complete"] is True and meta["seed"] == 1


def test_the_seed_sample_grows_through_grow_table(tmp_tables, monkeypatch):
    from shaprl.action_shapley import seed_spread, utility

    monkeypatch.setattr(utility, "multi_run_outcomes", _fake_outcomes)
    case = case_study("vm_right_sizing")
    game = seed_spread.SampledAgentGame(case, "ppo", 2, chunk=4)
    values = game._evaluate(np.array([7, 3, 9, 1, 0]))  # two chunks: 4 then 1
    np.testing.assert_array_equal(values, [-7.0, -3.0, -9.0, -1.0, 0.0])
    written, meta = read_table(seed_spread.sample_path(case, "ppo", 2), tables.UTILITY, "")
    assert written["mask"].tolist() == [0, 1, 3, 7, 9] and meta["runs"] == 1
    assert game.frame.attrs["compute_seconds"] == 1.0  # 0.5 s a run, two chunks


# -- the data lock is taken where the writing happens --------------------------------------------
def test_save_table_holds_the_data_lock_only_while_writing(tmp_tables, monkeypatch, lock_events):
    real_meta = tables.table_meta

    def meta(*args, **kwargs):
        assert not _lock_held(lock_events)  # traces, fingerprint, machine: outside the lock
        lock_events.append("meta")
        return real_meta(*args, **kwargs)

    def write(frame, path, meta, schema):
        assert _lock_held(lock_events)
        lock_events.append("write")
        return Path(path)

    monkeypatch.setattr(tables, "table_meta", meta)
    monkeypatch.setattr(tables, "write_table", write)
    case = case_study("vm_right_sizing")
    frame = tables.runs_frame(case, _fake_outcomes(case, "ppo", [0, 1], 1, 0, 5, False))
    tables.save_table(frame, case, "ppo", 0, 1.0, episodes=5)
    assert lock_events == ["meta", "enter", "write", "exit"]


def test_save_check_holds_the_data_lock_only_while_writing(tmp_tables, monkeypatch, lock_events):
    def write(frame, path, meta, schema):
        assert _lock_held(lock_events) and meta["name"] == "step_sweep"
        lock_events.append("write")
        return Path(path)

    monkeypatch.setattr(tables, "write_table", write)
    tables.save_check(pd.DataFrame({"case": ["load_balancing"]}), "step_sweep")
    assert lock_events == ["enter", "write", "exit"]


def test_save_check_fingerprints_the_sb3_and_diagnostics_code(tmp_tables, monkeypatch):
    from shaprl.repro.cache import library_fingerprint

    written = {}
    monkeypatch.setattr(tables, "write_table", lambda f, p, meta, s: written.update(meta))
    tables.save_check(pd.DataFrame({"case": ["load_balancing"]}), "sb3_reference")
    assert {"action_shapley/sb3_reference.py", "action_shapley/diagnostics.py"} <= set(
        tables.CHECK_CODE
    )
    assert written["code_fingerprint"] == library_fingerprint(tables.CHECK_CODE)
    assert written["code_fingerprint"] != library_fingerprint(tables.UTILITY_CODE)


def test_cli_traces_holds_the_lock_only_around_each_write(tmp_path, monkeypatch, lock_events):
    def generate(case, seed):
        assert not _lock_held(lock_events)
        lock_events.append("generate")
        return case.key

    def write(traces, path):
        assert _lock_held(lock_events)
        lock_events.append("write")

    monkeypatch.setattr(cli, "generate_traces", generate)
    monkeypatch.setattr(cli, "write_traces", write)
    monkeypatch.setattr(cli, "traces_path", lambda case: tmp_path / f"{case.key}.csv")
    assert cli.main(["traces"]) == 0
    assert lock_events == ["generate", "enter", "write", "exit"] * len(cli.CASE_STUDIES)


def test_cli_kubernetes_sample_computes_without_the_lock(monkeypatch, lock_events):
    saved: list[int] = []

    def build(case, algo, seed, masks, chunk_size):
        assert not _lock_held(lock_events)
        return pd.DataFrame({"mask": masks})

    def save(frame, *args, **kwargs):
        assert not _lock_held(lock_events)  # save_table takes the lock itself
        saved.append(len(frame))
        return Path("sample.csv")

    monkeypatch.setattr(cli, "build_table", build)
    monkeypatch.setattr(cli, "save_table", save)
    args = ["kubernetes-sample", "--algos", "ppo", "--sample-seeds", "0", "--chunk", "64"]
    assert cli.main(args) == 0
    assert lock_events == [] and len(saved) > 1 and saved == sorted(saved)


def test_writing_data_nests_without_waiting_for_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "locks_dir", lambda: tmp_path)
    other = locks.FileLock(locks.data_lock(shared=False).path)  # another descriptor

    def nested() -> None:
        with locks.writing_data():
            with locks.writing_data():  # a deadlock here if it were not re-entrant
                with pytest.raises(TimeoutError):
                    other.acquire(timeout=0.3, poll=0.05)
            with pytest.raises(TimeoutError):  # still held until the outermost block ends
                other.acquire(timeout=0.3, poll=0.05)

    errors: list[BaseException] = []

    def run() -> None:
        try:
            nested()
        except BaseException as err:  # pytest.raises fails with a BaseException
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "nested writing_data() waited for itself"
    assert errors == []
    other.acquire(timeout=1).release()  # released after the outermost block


def test_a_process_reading_data_cannot_take_the_writer_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "locks_dir", lambda: tmp_path)
    reader = locks.held(locks.data_lock(shared=True))
    try:
        with pytest.raises(RuntimeError, match="holds the data lock shared"):
            with locks.writing_data():
                pass
    finally:
        reader.release()
    with locks.writing_data():  # released: writing works again
        pass
