"""FastSVERL models: masking, Shapley-kernel sampling, efficiency correction, batched == single,
and a tiny exactly solvable case (Gridworld) where every model reaches a low exact error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shaprl.domains.gridworlds import five_state_grid
from shaprl.fastsverl import (
    ExactCharacteristic,
    ModelCharacteristic,
    TrainConfig,
    efficiency_correction,
    kernel_coalitions,
    kernel_size_probabilities,
    mask,
    tabular_problem,
    train_characteristic,
    train_shapley,
    uniform_coalitions,
)
from shaprl.fastsverl.coalitions import coalition_bits, kernel_coalition_probability
from shaprl.mdp import greedy_policy, value_iteration
from shaprl.shapley.coalitions import shapley_kernel_weights

torch.set_num_threads(1)


def test_mask_replaces_unknown_features():
    x = torch.tensor([[1.0, 2.0, -1.0]])
    c = torch.tensor([[True, False, True]])
    assert mask(x, c).tolist() == [[1.0, -2.0, -1.0]]
    assert mask(x, c, 7.0).tolist() == [[1.0, 7.0, -1.0]]
    assert coalition_bits(c).tolist() == [5]


def test_kernel_size_distribution_matches_eq6():
    f = 6
    p = kernel_size_probabilities(f)
    assert p[0] == p[f] == 0 and p.sum() == pytest.approx(1)
    # Eq. 6 per coalition: (F-1) / (C(F,k) k (F-k)), normalised
    w = np.array([(f - 1) / (math.comb(f, k) * k * (f - k)) for k in range(1, f)])
    per_coalition = w / (w * [math.comb(f, k) for k in range(1, f)]).sum()
    for k in range(1, f):
        assert kernel_coalition_probability(f, k) == pytest.approx(per_coalition[k - 1])


def test_kernel_sampling_frequencies():
    f, n = 4, 200_000
    c = kernel_coalitions((n,), f, torch.Generator().manual_seed(0))
    codes = np.bincount(coalition_bits(c).numpy(), minlength=1 << f) / n
    sizes = np.array([bin(m).count("1") for m in range(1 << f)])
    expected = np.array([kernel_coalition_probability(f, s) if 0 < s < f else 0.0 for s in sizes])
    assert codes[0] == 0 and codes[-1] == 0
    np.testing.assert_allclose(codes, expected, atol=4 * np.sqrt(0.1 / n))
    # agrees with the library's KernelSHAP weights up to normalisation
    kw = shapley_kernel_weights(f)
    finite = (sizes > 0) & (sizes < f)
    np.testing.assert_allclose(
        expected[finite] / expected[finite].sum(), kw[finite] / kw[finite].sum()
    )


def test_uniform_and_paired_coalitions():
    g = torch.Generator().manual_seed(1)
    c = uniform_coalitions((100_000,), 5, g)
    np.testing.assert_allclose(c.float().mean(0).numpy(), 0.5, atol=0.01)
    pairs = kernel_coalitions((10, 4), 5, g, paired=True)
    assert torch.equal(pairs[:, 1::2], ~pairs[:, 0::2])
    with pytest.raises(ValueError, match="at least 2 features"):
        kernel_size_probabilities(1)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 8), st.integers(1, 4), st.integers(0, 10_000))
def test_efficiency_correction(f, m, seed):
    g = torch.Generator().manual_seed(seed)
    phi = torch.randn(3, f, m, generator=g, dtype=torch.float64)
    grand, null = (
        torch.randn(3, m, generator=g, dtype=torch.float64),
        torch.randn(3, m, generator=g, dtype=torch.float64),
    )
    out = efficiency_correction(phi, grand, null)
    torch.testing.assert_close(out.sum(-2), grand - null)
    # the same shift for every feature: differences between features are unchanged
    torch.testing.assert_close(out[:, 1:] - out[:, :1], phi[:, 1:] - phi[:, :1])
    # exact Shapley values are left as they are
    torch.testing.assert_close(efficiency_correction(out, grand, null), out)


@pytest.fixture(scope="module")
def grid_problem():
    mdp = five_state_grid()
    q, _ = value_iteration(mdp)
    return tabular_problem(mdp, greedy_policy(mdp, q), q.max(1), seed=0)


@pytest.mark.parametrize("kind", ["behaviour", "prediction"])
def test_batched_equals_single_runs_characteristic(grid_problem, kind):
    seeds = (11, 12, 13)
    base = dict(updates=100, eval_every=10, hidden=(16, 16), draw_chunk=16)
    data, ev = grid_problem.data(kind), grid_problem.characteristic_eval(kind)
    _, batched = train_characteristic(
        data, TrainConfig(n_runs=3, run_seeds=seeds, **base), exact=ev
    )
    for r, s in enumerate(seeds):
        _, single = train_characteristic(
            data, TrainConfig(n_runs=1, run_seeds=(s,), **base), exact=ev
        )
        np.testing.assert_allclose(batched.val_loss[r], single.val_loss[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(batched.exact_mse[r], single.exact_mse[0], rtol=1e-4, atol=1e-6)


def test_batched_equals_single_runs_shapley(grid_problem):
    seeds = (5, 6)
    base = dict(updates=100, eval_every=10, hidden=(16, 16), draw_chunk=16)
    data, char = (
        grid_problem.data("behaviour"),
        ExactCharacteristic(grid_problem.table("behaviour")),
    )
    ev = grid_problem.shapley_eval("behaviour")
    _, batched = train_shapley(data, char, TrainConfig(n_runs=2, run_seeds=seeds, **base), exact=ev)
    for r, s in enumerate(seeds):
        _, single = train_shapley(
            data, char, TrainConfig(n_runs=1, run_seeds=(s,), **base), exact=ev
        )
        np.testing.assert_allclose(batched.exact_mse[r], single.exact_mse[0], rtol=1e-4, atol=1e-7)


def test_tiny_case_reaches_low_error(grid_problem):
    """Gridworld: characteristic and Shapley models of every kind reach a small exact MSE."""
    cfg = TrainConfig(updates=1500, eval_every=250, n_runs=2)
    beh_model, beh = train_characteristic(
        grid_problem.data("behaviour"), cfg, exact=grid_problem.characteristic_eval("behaviour")
    )
    assert beh.best_exact_mse.max() < 1e-3
    for kind in ("behaviour", "prediction", "outcome"):
        _, shap = train_shapley(
            grid_problem.data(kind),
            ExactCharacteristic(grid_problem.table(kind)),
            TrainConfig(updates=1500, eval_every=250, n_runs=2),
            exact=grid_problem.shapley_eval(kind),
        )
        assert shap.best_exact_mse.max() < 1e-2, kind
        assert shap.exact_mse[:, -1].mean() < shap.exact_mse[:, 0].mean()
    # a Shapley model trained on the learned characteristic is close as well
    _, learned = train_shapley(
        grid_problem.data("behaviour"),
        ModelCharacteristic(beh_model.member(0)),
        TrainConfig(updates=1500, eval_every=250, n_runs=1),
        exact=grid_problem.shapley_eval("behaviour"),
    )
    assert learned.best_exact_mse.max() < 1e-2


def test_exact_ground_truth_is_sverl(grid_problem):
    """The tables are the SVERL engine's: efficiency holds and phi sums to v(F) - v(∅)."""
    for kind in ("behaviour", "prediction", "outcome"):
        t = grid_problem.table(kind)
        phi = grid_problem.shapley(kind)
        np.testing.assert_allclose(phi.sum(1), t[:, -1] - t[:, 0], atol=1e-5)
        np.testing.assert_allclose(t[:, -1], grid_problem.targets(kind), atol=1e-5)


def test_updates_to_target_and_early_stop(grid_problem):
    from shaprl.fastsverl.experiments import updates_to_target

    mse = np.array([[1.0, 0.5, 0.009, 0.001], [1.0, 0.5, 0.2, 0.1]])
    got = updates_to_target(np.array([0, 10, 20, 30]), mse, 0.01)
    assert got[0] == 20 and np.isnan(got[1])
    cfg = TrainConfig(updates=5_000, eval_every=50, n_runs=2, stop_below=0.05)
    _, curves = train_characteristic(
        grid_problem.data("behaviour"), cfg, exact=grid_problem.characteristic_eval("behaviour")
    )
    assert curves.updates[-1] < 5_000 and (curves.exact_mse[:, -1] < 0.05).all()
