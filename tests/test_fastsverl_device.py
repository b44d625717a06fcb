"""FastSVERL trainers use a GPU when present and never require one: an explicit device is
honoured, and ``device=None`` (the default) resolves through ``shaprl.batched.default_device``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shaprl.batched import default_device
from shaprl.fastsverl import outcome as oc
from shaprl.fastsverl import outcome_replay as orp
from shaprl.fastsverl import training
from shaprl.fastsverl.explainer import FastSVERLExplainer
from shaprl.fastsverl.off_policy import Source, train_weighted_characteristics
from shaprl.fastsverl.single_sample import SampledCharacteristic
from shaprl.fastsverl.training import (
    CharacteristicEval,
    ExactCharacteristic,
    ModelCharacteristic,
    StateData,
    TrainConfig,
    resolve_device,
    train_characteristic,
    train_shapley,
)

torch.set_num_threads(1)

CFG = TrainConfig(hidden=(8,), updates=4, eval_every=2, n_runs=2, batch_size=8)


@pytest.fixture
def data() -> StateData:
    rng = np.random.default_rng(0)
    states = rng.integers(0, 3, size=(12, 3)).astype(np.float32)
    targets = rng.dirichlet(np.ones(2), size=12).astype(np.float32)
    return StateData(states, targets, np.arange(12).repeat(2), np.arange(12))


@pytest.fixture
def spy(monkeypatch) -> list:
    """Replace the default device by a recording CPU stand-in (as if a GPU were found)."""
    calls: list = []

    def fake_default() -> torch.device:
        calls.append(1)
        return torch.device("cpu")

    monkeypatch.setattr(training, "default_device", fake_default)
    return calls


def _device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device(None) == default_device()


def test_explicit_cpu_is_honoured_and_results_are_numpy(data):
    model, curves = train_characteristic(data, CFG, device="cpu")
    assert _device(model) == torch.device("cpu")
    assert isinstance(curves.val_loss, np.ndarray) and curves.val_loss.shape[0] == 2
    char = ModelCharacteristic(model.member(0))
    shap, s_curves = train_shapley(data, char, CFG, device=torch.device("cpu"))
    assert shap.device == torch.device("cpu") and isinstance(s_curves.val_loss, np.ndarray)
    assert ExactCharacteristic(np.zeros((12, 8, 2)), device="cpu").table.device.type == "cpu"


def test_default_device_is_used_by_every_trainer(data, spy):
    model, _ = train_characteristic(data, CFG)
    assert len(spy) == 1 and _device(model) == torch.device("cpu")
    train_shapley(data, ModelCharacteristic(model.member(0)), CFG)
    assert len(spy) == 2
    ExactCharacteristic(np.zeros((12, 8, 2)))
    SampledCharacteristic(data.states, data.targets, data.train)
    assert len(spy) == 4
    exact = CharacteristicEval(data.states, data.targets)
    train_weighted_characteristics(
        data.states, data.targets, [Source(data.train, np.ones(len(data.train)))], CFG, exact
    )
    assert len(spy) == 5
    obs = data.states
    transitions = orp.Transitions(obs, np.zeros(12, int), np.ones(12), obs, np.ones(12))
    pi_tilde = oc.partial_policy_model(model.member(0))
    net, _ = orp.train_outcome_replay(
        transitions,
        obs,
        lambda o: np.full((len(o), 2), 0.5),
        pi_tilde,
        oc.OutcomeConfig(hidden=(8,), updates=3, eval_every=3, batch_size=4),
    )
    assert len(spy) == 6 and _device(net) == torch.device("cpu")


def test_explainer_default_device(spy):
    from shaprl.domains.gridworlds import five_state_grid
    from shaprl.domains.tabular_env import TabularEnv

    env = TabularEnv(five_state_grid())
    explainer = FastSVERLExplainer(
        env,
        lambda o: np.full((len(o), 4), 0.25),
        buffer_size=64,
        validation_size=16,
        characteristic_updates=2,
        shapley_updates=2,
        hidden=(8,),
    )
    assert len(spy) == 1 and explainer.device == torch.device("cpu")
    explanation = explainer.fit().explain(np.array([[0.0, 0.0], [1.0, 1.0]]))
    frame = explanation.to_frame()
    assert len(frame) > 0 and np.isfinite(frame["phi"].to_numpy()).all()
