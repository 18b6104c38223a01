"""The Functional API: Input, layer calls, several inputs (a list or a dict), merge layers,
models inside models, and the JSON architecture round trip."""

import json

import numpy as np
import pytest

import lamina
from lamina import layers
from conftest import blobs


def two_input_model():
    a = lamina.Input(shape=(3,), name="left")
    b = lamina.Input(shape=(2,), name="right")
    ha = layers.Dense(4, activation="relu", name="da")(a)
    hb = layers.Dense(4, activation="relu", name="db")(b)
    added = layers.Add(name="add")([ha, hb])
    joined = layers.Concatenate(name="cat")([added, hb])
    out = layers.Dense(2, activation="softmax", name="out")(joined)
    return lamina.Model(inputs=[a, b], outputs=out)


def test_input_and_layer_calls_build_a_graph():
    inputs = lamina.Input(shape=(4,))
    assert isinstance(inputs, lamina._lamina.KerasTensor)
    assert inputs.shape == (None, 4)
    h = layers.Dense(8, activation="relu")(inputs)
    assert h.shape == (None, 8)
    outputs = layers.Dense(3)(h)
    model = lamina.Model(inputs=inputs, outputs=outputs)
    assert model.input_shape == (None, 4) and model.output_shape == (None, 3)
    assert not isinstance(model, lamina.Sequential)
    x, y = blobs(128)
    # The same computation by hand from the weights.
    k1, b1, k2, b2 = model.get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0), np.maximum(x @ k1 + b1, 0) @ k2 + b2, rtol=1e-4, atol=1e-5)
    model.compile("adam", lamina.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    h = model.fit(x, y, epochs=4, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_multi_input_with_a_list_and_a_dict():
    model = two_input_model()
    assert model.input_names == ["left", "right"]
    assert model.input_shape == [(None, 3), (None, 2)]
    rng = np.random.default_rng(0)
    xa = rng.normal(size=(32, 3)).astype(np.float32)
    xb = rng.normal(size=(32, 2)).astype(np.float32)
    p_list = model.predict([xa, xb], verbose=0)
    p_dict = model.predict({"right": xb, "left": xa}, verbose=0)
    assert p_list.shape == (32, 2)
    np.testing.assert_array_equal(p_list, p_dict)
    # By hand: out(concat(relu(a Wa) + relu(b Wb), relu(b Wb))).
    wa, ba, wb, bb, wo, bo = [model.get_layer(n).get_weights()[i] for n in ("da", "db", "out") for i in (0, 1)]
    ha, hb = np.maximum(xa @ wa + ba, 0), np.maximum(xb @ wb + bb, 0)
    logits = np.concatenate([ha + hb, hb], axis=1) @ wo + bo
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(p_list, e / e.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    y = (xa[:, 0] + xb[:, 0] > 0).astype(np.int64)
    model.compile("adam", "sparse_categorical_crossentropy")
    h1 = model.fit([xa, xb], y, epochs=3, verbose=0)
    h2 = model.fit({"left": xa, "right": xb}, y, epochs=3, verbose=0)
    assert h2.history["loss"][-1] < h1.history["loss"][0]
    with pytest.raises(ValueError, match="right"):
        model.predict({"left": xa}, verbose=0)


def test_nested_model_is_a_layer():
    inner = lamina.Sequential([layers.Dense(5, activation="relu", input_shape=(4,)), layers.Dense(2)], name="inner")
    inputs = lamina.Input(shape=(4,))
    outputs = layers.Dense(1, name="head")(inner(inputs))
    outer = lamina.Model(inputs, outputs)
    assert any(isinstance(l, lamina.Model) for l in outer.layers)
    x, _ = blobs(10)
    head = outer.get_layer("head").get_weights()
    np.testing.assert_allclose(outer.predict(x, verbose=0), inner.predict(x, verbose=0) @ head[0] + head[1],
                               rtol=1e-4, atol=1e-5)
    # The nested model's weights are shared, not copied: training the outer one changes inner's.
    before = inner.get_weights()[0].copy()
    outer.compile("sgd", "mse")
    outer.fit(x, np.ones((10, 1), np.float32), epochs=2, verbose=0)
    assert not np.array_equal(before, inner.get_weights()[0])
    # And a Sequential inside a Sequential.
    seq = lamina.Sequential([inner, layers.Dense(1)])
    assert seq.predict(x, verbose=0).shape == (10, 1)


def test_to_json_and_model_from_json_give_the_same_architecture():
    for model in (two_input_model(),
                  lamina.Sequential([layers.Dense(6, activation="tanh", input_shape=(4,)), layers.Dropout(0.5),
                                     layers.Dense(2)])):
        text = model.to_json()
        assert json.loads(text)["class_name"] in ("Functional", "Sequential", "Model")
        clone = lamina.models.model_from_json(text)
        assert type(clone) is type(model)
        assert clone.to_json() == text
        assert [l.name for l in clone.layers] == [l.name for l in model.layers]
        assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
        assert clone.count_params() == model.count_params()
        # Fresh weights, but the same function once the weights are copied.
        clone.set_weights(model.get_weights())
        rng = np.random.default_rng(0)
        xs = [rng.normal(size=(6,) + s[1:]).astype(np.float32)
              for s in (model.input_shape if isinstance(model.input_shape, list) else [model.input_shape])]
        xs = xs if len(xs) > 1 else xs[0]
        np.testing.assert_array_equal(model.predict(xs, verbose=0), clone.predict(xs, verbose=0))


def test_multi_output_fit_evaluate_predict():
    inputs = lamina.Input(shape=(4,), name="in")
    h = layers.Dense(8, activation="relu")(inputs)
    cls = layers.Dense(3, activation="softmax", name="cls")(h)
    reg = layers.Dense(1, name="reg")(h)
    model = lamina.Model(inputs, [cls, reg])
    assert model.output_names == ["cls", "reg"]
    x, y = blobs(64)
    target = x[:, :1] * 2
    p = model.predict(x, verbose=0)
    assert isinstance(p, list) and [a.shape for a in p] == [(64, 3), (64, 1)]
    model.compile("adam", {"cls": "sparse_categorical_crossentropy", "reg": "mse"}, loss_weights=[1.0, 0.5])
    h1 = model.fit(x, [y, target], epochs=3, verbose=0)
    assert {"loss", "cls_loss", "reg_loss"} <= set(h1.history)
    logs = model.evaluate(x, {"cls": y, "reg": target}, verbose=0, return_dict=True)
    # The total is the weighted sum of the parts.
    assert logs["loss"] == pytest.approx(logs["cls_loss"] + 0.5 * logs["reg_loss"], rel=1e-4)
    assert logs["reg_loss"] == pytest.approx(float(np.mean((model.predict(x, verbose=0)[1] - target) ** 2)), rel=1e-4)


def test_layers_called_on_arrays_run_eagerly():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.full((2, 3), 2.0, np.float32)
    added = layers.Add()([a, b])  # a list of arrays: several inputs, as Keras
    assert isinstance(added, lamina.Tensor)
    np.testing.assert_array_equal(np.asarray(added), a + b)
    np.testing.assert_array_equal(np.asarray(layers.Concatenate()([a, b])), np.concatenate([a, b], axis=1))
    dense = layers.Dense(4)
    out = dense(a)  # built on first call
    k, bias = dense.get_weights()
    np.testing.assert_allclose(np.asarray(out), a @ k + bias, rtol=1e-5, atol=1e-6)
    assert np.asarray(layers.Dense(2)([[1.0, 2.0, 3.0]])).shape == (1, 2)  # a list of numbers: one input
    x = lamina.tensor(a)
    x.requires_grad = True
    lamina.ops.sum(layers.Add()([x, b])).backward()
    np.testing.assert_array_equal(np.asarray(x.grad), np.ones((2, 3)))
    with pytest.raises(ValueError, match="one input"):
        layers.Dense(2)([a, b])
    with pytest.raises(lamina.ShapeError, match="Add"):
        layers.Add()([a, np.ones((2, 4), np.float32)])
