"""Artefacts and claims of one notebook: tables, figures and a checked claims ledger."""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from .paths import atomic_write_bytes, atomic_write_text, output_dir
from .profiles import resolve_profile

STATUSES = ("reproduced", "partly reproduced", "not reproduced", "indicative")
KINDS = ("evidence", "construction")


@dataclass(frozen=True)
class Claim:
    """A qualitative claim of a paper, evaluated in code."""

    key: str
    paper: str  #: where the claim is made, e.g. "SVERL Table 5"
    statement: str  #: the claim in our words
    status: str  #: one of STATUSES
    measured: str  #: the numbers behind the verdict
    profile: str  #: profile the verdict was obtained under
    kind: str = "evidence"  #: evidence, or a construction check (holds by how it was built)


class Report:
    """Collects a notebook's artefacts under ``<output_dir>/<notebook>/`` and its claims.

    Every file is written atomically. :meth:`finalize` writes ``manifest.json`` and
    ``claims.csv``; the pipeline builds the figures index (``figures/README.md``) from the
    manifests.
    """

    def __init__(self, notebook: str, profile: str | None, *, title: str = "") -> None:
        self.notebook = notebook
        self.profile = resolve_profile(profile)
        self.title = title
        self.directory = output_dir() / notebook
        self.directory.mkdir(parents=True, exist_ok=True)
        self.artefacts: list[dict] = []
        self.claims: list[Claim] = []
        self._started = time.perf_counter()

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
    ) -> pd.DataFrame:
        """Save a tidy table as CSV plus a rendered copy (Markdown and HTML).

        ``display`` is an optional reshaped view (e.g. a pivot) used for the rendered
        copies; the CSV always holds the tidy ``frame``. Returns the display view.
        """
        view = frame if display is None else display
        csv = frame.to_csv(index=False, float_format="%.12g")
        rendered = view.round(digits)
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
        self._record("table", name, paper, caption, [f"{name}.csv", f"{name}.md", f"{name}.html"])
        return view

    def figure(self, fig, name: str, *, paper: str, caption: str = "", dpi: int = 150) -> None:
        """Save a matplotlib figure as PNG and PDF."""
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
        self._record("figure", name, paper, caption, files)

    def _record(self, kind, name, paper, caption, files) -> None:
        self.artefacts = [a for a in self.artefacts if a["name"] != name]
        self.artefacts.append(
            {"kind": kind, "name": name, "paper": paper, "caption": caption, "files": files}
        )

    # -- claims ------------------------------------------------------------------------
    def claim(
        self,
        key: str,
        *,
        paper: str,
        statement: str,
        holds: bool | str,
        measured: str,
        needs: str | None = None,
        kind: str = "evidence",
    ) -> Claim:
        """Record whether a paper's claim holds in our numbers.

        ``holds`` is True, False, or ``"partly"`` when one part of the claim holds and another
        does not (``measured`` then gives the numbers of both parts). ``needs="paper"`` marks a
        claim whose verdict requires the paper's budget: under a smaller profile it is recorded
        as *indicative*, naming the profile. ``kind="construction"`` marks a claim that holds by
        how the example was built (an MDP made to satisfy the text, an algebraic identity), so
        the count of reproduced *evidence* stays honest.
        """
        if kind not in KINDS:
            raise ValueError(f"claim {key!r}: kind must be one of {KINDS}, got {kind!r}")
        if isinstance(holds, str):
            if holds != "partly":
                raise ValueError(
                    f"claim {key!r}: holds must be True, False or 'partly', got {holds!r}"
                )
            verdict = "partly reproduced"
        else:
            verdict = "reproduced" if bool(holds) else "not reproduced"
        if needs is not None and needs != self.profile:
            status = "indicative"
            outcome = {"reproduced": "holds", "not reproduced": "fails"}.get(
                verdict, "partly holds"
            )
            measured = f"{measured} ({outcome} under {self.profile})"
        else:
            status = verdict
        claim = Claim(key, paper, statement, status, measured, self.profile, kind)
        self.claims = [c for c in self.claims if c.key != key] + [claim]
        return claim

    def claims_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) for c in self.claims])

    def finalize(self) -> pd.DataFrame:
        """Write the claims ledger and the manifest; return the claims for display."""
        claims = self.claims_frame()
        atomic_write_text(self.directory / "claims.csv", claims.to_csv(index=False))
        manifest = {
            "notebook": self.notebook,
            "title": self.title,
            "profile": self.profile,
            "seconds": round(time.perf_counter() - self._started, 1),
            "artefacts": self.artefacts,
            "claims": [asdict(c) for c in self.claims],
        }
        atomic_write_text(self.directory / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        return claims


def load_manifests(directory: Path) -> list[dict]:
    """All notebook manifests under ``directory``, in notebook order."""
    out = []
    for path in sorted(Path(directory).glob("*/manifest.json")):
        out.append(json.loads(path.read_text()))
    return out
