"""Writing committed Action Shapley data: one table configuration, one way to grow a table
chunk by chunk, and the data lock held by the writers themselves, only while they write."""

from __future__ import annotations

import json
import threading

import pandas as pd
import pytest

from shaprl.action_shapley import tables
from shaprl.action_shapley.case_studies import case_study
from shaprl.repro import locks
from shaprl.repro.data import write_table

#: JSON fields that change from run to run (times, machine, code): not compared
VOLATILE = ("code_fingerprint", "wall_seconds", "compute_seconds", *tables.MACHINE_FIELDS)


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


# -- the data lock is taken where the writing happens --------------------------------------------
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
