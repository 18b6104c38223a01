"""lamina.explain: attributions with known answers on linear models."""

import numpy as np
import pytest

import lamina
from lamina import explain


def linear_model(w, b):
    model = lamina.Sequential([lamina.layers.Dense(w.shape[1], input_shape=(w.shape[0],))])
    model.set_weights([w, b])
    return model


def test_saliency_of_a_linear_model_is_abs_w():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 3)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    model = linear_model(w, b)
    x = rng.normal(size=(4, 5)).astype(np.float32)
    for target in range(3):
        s = explain.saliency(model, x, target=target)
        assert s.shape == x.shape
        np.testing.assert_allclose(s, np.tile(np.abs(w[:, target]), (4, 1)), rtol=1e-6)
    raw = explain.saliency(model, x, target=1, abs=False)
    np.testing.assert_allclose(raw, np.tile(w[:, 1], (4, 1)), rtol=1e-6)
    # target=None: each sample's predicted class.
    pred = model.predict(x, verbose=0).argmax(1)
    np.testing.assert_allclose(explain.saliency(model, x), np.abs(w[:, pred].T), rtol=1e-6)
    # One target per sample.
    targets = [2, 0, 1, 2]
    np.testing.assert_allclose(explain.saliency(model, x, target=targets), np.abs(w[:, targets].T), rtol=1e-6)


def test_input_x_gradient_and_integrated_gradients_of_a_linear_model():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 2)).astype(np.float32)
    model = linear_model(w, np.zeros(2, np.float32))
    x = rng.normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(explain.input_x_gradient(model, x, target=0), x * w[:, 0], rtol=1e-5, atol=1e-6)
    # For a linear model IG from a zero baseline is exactly x * w, and complete.
    attr, delta = explain.integrated_gradients(model, x, target=1, n_steps=8, return_convergence_delta=True)
    np.testing.assert_allclose(attr, x * w[:, 1], rtol=1e-4, atol=1e-5)
    assert np.all(np.abs(delta) < 1e-4)


def test_explain_rejects_a_target_out_of_range():
    model = linear_model(np.ones((2, 3), np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="3|target"):
        explain.saliency(model, np.ones((1, 2), np.float32), target=3)


def test_targets_as_numpy_integers_and_bad_targets():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 4)).astype(np.float32)
    model = linear_model(w, np.zeros(4, np.float32))
    x = rng.normal(size=(5, 3)).astype(np.float32)
    pred = model.predict(x, verbose=0).argmax(axis=1)  # np.int64 values
    np.testing.assert_array_equal(explain.saliency(model, x, target=pred[0]), explain.saliency(model, x, target=int(pred[0])))
    np.testing.assert_allclose(explain.saliency(model, x, target=pred), np.abs(w[:, pred].T), rtol=1e-6)
    np.testing.assert_allclose(explain.saliency(model, x, target=np.int32(3)), np.tile(np.abs(w[:, 3]), (5, 1)), rtol=1e-6)
    for bad in ("a", 1.5, True, [0.5, 1.5, 0, 0, 0], np.full(5, 0.5)):
        with pytest.raises(TypeError, match="target"):
            explain.saliency(model, x, target=bad)
