"""Writing committed Action Shapley data: one table configuration, one way to grow a table
chunk by chunk, and the data lock held by the writers themselves, only while they write."""

from __future__ import annotations

import threading

import pytest

from shaprl.repro import locks


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
