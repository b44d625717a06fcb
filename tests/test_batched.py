"""The batched-training module: members are independent and equal single runs."""

import numpy as np
import pytest
import torch

from shaprl.batched import (
    BatchedMLP,
    clip_grad_norm_per_member,
    member_seeds,
    per_member_loss,
)
from shaprl.batched.layers import plain_mlp

torch.set_num_threads(1)


def _train_single(seed, x, y, steps, clip):
    torch.manual_seed(seed)
    net = plain_mlp([3, 16, 16, 2])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for t in range(steps):
        loss = (net(x[t]) - y[t]).pow(2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
        losses.append(loss.item())
    return net, np.array(losses)


def test_member_seeds_are_stable_prefixes():
    assert member_seeds(7, 5)[:3] == member_seeds(7, 3)
    assert len(set(member_seeds(7, 50))) == 50
    with pytest.raises(ValueError):
        member_seeds(0, -1)


def test_initialisation_matches_plain_modules():
    seeds = [3, 11, 5]
    group = BatchedMLP(seeds, 3, [16, 16], 2)
    x = torch.randn(10, 3)
    for r, s in enumerate(seeds):
        torch.manual_seed(s)
        single = plain_mlp([3, 16, 16, 2])
        torch.testing.assert_close(group(x)[r], single(x))
        torch.testing.assert_close(group.member(r)(x), single(x))


def test_batched_training_equals_single_runs():
    """Same seeds, same data: batched Adam with per-member clipping == independent loops."""
    seeds, steps, clip = [1, 2, 3, 4], 60, 0.5
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(len(seeds), steps, 8, 3, generator=gen)
    y = torch.randn(len(seeds), steps, 8, 2, generator=gen) * 5.0  # large: clipping is active
    group = BatchedMLP(seeds, 3, [16, 16], 2)
    opt = torch.optim.Adam(group.parameters(), lr=1e-2)
    batched = []
    clipped = False
    for t in range(steps):
        losses = per_member_loss(group(x[:, t]), y[:, t])
        opt.zero_grad()
        losses.sum().backward()
        norms = clip_grad_norm_per_member(group.parameters(), clip)
        clipped |= bool((norms > clip).any())
        opt.step()
        batched.append(losses.detach().numpy())
    batched = np.array(batched).T
    assert clipped
    for r, s in enumerate(seeds):
        net, single = _train_single(s, x[r], y[r], steps, clip)
        np.testing.assert_allclose(batched[r], single, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(group.member(r)(x[r, 0]), net(x[r, 0]), rtol=1e-4, atol=1e-5)


def test_clip_is_per_member():
    group = BatchedMLP([0, 1], 2, [4], 1)
    x = torch.ones(2, 5, 2)
    y = torch.stack([torch.zeros(5, 1), torch.full((5, 1), 1e3)])
    per_member_loss(group(x), y).sum().backward()
    before = [p.grad[0].clone() for p in group.parameters()]
    norms = clip_grad_norm_per_member(group.parameters(), 1e9)
    assert norms[1] > 100 * norms[0]
    clip_grad_norm_per_member(group.parameters(), float(norms[0]) * 2)  # only member 1 clipped
    for b, p in zip(before, group.parameters(), strict=True):
        torch.testing.assert_close(p.grad[0], b)


def test_shape_errors_name_the_expected_shape():
    group = BatchedMLP([0, 1], 3, [4], 1)
    with pytest.raises(ValueError, match=r"\(2, batch, 3\)"):
        group(torch.zeros(3, 5, 3))
    with pytest.raises(ValueError, match="activation"):
        BatchedMLP([0], 3, [4], 1, activation="sigmoidal")


def test_sample_weights_in_loss():
    pred = torch.zeros(2, 4, 1)
    target = torch.ones(2, 4, 1)
    w = torch.tensor([[1.0, 1.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    torch.testing.assert_close(per_member_loss(pred, target, w), torch.tensor([0.5, 2.0]))
