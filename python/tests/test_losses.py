"""Losses written in Python: a function of lamina.ops and a Loss subclass. They train, and they
match the engine's built-in losses numerically."""

import numpy as np
import pytest

import lamina
from lamina import ops
from conftest import blobs, mlp, regression


def mse_ops(y_true, y_pred):
    return ops.mean(ops.square(y_pred - y_true), axis=-1)


class Huberish(lamina.losses.Loss):
    """A Loss subclass: sqrt(1 + d^2) - 1 per unit (a smooth L1), averaged per sample."""

    def call(self, y_true, y_pred):
        d = y_pred - y_true
        return ops.mean(ops.sqrt(ops.square(d) + 1.0) - 1.0, axis=-1)


def linear(outputs=1, features=4):
    return lamina.Sequential([lamina.layers.Dense(outputs, input_shape=(features,))])


def train_weights(loss, x, y, init, epochs=1, batch_size=16):
    model = linear(y.shape[1], x.shape[1])
    model.set_weights(init)
    model.compile(lamina.optimizers.SGD(learning_rate=0.05), loss)
    h = model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0)
    return model.get_weights(), h.history["loss"]


def test_ops_mse_trains_exactly_as_builtin_mse():
    x, y = regression(128, outputs=2)
    init = linear(2).get_weights()
    w_ops, l_ops = train_weights(mse_ops, x, y, init)
    w_builtin, l_builtin = train_weights("mse", x, y, init)
    w_obj, _ = train_weights(lamina.losses.MeanSquaredError(), x, y, init)
    for a, b, c in zip(w_ops, w_builtin, w_obj):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b, c, rtol=0, atol=0)
    assert l_ops[0] == pytest.approx(l_builtin[0], rel=1e-5)
    # And the weights did move (1 epoch of 8 steps).
    assert not np.allclose(w_ops[0], init[0])


def test_ops_cross_entropy_matches_builtin():
    x, y = blobs(96)
    onehot = lamina.utils.to_categorical(y, 3)

    def cce(y_true, logits):
        return -ops.sum(y_true * ops.log_softmax(logits), axis=-1)

    init = mlp(activation=None).get_weights()
    results = []
    for loss in (cce, lamina.losses.CategoricalCrossentropy(from_logits=True)):
        model = mlp(activation=None)
        model.set_weights(init)
        model.compile(lamina.optimizers.SGD(learning_rate=0.1), loss)
        results.append(model.fit(x, onehot, epochs=2, batch_size=32, shuffle=False, verbose=0).history["loss"])
        results.append(model.get_weights())
    assert results[0] == pytest.approx(results[2], rel=1e-5)
    for a, b in zip(results[1], results[3]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_custom_losses_lower_the_loss():
    x, y = regression(200)
    for loss in (mse_ops, Huberish()):
        model = linear()
        model.compile(lamina.optimizers.SGD(learning_rate=0.1), loss=loss)
        h = model.fit(x, y, epochs=8, batch_size=20, verbose=0)
        assert h.history["loss"][-1] < 0.2 * h.history["loss"][0], h.history["loss"]
    # The subclass's __call__ averages call() over the batch, as Keras'.
    d = np.array([[0.0, 2.0], [1.0, -1.0]], dtype=np.float32)
    expected = np.mean(np.sqrt(d * d + 1) - 1)
    assert Huberish()(np.zeros_like(d), d).item() == pytest.approx(expected, rel=1e-6)
    assert Huberish().name == "huberish"


def test_a_python_loss_sees_the_batch():
    x, y = regression(40)
    shapes = []

    def spy(y_true, y_pred):
        shapes.append((y_true.shape, y_pred.shape))
        return mse_ops(y_true, y_pred)

    model = linear()
    model.compile("sgd", spy)
    model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert shapes[:3] == [((16, 1), (16, 1)), ((16, 1), (16, 1)), ((8, 1), (8, 1))]


def test_a_hinge_loss_with_ops_maximum_trains():
    x, y = regression(200)
    labels = np.where(y > np.median(y), 1.0, -1.0).astype(np.float32)

    def hinge(y_true, y_pred):  # keras.losses.hinge, written as Keras' docs write it
        return ops.mean(ops.maximum(1.0 - y_true * y_pred, 0.0), axis=-1)

    model = linear()
    model.compile(lamina.optimizers.SGD(learning_rate=0.05), hinge)
    h = model.fit(x, labels, epochs=10, batch_size=20, verbose=0)
    assert h.history["loss"][-1] < 0.75 * h.history["loss"][0], h.history["loss"]
    assert np.mean(np.sign(model.predict(x, verbose=0)) == labels) > 0.9


def test_same_seed_same_training_with_either_mse():
    """From set_random_seed alone (weights and shuffles drawn from it), the ops loss and 'mse'
    train to the same weights, shuffled."""
    x, y = regression(96)
    results = []
    for loss in (mse_ops, "mse", mse_ops):
        lamina.utils.set_random_seed(5)
        model = lamina.Sequential([lamina.layers.Dense(4, activation="tanh", input_shape=(4,)), lamina.layers.Dense(1)])
        model.compile(lamina.optimizers.SGD(0.05), loss)
        model.fit(x, y, epochs=2, batch_size=16, shuffle=True, verbose=0)
        results.append(model.get_weights())
    for a, b, c in zip(*results):
        np.testing.assert_array_equal(a, c)  # the same loss twice: bit for bit
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    lamina.utils.set_random_seed(6)
    other = lamina.Sequential([lamina.layers.Dense(4, activation="tanh", input_shape=(4,)), lamina.layers.Dense(1)])
    assert not np.allclose(other.get_weights()[0], results[0][0])
