"""Action Shapley traces, CSV validation (file, line, column) and the world-model basis."""

import numpy as np
import pytest

from shaprl.action_shapley.case_studies import CASE_STUDIES, DATABASE_TUNING, VM_RIGHT_SIZING
from shaprl.action_shapley.traces import (
    TraceFormatError,
    generate_traces,
    load_traces,
    traces_path,
    write_traces,
)
from shaprl.action_shapley.world_model import (
    SufficientStatistics,
    features,
    fit_per_subset,
    transitions,
)


@pytest.fixture(scope="module")
def vm_traces():
    return generate_traces(VM_RIGHT_SIZING, seed=0)


def test_generation_is_seeded(vm_traces):
    again = generate_traces(VM_RIGHT_SIZING, seed=0)
    np.testing.assert_array_equal(vm_traces.values, again.values)
    assert not np.array_equal(vm_traces.values, generate_traces(VM_RIGHT_SIZING, 1).values)


@pytest.mark.parametrize("key", sorted(CASE_STUDIES))
def test_committed_traces_load_and_initial_action_is_not_at_goal(key):
    case = CASE_STUDIES[key]
    tr = load_traces(traces_path(case), case)
    assert tr.values.shape == (case.n, case.n_samples)
    lo, hi = case.band
    peak = case.peak(np.array([case.initial], dtype=float))[0]
    window = np.minimum(case.idle + (peak - case.idle) * np.array(case.duty), case.cap)
    level = np.percentile(window, case.percentile)  # noise-free statistic at the start
    assert not lo <= level <= hi  # the setting check of the module docstring


def test_round_trip(tmp_path, vm_traces):
    path = tmp_path / "vm.csv"
    write_traces(vm_traces, path)
    back = load_traces(path, VM_RIGHT_SIZING)
    np.testing.assert_allclose(back.values, vm_traces.values, atol=1e-4)
    np.testing.assert_array_equal(back.configs, vm_traces.configs)


def _corrupt(tmp_path, traces, line, column, text):
    path = tmp_path / "bad.csv"
    write_traces(traces, path)
    rows = path.read_text().splitlines()
    fields = rows[line - 1].split(",")
    fields[column] = text
    rows[line - 1] = ",".join(fields)
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "column", "text", "col_name", "expect"),
    [
        (5, 4, "abc", "value", "expected a number"),
        (7, 4, "140", "value", "in \\[0, 100\\]"),
        (9, 0, "zz", "point", "expected one of a1"),
        (11, 3, "999", "time_s", "expected 540"),
        (13, 2, "3", "config_2", "changed configuration"),
        (4, 4, "nan", "value", "finite"),
    ],
)
def test_bad_csv_names_file_line_and_column(
    tmp_path, vm_traces, line, column, text, col_name, expect
):
    path = _corrupt(tmp_path, vm_traces, line, column, text)
    with pytest.raises(TraceFormatError, match=expect) as err:
        load_traces(path, VM_RIGHT_SIZING)
    msg = str(err.value)
    assert str(path) in msg and f"line {line}," in msg and f"column '{col_name}'" in msg


def test_bad_header_and_missing_point(tmp_path, vm_traces):
    path = tmp_path / "h.csv"
    path.write_text("point,cfg1,config_2,time_s,value\n")
    with pytest.raises(TraceFormatError, match="line 1, column 'header'"):
        load_traces(path, VM_RIGHT_SIZING)
    write_traces(vm_traces, path)
    rows = [r for r in path.read_text().splitlines() if not r.startswith("a5,")]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(TraceFormatError, match="no samples for point"):
        load_traces(path, VM_RIGHT_SIZING)
    with pytest.raises(FileNotFoundError, match="make action-shapley-traces"):
        load_traces(tmp_path / "none.csv", VM_RIGHT_SIZING)


def test_sufficient_statistics_equal_a_direct_fit(vm_traces):
    ss = SufficientStatistics(vm_traces)
    mask = 0b10110
    xs, ys = transitions(vm_traces)
    x = np.vstack([xs[k] for k in range(5) if mask >> k & 1])
    y = np.vstack([ys[k] for k in range(5) if mask >> k & 1])
    phi = features(x, ss.centres, ss.gamma)
    gram = phi.T @ phi + ss.penalty
    gram[:4, :4] += 1e-6 * np.eye(4)
    direct = np.linalg.solve(gram, phi.T @ y)
    np.testing.assert_allclose(ss.fit(np.array([mask])).weights[0], direct, rtol=1e-6, atol=1e-8)


def test_fixed_basis_does_not_leak_held_out_traces(vm_traces):
    """A subset's model is unchanged when a trace outside it changes (no leakage)."""
    changed = generate_traces(VM_RIGHT_SIZING, seed=0)
    changed.values[4] = np.clip(changed.values[4][::-1] * 0.5, 0, 100)  # point a5
    mask = 0b01011  # a1, a2, a4
    w1 = SufficientStatistics(vm_traces).fit(np.array([mask])).weights
    w2 = SufficientStatistics(changed).fit(np.array([mask])).weights
    np.testing.assert_array_equal(w1, w2)
    assert not SufficientStatistics(vm_traces).fit(np.array([0])).valid[0]


def test_per_subset_reference_fits_its_data():
    tr = generate_traces(DATABASE_TUNING, seed=0)
    xs, ys = transitions(tr)
    mask = 0b111111
    ref = fit_per_subset(tr, mask)
    fixed = SufficientStatistics(tr).fit(np.array([mask]))
    x = np.vstack(xs)[None]
    y = np.vstack(ys)
    for params in (ref, fixed):
        err = np.abs(params.predict(x)[0, :, 0] - y[:, 0]).mean()
        assert err < 0.05  # statistic predicted within 5 % of the cap on average
