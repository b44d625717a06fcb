"""Advisory file locks (``fcntl.flock``) that keep concurrent runs from mixing results.

* **Output tree** (:func:`tree_lock`): the runner holds it exclusively for a whole
  ``make reproduce``; a second run on the same tree waits and says who holds it.
* **Notebook directory** (:func:`notebook_lock`): a :class:`~.report.Report` holds it while it
  stages and publishes one notebook's artefacts (nbval's xdist workers run different
  notebooks of one tree side by side; each locks only its own directory).
* **Committed data** (:func:`data_lock`): writers of committed tables (``make
  action-shapley-*``, long runs) hold it exclusively; runners and notebook kernels hold it
  shared, so a table never changes under a notebook that reads it.

The locks are released when the holding process exits, however it exits. Lock files live in
``build/locks/`` (git-ignored) and hold the holder's pid and command line.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .paths import repo_root


def locks_dir() -> Path:
    return repo_root() / "build" / "locks"


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"


class FileLock:
    """An ``flock`` on ``path``; ``shared`` for readers. Waits (printing who holds it) unless
    ``timeout`` seconds pass, then raises :class:`TimeoutError` naming the holder."""

    def __init__(self, path: Path, *, shared: bool = False, what: str = "") -> None:
        self.path = Path(path)
        self.shared = shared
        self.what = what or self.path.name
        self.fd: int | None = None

    def acquire(self, timeout: float | None = None, poll: float = 0.5) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        start, told = time.monotonic(), False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    print(
                        f"[wait] {self.what} is locked by {_holder(self.path)}; waiting for it",
                        file=sys.stderr,
                        flush=True,
                    )
                    told = True
                if timeout is not None and time.monotonic() - start > timeout:
                    os.close(fd)
                    raise TimeoutError(
                        f"{self.what} is still locked by {_holder(self.path)} after {timeout:g} s"
                    ) from None
                time.sleep(poll)
        with contextlib.suppress(OSError):  # who holds it (the last of several readers)
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} ({' '.join(sys.argv)[:200]})\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FileLock:
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def _name(path: Path) -> str:
    root = repo_root()
    p = Path(path).resolve()
    rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else p.as_posix().lstrip("/")
    return rel.replace("/", "__") or "root"


_HELD: dict[str, FileLock] = {}


def held(lock: FileLock) -> FileLock:
    """Acquire ``lock`` once per process: a notebook cell run twice in one kernel reuses the
    lock it already holds instead of waiting for itself."""
    key = f"{lock.path}:{lock.shared}"
    if key in _HELD and _HELD[key].fd is not None:
        return _HELD[key]
    _HELD[key] = lock.acquire()
    return _HELD[key]


def tree_lock(tree: Path) -> FileLock:
    """Exclusive lock of an output tree (``figures/``, ``build/figures/<profile>/``)."""
    return FileLock(locks_dir() / f"tree-{_name(tree)}.lock", what=f"output tree {tree}")


def notebook_lock(tree: Path, notebook: str) -> FileLock:
    """Exclusive lock of one notebook's directory in an output tree."""
    return FileLock(
        locks_dir() / f"notebook-{_name(tree)}-{notebook}.lock",
        what=f"{Path(tree).name}/{notebook}/",
    )


def data_lock(*, shared: bool) -> FileLock:
    """The repository-wide lock of ``data/`` (exclusive for writers, shared for readers)."""
    return FileLock(locks_dir() / "data.lock", shared=shared, what="data/ (committed tables)")


_WRITING = threading.local()  #: how deep this thread is in :func:`writing_data`


def _reading_data() -> bool:
    """Whether this process holds the data lock shared through :func:`held` (a notebook's
    :class:`~.report.Report`): an exclusive ``flock`` on another descriptor would wait for it."""
    reader = _HELD.get(f"{data_lock(shared=True).path}:True")
    return reader is not None and reader.fd is not None


@contextlib.contextmanager
def writing_data() -> Iterator[None]:
    """Hold the data lock exclusively (a writer of committed tables).

    Re-entrant within a thread: a writer that holds it (e.g. to replace a partial table and
    remove the old file at once) may call others that take it (``save_table``) without
    waiting for itself; the lock is released when the outermost block ends. A process that
    reads ``data/`` under a shared lock (:func:`held`) may not write: that would wait forever.
    """
    depth = getattr(_WRITING, "depth", 0)
    if depth:
        _WRITING.depth = depth + 1
        try:
            yield
        finally:
            _WRITING.depth = depth
        return
    if _reading_data():
        raise RuntimeError(
            "this process holds the data lock shared (it reads data/, e.g. a notebook): it "
            "cannot also write committed tables; run the writer in its own process"
        )
    with data_lock(shared=False):
        _WRITING.depth = 1
        try:
            yield
        finally:
            _WRITING.depth = 0
