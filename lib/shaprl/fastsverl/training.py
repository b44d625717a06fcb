"""Training FastSVERL's characteristic and Shapley models, many seeded runs at once.

Both model families are small MLPs trained by Adam on minibatches of states drawn from a
buffer that approximates the steady state p^pi. A group of R seeded runs is one
:class:`shaprl.batched.BatchedMLP`: every run draws its own minibatches and coalitions from
its own generator (in chunks of ``draw_chunk`` updates, so a single run with the same seed
draws exactly the same numbers), the per-run losses are summed, and each run keeps the
weights of its best validation loss.

Losses (one update, batch B, m outputs; mean over outputs = the paper's expectation over a
uniform action for behaviour):

* characteristic, Eqs. 12-13:  mean_b mean_j (f_j(s_b) - f̂_j(s_b masked by C_b))**2, with
  C_b uniform over all coalitions;
* Shapley model, Eqs. 10, 21, 23:  mean_b mean_j (v_j(s_b, C) - v_j(s_b, ∅) - Σ_{i∈C} φ̂_ij(s_b))**2,
  with C drawn from the Shapley kernel (Eq. 6), one per batch (authors) or one per sample;
* efficiency correction, Eqs. 11, 22, 24 (after training, as the authors' code does):
  φ_i = φ̂_i + (v(F) - v(∅) - Σ_j φ̂_j) / F, with v(F) the explained quantity itself
  (π(s, ·), v̂(s) or v^π(s)).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..batched import BatchedMLP, default_device, member_seeds
from .coalitions import (
    MASK_VALUE,
    coalition_bits,
    kernel_coalitions,
    mask,
    uniform_coalitions,
)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one group of runs (the authors' values as defaults)."""

    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 2.5e-4
    batch_size: int = 128
    updates: int = 3_000
    eval_every: int = 62  #: 8,000 samples / batch 128 = one "epoch"
    n_runs: int = 1
    seed: int = 0
    mask_value: float = MASK_VALUE
    per_sample_coalitions: bool = False  #: Shapley models: one coalition per sample, not per batch
    paired: bool = False  #: Shapley models: FastSHAP's paired (complementary) coalitions
    correct_in_training: bool = (
        False  #: Shapley models: efficiency correction inside the loss (FastSHAP)
    )
    draw_chunk: int = 64  #: updates whose random draws are made in one call
    run_seeds: tuple[int, ...] | None = None  #: explicit per-run seeds (else from ``seed``)
    stop_below: float | None = None  #: stop once every run's exact MSE is below this

    def seeds(self) -> list[int]:
        if self.run_seeds is not None:
            if len(self.run_seeds) != self.n_runs:
                raise ValueError(
                    f"run_seeds has {len(self.run_seeds)} seeds for n_runs={self.n_runs}"
                )
            return list(self.run_seeds)
        return member_seeds(self.seed, self.n_runs)


@dataclass
class Curves:
    """Learning curves of a group of runs: ``(R, T)`` arrays at ``updates`` (T,)."""

    updates: np.ndarray
    exact_mse: np.ndarray | None
    val_loss: np.ndarray
    seconds: float
    updates_per_second: float  #: aggregate model updates per second (R x steps / time)
    best_exact_mse: np.ndarray | None = None  #: (R,) exact MSE of each run's selected model
    extra: dict = field(default_factory=dict)


# -- state data ------------------------------------------------------------------------
@dataclass(frozen=True)
class StateData:
    """States to learn from: ``states`` (S, F) and buffers of indices into them.

    ``train`` and ``val`` are the sampled buffers (their frequencies approximate p^pi);
    ``targets`` (S, m) is the explained quantity f(s) at every state (policy or value).
    """

    states: np.ndarray
    targets: np.ndarray
    train: np.ndarray
    val: np.ndarray

    def __post_init__(self) -> None:
        s = len(self.states)
        if self.targets.shape[0] != s:
            raise ValueError(f"targets need one row per state ({s}); got {self.targets.shape}")
        for name in ("train", "val"):
            idx = getattr(self, name)
            if len(idx) == 0 or idx.min() < 0 or idx.max() >= s:
                raise ValueError(
                    f"{name} must be a non-empty buffer of state indices in 0..{s - 1}"
                )

    @property
    def n_features(self) -> int:
        return self.states.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.targets.shape[1]


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``None`` -> :func:`shaprl.batched.default_device` (a CUDA device when present, else the
    CPU); anything else as given. Random draws stay on CPU generators (the same numbers on
    every device) and are moved to the device; results come back as numpy on the CPU."""
    return default_device() if device is None else torch.device(device)


def _generators(cfg: TrainConfig) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in cfg.seeds()]


class _Draws:
    """Per-run random draws made ``chunk`` updates at a time (identical single vs batched)."""

    def __init__(self, gens: list[torch.Generator], make: Callable[[torch.Generator, int], tuple]):
        self.gens, self.make, self.buffer, self.pos = gens, make, None, 0

    def next(self) -> tuple[torch.Tensor, ...]:
        if self.buffer is None or self.pos == self.buffer[0].shape[1]:
            parts = [self.make(g) for g in self.gens]
            self.buffer = tuple(torch.stack(p) for p in zip(*parts, strict=True))
            self.pos = 0
        out = tuple(b[:, self.pos] for b in self.buffer)
        self.pos += 1
        return out


class _BestKeeper:
    """Keeps, per run, the weights with the lowest validation loss so far."""

    def __init__(self, model: BatchedMLP) -> None:
        self.params = [p.detach().clone() for p in model.parameters()]
        device = self.params[0].device
        self.loss = torch.full((model.n_members,), float("inf"), device=device)

    @torch.no_grad()
    def update(self, model: BatchedMLP, loss: torch.Tensor) -> None:
        better = loss < self.loss
        self.loss = torch.where(better, loss, self.loss)
        for best, p in zip(self.params, model.parameters(), strict=True):
            sel = better.view(-1, *([1] * (p.dim() - 1)))
            best.copy_(torch.where(sel, p, best))

    @torch.no_grad()
    def restore(self, model: BatchedMLP) -> None:
        for best, p in zip(self.params, model.parameters(), strict=True):
            p.copy_(best)


def _reached(exact_curve: list, target: float | None) -> bool:
    return target is not None and bool(exact_curve) and bool((exact_curve[-1] < target).all())


def _adam(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr, foreach=True)


# -- characteristic models (Eqs. 12-13) -------------------------------------------------------
@dataclass
class CharacteristicEval:
    """Exact characteristic values at masked inputs: ``inputs`` (M, F), ``values`` (M, m)."""

    inputs: np.ndarray
    values: np.ndarray


def train_characteristic(
    data: StateData,
    cfg: TrainConfig,
    *,
    exact: CharacteristicEval | None = None,
    device: torch.device | str | None = None,
) -> tuple[BatchedMLP, Curves]:
    """Train ``cfg.n_runs`` behaviour/prediction characteristic models (Eqs. 12-13, 28, 30).

    ``device=None``: :func:`resolve_device` (a GPU when present); curves come back as numpy.
    """
    device = resolve_device(device)
    f, m, r, b = data.n_features, data.n_outputs, cfg.n_runs, cfg.batch_size
    states = torch.as_tensor(data.states, dtype=torch.float32, device=device)
    targets = torch.as_tensor(data.targets, dtype=torch.float32, device=device)
    train = torch.as_tensor(data.train, dtype=torch.long)
    model = BatchedMLP(cfg.seeds(), f, cfg.hidden, m, device=device)
    opt = _adam(model, cfg.learning_rate)
    k = cfg.draw_chunk

    def make(g: torch.Generator) -> tuple:
        idx = train[torch.randint(len(train), (k, b), generator=g)]
        return idx, uniform_coalitions((k, b), f, g)

    draws = _Draws(_generators(cfg), make)
    val_gen = torch.Generator().manual_seed(cfg.seed + 7919)
    val_idx = torch.as_tensor(data.val, dtype=torch.long, device=device)
    val_c = uniform_coalitions((len(val_idx),), f, val_gen).to(device)
    val_x = mask(states[val_idx], val_c, cfg.mask_value)
    val_y = targets[val_idx]
    ex_x = ex_y = None
    if exact is not None:
        ex_x = torch.as_tensor(exact.inputs, dtype=torch.float32, device=device)
        ex_y = torch.as_tensor(exact.values, dtype=torch.float32, device=device)
    keeper = _BestKeeper(model)
    marks, exact_curve, val_curve = [], [], []
    train_time = 0.0

    @torch.no_grad()
    def evaluate(step: int) -> None:
        val = (model(val_x) - val_y).pow(2).mean(dim=(1, 2))
        keeper.update(model, val)
        marks.append(step)
        val_curve.append(val.cpu().numpy())
        if ex_x is not None:
            exact_curve.append((model(ex_x) - ex_y).pow(2).mean(dim=(1, 2)).cpu().numpy())

    evaluate(0)
    done = 0
    for step in range(1, cfg.updates + 1):
        if _reached(exact_curve, cfg.stop_below):
            break
        done = step
        t0 = time.perf_counter()
        idx, c = draws.next()
        idx = idx.to(device)
        x = mask(states[idx], c.to(device), cfg.mask_value)  # (R, B, F)
        loss = (model(x) - targets[idx]).pow(2).mean(dim=(1, 2)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        train_time += time.perf_counter() - t0
        if step % cfg.eval_every == 0 or step == cfg.updates:
            evaluate(step)
    keeper.restore(model)
    best_exact = None
    if ex_x is not None:
        with torch.no_grad():
            best_exact = (model(ex_x) - ex_y).pow(2).mean(dim=(1, 2)).cpu().numpy()
    curves = Curves(
        np.asarray(marks),
        np.stack(exact_curve, axis=1) if exact_curve else None,
        np.stack(val_curve, axis=1),
        train_time,
        r * done / max(train_time, 1e-9),
        best_exact,
    )
    return model, curves


# -- characteristic providers for Shapley training -----------------------------------------
class ExactCharacteristic:
    """Exact characteristic values looked up from a table ``(S, 2**F, m)`` over ``states``.

    Like every characteristic provider here, it follows the device of the tensors it is
    called with (the trainer's), whatever ``device`` it was built on.
    """

    def __init__(self, table: np.ndarray, device: torch.device | str | None = None) -> None:
        table = np.asarray(table)
        self.table = torch.as_tensor(table, dtype=torch.float32, device=resolve_device(device))

    def _on(self, device: torch.device) -> torch.Tensor:
        if self.table.device != device:
            self.table = self.table.to(device)
        return self.table

    def __call__(self, idx: torch.Tensor, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self._on(idx.device)[idx, coalition_bits(c)]

    def null(self, idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self._on(idx.device)[idx, 0]


class ModelCharacteristic:
    """A trained characteristic model (one run, shared by every Shapley run, as in App. C)."""

    def __init__(self, net: torch.nn.Module, mask_value: float = MASK_VALUE) -> None:
        self.net, self.mask_value = net.eval(), mask_value

    def _on(self, device: torch.device) -> torch.nn.Module:
        if next(self.net.parameters()).device != device:
            self.net.to(device)
        return self.net

    @torch.no_grad()
    def __call__(self, idx: torch.Tensor, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self._on(x.device)(mask(x, c, self.mask_value))

    @torch.no_grad()
    def null(self, idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self._on(x.device)(torch.full_like(x, self.mask_value))


Characteristic = ExactCharacteristic | ModelCharacteristic


# -- Shapley models (Eqs. 10, 21, 23) and the efficiency correction (Eqs. 11, 22, 24) ----------
def efficiency_correction(
    phi: torch.Tensor, grand: torch.Tensor, null: torch.Tensor
) -> torch.Tensor:
    """Eqs. 11/22/24: add ``(v(F) - v(∅) - Σ_i φ̂_i) / F`` to every feature.

    ``phi`` is ``(..., F, m)``; ``grand`` and ``null`` are ``(..., m)``.
    """
    gap = grand - null - phi.sum(dim=-2)
    return phi + gap.unsqueeze(-2) / phi.shape[-2]


class ShapleyModel:
    """A group of Shapley models with the efficiency correction applied to their output."""

    def __init__(self, net: BatchedMLP, n_features: int, n_outputs: int) -> None:
        self.net, self.n_features, self.n_outputs = net, n_features, n_outputs

    @property
    def device(self) -> torch.device:
        """Where the model lives: inputs must be moved there (``.cpu()`` the outputs)."""
        return next(self.net.parameters()).device

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Uncorrected φ̂: ``(R, B, F, m)``."""
        out = self.net(x)
        return out.reshape(*out.shape[:-1], self.n_features, self.n_outputs)

    @torch.no_grad()
    def corrected(self, x: torch.Tensor, grand: torch.Tensor, null: torch.Tensor) -> torch.Tensor:
        """Efficiency-corrected φ (Eq. 11): ``(R, B, F, m)``."""
        return efficiency_correction(self.raw(x), grand, null)


@dataclass
class ShapleyEval:
    """Exact Shapley values ``phi`` (S_e, F, m) of the states ``idx`` (S_e,) to score against."""

    idx: np.ndarray
    phi: np.ndarray


def train_shapley(
    data: StateData,
    characteristic: Characteristic,
    cfg: TrainConfig,
    *,
    exact: ShapleyEval | None = None,
    device: torch.device | str | None = None,
) -> tuple[ShapleyModel, Curves]:
    """Train ``cfg.n_runs`` Shapley models against ``characteristic`` (Eqs. 10, 21, 23).

    The validation loss is measured on the raw (uncorrected) output against fixed kernel
    coalitions, as in the authors' code, and selects each run's model; the exact MSE is
    measured on the efficiency-corrected output (Eq. 11), the explanation a user would see.
    ``device=None``: :func:`resolve_device` (a GPU when present); curves come back as numpy.
    """
    device = resolve_device(device)
    f, m, r, b = data.n_features, data.n_outputs, cfg.n_runs, cfg.batch_size
    states = torch.as_tensor(data.states, dtype=torch.float32, device=device)
    grand_all = torch.as_tensor(data.targets, dtype=torch.float32, device=device)
    train = torch.as_tensor(data.train, dtype=torch.long)
    net = BatchedMLP(cfg.seeds(), f, cfg.hidden, f * m, device=device)
    model = ShapleyModel(net, f, m)
    opt = _adam(net, cfg.learning_rate)
    k = cfg.draw_chunk
    n_c = b if cfg.per_sample_coalitions else (2 if cfg.paired else 1)

    def make(g: torch.Generator) -> tuple:
        idx = train[torch.randint(len(train), (k, b), generator=g)]
        c = kernel_coalitions((k, n_c), f, g, paired=cfg.paired and n_c % 2 == 0)
        if n_c != b:  # one coalition (or one pair) for the whole batch
            c = c.repeat_interleave(b // n_c, dim=1) if b % n_c == 0 else c[:, :1].expand(k, b, f)
        return idx, c

    draws = _Draws(_generators(cfg), make)
    all_idx = torch.arange(len(states), device=device)
    null_all = characteristic.null(all_idx, states)  # (S, m)

    # validation: fixed kernel coalitions on the validation buffer
    val_gen = torch.Generator().manual_seed(cfg.seed + 7919)
    val_idx = torch.as_tensor(data.val, dtype=torch.long, device=device)
    val_c = kernel_coalitions((len(val_idx),), f, val_gen).to(device)
    val_x = states[val_idx]
    val_target = characteristic(val_idx, val_x, val_c) - null_all[val_idx]
    ex = None
    if exact is not None:
        e_idx = torch.as_tensor(exact.idx, dtype=torch.long, device=device)
        ex = (
            states[e_idx],
            grand_all[e_idx],
            null_all[e_idx],
            torch.as_tensor(exact.phi, dtype=torch.float32, device=device),
        )
    keeper = _BestKeeper(net)
    marks, exact_curve, val_curve = [], [], []
    train_time = 0.0

    @torch.no_grad()
    def exact_mse() -> np.ndarray:
        x, grand, null, phi = ex
        return (model.corrected(x, grand, null) - phi).pow(2).mean(dim=(1, 2, 3)).cpu().numpy()

    @torch.no_grad()
    def evaluate(step: int) -> None:
        pred = (model.raw(val_x) * val_c[:, :, None]).sum(-2)
        val = (pred - val_target).pow(2).mean(dim=(1, 2))
        keeper.update(net, val)
        marks.append(step)
        val_curve.append(val.cpu().numpy())
        if ex is not None:
            exact_curve.append(exact_mse())

    evaluate(0)
    done = 0
    for step in range(1, cfg.updates + 1):
        if _reached(exact_curve, cfg.stop_below):
            break
        done = step
        t0 = time.perf_counter()
        idx, c = draws.next()
        idx, c = idx.to(device), c.to(device)
        x = states[idx]
        with torch.no_grad():
            target = characteristic(idx, x, c) - null_all[idx]  # (R, B, m)
        phi = model.raw(x)
        if cfg.correct_in_training:  # FastSHAP: the corrected output enters the loss
            phi = efficiency_correction(phi, grand_all[idx], null_all[idx])
        pred = (phi * c[..., None]).sum(-2)
        loss = (pred - target).pow(2).mean(dim=(1, 2)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        train_time += time.perf_counter() - t0
        if step % cfg.eval_every == 0 or step == cfg.updates:
            evaluate(step)
    keeper.restore(net)
    curves = Curves(
        np.asarray(marks),
        np.stack(exact_curve, axis=1) if exact_curve else None,
        np.stack(val_curve, axis=1),
        train_time,
        r * done / max(train_time, 1e-9),
        exact_mse() if ex is not None else None,
    )
    return model, curves
