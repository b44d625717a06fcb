"""FastSVERLExplainer: amortised SVERL explanations of any policy on a gymnasium environment.

Usage mirrors the exact engine (``SVERLExplainer(mdp, policy).explain(states)``)::

    explainer = FastSVERLExplainer(env, policy_fn, value_fn).fit()
    explanation = explainer.explain(observations)      # the same Explanation object

``policy_fn`` maps a batch of observations ``(B, F)`` to action probabilities ``(B, A)``;
``value_fn`` (optional, for prediction explanations) maps them to value estimates ``(B,)``.
:meth:`fit` rolls the policy out to collect an on-policy buffer (its state frequencies stand
in for the steady state p^pi, as in the paper), trains the characteristic models (Eqs. 12-13)
and then the Shapley models (Eqs. 10, 23) on them; :meth:`explain` is one forward pass plus
the efficiency correction (Eqs. 11, 24). With ``n_runs > 1`` an ensemble of seeded runs is
trained as one batched model and the explanation reports the mean with its standard error.
Outcome explanations need an outcome characteristic model (Eqs. 14-16), which this
explainer does not train yet.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace

import gymnasium
import numpy as np
import torch

from ..sverl.explanation import Explanation
from .coalitions import MASK_VALUE
from .training import (
    ModelCharacteristic,
    StateData,
    TrainConfig,
    resolve_device,
    train_characteristic,
    train_shapley,
)

SUPPORTED = ("behaviour", "prediction")


def collect_states(
    env: gymnasium.Env,
    policy_fn: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    seed: int = 0,
    max_episode_steps: int = 1_000,
) -> np.ndarray:
    """``n`` observations visited by the policy (actions sampled from its probabilities)."""
    rng = np.random.default_rng(seed)
    out = []
    obs, _ = env.reset(seed=seed)
    steps = 0
    while len(out) < n:
        obs = np.asarray(obs, np.float32).reshape(-1)
        out.append(obs)
        probs = np.asarray(policy_fn(obs[None]), float)[0]
        if probs.ndim != 1 or not np.isclose(probs.sum(), 1.0) or (probs < 0).any():
            raise ValueError(
                "policy_fn must return action probabilities (rows summing to 1) for a batch of "
                f"observations; got {probs!r} for one observation"
            )
        obs, _, terminated, truncated, _ = env.step(
            int(rng.choice(len(probs), p=probs / probs.sum()))
        )
        steps += 1
        if terminated or truncated or steps >= max_episode_steps:
            obs, _ = env.reset()
            steps = 0
    return np.stack(out)


class FastSVERLExplainer:
    """Amortised behaviour and prediction explanations (see the module docstring).

    Parameters
    ----------
    env:
        A gymnasium environment with vector observations.
    policy_fn, value_fn:
        The explained policy (observations -> action probabilities) and, for prediction,
        its value estimate (observations -> values).
    buffer_size, validation_size:
        On-policy observations collected by :meth:`fit` (the authors: 8,000 + 2,000).
    hidden, characteristic_updates, shapley_updates, batch_size, learning_rate:
        Model size and training budget (the authors' Mastermind-222 settings by default).
    n_runs:
        Seeded runs trained together; ``> 1`` gives standard errors. Default 3, as the
        front door's amortised route: the runs are one batched model, so on the CPU three
        cost about what one does (CartPole, 2 x 1,000 updates per kind: 6.3 s vs 6.4 s).
    mask_value:
        Stands for an unknown feature; must lie outside the observations' values. ``"auto"``:
        chosen from the collected observations (just below their smallest value, so it is
        distinct yet of the observations' scale -- needed for unbounded Box features). A
        value far outside the observations' scale warns: the networks see it as an input
        and saturate.
    device:
        Where the models train (``None``: a GPU when present, else the CPU); explanations
        come back as numpy arrays either way.
    """

    def __init__(
        self,
        env: gymnasium.Env,
        policy_fn: Callable[[np.ndarray], np.ndarray],
        value_fn: Callable[[np.ndarray], np.ndarray] | None = None,
        *,
        buffer_size: int = 8_000,
        validation_size: int = 2_000,
        hidden: Sequence[int] = (64, 64),
        characteristic_updates: int = 3_000,
        shapley_updates: int = 3_000,
        batch_size: int = 128,
        learning_rate: float = 2.5e-4,
        n_runs: int = 3,
        seed: int = 0,
        mask_value: float | str = MASK_VALUE,
        feature_names: Sequence[str] | None = None,
        action_names: Sequence[str] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        shape = getattr(env.observation_space, "shape", None)
        if shape is None or len(shape) != 1:
            raise ValueError(
                f"FastSVERLExplainer needs vector observations (a 1-D observation space); got "
                f"{env.observation_space}. Flatten the observations with a wrapper first."
            )
        self.env, self.policy_fn, self.value_fn = env, policy_fn, value_fn
        self.device = resolve_device(device)
        self.n_features = int(shape[0])
        self.feature_names = tuple(feature_names or (f"x{i}" for i in range(self.n_features)))
        self.action_names = None if action_names is None else tuple(action_names)
        self.sizes = (int(buffer_size), int(validation_size))
        self.config = TrainConfig(
            hidden=tuple(hidden),
            learning_rate=learning_rate,
            batch_size=batch_size,
            n_runs=n_runs,
            seed=seed,
            mask_value=MASK_VALUE if mask_value == "auto" else float(mask_value),
            eval_every=max(1, buffer_size // batch_size),
        )
        self.updates = (int(characteristic_updates), int(shapley_updates))
        self.characteristics: dict[str, ModelCharacteristic] = {}
        self.shapley: dict = {}
        self.curves: dict = {}
        self.info: dict = {}
        self.auto_mask = mask_value == "auto"
        self.buffer_mean: dict[str, np.ndarray] = {}
        self.validation_loss: dict[str, dict[str, list[float]]] = {}

    # -- training ------------------------------------------------------------------------
    def _targets(self, kind: str, x: np.ndarray) -> np.ndarray:
        if kind == "behaviour":
            return np.asarray(self.policy_fn(x), np.float32)
        if self.value_fn is None:
            raise ValueError("prediction explanations need value_fn (observations -> values)")
        return np.asarray(self.value_fn(x), np.float32).reshape(len(x), 1)

    def fit(self, kinds: str | Sequence[str] = ("behaviour",)) -> FastSVERLExplainer:
        """Collect the on-policy buffer and train the models of ``kinds`` (one or several)."""
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        bad = [k for k in kinds if k not in SUPPORTED]
        if bad:
            raise ValueError(
                f"FastSVERLExplainer explains {SUPPORTED}; got {bad}. Outcome explanations need "
                "an outcome characteristic model (Eqs. 14-16), not provided by this explainer."
            )
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        n_train, n_val = self.sizes
        obs = collect_states(self.env, self.policy_fn, n_train + n_val, seed=self.config.seed)
        if self.auto_mask:
            lo, span = float(obs.min()), float(np.ptp(obs))
            self.config = replace(self.config, mask_value=lo - max(1.0, 0.5 * span))
        scale = float(np.abs(obs).max()) + 1.0
        if abs(self.config.mask_value) > 10 * scale:
            warnings.warn(
                f"mask_value {self.config.mask_value:g} is far outside the observations (|obs| <= "
                f"{scale - 1:g}): the networks see it as an input, saturate, and the values blow "
                "up. Leave it to the library: mask_value='auto'.",
                UserWarning,
                stacklevel=2,
            )
        if np.isclose(obs, self.config.mask_value).any():
            raise ValueError(
                f"the mask value {self.config.mask_value} occurs in the observations; pass "
                "mask_value='auto' (chosen from the observations) or a value outside them "
                "(FastSVERL App. H); through explain_agent: amortised_options={'mask_value': "
                "'auto'}"
            )
        states, inverse = np.unique(obs, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        self.states = states
        self.train_rows, self.validation_rows = obs[:n_train], obs[n_train:]
        for kind in kinds:
            data = StateData(
                states, self._targets(kind, states), inverse[:n_train], inverse[n_train:]
            )
            # v(empty) of the real outputs: their steady-state mean (the buffer's frequencies)
            self.buffer_mean[kind] = data.targets[inverse[:n_train]].mean(axis=0)
            char, c_curves = train_characteristic(
                data, replace(self.config, updates=self.updates[0]), device=self.device
            )
            self.characteristics[kind] = ModelCharacteristic(char.member(0), self.config.mask_value)
            cfg = replace(self.config, updates=self.updates[1], seed=self.config.seed + 1)
            model, s_curves = train_shapley(
                data, self.characteristics[kind], cfg, device=self.device
            )
            self.shapley[kind] = model
            self.curves[kind] = {"characteristic": c_curves, "shapley": s_curves}
            self.validation_loss[kind] = {
                "characteristic": np.nanmin(c_curves.val_loss, axis=1).tolist(),
                "shapley": np.nanmin(s_curves.val_loss, axis=1).tolist(),
            }
        self.info = {
            "seconds": time.perf_counter() - t0,
            "buffer": n_train,
            "validation": n_val,
            "distinct_states": len(states),
            "runs": self.config.n_runs,
            "characteristic_updates": self.updates[0],
            "shapley_updates": self.updates[1],
            "mask_value": self.config.mask_value,
            "validation_loss": self.validation_loss,
        }
        return self

    # -- explaining ----------------------------------------------------------------------
    def explain(
        self, observations: np.ndarray, kinds: str | Sequence[str] | None = None
    ) -> Explanation:
        """Efficiency-corrected Shapley values of ``observations`` ``(n, F)`` as an Explanation."""
        if isinstance(kinds, str):
            kinds = (kinds,)
        kinds = tuple(self.shapley) if kinds is None else tuple(kinds)
        if not kinds:
            raise ValueError("no model has been trained: call fit() before explain()")
        missing = [k for k in kinds if k not in self.shapley]
        if missing:
            raise ValueError(f"no model for {missing}: call fit(kinds={missing!r}) first")
        x = np.atleast_2d(np.asarray(observations, np.float32))
        if x.shape[1] != self.n_features:
            raise ValueError(f"observations need {self.n_features} features; got shape {x.shape}")
        xt = torch.as_tensor(x, device=self.device)
        values, gaps = {}, {}
        for kind in kinds:
            real = self._targets(kind, x)
            grand = torch.as_tensor(real, device=self.device)
            null = self.characteristics[kind].null(None, xt)
            phi = self.shapley[kind].corrected(xt, grand, null).cpu().numpy()  # (R, n, F, m)
            raw = self.shapley[kind].raw(xt).detach().cpu().numpy()
            # Efficiency (Eq. 11) against the *real* outputs: sum_i phi_i = f(x) - E_p[f].
            # After the correction the sum matches the model's own null, so the gap left is
            # the null model's error; before it, the Shapley model's own.
            want = real - self.buffer_mean[kind]
            gaps[kind] = {
                "corrected": float(np.sqrt(np.mean((phi.sum(-2) - want) ** 2))),
                "raw": float(np.sqrt(np.mean((raw.sum(-2) - want) ** 2))),
                "scale": float(np.sqrt(np.mean(want**2))),
            }
            r = phi.shape[0]
            stderr = phi.std(0, ddof=1) / np.sqrt(r) if r > 1 else np.full(phi.shape[1:], np.nan)
            outputs = (
                self.action_names or tuple(f"a{i}" for i in range(phi.shape[-1]))
                if kind == "behaviour"
                else ("value",)
            )
            values[kind] = (phi.mean(0), stderr, outputs)
        return Explanation.from_values(
            self.feature_names,
            values,
            method="fastsverl",
            features=x,
            samples={
                k: {"updates": self.updates[0] + self.updates[1], "runs": self.config.n_runs}
                for k in kinds
            },
            info={**self.info, "efficiency_gap": gaps},
        )
