"""A large case's table grows chunk by chunk and resumes from its committed partial file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shaprl.action_shapley import tables
from shaprl.action_shapley.case_studies import case_study
from shaprl.repro.data import DataFormatError, read_table


@pytest.fixture
def tmp_tables(tmp_path, monkeypatch):
    from shaprl.repro import locks

    monkeypatch.setattr(tables, "tables_dir", lambda root=None: tmp_path)
    monkeypatch.setattr(locks, "locks_dir", lambda: tmp_path / "locks")  # not the tree's lock
    return tmp_path


def test_a_chunked_table_resumes_and_matches_one_batch(tmp_tables):
    case = case_study("vm_right_sizing")  # 32 subsets, valued 8 at a time
    first = tables.build_chunked_table(case, "ppo", 0, chunk=8, runs=1, max_chunks=2)
    assert first is None
    part, meta = read_table(tables.partial_path(case, "ppo", 0), tables.UTILITY, "")
    assert len(part) == 16 and meta["complete"] is False
    assert not tables.table_path(case, "ppo", 0).exists()
    assert tables.committed_seeds(case, "ppo") == []  # a partial file is not a seed's table

    full = tables.build_chunked_table(case, "ppo", 0, chunk=8, runs=1)  # resumes at mask 16
    assert full is not None and full["mask"].tolist() == list(range(32))
    assert not tables.partial_path(case, "ppo", 0).exists()
    assert tables.committed_seeds(case, "ppo") == [0]
    written, meta = read_table(tables.table_path(case, "ppo", 0), tables.UTILITY, "")
    assert meta["complete"] is True and meta["runs"] == 1
    # common random numbers and batch-invariant agents: the chunks equal one batch
    from shaprl.action_shapley.utility import multi_run_outcomes

    one = tables.runs_frame(case, multi_run_outcomes(case, "ppo", list(range(32)), 1, 0,
                                                     use_cache=False))  # fmt: skip
    pd.testing.assert_series_equal(written["run_returns"], one["run_returns"], check_names=False)
    np.testing.assert_array_equal(written["utility"].isna(), one["utility"].isna())


def test_a_partial_table_of_another_configuration_is_refused(tmp_tables):
    case = case_study("vm_right_sizing")
    tables.build_chunked_table(case, "ppo", 0, chunk=8, runs=1, max_chunks=1)
    with pytest.raises(DataFormatError, match="another configuration.*runs.*delete it"):
        tables.build_chunked_table(case, "ppo", 0, chunk=8, runs=2, max_chunks=1)


def test_a_finished_table_of_this_configuration_is_not_rebuilt(tmp_tables, monkeypatch):
    case = case_study("vm_right_sizing")
    full = tables.build_chunked_table(case, "ppo", 0, chunk=16, runs=1)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(tables, "value_chunk", no_training)
    again = tables.build_chunked_table(case, "ppo", 0, chunk=16, runs=1)
    pd.testing.assert_frame_equal(again, full, check_dtype=False)
    with pytest.raises(AssertionError, match="trained again"):  # another configuration: rebuilt
        tables.build_chunked_table(case, "ppo", 0, chunk=16, runs=2)


def test_chunks_in_parallel_give_the_table_of_one_process(tmp_tables, tmp_path, monkeypatch):
    from joblib import parallel_config

    case = case_study("vm_right_sizing")
    with parallel_config(backend="threading", n_jobs=2):  # chunks finish in any order
        two = tables.build_chunked_table(case, "ppo", 0, chunk=8, runs=1, max_chunks=3)
    assert two is None
    part = tables.partial_path(case, "ppo", 0)
    grown, meta = read_table(part, tables.UTILITY, "")
    assert grown["mask"].tolist() == list(range(24)) and meta["wall_seconds"] > 0
    full = tables.build_chunked_table(case, "ppo", 0, chunk=8, runs=1, n_jobs=2)
    assert full is not None and not part.exists()
    monkeypatch.setattr(tables, "tables_dir", lambda root=None: tmp_path / "one")
    one = tables.build_chunked_table(case, "ppo", 0, chunk=32, runs=1)
    pd.testing.assert_frame_equal(full[one.columns], one, check_dtype=False)


def test_a_partial_file_that_covers_every_subset_is_finished_without_training(
    tmp_tables, monkeypatch
):
    case = case_study("vm_right_sizing")
    tables.build_chunked_table(case, "ppo", 0, chunk=8, runs=1, max_chunks=1)
    part = tables.partial_path(case, "ppo", 0)
    frame, _ = read_table(part, tables.UTILITY, "")
    rest = tables.value_chunk(case, "ppo", 0, list(range(8, 32)), 1, 5)
    # e.g. partial files of two processes merged by hand
    tables.add_chunk(frame, rest, case, "ppo", 0, 5, part, 1.0)
    assert part.exists() and not tables.table_path(case, "ppo", 0).exists()

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(tables, "value_chunk", no_training)
    full = tables.build_chunked_table(case, "ppo", 0, chunk=8, runs=1)
    assert full is not None and len(full) == 32 and not part.exists()
    _, meta = read_table(tables.table_path(case, "ppo", 0), tables.UTILITY, "")
    assert meta["complete"] is True


def test_a_table_grown_across_code_changes_records_each_codes_share(tmp_tables, monkeypatch):
    case = case_study("vm_right_sizing")
    tables.build_chunked_table(case, "ppo", 0, chunk=8, runs=1, max_chunks=1)
    _, meta = read_table(tables.partial_path(case, "ppo", 0), tables.UTILITY, "")
    first = meta["code_fingerprint"]
    assert meta["code_history"] == {first: 8}
    monkeypatch.setattr(tables, "library_fingerprint", lambda code: "edited")
    tables.build_chunked_table(case, "ppo", 0, chunk=8, runs=1)
    _, meta = read_table(tables.table_path(case, "ppo", 0), tables.UTILITY, "")
    assert meta["code_fingerprint"] == "edited" and meta["code_history"] == {first: 8, "edited": 24}
