"""Where the pipeline reads and writes: repository root, figures, cache.

Each profile has its own output tree, so one profile's results are never served for another:
``quick`` (the default of ``make reproduce``, and what is committed) writes ``figures/``;
``smoke`` and ``paper`` write ``build/figures/<profile>/``. ``$SHAPRL_OUTPUT_DIR`` overrides
the tree (the runner and ``make test`` set it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: Profile whose results live in the committed ``figures/`` tree.
COMMITTED_PROFILE = "quick"


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


def output_dir(profile: str | None = None) -> Path:
    """Figures and tables of ``profile``: $SHAPRL_OUTPUT_DIR, else its own tree.

    ``quick`` -> ``figures/``; any other profile -> ``build/figures/<profile>/``. A relative
    ``$SHAPRL_OUTPUT_DIR`` is taken relative to the repository root.
    """
    env = os.environ.get("SHAPRL_OUTPUT_DIR")
    if env:  # a relative path is relative to the repository, not to a kernel's working dir
        path = Path(env)
        return (path if path.is_absolute() else repo_root() / path).resolve()
    if profile is None or profile == COMMITTED_PROFILE:
        return repo_root() / "figures"
    return repo_root() / "build" / "figures" / profile


def cache_dir() -> Path:
    """Cached intermediates: $SHAPRL_CACHE_DIR, else ``data/cache/`` at the repository root."""
    env = os.environ.get("SHAPRL_CACHE_DIR")
    return Path(env).resolve() if env else repo_root() / "data" / "cache"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename: never half-written.

    The file is readable by everyone (0644), like a file written with ``open``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


# -- whole-directory publication --------------------------------------------------------------
#
# A notebook's artefacts are written into ``<tree>/.staging/<notebook>.<pid>/`` and published
# by :func:`publish_directory`, which moves the old directory aside and the new one into place
# with two renames while SIGINT/SIGTERM are held back. A reader therefore sees the old complete
# directory or the new complete one; if the process is killed outright between the renames,
# :func:`recover_directory` puts the old one back before anything else reads the tree.

STAGING = ".staging"


def staging_dir(tree: Path, name: str) -> Path:
    """A fresh, private staging directory for ``name`` under ``tree/.staging``."""
    path = Path(tree) / STAGING / f"{name}.{os.getpid()}"
    if path.exists():
        shutil.rmtree(path)
    for _ in range(4):  # another process may remove an empty ``.staging`` meanwhile
        with contextlib.suppress(FileNotFoundError):
            path.mkdir(parents=True)
            return path
    path.mkdir(parents=True)  # the fifth try raises what it meets
    return path


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Defer SIGINT and SIGTERM for the duration (they are delivered on exit)."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    except (AttributeError, ValueError):  # not the main thread / no pthread_sigmask
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


DISPLACED = ".displaced"


def displace_foreign(target: Path) -> list[Path]:
    """Move files in ``target`` that its manifest does not list to ``<tree>/.displaced/``.

    A file a user put into a notebook's output directory is not ours to delete: it is moved
    to ``<tree>/.displaced/<notebook>/`` (a numbered name if one is there already) and named
    on stderr. Returns the new paths.
    """
    import json
    import sys

    target = Path(target)
    if not target.is_dir():
        return []
    listed: set[str] = {"manifest.json"}
    manifest = target / "manifest.json"
    if manifest.exists():
        try:
            listed |= set(json.loads(manifest.read_text()).get("files", {}))
        except (OSError, ValueError):
            pass
    moved = []
    for path in sorted(target.iterdir()):
        if path.name in listed or path.name.startswith("."):
            continue
        dest_dir = target.parent / DISPLACED / target.name
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest, n = dest_dir / path.name, 1
        while dest.exists():
            dest, n = dest_dir / f"{path.name}.{n}", n + 1
        shutil.move(str(path), dest)
        moved.append(dest)
        print(
            f"[note] {target.name}/{path.name} was not written by a run: moved to {dest}",
            file=sys.stderr,
        )
    return moved


def publish_directory(staged: Path, target: Path) -> None:
    """Replace ``target`` by the complete directory ``staged`` (see the section comment);
    files in ``target`` that no run wrote are moved aside first (:func:`displace_foreign`)."""
    staged, target = Path(staged), Path(target)
    displace_foreign(target)
    aside = staged.with_name(f"{target.name}.old.{os.getpid()}")
    with signals_held():
        if target.exists():
            if aside.exists():
                shutil.rmtree(aside)
            os.rename(target, aside)
        os.rename(staged, target)
    if aside.exists():
        shutil.rmtree(aside, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_directory(tree: Path, name: str) -> None:
    """Undo what a killed run left of ``name``: restore a directory moved aside, drop stale
    staging directories of processes that no longer run."""
    stage = Path(tree) / STAGING
    if not stage.is_dir():
        return
    target = Path(tree) / name
    for path in sorted(stage.glob(f"{name}.*")):
        pid_text = path.name.rsplit(".", 1)[-1]
        if not pid_text.isdigit() or (int(pid_text) != os.getpid() and _alive(int(pid_text))):
            continue
        if path.name.startswith(f"{name}.old.") and not target.exists():
            os.rename(path, target)
        else:
            shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        stage.rmdir()  # only when empty
