"""Execute the notebook series with papermill (``make reproduce``).

Each notebook runs in numeric order with the chosen profile; the executed copy goes to
``build/notebooks/<profile>/`` (never over the clean source) and its artefacts to the
profile's own output tree (``figures/`` for ``quick``, ``build/figures/<profile>/`` for the
others; see :func:`~shaprl.repro.paths.output_dir`).

A notebook is skipped only when (a) its fingerprint -- its source, the library's source, the
pins, the profile and the parameters -- matches its last successful run, (b) every file it
read (declared by the library's loaders, :mod:`.inputs`) still has the digest recorded in its
manifest, and (c) its published directory is exactly what that run wrote: the manifest is the
one recorded, of this profile and these parameters, and every file it lists is present with
its SHA-256 and no other file is there. So an interrupted run resumes where it stopped, a
changed input re-runs exactly the notebooks that read it (the runner names the file), and a
deleted, edited or foreign artefact makes the notebook run again.

The runner holds the output tree's lock for the whole run (a second run on the same tree
waits, saying who holds it) and the data lock shared (table writers wait for it to finish).
Executed copies and kernel logs are written under per-run temporary names.

SIGINT or SIGTERM stops the run cleanly: the kernel is shut down, no partial file is left,
every published directory keeps its previous complete contents, and the exit status is
128 + the signal number (130, 143); a second signal during that cleanup is ignored. Index
writes on the failure paths are best-effort (a full or read-only tree gives one line).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .index import write_index
from .inputs import changed_inputs
from .locks import data_lock, tree_lock
from .paths import (
    STAGING,
    atomic_write_text,
    displace_foreign,
    output_dir,
    recover_directory,
    repo_root,
)
from .profiles import PROFILES, resolve_profile
from .report import file_sha256


class Interrupted(Exception):
    """Raised in the runner when SIGINT or SIGTERM arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, _frame) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 to ``path`` meanwhile: the kernel inherits it, so its own log
    (start-up warnings, the messages of a kernel shut down mid-cell) goes to a file and not
    over the runner's output. The notebook's errors still reach us through papermill."""
    saved = os.dup(2)
    point_stderr_at(path, append=False)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def point_stderr_at(path: Path, *, append: bool) -> None:
    """Make file descriptor 2 (and so ``sys.stderr`` and child processes) write to ``path``."""
    sys.stderr.flush()
    mode = os.O_APPEND if append else os.O_TRUNC
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o644)
    os.dup2(fd, 2)
    os.close(fd)


def discover(notebooks_dir: Path, selection: str = "") -> list[Path]:
    """Numbered notebooks (``NN_name.ipynb``) in order, optionally filtered by prefixes."""
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    wanted = [w for w in selection.replace(",", " ").split() if w]
    if not wanted:
        return found
    chosen = [p for p in found if any(p.name.startswith(w) for w in wanted)]
    unmatched = [w for w in wanted if not any(p.name.startswith(w) for p in found)]
    if unmatched:
        names = ", ".join(p.stem for p in found)
        raise SystemExit(f"error: no notebook matches {unmatched}; available: {names}")
    return chosen


def parse_params(text: str) -> dict:
    """``"seed=3 n=10"`` -> {"seed": 3, "n": 10}; values are Python literals or strings."""
    params: dict = {}
    for item in text.split():
        if "=" not in item:
            raise SystemExit(
                f"error: parameter {item!r} must look like name=value (e.g. PARAMS='seed=3')"
            )
        key, raw = item.split("=", 1)
        try:
            params[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            params[key] = raw
    if "profile" in params:
        raise SystemExit(
            f"error: the profile is chosen with PROFILE=, not PARAMS (got PARAMS='profile="
            f"{params['profile']}'); run e.g. make reproduce PROFILE={params['profile']}"
        )
    return params


def notebook_parameters(path: Path) -> set[str]:
    """Names defined in the notebook's cell tagged ``parameters``."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse(cell.source)
            return {
                t.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for t in node.targets
                if isinstance(t, ast.Name)
            }
    raise SystemExit(f"error: {path.name} has no cell tagged 'parameters' (papermill needs one)")


def fingerprint(path: Path, root: Path, profile: str, params: dict) -> str:
    h = hashlib.sha256()
    h.update(path.read_bytes())
    for src in sorted((root / "lib").rglob("*.py")):
        h.update(str(src.relative_to(root)).encode())
        h.update(src.read_bytes())
    for extra in ("requirements.txt",):
        if (root / extra).exists():
            h.update((root / extra).read_bytes())
    h.update(json.dumps({"profile": profile, "params": params}, sort_keys=True).encode())
    return h.hexdigest()


def check_outputs(directory: Path, profile: str, params: dict, stamp: dict) -> str | None:
    """Why ``directory`` is not exactly what the run recorded in ``stamp`` wrote (None if it is)."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists():
        return f"{directory.name}/ has no published outputs"
    if stamp.get("output") != str(directory) or stamp.get("manifest") != file_sha256(manifest_path):
        return f"{directory.name}/ was written by another run"
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("profile") != profile:
        return f"{directory.name}/ holds {manifest.get('profile')!r} results, not {profile!r}"
    if manifest.get("params", {}) != params:
        return f"{directory.name}/ was made with parameters {manifest.get('params')}"
    changed = changed_inputs(manifest.get("inputs", {}), repo_root())
    if changed:
        return changed
    files = manifest.get("files", {})
    for name, digest in files.items():
        path = directory / name
        if not path.exists():
            return f"{directory.name}/{name} is missing"
        if digest is not None and file_sha256(path) != digest:
            return f"{directory.name}/{name} was modified"
    extra = sorted(
        p.name
        for p in directory.iterdir()
        if p.name not in files and p.name != "manifest.json" and not p.name.startswith(".")
    )
    if extra:
        return f"{directory.name}/ holds files no run listed: {', '.join(extra[:3])}"
    return None


def _best_effort_index(figures: Path) -> None:
    """Rebuild the index on a failure path; a full or read-only tree costs one line, not a
    second traceback."""
    try:
        write_index(figures)
    except OSError as err:
        print(f"[note] could not rewrite {figures.name}/README.md: {err}", file=sys.stderr)


def _ignore_signals() -> None:
    """During the cleanup after a stop a second Ctrl-C must not interrupt the cleanup."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def run(profile: str, selection: str = "", params_text: str = "", force: bool = False) -> int:
    profile = resolve_profile(profile)
    root = repo_root()
    notebooks_dir = root / "notebooks"
    figures = output_dir(profile)
    params = parse_params(params_text)
    paths = discover(notebooks_dir, selection)
    if not paths:
        raise SystemExit(f"error: no notebooks found in {notebooks_dir}")
    # Validate every parameter against every selected notebook before running anything.
    for path in paths:
        known = notebook_parameters(path)
        unknown = sorted(set(params) - known)
        if unknown:
            raise SystemExit(
                f"error: {path.stem} has no parameter(s) {unknown}; its parameters are "
                f"{sorted(known)}. Select notebooks with NOTEBOOKS=... to pass notebook-specific parameters."
            )
    with tree_lock(figures), data_lock(shared=True):
        return _run_locked(profile, paths, root, figures, params, force)


def _run_locked(
    profile: str, paths: list[Path], root: Path, figures: Path, params: dict, force: bool
) -> int:
    import papermill as pm

    notebooks_dir = root / "notebooks"
    build = root / "build" / "notebooks" / profile
    stamps = root / "build" / "stamps" / profile
    os.environ["SHAPRL_OUTPUT_DIR"] = str(figures)
    os.environ["SHAPRL_PARAMS"] = json.dumps(params, sort_keys=True)
    os.environ.setdefault("MPLBACKEND", "Agg")
    build.mkdir(parents=True, exist_ok=True)
    stamps.mkdir(parents=True, exist_ok=True)
    shown = figures.relative_to(root) if figures.is_relative_to(root) else figures
    print(f"profile {profile}: artefacts in {shown}/", flush=True)
    total = time.perf_counter()
    previous = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    current, tmp, log = None, None, None
    try:
        for path in paths:
            current = path
            recover_directory(figures, path.stem)
            stamp_path = stamps / f"{path.stem}.json"
            key = fingerprint(path, root, profile, params)
            done = build / path.name
            stamp = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
            if force:
                reason = "forced"
            elif stamp.get("fingerprint") != key or not done.exists():
                reason = "new or changed since its last run" if stamp else "never run"
            else:
                reason = check_outputs(figures / path.stem, profile, params, stamp)
            if reason is None:
                print(f"[skip] {path.stem}: unchanged since its last {profile} run", flush=True)
                continue
            print(f"[run ] {path.stem} ({profile}): {reason}", flush=True)
            displace_foreign(figures / path.stem)  # named here: the kernel's stderr is not ours
            tmp = done.with_name(f".{done.stem}.{os.getpid()}.partial.ipynb")
            log = done.with_name(f".{done.stem}.{os.getpid()}.kernel.log")
            start = time.perf_counter()
            try:
                with stderr_to(log):
                    pm.execute_notebook(
                        str(path),
                        str(tmp),
                        parameters={"profile": profile, **params},
                        cwd=str(notebooks_dir),
                        kernel_name="python3",
                        progress_bar=False,
                        report_mode=False,
                    )
            except Interrupted:
                raise
            except Exception as err:  # papermill keeps the failing notebook for inspection
                _ignore_signals()
                failed = done.with_name(f"{done.stem}.failed.ipynb")
                if tmp.exists():
                    os.replace(tmp, failed)
                if log.exists():
                    os.replace(log, done.with_name(f"{done.stem}.kernel.log"))
                recover_directory(figures, path.stem)
                print(str(err)[-3000:], file=sys.stderr)
                print(
                    f"[fail] {path.stem}: {type(err).__name__}; executed copy in {failed}. "
                    f"{figures.name}/{path.stem}/ keeps its previous complete contents; fix the "
                    f"error and run make reproduce NOTEBOOKS={path.stem[:2]} (finished notebooks "
                    "are skipped).",
                    file=sys.stderr,
                )
                _best_effort_index(figures)
                return 1
            os.replace(tmp, done)
            os.replace(log, done.with_name(f"{done.stem}.kernel.log"))
            tmp = log = None
            done.with_name(f"{done.stem}.failed.ipynb").unlink(missing_ok=True)  # stale now
            seconds = time.perf_counter() - start
            manifest = figures / path.stem / "manifest.json"
            published = json.loads(manifest.read_text()) if manifest.exists() else {}
            if published.get("profile") != profile or published.get("params", {}) != params:
                print(
                    f"[fail] {path.stem} ran but {figures.name}/{path.stem}/ holds no results "
                    f"of this run (profile {profile}, parameters {params}): its last cell must "
                    "call report.finalize() (see notebooks/01_road_sign.ipynb).",
                    file=sys.stderr,
                )
                return 1
            record = {
                "fingerprint": key,
                "manifest": file_sha256(manifest),
                "output": str(figures / path.stem),
                "seconds": round(seconds, 1),
            }
            atomic_write_text(stamp_path, json.dumps(record) + "\n")
            print(f"[done] {path.stem}: {seconds:.1f} s", flush=True)
    except Interrupted as stop:
        _ignore_signals()
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # the dying cell's task
        for leftover in (tmp, log):
            if leftover is not None:
                leftover.unlink(missing_ok=True)
        if current is not None:
            time.sleep(0.5)  # let the shut-down kernel exit before removing its staging
            recover_directory(figures, current.stem)
        name = current.stem if current is not None else "start-up"
        print(
            f"\n[stop] {stop} during {name}: stopped cleanly; {figures.name}/ holds only "
            "complete runs. Run the same command again to resume.",
            file=sys.stderr,
        )
        _best_effort_index(figures)
        # The interrupted cell's asyncio task may still report "kernel died" while the
        # interpreter exits: send what is left of this process's stderr to the run's log.
        stem = current.stem if current is not None else "runner"
        point_stderr_at(build / f"{stem}.kernel.log", append=True)
        return 128 + stop.signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    with contextlib.suppress(OSError):
        (figures / STAGING).rmdir()  # only when empty
    index = write_index(figures)
    print(f"[index] {index.relative_to(root) if index.is_relative_to(root) else index}")
    print(
        f"total {time.perf_counter() - total:.1f} s for {len(paths)} notebook(s), profile {profile}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick", help=f"one of {', '.join(PROFILES)}")
    parser.add_argument("--notebooks", default="", help="prefixes to select, e.g. '01 02'")
    parser.add_argument("--params", default="", help="notebook parameters, e.g. 'seed=3'")
    parser.add_argument("--force", action="store_true", help="re-run even unchanged notebooks")
    args = parser.parse_args(argv)
    try:
        return run(args.profile, args.notebooks, args.params, args.force)
    except ValueError as err:  # e.g. unknown profile
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a signal before the handlers were installed
        print("\n[stop] interrupted before any notebook ran", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
