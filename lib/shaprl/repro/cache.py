"""Disk cache for expensive intermediates, keyed by their configuration."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from .. import __version__
from .paths import atomic_write_bytes, atomic_write_text, cache_dir

T = TypeVar("T")


@lru_cache(maxsize=64)
def library_fingerprint(code: tuple[str, ...] | None = None) -> str:
    """Hash of the library's source: a cached result is reused only by the code that made it.

    ``code`` narrows the hash to the sub-packages or modules a result depends on, as paths
    relative to the package (``("batched", "action_shapley/pid_env.py")``), so an edit
    elsewhere in the library does not discard hours of cached work. ``None`` hashes it all.
    """
    h = hashlib.sha256(__version__.encode())
    root = Path(__file__).resolve().parents[1]
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
    for path in files:
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def config_key(name: str, config: dict[str, Any], code: tuple[str, ...] | None = None) -> str:
    """Stable hash of a configuration and of the library code (all of it, or ``code``)."""
    blob = json.dumps(
        {"name": name, "config": config, "shaprl": library_fingerprint(code)},
        sort_keys=True,
        default=repr,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cached(
    name: str,
    config: dict[str, Any],
    compute: Callable[[], T],
    *,
    directory: Path | None = None,
    enabled: bool = True,
    code: tuple[str, ...] | None = None,
) -> T:
    """Return ``compute()``, reusing the result stored for the same ``name`` and ``config``.

    ``config`` must hold everything the result depends on (domain sizes, seeds, budgets).
    The key also covers the library's source (all of it, or the modules listed in ``code``,
    see :func:`library_fingerprint`), so a change to the code that computed a result (a
    sampler, a solver) never serves a stale one. Results are
    pickled atomically, with the configuration beside them as JSON for inspection.
    """
    if not enabled:
        return compute()
    root = Path(directory) if directory is not None else cache_dir()
    key = config_key(name, config, code)
    path = root / name / f"{key}.pkl"
    if path.exists():
        try:
            with path.open("rb") as fh:
                return pickle.load(fh)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            path.unlink(missing_ok=True)  # unreadable (older code): recompute
    result = compute()
    atomic_write_bytes(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    atomic_write_text(path.with_suffix(".json"), json.dumps(config, indent=2, default=repr))
    return result
