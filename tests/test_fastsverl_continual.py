"""Continual explanation (Sec. 4, App. E): joint DQN + explanation training at update ratios."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shaprl.agents import DQNConfig, train_dqn
from shaprl.domains import mastermind as mm
from shaprl.fastsverl import continual as ct
from shaprl.fastsverl import off_policy as op

torch.set_num_threads(1)


def _env():
    return mm.MastermindEnv(2, 2, 2, conventions="fastsverl")


def test_update_ratios_checkpoints_and_an_untouched_agent():
    dqn = DQNConfig(total_steps=700, learning_starts=200, seed=5)
    cfg = ct.ContinualConfig(
        kinds=("prediction", "behaviour"), ratios=(1, 3), n_runs=2, checkpoint_every=250
    )
    res = ct.continual_run(_env(), op.domain_model("Mastermind-222"), dqn, cfg)
    n_dqn = len(range(200, 700, dqn.train_frequency))  # DQN updates made
    assert res.explanation_updates == {1: n_dqn, 3: 3 * n_dqn}
    cp = res.checkpoints
    assert sorted(cp["step"].unique()) == [0, 250, 500]
    assert len(cp) == 3 * 2 * 2 * 2  # checkpoints x kinds x ratios x runs
    assert set(cp["kind"]) == {"prediction", "behaviour"}
    assert np.isfinite(cp["exact_mse"]).all() and np.isfinite(cp["expected_return"]).all()
    assert {"DQN (environment + TD updates)", "explanation updates", "exact checkpoints"} <= set(
        res.seconds
    )
    # the explanation models never disturb the agent's own training
    plain = train_dqn(_env(), dqn, progress=False)
    for k in plain.state_dict:
        assert torch.equal(plain.state_dict[k], res.agent.state_dict[k])


def test_explanations_track_a_fixed_policy():
    """With a frozen agent (learning rate 0) the Shapley error falls as explanation updates accrue."""
    dqn = DQNConfig(total_steps=1_400, learning_starts=200, seed=1, learning_rate=0.0)
    cfg = ct.ContinualConfig(
        kinds=("behaviour",), ratios=(1, 20), n_runs=1, checkpoint_every=1_400, learning_rate=2e-3
    )
    res = ct.continual_run(_env(), op.domain_model("Mastermind-222"), dqn, cfg)
    cp = res.checkpoints.set_index(["step", "ratio"])["exact_mse"]
    assert cp[1_400, 20] < 0.5 * cp[0, 20]
    assert cp[1_400, 20] < cp[1_400, 1]


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="kinds"):
        ct.continual_run(
            _env(),
            op.domain_model("Mastermind-222"),
            DQNConfig(total_steps=10),
            ct.ContinualConfig(kinds=("outcome",)),
        )
    with pytest.raises(ValueError, match="ratios"):
        ct.continual_run(
            _env(),
            op.domain_model("Mastermind-222"),
            DQNConfig(total_steps=10),
            ct.ContinualConfig(ratios=(0,)),
        )


def test_member_adam_is_adam_for_active_members_and_freezes_the_rest():
    from shaprl.batched.optim import MemberAdam

    torch.manual_seed(0)
    w0 = torch.randn(3, 4, 2)
    grads = [torch.randn(3, 4, 2) for _ in range(5)]
    ref = torch.nn.Parameter(w0.clone())
    adam = torch.optim.Adam([ref], lr=1e-2)
    mine = torch.nn.Parameter(w0.clone())
    madam = MemberAdam([mine], 3, lr=1e-2)
    frozen_after = None
    for i, grad in enumerate(grads):
        ref.grad = grad.clone()
        adam.step()
        mine.grad = grad.clone()
        active = torch.tensor([True, True, i < 2])  # member 2 steps twice only
        madam.step(active)
        if i == 1:
            frozen_after = mine.detach()[2].clone()
    torch.testing.assert_close(mine.detach()[:2], ref.detach()[:2], rtol=1e-5, atol=1e-7)
    assert torch.equal(mine.detach()[2], frozen_after)
    assert madam.steps.tolist() == [5.0, 5.0, 2.0]
    with pytest.raises(ValueError, match="member axis"):
        MemberAdam([torch.nn.Parameter(torch.zeros(2, 3))], 3)


_DETERMINISM = """
import sys, torch
torch.set_num_threads(1)
from shaprl.agents import DQNConfig
from shaprl.domains import mastermind as mm
from shaprl.fastsverl import continual as ct, off_policy as op
res = ct.continual_run(
    mm.MastermindEnv(2, 2, 2, conventions="fastsverl"),
    op.domain_model("Mastermind-222"),
    DQNConfig(total_steps=400, learning_starts=150, train_frequency=25, seed=3),
    ct.ContinualConfig(kinds=("prediction", "behaviour"), checkpoint_every=100, seed=3),
)
res.checkpoints.to_pickle(sys.argv[1])
"""


def test_same_seed_same_checkpoints_in_one_process_and_across_processes(tmp_path):
    """Same seed, bitwise-equal checkpoints: twice in one process and in a fresh process
    (issue 18: notebook 34's quick tables changed between two commits; see the notebook)."""
    import subprocess
    import sys

    import pandas as pd

    frames = []
    for i in range(2):  # twice in this process ...
        p = tmp_path / f"here{i}.pkl"
        ns: dict = {}
        sys_argv, sys.argv = sys.argv, ["x", str(p)]
        try:
            exec(compile(_DETERMINISM, "<determinism>", "exec"), ns)
        finally:
            sys.argv = sys_argv
        frames.append(pd.read_pickle(p))
    p = tmp_path / "other.pkl"  # ... and once in a fresh process
    subprocess.run([sys.executable, "-c", _DETERMINISM, str(p)], check=True, timeout=600)
    frames.append(pd.read_pickle(p))
    assert np.isfinite(frames[0]["exact_mse"]).all() and len(frames[0]) == 5 * 2 * 4
    for other in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], other, check_exact=True)
