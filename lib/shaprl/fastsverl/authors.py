"""The authors' own learning curves, read back from the vector PDFs in their repository.

The FastSVERL authors commit every figure as a matplotlib vector PDF under
``experiments/*/plots/`` of github.com/djeb20/fastsverl. Each plotted mean curve is a stroked
path in the page's content stream; the axis ticks (short marks followed by their label) give
the map from page coordinates to data units, and the legend (3-point line + label) names each
curve. :func:`read_pdf` does exactly that with no PDF library (zlib + a tokenizer), and
:func:`extract` turns a checkout's plots into two committed tables:

* ``data/fastsverl/authors_curves.csv`` (schema :data:`PANELS`): one row per plotted curve --
  paper figure, PDF path, panel title, legend label, domain, model, kind, the last logged
  update and the curve's **final value**, and its **settle update** (:func:`settle_update`);
* ``data/fastsverl/authors_curve_points.csv`` (the ``curve`` schema, ``run`` = panel row): every
  plotted point, so that settle budgets and orderings can be recomputed.

Regenerate with ``python -m shaprl.fastsverl.authors <checkout or git dir>``. Figures whose
x axis carries a scale offset (``×10⁶``; the large-Mastermind value Shapley panel and the
Mastermind-222 outcome sampling panel) and the agents' return plots are left out.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from ..repro.data import CURVE, Column, TableSchema, read_table, write_table
from ..repro.paths import repo_root

PANELS = TableSchema(
    "authors_curves",
    (
        Column("panel", "int"),
        Column("figure", "str"),
        Column("pdf", "str"),
        Column("title", "str", empty=True),
        Column("curve", "str"),
        Column("domain", "str"),
        Column("model", "str"),
        Column("kind", "str"),
        Column("final_update", "int"),
        Column("final_value", "float"),
        Column("settle_update", "int"),
        Column("points", "int"),
    ),
    key=("pdf", "curve"),
)
REPOSITORY = "github.com/djeb20/fastsverl"
FIX = "python -m shaprl.fastsverl.authors <checkout of github.com/djeb20/fastsverl>"
SKIP = (
    "agents/plots/",
    "hypercube/plots/",  # bar charts, no curves
    "app_large_value_shapley.pdf",  # x axis with a x10^6 offset
    "app_mastermind_222_perf_sampling.pdf",  # x axis with a x10^6 offset
    "_dqn_loss.pdf",
    "_return.pdf",
)
#: settle rule: the curve stays within SETTLE_RTOL of its final value (or SETTLE_ATOL)
SETTLE_RTOL = 0.10
SETTLE_ATOL = 1e-4
MAX_POINTS = 200  #: points kept per curve in the committed points table

_NUM = re.compile(r"^-?[\d.]+$")
_TOKEN = re.compile(r"\[[^\]]*\]\s*TJ|\(.*?\)\s*Tj|/\w+|[^\s]+", re.S)


def _streams(data: bytes) -> list[str]:
    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:
            out.append(zlib.decompress(m.group(1)).decode("latin1"))
        except zlib.error:
            continue
    return out


def _events(text: str) -> list[tuple]:
    """Stroked/filled paths and texts of a content stream, in drawing order."""
    stack: list[float] = []
    path: list[tuple[float, float]] = []
    gs = {"w": 1.0, "RG": (), "rg": (), "clip": None, "dash": False}
    saved: list[tuple[dict, tuple]] = []
    cm, pending, ev = (0.0, 0.0), None, []
    arr: list[str] = []
    in_arr = False
    for t in _TOKEN.findall(text):
        if t == "[":
            in_arr, arr = True, []
            continue
        if t == "]":
            in_arr = False
            continue
        if in_arr:
            arr.append(t)
            continue
        if _NUM.match(t):
            stack.append(float(t))
            continue
        if t.endswith(("TJ", "Tj")):
            s = "".join(re.findall(r"\((.*?)\)", t)).replace("\\(", "(").replace("\\)", ")")
            s = s.rstrip("\\").strip()
            if s.count("(") > s.count(")"):
                s += ")"
            ev.append(("T", cm, s))
        elif t == "d":
            gs["dash"] = bool(arr)
        elif t == "q":
            saved.append((dict(gs), cm))
        elif t == "Q" and saved:
            gs, cm = saved.pop()
        elif t == "cm" and len(stack) >= 6:
            cm = (stack[-2], stack[-1])
        elif t == "w" and stack:
            gs["w"] = stack[-1]
        elif t == "RG" and len(stack) >= 3:
            gs["RG"] = tuple(round(x, 3) for x in stack[-3:])
        elif t == "G" and stack:
            gs["RG"] = (round(stack[-1], 3),) * 3
        elif t == "rg" and len(stack) >= 3:
            gs["rg"] = tuple(round(x, 3) for x in stack[-3:])
        elif t == "re" and len(stack) >= 4:
            pending = tuple(stack[-4:])
        elif t == "W":
            gs["clip"] = pending
        elif t == "m" and len(stack) >= 2:
            path = [(stack[-2], stack[-1])]
        elif t == "l" and len(stack) >= 2:
            path.append((stack[-2], stack[-1]))
        elif t in ("S", "f", "B", "f*", "b"):
            if path:
                style = (gs["RG"] if t != "f" else gs["rg"]) + (("dashed",) if gs["dash"] else ())
                ev.append(("P", t, gs["w"], style, gs["clip"], path))
            path = []
        elif t == "n":
            path = []
        stack = []
    return ev


def _number(s: str) -> float | None:
    try:
        return float(s.replace("\u2212", "-"))
    except ValueError:
        return None


def _linear(ticks: list[tuple[float, float]]):
    (p0, v0), (p1, v1) = ticks[0], ticks[-1]
    return lambda p: v0 + (np.asarray(p) - p0) * (v1 - v0) / (p1 - p0)


def read_pdf(data: bytes) -> list[dict]:
    """Every axes of a matplotlib PDF: ``{'title', 'curves': {label: (x, y)}}`` in data units.

    Linear axes only (two or more numeric tick labels per axis); a curve is a stroked path of
    more than 3 points and line width >= 1.4 clipped to the axes; unlabelled curves are named
    by their colour.
    """
    text = max((s for s in _streams(data) if " l" in s and " re" in s), key=len)
    ev = _events(text)
    ticks = []
    for i, e in enumerate(ev):
        if e[0] != "P" or e[1] != "B" or len(e[5]) != 2:
            continue
        label = next((f for f in ev[i + 1 : i + 3] if f[0] == "T"), None)
        value = _number(label[2]) if label else None
        if value is None:
            continue
        (x0, y0), (x1, y1) = e[5]
        if abs(x0 - x1) < 1e-6 and abs(abs(y0 - y1) - 3.5) < 0.6:
            ticks.append(("x", x0, y0, value))
        elif abs(y0 - y1) < 1e-6 and abs(abs(x0 - x1) - 3.5) < 0.6:
            ticks.append(("y", y0, x0, value))
    legend = {}
    for i, e in enumerate(ev):
        if e[0] == "P" and e[1] == "S" and len(e[5]) == 3 and e[2] >= 1.4 and e[4] is None:
            label = next((f for f in ev[i + 1 : i + 3] if f[0] == "T"), None)
            if label:
                legend.setdefault(e[3], label[2])
    clips = sorted({e[4] for e in ev if e[0] == "P" and e[1] == "S" and e[4] and len(e[5]) > 3})
    axes = []
    for clip in clips:
        cx, cy, cw, ch = clip
        xt = sorted((p, v) for a, p, o, v in ticks if a == "x" and abs(o - cy) < 1)
        yt = sorted((p, v) for a, p, o, v in ticks if a == "y" and abs(o - cx) < 1)
        if len(xt) < 2 or len(yt) < 2:
            continue
        fx, fy = _linear(xt), _linear(yt)
        titles = [
            e[2]
            for e in ev
            if e[0] == "T" and e[1][1] >= cy + ch - 1 and cx - 60 <= e[1][0] <= cx + cw
        ]
        curves = {}
        for e in ev:
            if e[0] == "P" and e[1] == "S" and e[4] == clip and len(e[5]) > 3 and e[2] >= 1.4:
                name = legend.get(e[3], "line " + ",".join(map(str, e[3])))
                pts = np.asarray(e[5], float)
                curves[name] = (fx(pts[:, 0]), fy(pts[:, 1]))
        axes.append({"title": titles[0] if titles else "", "curves": curves})
    return axes


def settle_update(
    updates: np.ndarray, values: np.ndarray, rtol: float = SETTLE_RTOL, atol: float = SETTLE_ATOL
) -> int:
    """First logged update after which the curve stays within ``rtol`` of its final value
    (or within ``atol``, for curves that end near zero)."""
    updates, values = np.asarray(updates), np.asarray(values)
    final = values[-1]
    inside = np.abs(values - final) <= max(rtol * abs(final), atol)
    outside = np.flatnonzero(~inside)
    first = 0 if len(outside) == 0 else outside[-1] + 1
    return int(updates[min(first, len(updates) - 1)])


def _labels(pdf: str) -> dict[str, str]:
    name = pdf.rsplit("/", 1)[-1]
    domain = next(
        (
            d
            for k, d in (
                ("gwb", "Gridworld"),
                ("mastermind_222", "Mastermind-222"),
                ("mastermind_333", "Mastermind-333"),
                ("large", "large Mastermind"),
            )
            if k in name
        ),
        "",
    )
    kind = next(
        (
            k
            for key, k in (("policy", "behaviour"), ("value", "prediction"), ("perf", "outcome"))
            if key in name
        ),
        "",
    )
    if "/offpolicy/" in pdf:
        model = "characteristic"
        figure = {"Gridworld": "Fig. 8" if "weighting" in name else "Fig. 9"}.get(domain, "Fig. 7")
        figure = "Fig. 3a" if name.startswith("main_") else figure
    elif "/parallel/" in pdf:
        model, figure = "shapley", "Fig. 3b" if name.startswith("main_") else "Fig. 10"
    elif "/sampling/" in pdf:
        model = "characteristic" if "/characteristics/" in pdf else "shapley"
        figure = "Fig. 3c" if name.startswith("main_") else "Fig. 11"
    else:
        model = "characteristic" if "/characteristics/" in pdf else "shapley"
        figure = "Fig. 1" if name.startswith("main_") else "Fig. 4"
        figure = "Fig. 6" if domain == "large Mastermind" else figure
    return {"figure": figure, "domain": domain, "model": model, "kind": kind}


def _pdfs(source: Path) -> dict[str, bytes]:
    """``experiments/*/plots/*.pdf`` of a checkout (work tree) or a bare git directory."""
    if (source / "experiments").is_dir():
        return {
            p.relative_to(source).as_posix(): p.read_bytes()
            for p in sorted(source.glob("experiments/**/plots/*.pdf"))
        }
    names = subprocess.run(
        ["git", f"--git-dir={source}", "ls-tree", "-r", "--name-only", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        n: subprocess.run(
            ["git", f"--git-dir={source}", "show", f"HEAD:{n}"], capture_output=True, check=True
        ).stdout
        for n in names
        if re.match(r"experiments/.*/plots/.*\.pdf$", n)
    }


def extract(source: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Panels table and points table from the authors' committed plots."""
    rows, points = [], []
    for pdf, data in _pdfs(Path(source)).items():
        if any(s in pdf for s in SKIP):
            continue
        for ax in read_pdf(data):
            for label, (x, y) in ax["curves"].items():
                if label.startswith("line ") and len(ax["curves"]) == 1:
                    label = "mean"  # a panel's only curve, without a legend
                upd = np.rint(x).astype(np.int64)
                keep = np.r_[upd[1:] != upd[:-1], True]  # one value per logged update (the last)
                upd, y = upd[keep], y[keep]
                order = np.argsort(upd, kind="stable")
                upd, y = upd[order], np.maximum(y[order], 0.0)
                settle = settle_update(upd, y)  # on every plotted point
                if len(upd) > MAX_POINTS:  # thinned for the committed table; the last kept
                    pick = np.unique(np.r_[np.linspace(0, len(upd) - 1, MAX_POINTS).astype(int)])
                    upd, y = upd[pick], y[pick]
                panel = len(rows)
                rows.append(
                    {
                        "panel": panel,
                        **_labels(pdf),
                        "pdf": pdf,
                        "title": ax["title"],
                        "curve": label,
                        "final_update": int(upd[-1]),
                        "final_value": float(y[-1]),
                        "settle_update": settle,
                        "points": int(keep.sum()),
                    }
                )
                points.append(
                    pd.DataFrame(
                        {"run": panel, "update": upd, "metric": "mean exact MSE", "value": y}
                    )
                )
    cols = [c.name for c in PANELS.columns]
    return pd.DataFrame(rows)[cols], pd.concat(points, ignore_index=True)


def panels_path() -> Path:
    return repo_root() / "data" / "fastsverl" / "authors_curves.csv"


def points_path() -> Path:
    return repo_root() / "data" / "fastsverl" / "authors_curve_points.csv"


def load_panels() -> pd.DataFrame:
    """The committed panel table (validated; declared as an input of the running notebook)."""
    frame, _ = read_table(panels_path(), PANELS, FIX)
    return frame


def load_points() -> pd.DataFrame:
    frame, _ = read_table(points_path(), CURVE, FIX)
    return frame


def panel(pdf_suffix: str, curve: str | None = None) -> pd.Series:
    """The one committed row whose PDF path ends with ``pdf_suffix`` (and legend is ``curve``)."""
    t = load_panels()
    sel = t[t.pdf.str.endswith(pdf_suffix)]
    if curve is not None:
        sel = sel[sel.curve == curve]
    if len(sel) != 1:
        raise KeyError(f"{len(sel)} authors' curves match {pdf_suffix!r} / {curve!r}")
    return sel.iloc[0]


def curve_points(panel_id: int) -> pd.DataFrame:
    pts = load_points()
    return pts[pts.run == panel_id][["update", "value"]].reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(f"usage: {FIX}", file=sys.stderr)
        return 2
    panels, pts = extract(argv[0])
    meta = {
        "source": REPOSITORY,
        "how": "matplotlib vector paths of experiments/*/plots/*.pdf mapped through the axis ticks",
        "settle_rule": f"first logged update after which |y - final| <= max({SETTLE_RTOL} |final|, {SETTLE_ATOL})",
        "regenerate": FIX,
    }
    write_table(panels, panels_path(), meta, PANELS)
    write_table(pts, points_path(), {**meta, "run": "panel id of authors_curves.csv"}, CURVE)
    print(f"{len(panels)} curves, {len(pts)} points -> {panels_path().parent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def _on_grid(panels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Curves of ``panels`` interpolated onto the union of their logged updates, within the
    range every curve covers: ``(updates, values (P, T))``."""
    pts = load_points()
    curves = [pts[pts.run == p] for p in panels]
    lo = max(int(c["update"].min()) for c in curves)
    hi = min(int(c["update"].max()) for c in curves)
    grid = np.unique(np.concatenate([c["update"].to_numpy() for c in curves]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    values = np.stack([np.interp(grid, c["update"], c["value"]) for c in curves])
    return grid, values


def ordering_settle(ordered: list[int], *, settled: bool = True) -> int:
    """First logged update after which the authors' mean curves keep the order
    ``ordered[0] > ordered[1] > ...`` at every later point (and, with ``settled``, each is
    within the settle rule of its final value); -1 if the order fails at the end."""
    grid, v = _on_grid(ordered)
    if not len(grid):
        raise ValueError(f"curves {ordered} share no logged updates")
    ok = np.all(v[:-1] > v[1:], axis=0)
    final = v[:, -1:]
    if settled:
        band = np.maximum(SETTLE_RTOL * np.abs(final), SETTLE_ATOL)
        ok &= np.all(np.abs(v - final) <= band, axis=0)
    bad = np.flatnonzero(~ok)
    if len(bad) and bad[-1] == len(grid) - 1:
        return -1  # the ordering does not hold at the end of the authors' curves
    return int(grid[0 if not len(bad) else bad[-1] + 1])


def threshold_settle(panels: list[int], threshold: float) -> int:
    """First logged update after which every curve of ``panels`` stays below ``threshold``
    (-1 when one ends above it)."""
    out = 0
    for p in panels:
        grid, v = _on_grid([p])
        bad = np.flatnonzero(v[0] >= threshold)
        if len(bad) and bad[-1] == len(grid) - 1:
            return -1
        out = max(out, int(grid[0 if not len(bad) else bad[-1] + 1]))
    return out


def final_settle(panels: list[int]) -> int:
    """The latest settle update (:func:`settle_update`) of ``panels``."""
    t = load_panels().set_index("panel")
    return int(t.loc[panels, "settle_update"].max())
