"""The one result type of every SVERL route: exact tables, estimated values with errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from shaprl.sverl import Explanation, KindResult


def _exact() -> Explanation:
    # Two features, two states, one output: v = [0, a, b, a + b + c] has phi = (a + c/2, b + c/2).
    char = np.array([[[0.0], [1.0], [2.0], [4.0]], [[1.0], [1.0], [1.0], [1.0]]])
    return Explanation.from_characteristics(
        np.array([3, 7]), ("s3", "s7"), ("f0", "f1"), {"prediction": (char, ("value",))}
    )


def test_exact_explanation_keeps_its_table_and_has_no_stderr():
    e = _exact()
    assert e.method == "exact" and e.is_exact
    np.testing.assert_allclose(e.phi("prediction", 3)["value"], [1.5, 2.5])
    np.testing.assert_allclose(e.stderr("prediction", 3)["value"], [0.0, 0.0])
    assert e.results["prediction"].stderr is None
    assert list(e.to_frame().columns) == [
        "kind", "characteristic", "state", "state_label", "output", "feature", "phi",
    ]  # fmt: skip
    assert len(e.characteristic_frame()) == 2 * 4
    assert e.values("prediction", 7)["value"].tolist() == [1.0] * 4


def test_estimated_explanation_from_values_alone():
    rng = np.random.default_rng(0)
    phi, err = rng.normal(size=(3, 5, 2)), rng.random((3, 5, 2))
    feats = rng.integers(0, 3, size=(3, 5))
    e = Explanation.from_values(
        tuple("abcde"),
        {"behaviour": (phi, err, ("L", "R"))},
        method="monte carlo",
        features=feats,
        samples={"behaviour": {"permutations": 64}},
        info={"seed": 1},
    )
    assert not e.is_exact and e.method == "monte carlo"
    assert e.states.tolist() == [0, 1, 2]
    assert e.state_labels[0] == str(tuple(feats[0].tolist()))
    frame = e.to_frame()
    assert "stderr" in frame and len(frame) == phi.size
    np.testing.assert_allclose(frame["phi"], phi.reshape(-1))
    np.testing.assert_allclose(frame["stderr"], err.reshape(-1))
    np.testing.assert_allclose(e.stderr("behaviour", 2).to_numpy(), err[2])
    assert e.results["behaviour"].samples["permutations"] == 64
    with pytest.raises(ValueError, match="no characteristic table"):
        e.values("behaviour", 0)
    with pytest.raises(ValueError, match="no characteristic table"):
        e.characteristic_frame()
    assert pickle.loads(pickle.dumps(e)).info["seed"] == 1
    assert "monte carlo" in repr(e)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="output labels"):
        KindResult(np.zeros((1, 2, 3)), None, ("a",))
    with pytest.raises(ValueError, match="stderr has shape"):
        KindResult(np.zeros((1, 2, 1)), None, ("v",), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="characteristic has shape"):
        KindResult(np.zeros((1, 2, 1)), np.zeros((1, 3, 1)), ("v",))
    with pytest.raises(ValueError, match="expected"):
        Explanation(
            np.arange(2), ("a", "b"), ("f",), {"x": KindResult(np.zeros((1, 1, 1)), None, ("v",))}
        )
    with pytest.raises(ValueError, match="state labels"):
        Explanation(np.arange(2), ("a",), ("f",))
    with pytest.raises(KeyError, match="was not computed"):
        _exact().phi("behaviour", 3)


def test_mixed_kinds_give_zero_stderr_for_the_exact_one():
    exact = _exact()
    est = KindResult(np.ones((2, 2, 1)), None, ("value",), np.full((2, 2, 1), 0.1))
    e = Explanation(
        exact.states, exact.state_labels, exact.feature_names,
        {"prediction": exact.results["prediction"], "outcome": est},
    )  # fmt: skip
    frame = e.to_frame()
    assert (frame.loc[frame["kind"] == "prediction", "stderr"] == 0).all()
    assert (frame.loc[frame["kind"] == "outcome", "stderr"] == 0.1).all()
    assert len(e.characteristic_frame()) == 8  # only the tabulated kind
