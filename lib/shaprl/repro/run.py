"""Execute the notebook series with papermill (``make reproduce``).

Each notebook runs in numeric order with the chosen profile; the executed copy goes to
``build/notebooks/<profile>/`` (never over the clean source). A notebook is skipped when
its fingerprint -- its source, the library's source, the pins, the profile and the
parameters -- matches the last successful run and its outputs are present, so an
interrupted run resumes where it stopped. Executed notebooks are written to a temporary
name and renamed only on success.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from .index import write_index
from .paths import atomic_write_text, output_dir, repo_root
from .profiles import PROFILES, resolve_profile


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
    params = {}
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


def run(profile: str, selection: str = "", params_text: str = "", force: bool = False) -> int:
    import papermill as pm

    profile = resolve_profile(profile)
    root = repo_root()
    notebooks_dir = root / "notebooks"
    build = root / "build" / "notebooks" / profile
    stamps = root / "build" / "stamps" / profile
    figures = output_dir()
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
    os.environ["SHAPRL_OUTPUT_DIR"] = str(figures)
    os.environ.setdefault("MPLBACKEND", "Agg")
    build.mkdir(parents=True, exist_ok=True)
    stamps.mkdir(parents=True, exist_ok=True)
    timings = {}
    total = time.perf_counter()
    for path in paths:
        stamp = stamps / f"{path.stem}.json"
        key = fingerprint(path, root, profile, params)
        done = build / path.name
        manifest = figures / path.stem / "manifest.json"
        if not force and stamp.exists() and done.exists() and manifest.exists():
            if json.loads(stamp.read_text()).get("fingerprint") == key:
                print(f"[skip] {path.stem}: unchanged since its last {profile} run", flush=True)
                continue
        print(f"[run ] {path.stem} ({profile})", flush=True)
        tmp = done.with_name(f".{done.stem}.partial.ipynb")
        start = time.perf_counter()
        try:
            pm.execute_notebook(
                str(path),
                str(tmp),
                parameters={"profile": profile, **params},
                cwd=str(notebooks_dir),
                kernel_name="python3",
                progress_bar=False,
                report_mode=False,
            )
        except Exception as err:  # papermill keeps the failing notebook for inspection
            failed = done.with_name(f"{done.stem}.failed.ipynb")
            if tmp.exists():
                os.replace(tmp, failed)
            print(
                f"[fail] {path.stem}: {type(err).__name__}; executed copy in {failed}",
                file=sys.stderr,
            )
            print(str(err)[-3000:], file=sys.stderr)
            write_index(figures)
            return 1
        os.replace(tmp, done)
        seconds = time.perf_counter() - start
        timings[path.stem] = round(seconds, 1)
        atomic_write_text(
            stamp, json.dumps({"fingerprint": key, "seconds": round(seconds, 1)}) + "\n"
        )
        print(f"[done] {path.stem}: {seconds:.1f} s", flush=True)
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


if __name__ == "__main__":
    sys.exit(main())
