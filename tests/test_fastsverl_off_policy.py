"""Off-policy FastSVERL (Eq. 17, App. D): importance ratios, weights, standard errors, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shaprl.agents import DQNConfig, train_dqn
from shaprl.domains.gridworlds import five_state_grid
from shaprl.domains.tabular_env import TabularEnv
from shaprl.fastsverl import off_policy as op
from shaprl.fastsverl.training import CharacteristicEval, TrainConfig

torch.set_num_threads(1)


def _toy():
    """Three states, three actions: buffer state distribution, behaviour and target policies."""
    p_b = np.array([0.5, 0.3, 0.2])
    eps = np.array([1.0, 0.4, 0.1])  # each state's samples come from a different epsilon
    greedy_t = np.array([2, 0, 1])
    target = np.array([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]])
    behaviour = eps[:, None] / 3 + (1 - eps[:, None]) * (np.arange(3) == greedy_t[:, None])
    g = np.array([[1.0, -2.0, 1.0], [0.5, 4.0, -1.0], [2.0, 0.0, 7.0]])
    return p_b, eps, greedy_t, target, behaviour, g


def test_epsilon_greedy_probability_is_a_distribution():
    _, eps, greedy, _, behaviour, _ = _toy()
    for s in range(3):
        probs = op.epsilon_greedy_probability(
            np.arange(3), np.full(3, eps[s]), np.full(3, greedy[s]), 3
        )
        np.testing.assert_allclose(probs, behaviour[s])
        assert probs.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="record=True"):
        op.epsilon_greedy_probability(np.zeros(2, int), np.ones(2), np.array([0, -1]), 3)


def test_importance_weights_are_unbiased_on_a_known_buffer():
    """E_B[rho g(s, a)] = E_{s~p_B, a~pi}[g(s, a)]: exactly, and by sampling a large buffer."""
    p_b, eps, greedy, target, behaviour, g = _toy()
    rho = target / behaviour
    exact_weighted = (p_b[:, None] * behaviour * rho * g).sum()
    assert exact_weighted == pytest.approx((p_b[:, None] * target * g).sum(), abs=1e-12)

    rng = np.random.default_rng(0)
    n = 200_000
    s = rng.choice(3, size=n, p=p_b)
    a = (rng.random(n)[:, None] > behaviour[s].cumsum(1)).sum(1)
    pi_t = op.epsilon_greedy_probability(a, eps[s], greedy[s], 3)
    r = op.importance_ratios(target[s], a, pi_t)
    est = r * g[s, a]
    truth = (p_b[:, None] * target * g).sum()
    assert abs(est.mean() - truth) < 4 * est.std() / np.sqrt(n)
    # the unweighted buffer estimates another quantity
    unweighted = (p_b[:, None] * behaviour * g).sum()
    assert abs(unweighted - truth) > 0.3
    assert abs(g[s, a].mean() - unweighted) < 4 * g[s, a].std() / np.sqrt(n)
    # for a loss of the state alone, the ratios have conditional mean one: the estimate is the
    # buffer's state average (the remark in the module docstring)
    h = np.array([1.0, 5.0, -3.0])
    assert abs((r * h[s]).mean() - (p_b * h).sum()) < 4 * (r * h[s]).std() / np.sqrt(n)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 50.0), min_size=2, max_size=40))
def test_normalised_weights_sum_to_one(ratios):
    r = torch.tensor([ratios], dtype=torch.float64)
    w = op.importance_weights(r, "normalised")
    if r.sum() > 0:
        assert float(w.sum()) == pytest.approx(1.0)
        torch.testing.assert_close(w, r / r.sum())
    else:
        assert float(w.abs().sum()) == 0.0


def test_weightings_and_clipping():
    r = torch.tensor([[0.0, 1.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    torch.testing.assert_close(op.importance_weights(r, "none"), torch.ones_like(r))
    torch.testing.assert_close(op.importance_weights(r, "unnormalised"), r)
    w = op.importance_weights(r, "normalised")
    torch.testing.assert_close(w.sum(-1), torch.ones(2))
    # clipping acts after normalisation, symmetric around one
    c = op.importance_weights(r, "normalised", clip=0.9)
    assert float(c.min()) >= 0.1 - 1e-7 and float(c.max()) <= 1.9 + 1e-7
    torch.testing.assert_close(c, w.clamp(0.1, 1.9))
    # c = 0 is no importance sampling at all
    torch.testing.assert_close(op.importance_weights(r, "normalised", clip=0.0), torch.ones_like(r))
    torch.testing.assert_close(
        op.importance_weights(r, "unnormalised", clip=0.5), r.clamp(0.5, 1.5)
    )
    with pytest.raises(ValueError, match="weighting"):
        op.importance_weights(r, "self")
    with pytest.raises(ValueError, match="clip"):
        op.importance_weights(r, "none", clip=-1.0)


def test_masson_loftus_removes_subject_offsets():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(6, 3))
    shifted = base + rng.normal(scale=100.0, size=(6, 1))  # big agent-to-agent differences
    np.testing.assert_allclose(op.masson_loftus_stderr(shifted), op.masson_loftus_stderr(base))
    # by hand for two subjects, two conditions
    v = np.array([[1.0, 3.0], [3.0, 7.0]])
    centred = v - v.mean(1, keepdims=True) + v.mean()
    want = centred.std(0, ddof=1) / np.sqrt(2) * np.sqrt(2)
    np.testing.assert_allclose(op.masson_loftus_stderr(v), want)
    assert np.isnan(op.masson_loftus_stderr(v[:1])).all()


def test_weighted_training_follows_the_weights():
    """Two states share the empty coalition; zero weight on state 1 moves f(∅) to f(s0)."""
    states = np.array([[0.0], [1.0]], np.float32)
    targets = np.array([[0.0], [1.0]], np.float32)
    idx = np.array([0, 1] * 200)
    ratio = np.where(idx == 0, 1.0, 0.0)
    sources = [op.Source(idx, ratio, "none"), op.Source(idx, ratio, "normalised")]
    exact = CharacteristicEval(np.array([[-2.0]], np.float32), np.array([[0.0]], np.float32))
    cfg = TrainConfig(hidden=(8,), learning_rate=1e-2, updates=400, eval_every=100, n_runs=2)
    curves = op.train_weighted_characteristics(states, targets, sources, cfg, exact)
    final = curves.exact_mse[:, -1]
    assert (final[:2] > 0.15).all()  # unweighted: f(∅) -> 0.5, squared error 0.25
    assert (final[2:] < 0.01).all()  # weighted: f(∅) -> 0
    # the same seeds under both sources: identical starting points
    np.testing.assert_allclose(curves.exact_mse[:2, 0], curves.exact_mse[2:, 0])


def test_recorded_dqn_buffer_matches_and_leaves_training_unchanged():
    cfg = DQNConfig(total_steps=1_200, seed=3, learning_starts=200)
    plain = train_dqn(TabularEnv(five_state_grid()), cfg, progress=False)
    calls = []
    rec = train_dqn(
        TabularEnv(five_state_grid()),
        cfg,
        progress=False,
        record=True,
        hook=lambda step, net, buf, loss: calls.append(loss is not None),
    )
    assert plain.buffer is None
    for k in plain.state_dict:
        assert torch.equal(plain.state_dict[k], rec.state_dict[k])
    np.testing.assert_array_equal(plain.episode_returns, rec.episode_returns)
    buf = rec.buffer
    assert len(calls) == 1_200 and sum(calls) == len(range(200, 1_200, cfg.train_frequency))
    assert buf["epsilon"][0] == 1.0 and buf["epsilon"][-1] == pytest.approx(cfg.end_e)
    assert ((buf["greedy"] >= 0) & (buf["greedy"] < 4)).all()
    late = buf["epsilon"] < 0.05
    assert (buf["action"][late] == buf["greedy"][late]).mean() > 0.9
    data = op.buffer_data(buf, rec.policy, 4, keep=0.8, seed=0)
    assert len(data.idx) == 960 and (data.behaviour_prob > 0).all()
    # ratios: zero where the final greedy policy would not take a_t
    taken = rec.policy(data.states)[
        data.idx, buf["action"][np.sort(np.random.default_rng(0).permutation(1_200)[:960])]
    ]
    np.testing.assert_allclose(data.ratio, taken / data.behaviour_prob)


def test_summaries_remove_multiplicative_agent_effects_on_the_log_scale():
    import pandas as pd

    rng = np.random.default_rng(2)
    base = np.exp(rng.normal(size=(5, 3)))  # agents x conditions
    rows = []
    for scale, tag in ((np.ones(5), "plain"), (np.exp(rng.normal(scale=3.0, size=5)), "scaled")):
        for a in range(5):
            for j in range(3):
                rows.append(
                    {
                        "tag": tag,
                        "agent": a,
                        "seed": 0,
                        "condition": f"c{j}",
                        "update": 0,
                        "exact_mse": base[a, j] * scale[a],
                    }
                )
    summary = op.summarise_curves(pd.DataFrame(rows), ["tag"])
    log_se = summary.pivot(index="condition", columns="tag", values="log_stderr")
    np.testing.assert_allclose(log_se["plain"], log_se["scaled"])
    plain = summary[summary.tag == "plain"]
    np.testing.assert_allclose(plain["stderr"], plain["mean"] * np.expm1(plain["log_stderr"]))


def test_agents_fan_out_through_joblib_with_the_serial_result(tmp_path, monkeypatch):
    """Per-agent jobs in two worker processes give exactly the serial frame."""
    import joblib
    import pandas as pd

    monkeypatch.setenv("SHAPRL_CACHE_DIR", str(tmp_path))
    conds = [op.Condition("on-policy", "on-policy"), op.Condition("IS", weighting="normalised")]
    kw = dict(
        kinds=("prediction",),
        agent_seeds=(0, 1),
        cfg=TrainConfig(hidden=(16,), updates=20, eval_every=10, n_runs=1, seed=0),
        dqn=dict(total_steps=1_500, learning_starts=500),
    )
    serial = op.off_policy_curves("Mastermind-222", conds, **kw)
    with joblib.parallel_config(backend="loky", n_jobs=2):
        fanned = op.off_policy_curves("Mastermind-222", conds, **kw)
    pd.testing.assert_frame_equal(serial, fanned)
    assert sorted(serial["agent"].unique()) == [0, 1]
