"""The figures index: every paper artefact -> regenerated files -> claims and their status."""

from __future__ import annotations

from pathlib import Path

from .paths import atomic_write_text
from .report import load_manifests

_BADGE = {
    "reproduced": "✅ reproduced",
    "not reproduced": "❌ not reproduced",
    "indicative": "⚠️ indicative",
}


def render_index(manifests: list[dict]) -> str:
    """Markdown text of the index for the given notebook manifests."""
    lines = [
        "# Regenerated figures and tables",
        "",
        "Written by `make reproduce` — do not edit by hand. Each paper artefact is listed with",
        "the files that regenerate it and the claims checked in code for it.",
        "",
    ]
    counts: dict[str, int] = {}
    for m in manifests:
        for c in m["claims"]:
            counts[c["status"]] = counts.get(c["status"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no claims"
    lines += [f"**Claims:** {summary}.", ""]
    for m in manifests:
        nb = m["notebook"]
        lines += [
            f"## {nb} — {m.get('title', '')}",
            "",
            f"Profile `{m['profile']}`, computed in {m['seconds']} s "
            f"(notebook: `notebooks/{nb}.ipynb`).",
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
            claims = ""
            if a["paper"] not in seen:
                claims = "<br>".join(
                    f"{_BADGE[c['status']]}: {c['statement']} ({c['measured']})"
                    for c in by_paper.get(a["paper"], [])
                )
                seen.add(a["paper"])
            label = f"{a['paper']}: {a['caption']}" if a["caption"] else a["paper"]
            lines.append(f"| {label} | `{a['name']}` {files} | {claims} |")
        for paper, cs in by_paper.items():
            if paper not in seen:
                text = "<br>".join(
                    f"{_BADGE[c['status']]}: {c['statement']} ({c['measured']})" for c in cs
                )
                lines.append(f"| {paper} | — | {text} |")
        lines.append("")
    return "\n".join(lines)


def write_index(directory: Path) -> Path:
    """Write ``README.md`` in the figures directory from the manifests found there."""
    path = Path(directory) / "README.md"
    atomic_write_text(path, render_index(load_manifests(directory)))
    return path
