"""Where the pipeline reads and writes: repository root, figures, cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def repo_root() -> Path:
    """The repository root: $SHAPRL_ROOT, else the nearest parent holding lib/shaprl."""
    env = os.environ.get("SHAPRL_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "lib" / "shaprl").is_dir():
            return candidate
    return Path(__file__).resolve().parents[3]


def output_dir() -> Path:
    """Figures and tables: $SHAPRL_OUTPUT_DIR, else ``figures/`` at the repository root."""
    env = os.environ.get("SHAPRL_OUTPUT_DIR")
    return Path(env).resolve() if env else repo_root() / "figures"


def cache_dir() -> Path:
    """Cached intermediates: $SHAPRL_CACHE_DIR, else ``data/cache/`` at the repository root."""
    env = os.environ.get("SHAPRL_CACHE_DIR")
    return Path(env).resolve() if env else repo_root() / "data" / "cache"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
