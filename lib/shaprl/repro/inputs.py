"""Files a notebook reads: declared, hashed, recorded in its manifest, re-checked by the runner.

The library functions that open committed data (traces, utility tables, checks, long-run
curves) call :func:`declare_input` with the path; the notebook's :class:`~.report.Report`
writes every declared file with its digest into the manifest, and the runner re-hashes them
before it skips a notebook. So an edited trace or a regenerated table re-runs exactly the
notebooks that read it, and a regeneration with identical values re-runs none.

:func:`input_digest` hashes a file's bytes, except a table's JSON description, whose digest
leaves out the fields that change from run to run without changing the numbers
(:data:`VOLATILE_FIELDS`: wall and compute seconds, machine and library versions).

:func:`watch_undeclared` installs an audit hook (``sys.addaudithook``) that warns, once per
file, when the process reads a file under ``data/`` (``data/cache/`` excluded) that no
library function declared: such a read would escape the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

#: JSON fields that vary between regenerations of identical numbers (not hashed)
VOLATILE_FIELDS = frozenset(
    {
        "wall_seconds",
        "compute_seconds",
        "torch",
        "cpu",
        "cpu_model",
        "cpu_capability",
        "mkl",
        "threads",
        "machine",
        "written",
    }
)

_DECLARED: dict[str, str] = {}  # absolute path -> digest, in order of declaration
_WATCH = {"installed": False, "busy": False, "warned": set()}


class UndeclaredInputWarning(UserWarning):
    """A notebook read a file under ``data/`` that is not recorded in its manifest."""


def input_digest(path: str | Path) -> str:
    """SHA-256 of a file; for ``.json`` of its content without :data:`VOLATILE_FIELDS`.

    A missing file has the digest ``"missing"`` (so the runner can say so).
    """
    path = Path(path)
    if not path.is_file():
        return "missing"
    data = path.read_bytes()
    if path.suffix == ".json":
        try:
            meta = json.loads(data)
        except ValueError:
            pass  # not valid JSON: hash the bytes (the loader reports the error)
        else:
            if isinstance(meta, dict):
                meta = {k: v for k, v in meta.items() if k not in VOLATILE_FIELDS}
            data = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()


def declare_input(path: str | Path) -> Path:
    """Record ``path`` (and its digest) as an input of this process's notebook; return it."""
    path = Path(path)
    resolved = str(path.resolve())
    _DECLARED[resolved] = ""  # declared before it is hashed: hashing reads it
    _DECLARED[resolved] = input_digest(resolved)
    return path


def declared_inputs(root: Path) -> dict[str, str]:
    """``{path: digest}`` of every declared input, paths relative to ``root`` where inside."""
    out = {}
    for name, digest in _DECLARED.items():
        p = Path(name)
        out[p.relative_to(root).as_posix() if p.is_relative_to(root) else name] = digest
    return dict(sorted(out.items()))


def changed_inputs(inputs: dict[str, str], root: Path) -> str | None:
    """Why the recorded ``inputs`` differ from the files now (None when all are unchanged)."""
    for name, digest in inputs.items():
        path = Path(name) if os.path.isabs(name) else root / name
        now = input_digest(path)
        if now == digest:
            continue
        if now == "missing":
            return f"its input {name} is missing"
        return f"its input {name} changed since its last run"
    return None


def _is_read(args: tuple) -> bool:
    mode = args[1] if len(args) > 1 else None
    if isinstance(mode, str):
        return "r" in mode and not any(c in mode for c in "wax+")
    flags = args[2] if len(args) > 2 else None
    return isinstance(flags, int) and flags & os.O_ACCMODE == os.O_RDONLY


def watch_undeclared(data_root: Path) -> None:
    """Warn (once per file) about reads under ``data_root`` that were not declared.

    ``data_root/cache`` is excluded: the cache is keyed by configuration and code already.
    Installed once per process (an audit hook cannot be removed); later calls update the root.
    """
    _WATCH["root"] = str(Path(data_root).resolve())
    _WATCH["cache"] = os.path.join(_WATCH["root"], "cache")
    if _WATCH["installed"]:
        return
    _WATCH["installed"] = True

    def hook(event: str, args: tuple) -> None:
        if event != "open" or _WATCH["busy"] or not args:
            return
        target = args[0]
        if not isinstance(target, str | os.PathLike) or not _is_read(args):
            return
        _WATCH["busy"] = True
        try:
            name = os.path.abspath(os.fspath(target))
            root, cache = _WATCH["root"], _WATCH["cache"]
            if (
                name.startswith(root + os.sep)
                and not name.startswith(cache + os.sep)
                and name not in _DECLARED
                and os.path.realpath(name) not in _DECLARED
                and name not in _WATCH["warned"]
            ):
                _WATCH["warned"].add(name)
                warnings.warn(
                    f"read {name} without declaring it as an input, so a change to it would "
                    "not re-run this notebook: open it through a shaprl loader or call "
                    "shaprl.repro.declare_input(path) first",
                    UndeclaredInputWarning,
                    stacklevel=2,
                )
        finally:
            _WATCH["busy"] = False

    sys.addaudithook(hook)
