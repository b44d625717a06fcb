"""Artefacts and claims of one notebook: tables, figures and a checked claims ledger.

A notebook's artefacts appear all at once or not at all: :class:`Report` writes into a private
staging directory and :meth:`Report.finalize` publishes it over ``<tree>/<notebook>/`` in one
step (:func:`~shaprl.repro.paths.publish_directory`). The manifest lists every file with its
SHA-256, so the runner can tell whether a directory is exactly what a run wrote.

Numbers are written so that floating-point noise does not change a byte: tables keep
:data:`SIGNIFICANT_DIGITS` significant digits and write an exact zero for any value below
:data:`ZERO_TOLERANCE` times the table's largest magnitude; figures carry no timestamps or
software versions. Timing tables (``timing_*``) vary by design: the manifest marks them
*volatile* (no hash) and git ignores them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .claims import KINDS, STATUSES, Claim, Evidence, decide
from .inputs import declared_inputs, watch_undeclared
from .locks import data_lock, held, notebook_lock
from .paths import (
    atomic_write_bytes,
    atomic_write_text,
    output_dir,
    publish_directory,
    recover_directory,
    repo_root,
    staging_dir,
)
from .profiles import resolve_profile

SIGNIFICANT_DIGITS = 10
ZERO_TOLERANCE = 1e-12


#: OpenBLAS core types whose kernels use AVX-512
_OPENBLAS_AVX512 = {"skylakex", "cooperlake", "sapphirerapids"}


def kernel_capability() -> str:
    """The widest vector family of the kernels this process runs: ``AVX512`` when numpy's
    dispatch, OpenBLAS or ATen (torch) uses AVX-512, else ATen's capability (``AVX2`` on the
    baseline of :mod:`shaprl.kernel_baseline`). torch's own report alone would call a process
    that runs torch at AVX2 but numpy at AVX-512 an AVX2 one."""
    import torch
    from numpy.core._multiarray_umath import __cpu_features__
    from threadpoolctl import threadpool_info

    aten = torch.backends.cpu.get_cpu_capability()
    blas = {str(i.get("architecture") or "").lower() for i in threadpool_info()}
    if aten.startswith("AVX512") or __cpu_features__.get("AVX512F") or blas & _OPENBLAS_AVX512:
        return "AVX512"
    return aten


def machine() -> dict[str, object]:
    """The CPU, its vector capability and the torch/MKL versions of this process.

    Recorded in every manifest: the same code and seed give bitwise-equal tables on one
    machine, but floating-point rounding differs between CPUs (and MKL code paths), and RL
    training amplifies it (issue 18: notebook 34's quick peaks moved by up to 10% between
    two runs made on different machines). Two manifests with different numbers and different
    ``machine`` fields are not a determinism bug; with equal ones they are.
    """
    import platform

    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mkl = next(
        (
            line.strip(" -")
            for line in torch.__config__.show().splitlines()
            if "Math Kernel Library Version" in line
        ),
        "none",
    )
    return {
        "cpu_model": model,
        "cpu_capability": kernel_capability(),
        "torch": torch.__version__,
        "mkl": mkl,
    }


class Report:
    """Collects a notebook's artefacts and claims; :meth:`finalize` publishes them together
    under ``<output tree>/<notebook>/`` (the tree of the profile, see
    :func:`~shaprl.repro.paths.output_dir`).

    Until :meth:`finalize`, files go to a staging directory (``self.directory``); the published
    directory keeps its previous complete contents. The pipeline builds the figures index
    (``README.md`` of the tree) from the published manifests.
    """

    def __init__(self, notebook: str, profile: str | None, *, title: str = "") -> None:
        self.notebook = notebook
        self.profile = resolve_profile(profile)
        self.title = title
        self.params = json.loads(os.environ.get("SHAPRL_PARAMS", "{}") or "{}")
        self.tree = output_dir(self.profile)
        watch_undeclared(repo_root() / "data")
        # committed data cannot change while this notebook reads it; its directory is ours
        self._locks = [held(data_lock(shared=True)), held(notebook_lock(self.tree, notebook))]
        recover_directory(self.tree, notebook)
        self.directory = staging_dir(self.tree, notebook)
        self.published = self.tree / notebook
        self.artefacts: list[dict] = []
        self.claims: list[Claim] = []

    # -- artefacts ---------------------------------------------------------------------
    def table(
        self,
        frame: pd.DataFrame,
        name: str,
        *,
        paper: str,
        caption: str = "",
        display: pd.DataFrame | None = None,
        digits: int = 4,
        volatile: bool | None = None,
    ) -> pd.DataFrame:
        """Save a tidy table as CSV plus a rendered copy (Markdown and HTML).

        ``display`` is an optional reshaped view (e.g. a pivot) used for the rendered
        copies; the CSV always holds the tidy ``frame``, with numbers made stable
        (:func:`stable_numbers`). ``volatile`` marks a table that varies run to run by design
        (timings; default: names starting with ``timing_``). Returns the display view.
        """
        view = frame if display is None else display
        csv = stable_numbers(frame).to_csv(index=False, float_format=f"%.{SIGNIFICANT_DIGITS}g")
        rendered = stable_numbers(view).round(digits)
        if any(name is not None for name in rendered.index.names):
            rendered = rendered.reset_index()
        md = (
            (f"**{paper}** — {caption}\n\n" if caption else "")
            + rendered.to_markdown(index=False)
            + "\n"
        )
        html = rendered.to_html(border=0, na_rep="", index=False)
        base = self.directory / name
        atomic_write_text(base.with_suffix(".csv"), csv)
        atomic_write_text(base.with_suffix(".md"), md)
        atomic_write_text(base.with_suffix(".html"), html)
        volatile = name.startswith("timing_") if volatile is None else volatile
        files = [f"{name}.csv", f"{name}.md", f"{name}.html"]
        self._record("table", name, paper, caption, files, volatile=volatile)
        return view

    def figure(
        self,
        fig,
        name: str,
        *,
        paper: str,
        caption: str = "",
        dpi: int = 150,
        volatile: bool | None = None,
    ) -> None:
        """Save a matplotlib figure as PNG and PDF, without timestamps or software versions.

        ``volatile`` marks a figure of timings (default: names starting with ``timing_``).
        """
        files = []
        for ext in ("png", "pdf"):
            buf = io.BytesIO()
            meta = (
                {"Software": None}
                if ext == "png"
                else {"Creator": None, "Producer": None, "CreationDate": None}
            )
            fig.savefig(buf, format=ext, dpi=dpi, bbox_inches="tight", metadata=meta)
            atomic_write_bytes(self.directory / f"{name}.{ext}", buf.getvalue())
            files.append(f"{name}.{ext}")
        volatile = name.startswith("timing_") if volatile is None else volatile
        self._record("figure", name, paper, caption, files, volatile=volatile)

    def _record(self, kind, name, paper, caption, files, *, volatile: bool = False) -> None:
        # re-saving an artefact (a cell run twice) replaces it; a table and a figure may share a name
        self.artefacts = [a for a in self.artefacts if (a["kind"], a["name"]) != (kind, name)]
        entry = {"kind": kind, "name": name, "paper": paper, "caption": caption, "files": files}
        if volatile:
            entry["volatile"] = True
        self.artefacts.append(entry)

    # -- claims ------------------------------------------------------------------------
    def claim(
        self,
        key: str,
        *,
        paper: str,
        statement: str,
        holds: bool | str | None,
        measured: str,
        needs: str | None = None,
        kind: str = "evidence",
        source: Evidence | None = None,
    ) -> Claim:
        """Record whether a paper's claim holds in our numbers (schema: :mod:`.claims`).

        ``holds`` is True, False, ``"partly"`` when one part of the claim holds and another
        does not (``measured`` then gives the numbers of both parts), or ``"not testable"``
        for a property of the paper's own systems that cannot be observed here (``measured``
        says why; counted apart). ``needs="paper"`` marks a claim whose verdict requires the
        paper's budget: under a smaller profile it is recorded as *indicative*, naming the
        profile -- unless ``source`` is a committed long run (:func:`~.claims.committed_run`)
        that supplies the evidence, which decides it. ``kind="construction"`` marks a claim
        that holds by how the example was built (an MDP made to satisfy the text, an
        algebraic identity), so the count of reproduced *evidence* stays honest.
        """
        if kind not in KINDS:
            raise ValueError(f"claim {key!r}: kind must be one of {KINDS}, got {kind!r}")
        status, measured, where = decide(
            key, holds=holds, measured=measured, profile=self.profile, needs=needs, source=source
        )
        assert status in STATUSES
        claim = Claim(key, paper, statement, status, measured, self.profile, kind, where)
        self.claims = [c for c in self.claims if c.key != key] + [claim]
        return claim

    def claims_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) for c in self.claims])

    def finalize(self) -> pd.DataFrame:
        """Write the claims ledger and the manifest, publish the directory; return the claims.

        The manifest records the profile, the parameters and every file with its SHA-256
        (volatile files without one): exactly what this run wrote.
        """
        if not self.directory.is_dir():
            raise RuntimeError(
                f"{self.notebook}: finalize() was already called; create a new Report to "
                "write the artefacts again"
            )
        claims = self.claims_frame()
        atomic_write_text(self.directory / "claims.csv", claims.to_csv(index=False))
        volatile = {f for a in self.artefacts if a.get("volatile") for f in a["files"]}
        written = sorted(p.name for p in self.directory.iterdir() if not p.name.startswith("."))
        manifest = {
            "notebook": self.notebook,
            "title": self.title,
            "profile": self.profile,
            "params": self.params,
            "artefacts": self.artefacts,
            "claims": [asdict(c) for c in self.claims],
            "inputs": declared_inputs(repo_root()),
            "machine": machine(),
            "files": {
                f: (None if f in volatile else file_sha256(self.directory / f)) for f in written
            },
        }
        atomic_write_text(self.directory / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        publish_directory(self.directory, self.published)
        for lock in self._locks:
            lock.release()
        return claims


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def stable_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with float columns rounded to :data:`SIGNIFICANT_DIGITS` significant digits
    and values below :data:`ZERO_TOLERANCE` x the table's largest float magnitude set to an
    exact 0 (no ``-0``): noise from a different BLAS or CPU then changes no byte."""
    cols = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    if not cols:
        return frame
    out = frame.copy()
    values = out[cols].to_numpy(dtype=float)
    finite = np.isfinite(values)
    scale = np.abs(values[finite]).max() if finite.any() else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(finite & (values != 0), np.floor(np.log10(np.abs(values))), 0.0)
        factor = 10.0 ** (SIGNIFICANT_DIGITS - 1 - mag)
        rounded = np.where(finite, np.round(values * factor) / factor, values)
    rounded[finite & (np.abs(rounded) <= ZERO_TOLERANCE * scale)] = 0.0
    rounded = rounded + 0.0  # -0.0 -> 0.0
    for j, c in enumerate(cols):
        out[c] = rounded[:, j]
    return out


def load_manifests(directory: Path) -> list[dict]:
    """All published notebook manifests under ``directory``, in notebook order."""
    out = []
    for path in sorted(Path(directory).glob("[!.]*/manifest.json")):
        out.append(json.loads(path.read_text()))
    return out
