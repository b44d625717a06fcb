"""The figures index: every paper artefact -> regenerated files -> claims and their status."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .paths import atomic_write_text
from .report import load_manifests

_BADGE = {
    "reproduced": "✅ reproduced",
    "partly reproduced": "◐ partly reproduced",
    "not reproduced": "❌ not reproduced",
    "not testable here": "∅ not testable here",
    "indicative": "⚠️ indicative",
}


def _claim_text(c: dict) -> str:
    tag = " *(construction check)*" if c.get("kind") == "construction" else ""
    source = c.get("source", "")
    where = f"; evidence: {source}" if source.startswith("committed run") else ""
    return f"{_BADGE[c['status']]}{tag}: {c['statement']} ({c['measured']}{where})"


def _summary(manifests: list[dict]) -> list[str]:
    evidence = Counter(
        c["status"]
        for m in manifests
        for c in m["claims"]
        if c.get("kind") != "construction" and c["status"] != "not testable here"
    )
    untestable = sum(c["status"] == "not testable here" for m in manifests for c in m["claims"])
    committed = sum(
        c.get("source", "").startswith("committed run") for m in manifests for c in m["claims"]
    )
    construction = Counter(
        c["status"] for m in manifests for c in m["claims"] if c.get("kind") == "construction"
    )
    order = list(_BADGE)

    def fmt(counts: Counter) -> str:
        return ", ".join(f"{counts[s]} {s}" for s in order if counts[s]) or "none"

    profiles = Counter(m["profile"] for m in manifests)
    lines = [
        f"**Claims (evidence):** {fmt(evidence)}.  ",
        f"**Construction checks** (hold by how an example was built): {fmt(construction)}.  ",
        f"**Not testable here** (properties of the papers' own systems or data, counted apart): "
        f"{untestable}.  ",
        f"**Decided by a committed long run** (evidence under `data/`): {committed}.  ",
    ]
    if len(profiles) == 1:
        lines.append(f"**Profile:** every entry comes from a `{next(iter(profiles))}` run.")
    else:
        mix = ", ".join(f"{n} `{p}`" for p, n in sorted(profiles.items()))
        lines.append(f"**Profiles differ between entries:** {mix} (see each section).")
    return [*lines, ""]


def render_index(manifests: list[dict]) -> str:
    """Markdown text of the index for the given notebook manifests."""
    lines = [
        "# Regenerated figures and tables",
        "",
        "Written by `make reproduce` — do not edit by hand. Each paper artefact is listed with",
        "the files that regenerate it and the claims checked in code for it. Only complete",
        "notebook runs are listed: a notebook's directory is replaced as a whole.",
        "",
        *(_summary(manifests) if manifests else ["No notebook has completed in this tree.", ""]),
    ]
    for m in manifests:
        nb = m["notebook"]
        params = m.get("params") or {}
        with_params = f", parameters `{params}`" if params else ""
        lines += [
            f"## {nb} — {m.get('title', '')}",
            "",
            f"Profile `{m['profile']}`{with_params} (notebook: `notebooks/{nb}.ipynb`).",
            "",
            "| paper artefact | files | claims |",
            "|---|---|---|",
        ]
        by_paper: dict[str, list[dict]] = {}
        for c in m["claims"]:
            by_paper.setdefault(c["paper"], []).append(c)
        seen = set()
        for a in m["artefacts"]:
            files = " ".join(f"[{f.rsplit('.', 1)[-1]}]({nb}/{f})" for f in a["files"])
            if a.get("volatile"):
                files += " *(timings: vary run to run, not committed)*"
            claims = ""
            if a["paper"] not in seen:
                claims = "<br>".join(_claim_text(c) for c in by_paper.get(a["paper"], []))
                seen.add(a["paper"])
            label = f"{a['paper']}: {a['caption']}" if a["caption"] else a["paper"]
            lines.append(f"| {label} | `{a['name']}` {files} | {claims} |")
        for paper, cs in by_paper.items():
            if paper not in seen:
                lines.append(f"| {paper} | — | {'<br>'.join(_claim_text(c) for c in cs)} |")
        lines.append("")
    return "\n".join(lines)


def write_index(directory: Path) -> Path:
    """Write ``README.md`` in the figures directory from the published manifests found there."""
    path = Path(directory) / "README.md"
    atomic_write_text(path, render_index(load_manifests(directory)))
    return path
