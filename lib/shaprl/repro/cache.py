"""Disk cache for expensive intermediates, keyed by everything the result depends on.

The key of an entry is the hash of

* ``name`` and ``config`` -- the configuration (domain sizes, seeds, budgets);
* the **calling code**: the source of the ``compute`` function when it is defined outside the
  library (in a notebook or a user's script), and, recursively, of the notebook-defined
  functions and the values of the notebook globals it references (defaults and closure
  variables included). Library functions are covered by the next item instead;
* the **library's source** (all of it, or the modules listed in ``code=``, see
  :func:`library_fingerprint`);
* the **pins** (``requirements.txt``): another numpy or torch may round differently.

So editing a notebook's computation (``seed=seed + 1``), the library code a result depends on,
or a pinned version never serves a stale result.

Entries are pickles wrapped in an envelope that records their key; one that fails to load,
is not an envelope or holds another key is recomputed with one line naming the file. A failed
write warns and the computed result is still returned. ``pickle.load`` runs code from the file,
so **the cache directory must be trusted**: a directory that is writable by everyone or owned by
another user is not read (the computation runs uncached, with one warning saying why).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import pickle
import stat
import sys
import types
import warnings
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .._version import __version__
from .paths import atomic_write_bytes, atomic_write_text, cache_dir, repo_root

T = TypeVar("T")
ENVELOPE = "shaprl-cache-entry"
_LIBRARY = "shaprl"


class CacheWarning(UserWarning):
    """The cache could not be used as asked (untrusted directory, failed write)."""


def _package_root() -> Path:
    """The ``shaprl`` package directory (read at call time, so tests can point it elsewhere)."""
    return Path(__file__).resolve().parents[1]


def _path_order(rel: str) -> tuple[str, ...]:
    """Sort key of a package-relative posix path: by its parts, as :class:`~pathlib.Path`
    objects sort (``a/b.py`` before ``a-c.py``), so the fingerprint keeps its historical order."""
    return tuple(rel.split("/"))


def library_sources(code: tuple[str, ...] | None = None) -> dict[str, bytes]:
    """The source files :func:`library_fingerprint` hashes: package-relative posix path ->
    bytes, in hashing order. One definition of the file set for the fingerprint and for
    :func:`file_hashes`, so the two cannot disagree about which files make the code."""
    root = _package_root()
    if code is None:
        files = sorted(root.rglob("*.py"))
    else:
        files = []
        for part in code:
            path = root / part
            if not path.exists():
                raise FileNotFoundError(f"library_fingerprint: no module or package {part!r}")
            files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
        files = sorted(set(files))
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in files}


def fingerprint_sources(sources: dict[str, bytes], version: str) -> str:
    """The fingerprint of a set of sources (path -> bytes) under a package version.

    Pure, so a fingerprint can also be recomputed from sources read out of git history
    (:mod:`shaprl.fastsverl.settle`'s provenance backfill) exactly as the library computes it.
    """
    h = hashlib.sha256(version.encode())
    for rel in sorted(sources, key=_path_order):
        h.update(rel.encode())
        h.update(sources[rel])
    return h.hexdigest()[:16]


def source_hashes(sources: dict[str, bytes]) -> dict[str, str]:
    """Short SHA-256 (16 hex digits) of each source, by path in hashing order: a per-file
    record of the code, so a later fingerprint mismatch can name the files that changed."""
    return {
        rel: hashlib.sha256(sources[rel]).hexdigest()[:16]
        for rel in sorted(sources, key=_path_order)
    }


@lru_cache(maxsize=64)
def library_fingerprint(code: tuple[str, ...] | None = None) -> str:
    """Hash of the library's source: a cached result is reused only by the code that made it.

    ``code`` narrows the hash to the sub-packages or modules a result depends on, as paths
    relative to the package (``("batched", "action_shapley/pid_env.py")``), so an edit
    elsewhere in the library does not discard hours of cached work. ``None`` hashes it all.
    The hash covers ``__version__`` and each file's relative path and bytes
    (:func:`fingerprint_sources` of :func:`library_sources`).
    """
    return fingerprint_sources(library_sources(code), __version__)


def file_hashes(code: tuple[str, ...] | None = None) -> dict[str, str]:
    """Per-file short hashes of exactly the files :func:`library_fingerprint` covers
    (:func:`source_hashes` of :func:`library_sources`); not cached: it reads the files now."""
    return source_hashes(library_sources(code))


def library_provenance(code: tuple[str, ...] | None = None) -> tuple[str, dict[str, str]]:
    """:func:`library_fingerprint` and :func:`file_hashes` of ``code`` from one read of its
    files, so the two describe the same code even if a file is edited meanwhile (uncached)."""
    sources = library_sources(code)
    return fingerprint_sources(sources, __version__), source_hashes(sources)


def pins_fingerprint() -> str:
    """Hash of ``requirements.txt`` (empty when the repository has none)."""
    path = repo_root() / "requirements.txt"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else ""


def _in_library(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == _LIBRARY or module.startswith(_LIBRARY + ".")


def _names(code: types.CodeType) -> set[str]:
    """Global names used by ``code`` and the functions, lambdas and comprehensions in it."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _source(fn: Callable) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):  # no source (e.g. exec'd code): hash the compiled code
        code = getattr(fn, "__code__", None)
        return repr((code.co_code, code.co_consts)) if code is not None else repr(fn)


def value_digest(value: Any, seen: set[int] | None = None) -> str:
    """A stable text for a value a computation depends on (see :func:`code_digest`).

    Numbers, strings, plain containers of them (list, tuple, set, dict), numpy arrays and
    pandas objects are hashed by content; functions by their code; modules and library objects contribute nothing (the
    library fingerprint covers them); any other object by its type only -- put such inputs
    in ``config``.
    """
    seen = set() if seen is None else seen
    if value is None or isinstance(value, bool | int | float | complex | str | bytes):
        return repr(value)
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return f"ndarray{data.shape}{data.dtype}:" + hashlib.sha256(data.tobytes()).hexdigest()
    if isinstance(value, np.generic):
        return repr(value.item())
    if type(value) in (list, tuple, set, frozenset):
        items = sorted(value, key=repr) if type(value) in (set, frozenset) else value
        return f"{type(value).__name__}[" + ",".join(value_digest(v, seen) for v in items) + "]"
    if type(value) is dict:
        parts = (f"{value_digest(k, seen)}:{value_digest(v, seen)}" for k, v in value.items())
        return "{" + ",".join(sorted(parts)) + "}"
    if isinstance(value, types.ModuleType) or _in_library(value) or _in_library(type(value)):
        return ""
    if callable(value) and (inspect.isfunction(value) or isinstance(value, partial)):
        return code_digest(value, seen)
    try:
        import pandas as pd

        if isinstance(value, pd.DataFrame | pd.Series):
            return (
                "pandas:"
                + hashlib.sha256(pd.util.hash_pandas_object(value).to_numpy().tobytes()).hexdigest()
            )
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def code_digest(fn: Callable, seen: set[int] | None = None) -> str:
    """Hash of the code outside the library that ``fn`` runs: its source, its defaults and
    closure values, and recursively the notebook functions and globals it references."""
    seen = set() if seen is None else seen
    if id(fn) in seen or _in_library(fn):
        return ""
    seen.add(id(fn))
    if isinstance(fn, partial):
        parts = [code_digest(fn.func, seen), value_digest(fn.args, seen)]
        parts.append(value_digest(fn.keywords, seen))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()
    if isinstance(fn, types.MethodType):
        return code_digest(fn.__func__, seen)
    code = getattr(fn, "__code__", None)
    if code is None:  # a builtin, a class or a callable object
        return f"<{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}>"
    parts = [_source(fn), value_digest(fn.__defaults__, seen)]
    parts.append(value_digest(fn.__kwdefaults__, seen))
    for cell in fn.__closure__ or ():
        try:
            parts.append(value_digest(cell.cell_contents, seen))
        except ValueError:  # an empty cell
            parts.append("<empty>")
    glb = getattr(fn, "__globals__", {})
    for name in sorted(_names(code)):
        if name in glb:
            parts.append(f"{name}={value_digest(glb[name], seen)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def config_key(
    name: str,
    config: dict[str, Any],
    code: tuple[str, ...] | None = None,
    compute: Callable | None = None,
) -> str:
    """Stable hash of a configuration, the calling code, the library code and the pins."""
    blob = json.dumps(
        {
            "name": name,
            "config": config,
            "shaprl": library_fingerprint(code),
            "caller": code_digest(compute) if compute is not None else "",
            "pins": pins_fingerprint(),
        },
        sort_keys=True,
        default=repr,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def untrusted(directory: Path) -> str | None:
    """Why ``directory`` (or the nearest existing parent) must not be unpickled from."""
    path = Path(directory)
    while not path.exists() and path != path.parent:
        path = path.parent
    info = path.stat()
    if info.st_mode & stat.S_IWOTH:
        return f"{path} is writable by every user"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"{path} is owned by another user (uid {info.st_uid})"
    return None


_WARNED: set[str] = set()


def _say(text: str) -> None:
    print(f"[cache] {text}", file=sys.stderr, flush=True)


def _load(path: Path, key: str, expect: type | tuple[type, ...] | None) -> tuple[bool, Any]:
    """``(True, value)`` for a valid entry; ``(False, None)`` after saying why not."""
    try:
        with path.open("rb") as fh:
            entry = pickle.load(fh)
    except Exception as err:  # any unreadable pickle: truncated, garbage, older classes
        _say(f"{path}: unreadable ({type(err).__name__}: {str(err)[:80]}); recomputing")
        return False, None
    if not (isinstance(entry, dict) and entry.get("envelope") == ENVELOPE):
        _say(f"{path}: not a shaprl cache entry ({type(entry).__name__}); recomputing")
        return False, None
    if entry.get("key") != key:
        _say(f"{path}: an entry of another key; recomputing")
        return False, None
    value = entry.get("value")
    if expect is not None and not isinstance(value, expect):
        _say(f"{path}: holds a {type(value).__name__}, expected {expect}; recomputing")
        return False, None
    return True, value


def cached(
    name: str,
    config: dict[str, Any],
    compute: Callable[[], T],
    *,
    directory: Path | None = None,
    enabled: bool = True,
    code: tuple[str, ...] | None = None,
    expect: type | tuple[type, ...] | None = None,
) -> T:
    """Return ``compute()``, reusing the result stored for the same key (module docstring).

    ``config`` must hold everything the result depends on that is not code (domain sizes,
    seeds, budgets). ``code`` narrows the library part of the key (:func:`library_fingerprint`).
    ``expect`` is the type the result must have; an entry of another type is recomputed.
    Results are pickled atomically, with the configuration beside them as JSON.
    """
    if not enabled:
        return compute()
    root = Path(directory) if directory is not None else cache_dir()
    why = untrusted(root)
    if why is not None:
        if why not in _WARNED:
            _WARNED.add(why)
            warnings.warn(
                f"not using the cache in {root}: {why}, and a cache entry is a pickle, which "
                "runs code when loaded. Fix the permissions (chmod o-w) or set SHAPRL_CACHE_DIR "
                "to a directory of your own; computing uncached meanwhile",
                CacheWarning,
                stacklevel=2,
            )
        return compute()
    key = config_key(name, config, code, compute)
    path = root / name / f"{key}.pkl"
    if path.exists():
        ok, value = _load(path, key, expect)
        if ok:
            return value
    result = compute()
    entry = {"envelope": ENVELOPE, "key": key, "value": result}
    try:
        atomic_write_bytes(path, pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
        atomic_write_text(path.with_suffix(".json"), json.dumps(config, indent=2, default=repr))
    except OSError as err:
        warnings.warn(
            f"could not write the cache entry {path} ({err}); the result is used but not "
            "cached, so the next run computes it again",
            CacheWarning,
            stacklevel=2,
        )
    return result


def is_cached(
    name: str,
    config: dict[str, Any],
    code: tuple[str, ...] | None = None,
    directory: Path | None = None,
) -> bool:
    """Whether a library computation (no caller code in its key) has a stored entry."""
    root = Path(directory) if directory is not None else cache_dir()
    return (root / name / f"{config_key(name, config, code)}.pkl").exists()
