"""Sequential models: construction, compile, fit, evaluate, predict, summary, weights, and the
inputs fit and predict accept (read in place, or converted once)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lamina
from conftest import blobs, mlp, regression


def test_sequential_from_a_list_and_add_build_the_same_model():
    a = mlp()
    b = lamina.Sequential()
    b.add(lamina.layers.Dense(16, activation="relu", input_dim=4))  # Keras 2's input_dim alias
    b.add(lamina.layers.Dense(3, activation="softmax"))
    assert [l.__class__.__name__ for l in a.layers] == ["Dense", "Dense"]
    assert len(b.layers) == 2
    assert a.input_shape == b.input_shape == (None, 4)
    assert a.output_shape == b.output_shape == (None, 3)
    assert a.count_params() == b.count_params() == 4 * 16 + 16 + 16 * 3 + 3
    b.set_weights(a.get_weights())
    x, _ = blobs(8)
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    c = lamina.Sequential()
    c.add(lamina.Input(shape=(4,)))
    c.add(lamina.layers.Dense(3))
    assert c.input_shape == (None, 4) and c.output_shape == (None, 3)
    # As Keras: built once the input shape is known, and still taking layers, weights kept.
    assert c.count_params() == 15 and c.built
    kernel = c.get_weights()[0]
    c.compile("sgd", "mse")
    c.add(lamina.layers.Dense(1))
    assert c.count_params() == 15 + 4
    np.testing.assert_array_equal(c.get_weights()[0], kernel)
    assert len(c.fit(np.ones((8, 4), np.float32), np.ones((8, 1), np.float32), verbose=0).history["loss"]) == 1
    unshaped = lamina.Sequential([lamina.layers.Dense(3)])
    assert not unshaped.built and unshaped.get_weights() == []
    assert unshaped.predict(np.ones((2, 5), np.float32), verbose=0).shape == (2, 3)
    assert unshaped.built and unshaped.count_params() == 18


def test_sgd_lr_alias_and_positional_arguments():
    assert lamina.optimizers.SGD(lr=0.05).learning_rate == pytest.approx(0.05)
    assert lamina.optimizers.SGD(learning_rate=0.2, momentum=0.9).get_config()["momentum"] == 0.9
    with pytest.raises(TypeError):
        lamina.optimizers.SGD(lr=0.1, learning_rate=0.1)
    # By position, in Keras' order.
    assert lamina.optimizers.Adam(3e-4).learning_rate == pytest.approx(3e-4)
    assert lamina.optimizers.SGD(0.1, 0.9).get_config()["momentum"] == 0.9
    assert lamina.optimizers.RMSprop(0.01, 0.8).get_config()["rho"] == 0.8
    with pytest.raises(TypeError, match="multiple values"):
        lamina.optimizers.SGD(0.1, learning_rate=0.2)
    with pytest.raises(TypeError, match="positional"):
        lamina.optimizers.SGD(0.1, 0.9, False, 4)
    # The rate given is the rate training uses: one SGD step by hand.
    model = lamina.Sequential([lamina.layers.Dense(1, input_shape=(1,), use_bias=False)])
    model.set_weights([np.array([[1.0]], np.float32)])
    model.compile(lamina.optimizers.SGD(0.25), "mse")
    model.fit(np.array([[2.0]], np.float32), np.array([[0.0]], np.float32), epochs=1, verbose=0)
    # loss = (2w)^2, d/dw = 8w = 8: w = 1 - 0.25 * 8 = -1
    np.testing.assert_allclose(model.get_weights()[0], [[-1.0]], rtol=1e-6)


@pytest.mark.parametrize("optimizer,loss,metrics", [
    ("adam", "sparse_categorical_crossentropy", ["accuracy"]),
    (lamina.optimizers.SGD(lr=0.1), lamina.losses.SparseCategoricalCrossentropy(), [
        lamina.metrics.SparseCategoricalAccuracy()]),
    ("rmsprop", "sparse_categorical_crossentropy", None),
])
def test_compile_with_names_and_objects_then_fit_learns(optimizer, loss, metrics):
    x, y = blobs(256)
    model = mlp()
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, epochs=10, batch_size=16, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    if metrics:
        assert isinstance(before, list) and len(before) == 2
        assert after[0] < before[0]
        assert after[1] > 0.8
    else:
        assert isinstance(before, float) and after < before
    assert isinstance(history, lamina.callbacks.History)
    assert history is model.history
    assert history.epoch == list(range(10))
    assert len(history.history["loss"]) == 10
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(isinstance(v, float) for v in history.history["loss"])


def test_history_keys_with_validation_split_and_validation_data():
    x, y = blobs(200)
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0)
    assert list(h.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert all(isinstance(v, list) and len(v) == 2 for v in h.history.values())
    xv, yv = blobs(50, seed=1)
    h2 = model.fit(x, y, epochs=3, validation_data=(xv, yv), verbose=0)
    assert sorted(h2.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(h2.history["val_loss"]) == 3
    # The last val_loss is evaluate's loss on the validation data (inference mode, same weights).
    assert h2.history["val_loss"][-1] == pytest.approx(model.evaluate(xv, yv, verbose=0)[0], rel=1e-4)


def test_evaluate_return_forms():
    x, y = blobs(64)
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    values = model.evaluate(x, y, verbose=0)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(logs) == ["loss", "accuracy"]
    assert values == [pytest.approx(logs["loss"]), pytest.approx(logs["accuracy"])]
    # Accuracy is the fraction of argmax hits, computed here from predict.
    pred = model.predict(x, verbose=0)
    assert logs["accuracy"] == pytest.approx(np.mean(pred.argmax(1) == y))
    # The loss is the mean cross-entropy of the predicted probabilities.
    ce = -np.mean(np.log(np.clip(pred[np.arange(len(y)), y], 1e-7, 1)))
    assert logs["loss"] == pytest.approx(ce, rel=1e-4)
    plain = mlp()
    plain.compile("adam", "sparse_categorical_crossentropy")
    assert isinstance(plain.evaluate(x, y, verbose=0), float)


def test_predict_returns_float32_arrays_of_the_right_shape():
    model = mlp(classes=5)
    x, _ = blobs(37, classes=5)
    for batch_size in (None, 1, 8, 100):
        p = model.predict(x, batch_size=batch_size, verbose=0)
        assert isinstance(p, np.ndarray) and p.dtype == np.float32 and p.shape == (37, 5)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)  # softmax rows
    np.testing.assert_allclose(model.predict(x[:1], verbose=0), model.predict(x, verbose=0)[:1], rtol=1e-6)
    assert model.predict_on_batch(x).shape == (37, 5)


def test_summary_print_fn():
    model = mlp()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert len(lines) > 4
    assert "Dense" in text
    assert str(model.count_params()) in text.replace(",", "")


def test_get_set_weights_round_trip_and_shape_error():
    a, b = mlp(), mlp()
    x, _ = blobs(16)
    assert not np.allclose(a.predict(x, verbose=0), b.predict(x, verbose=0))
    weights = a.get_weights()
    assert [w.shape for w in weights] == [(4, 16), (16,), (16, 3), (3,)]
    assert all(w.dtype == np.float32 for w in weights)
    b.set_weights(weights)
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    bad = list(weights)
    bad[2] = np.zeros((3, 16), dtype=np.float32)
    with pytest.raises(ValueError, match=r"16, 3|3, 16"):
        b.set_weights(bad)
    with pytest.raises(ValueError):
        b.set_weights(weights[:3])
    # The failed calls changed nothing.
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    layer = b.layers[0]
    with pytest.raises(ValueError, match="kernel"):
        layer.set_weights([np.zeros((5, 16), np.float32), np.zeros(16, np.float32)])


def _train_once(x, y, init):
    model = mlp()
    model.set_weights(init)
    model.compile(lamina.optimizers.SGD(learning_rate=0.1), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    return model.get_weights(), model.predict(x, verbose=0)


def test_fit_and_predict_accept_fortran_float64_and_int_inputs():
    x, y = blobs(64)
    x = np.round(x)  # integral values, so that an int copy holds the same numbers
    init = mlp().get_weights()
    ref_w, ref_p = _train_once(x, y, init)
    for variant in (np.asfortranarray(x), x.astype(np.float64), x.astype(np.int32), x.astype(np.int64)):
        w, p = _train_once(variant, y, init)
        for a, b in zip(ref_w, w):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(p, ref_p, rtol=1e-6, atol=1e-7)
    # Labels as float32 or int32 give the same training too.
    w, _ = _train_once(x, y.astype(np.float32), init)
    np.testing.assert_allclose(w[0], ref_w[0], rtol=1e-6, atol=1e-7)
    # A list of lists predicts like the array.
    model = mlp()
    np.testing.assert_allclose(model.predict(x.tolist(), verbose=0), model.predict(x, verbose=0), rtol=1e-6)


# Run in a fresh process so that ru_maxrss (the peak) starts at this test's own footprint.
_RSS_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import lamina

    def status(key):                                  # kB, from /proc/self/status
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith(key + ":"))

    kind = sys.argv[1]
    n, f = 200_000, 128                               # 100 MiB of float32
    x = np.full((n, f), 0.5, dtype=np.float32, order="F" if kind == "fortran" else "C")  # resident
    y = np.zeros((n, 1), dtype=np.float32)
    model = lamina.Sequential([lamina.layers.Dense(1, input_shape=(f,))])
    model.compile("sgd", "mse")
    model.predict(x[:10], verbose=0)                  # the engine's own first-use allocations
    model.fit(x[:64], y[:64], epochs=1, verbose=0)
    try:                                              # the peak (VmHWM) restarts from the RSS now
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = status("VmRSS")
    except OSError:                                   # else: growth over the earlier peak
        base = max(status("VmRSS"), status("VmHWM"))
    model.fit(x, y, epochs=1, batch_size=256, steps_per_epoch=4, validation_split=0.1, verbose=0)
    model.evaluate(x[:50_000], y[:50_000], batch_size=4096, verbose=0)
    model.predict(x[:50_000], batch_size=4096, verbose=0)
    print((status("VmHWM") - base) * 1024, x.nbytes)
""")



@pytest.mark.parametrize("kind", ["c", "fortran"])
def test_fit_reads_c_contiguous_float32_in_place(kind):
    """Observable: the process's peak RSS (VmHWM, reset first) during fit (shuffled, with a
    validation split), evaluate and predict over its resident size before.
    On a C-contiguous float32 x of 100 MiB it must not grow by anything near 100 MiB (no copy of
    x); a Fortran-ordered x is converted, and the same measure sees that copy (the control,
    which shows that the measure can see a copy)."""
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, kind], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    grew, size = (int(v) for v in out.stdout.split()[-2:])
    if kind == "c":
        assert grew < size / 4, f"peak RSS grew by {grew} bytes during fit on {size} bytes of x: a copy?"
    else:
        assert grew > size / 2, f"peak RSS grew by only {grew} bytes while converting {size} bytes"


def test_keras_alias_and_utils():
    from lamina import keras
    import lamina.keras as keras2
    assert keras is lamina and keras2 is lamina
    assert keras.layers.Dense is lamina.layers.Dense
    np.testing.assert_array_equal(lamina.utils.to_categorical([0, 2, 1]), np.eye(3, dtype=np.float32)[[0, 2, 1]])
    assert lamina.utils.to_categorical([1], num_classes=4).shape == (1, 4)
    with pytest.raises(ValueError, match="labels"):
        lamina.utils.to_categorical([3], num_classes=2)
    # set_random_seed makes weight draws repeat.
    lamina.utils.set_random_seed(7)
    a = mlp().get_weights()
    lamina.utils.set_random_seed(7)
    b = mlp().get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)


def test_layer_and_model_introspection():
    model = mlp()
    assert model.get_layer(index=-1) == model.layers[-1]
    first = model.layers[0]
    assert model.get_layer(first.name) == first
    assert first.count_params() == 4 * 16 + 16
    config = first.get_config()
    assert config["units"] == 16 and config["activation"] == "relu"
    again = lamina.layers.Dense.from_config(config)
    assert again.get_config() == config
    assert model.get_config()["layers"][0]["class_name"] in ("InputLayer", "Dense")
    assert len(model.weights) == 4 and all(isinstance(w, lamina.Tensor) for w in model.weights)


def test_frozen_layers_do_not_train():
    x, y = blobs(64)
    model = mlp()
    model.layers[0].trainable = False
    assert len(model.trainable_weights) == 2
    model.compile(lamina.optimizers.SGD(learning_rate=0.1), "sparse_categorical_crossentropy")
    before = model.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert not np.array_equal(before[2], after[2])


def test_dropout_is_active_only_in_training():
    model = lamina.Sequential([lamina.layers.Dropout(0.5, input_shape=(1000,))])
    x = np.ones((4, 1000), np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    out = np.asarray(model(x, training=True))
    dropped = np.mean(out == 0)
    assert 0.4 < dropped < 0.6
    np.testing.assert_allclose(out[out != 0], 2.0)  # inverted dropout: kept units scaled by 1/(1-rate)


def test_model_call_is_differentiable():
    model = lamina.Sequential([lamina.layers.Dense(1, input_shape=(3,))])
    x = lamina.tensor(np.random.default_rng(0).normal(size=(5, 3)))
    x.requires_grad = True
    out = model(x)
    assert isinstance(out, lamina.Tensor) and out.shape == (5, 1)
    np.testing.assert_allclose(np.asarray(out), model.predict(np.asarray(x), verbose=0), rtol=1e-6, atol=1e-6)
    lamina.ops.sum(out).backward()
    kernel = model.get_weights()[0][:, 0]
    np.testing.assert_allclose(np.asarray(x.grad), np.tile(kernel, (5, 1)), rtol=1e-6)


def _first_epoch_loss(x, y, init, **kw):
    model = mlp()
    model.set_weights(init)
    # A zero rate keeps the weights, so the epoch's loss is the weighted loss at init.
    model.compile(lamina.optimizers.SGD(learning_rate=0.0), "sparse_categorical_crossentropy")
    return model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0, **kw).history["loss"][0]


def _weighted_ce(x, y, init, w):
    """Keras' sum_over_batch_size: each batch's sum of w * cross-entropy over its size, averaged."""
    model = mlp()
    model.set_weights(init)
    p = model.predict(x, verbose=0)
    ce = -np.log(p[np.arange(len(y)), y]) * w
    return float(np.mean([ce[i:i + 16].sum() / 16 for i in range(0, len(y), 16)]))


def test_sample_weight_and_initial_epoch():
    x, y = blobs(64)
    init = mlp().get_weights()
    plain = _first_epoch_loss(x, y, init)
    assert plain == pytest.approx(_weighted_ce(x, y, init, np.ones(64)), rel=1e-4)
    assert _first_epoch_loss(x, y, init, sample_weight=np.ones(64)) == pytest.approx(plain, rel=1e-5)
    w = np.where(y == 0, 3.0, 1.0)
    assert _first_epoch_loss(x, y, init, sample_weight=w) == pytest.approx(_weighted_ce(x, y, init, w), rel=1e-4)
    assert _first_epoch_loss(x, y, init, class_weight={0: 1.0, 1: 1.0, 2: 1.0}) == pytest.approx(plain, rel=1e-5)
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    h = model.fit(x, y, initial_epoch=2, epochs=5, verbose=0)
    assert h.epoch == [2, 3, 4]


def test_class_weight_weighs_as_sample_weight():
    x, y = blobs(64)
    init = mlp().get_weights()
    w = np.where(y == 0, 3.0, 1.0)
    expected = _weighted_ce(x, y, init, w)
    assert _first_epoch_loss(x, y, init, class_weight={0: 3.0, 1: 1.0, 2: 1.0}) == pytest.approx(expected, rel=1e-4)


def test_clone_model_is_independent():
    x, y = blobs(32)
    model = mlp()
    clone = lamina.models.clone_model(model)
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))
    clone.compile(lamina.optimizers.SGD(learning_rate=0.5), "sparse_categorical_crossentropy")
    clone.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(clone.get_weights()[0], model.get_weights()[0])


def test_reading_weights_before_fit_draws_what_fit_would():
    """The weights a Sequential shows before fit are the ones fit trains: one draw per layer, in
    order, whether the first read or fit builds the model (so a seeded program trains the same
    whether or not it looks at its weights first)."""
    x, y = blobs(32)

    def model():
        lamina.utils.set_random_seed(3)
        m = lamina.Sequential()
        m.add(lamina.layers.Dense(8, input_dim=4, activation="relu"))
        m.add(lamina.layers.Dense(3, activation="softmax"))
        m.compile(lamina.optimizers.SGD(learning_rate=0.0), "sparse_categorical_crossentropy")
        return m

    looked = model()
    shown = looked.get_weights()
    looked.fit(x, y, epochs=1, verbose=0)
    unseen = model()
    unseen.fit(x, y, epochs=1, verbose=0)  # built by fit; a zero rate keeps the drawn weights
    for a, b, c in zip(shown, looked.get_weights(), unseen.get_weights()):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
