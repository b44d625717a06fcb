"""The authors' curves: PDF read-back, settle rule, committed table and its loader."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from shaprl.fastsverl import authors  # noqa: E402
from shaprl.repro.data import DataFormatError, read_table  # noqa: E402


def _pdf(curves: dict[str, tuple[np.ndarray, np.ndarray]], legend: bool = True) -> bytes:
    fig, ax = plt.subplots()
    for name, (x, y) in curves.items():
        ax.plot(x, y, label=name, lw=1.5)
    ax.set_title("Behaviour characteristic")
    if legend:
        ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf")
    plt.close(fig)
    return buf.getvalue()


def test_read_pdf_recovers_matplotlib_curves():
    x = np.arange(62, 3101, 62, dtype=float)
    a = 0.05 * np.exp(-x / 500) + 0.002
    b = 0.03 * np.exp(-x / 900) + 0.004
    axes = authors.read_pdf(_pdf({"Exact characteristic": (x, a), "Approx characteristic": (x, b)}))
    assert len(axes) == 1
    got = axes[0]["curves"]
    assert set(got) == {"Exact characteristic", "Approx characteristic"}
    for name, y in (("Exact characteristic", a), ("Approx characteristic", b)):
        gx, gy = got[name]
        np.testing.assert_allclose(gx, x, atol=1e-6 * x.max())
        np.testing.assert_allclose(gy, y, atol=1e-6)
    assert axes[0]["title"] == "Behaviour characteristic"


def test_settle_update_rule():
    u = np.arange(1, 11) * 100
    y = np.array([1.0, 0.5, 0.2, 0.11, 0.105, 0.2, 0.104, 0.1, 0.099, 0.1])
    # within 10 % of 0.1 from update 700 on (0.2 at 600 breaks the run before)
    assert authors.settle_update(u, y) == 700
    assert authors.settle_update(u, np.full(10, 0.3)) == 100
    # near zero: the absolute tolerance applies
    assert authors.settle_update(u, np.r_[np.full(5, 1e-2), np.full(5, 5e-5)], atol=1e-4) == 600


def test_committed_table_matches_the_papers_reading():
    t = authors.load_panels()
    assert t.pdf.str.startswith("experiments/").all() and t.pdf.str.endswith(".pdf").all()
    assert (t.final_value >= 0).all() and (t.settle_update <= t.final_update).all()
    gw = authors.panel("app_gwb_value_char.pdf")  # Fig. 4, Gridworld prediction characteristic
    assert gw.final_update == 1860 and gw.final_value == pytest.approx(0.121, abs=2e-3)
    off = authors.panel("main_mastermind_222_offpolicy_policy.pdf", "Off-policy (with IS)")
    assert off.final_value == pytest.approx(0.0073, abs=2e-4)
    pts = authors.curve_points(int(gw.panel))
    assert pts["update"].iloc[-1] == 1860 and pts.value.iloc[-1] == pytest.approx(gw.final_value)


def test_loader_refuses_a_tampered_table(tmp_path):
    src = authors.panels_path()
    dst = tmp_path / "authors_curves.csv"
    text = src.read_text().splitlines()
    text[3] = text[3].rsplit(",", 1)[0] + ",many"
    dst.write_text("\n".join(text) + "\n")
    (tmp_path / "authors_curves.json").write_text(src.with_suffix(".json").read_text())
    with pytest.raises(DataFormatError, match="line 4, column 'points'"):
        read_table(dst, authors.PANELS, authors.FIX)


def test_settle_budgets_follow_from_the_authors_curves():
    from shaprl.fastsverl.experiments import SETTLE_BUDGETS

    sb = SETTLE_BUDGETS
    # Fig. 1: thresholds (on-policy x axis in environment steps, 16 per update)
    assert (
        authors.threshold_settle([21], 0.01) == 198_800 == 16 * sb["fig1_mm222_below_0.01"].updates
    )
    assert authors.threshold_settle([23], 0.01) == 4_686
    assert authors.final_settle(list(sb["appC_low_error_vs_authors"].panels)) == 4_526
    assert authors.ordering_settle([45, 44]) == sb["fig1_learned_upstream_less_accurate"].updates
    assert (
        authors.ordering_settle([21, 23], settled=False) == sb["fig1b_off_policy_faster"].order_from
    )
    assert (
        authors.ordering_settle([75, 76], settled=False)
        == sb["fig3a_is_lowers_buffer_error"].order_from
    )
    assert (
        authors.ordering_settle([71, 72, 73])
        == sb["fig8_normalised_best_unnormalised_worst"].updates
    )
    assert (
        authors.ordering_settle([61, 62, 63, 64, 65]) == sb["fig9_tighter_clipping_harms"].updates
    )
    for key, b in sb.items():
        assert b.reason and b.runs >= 5, key
        assert (
            b.where == "quick"
            or b.where == "not computed"
            or all(
                w.strip() in __import__("shaprl.fastsverl.settle", fromlist=["CHUNKS"]).CHUNKS
                for w in b.where.split("+")
            )
        ), key
