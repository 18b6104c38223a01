"""Files: save and load_model, load_weights, ONNX export (checked by onnx, run by OpenCV), and
models passed between Python and the C++ CLI with identical predictions."""

import json
import os
import subprocess

import numpy as np
import pytest

import lamina
from conftest import blobs, mlp, regression


def trained_classifier(epochs=3):
    x, y = blobs(128)
    model = mlp()
    model.compile(lamina.optimizers.Adam(learning_rate=0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, verbose=0)
    return model, x, y


def test_save_and_load_model_predict_identically(tmp_path):
    model, x, y = trained_classifier()
    path = tmp_path / "model.safetensors"
    model.save(path)  # a pathlib.Path works as well as a str
    assert path.stat().st_size > 0
    loaded = lamina.models.load_model(str(path))
    assert isinstance(loaded, lamina.Sequential)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The compile config travels too: the loaded model evaluates (and trains) as saved.
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)
    assert isinstance(loaded.optimizer, lamina.optimizers.Adam)
    assert loaded.optimizer.learning_rate == pytest.approx(0.01)
    h = loaded.fit(x, y, epochs=2, verbose=0)
    assert len(h.history["loss"]) == 2
    with pytest.raises(FileExistsError):
        model.save(path, overwrite=False)


def test_save_and_load_a_functional_model(tmp_path):
    a = lamina.Input(shape=(3,), name="a")
    b = lamina.Input(shape=(2,), name="b")
    out = lamina.layers.Dense(2)(lamina.layers.Concatenate()([a, b]))
    model = lamina.Model([a, b], out)
    path = str(tmp_path / "f.safetensors")
    model.save(path)
    loaded = lamina.models.load_model(path)
    assert loaded.input_names == ["a", "b"]
    xa, xb = np.ones((4, 3), np.float32), np.arange(8, dtype=np.float32).reshape(4, 2)
    np.testing.assert_array_equal(loaded.predict([xa, xb], verbose=0), model.predict([xa, xb], verbose=0))


def test_load_weights(tmp_path):
    model, x, _ = trained_classifier(1)
    path = str(tmp_path / "w.safetensors")
    model.save_weights(path)
    other = mlp()
    assert not np.array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    other.load_weights(path)
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    wider = mlp(hidden=8)
    with pytest.raises(ValueError):
        wider.load_weights(path)


def test_onnx_export_passes_the_checker_and_runs_in_opencv(tmp_path):
    onnx = pytest.importorskip("onnx")
    model, x, _ = trained_classifier(1)
    path = str(tmp_path / "m.onnx")
    model.export(path)
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    assert len(proto.graph.input) == 1 and len(proto.graph.output) == 1
    cv2 = pytest.importorskip("cv2")
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(x[:16])
    out = net.forward()
    np.testing.assert_allclose(out, model.predict(x[:16], verbose=0), rtol=1e-4, atol=1e-5)
    # And the ONNX file loads back into lamina.
    back = lamina.models.load_model(path)
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="tflite"):
        model.export(str(tmp_path / "m.tflite"), format="tflite")


def write_csv(path, x, y=None):
    with open(path, "w") as f:
        for i, row in enumerate(x):
            cells = ["%.9g" % v for v in row]
            if y is not None:
                cells.append(str(int(y[i])))
            f.write(",".join(cells) + "\n")


def run_cli(cli, *args):
    out = subprocess.run([cli, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{cli} {' '.join(map(str, args))} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def parse_regression(text):
    """`lamina predict` on a regression model: "INDEX v1 v2 ..." per sample."""
    rows = [line.split() for line in text.strip().splitlines() if line[:1].isdigit()]
    assert [int(r[0]) for r in rows] == list(range(len(rows)))
    return np.array([[float(v) for v in r[1:]] for r in rows])


def parse_classes(text, classes):
    """`lamina predict --top K` on a classifier: "INDEX c:p c:p ..." per sample, as (N, classes)."""
    rows = [line.split() for line in text.strip().splitlines() if line[:1].isdigit()]
    out = np.zeros((len(rows), classes))
    for i, r in enumerate(rows):
        assert int(r[0]) == i
        for item in r[1:]:
            c, p = item.split(":")
            out[i, int(c)] = float(p)
    return out


def test_saved_in_python_predicted_by_the_cli(cli, tmp_path):
    x, y = regression(64, outputs=2)
    model = lamina.Sequential([lamina.layers.Dense(8, activation="tanh", input_shape=(4,)), lamina.layers.Dense(2)])
    model.compile(lamina.optimizers.SGD(learning_rate=0.05), "mse")
    model.fit(x, y, epochs=3, verbose=0)
    path = tmp_path / "py.safetensors"
    model.save(path)
    csv = tmp_path / "x.csv"
    write_csv(csv, x)
    cli_pred = parse_regression(run_cli(cli, "predict", path, csv))
    py_pred = model.predict(x, verbose=0)
    assert cli_pred.shape == py_pred.shape == (64, 2)
    # The CLI prints 6 significant digits: the same text as Python's prediction written that way.
    np.testing.assert_allclose(cli_pred, py_pred, rtol=5e-6, atol=1e-6)
    assert ["%.6g" % v for v in cli_pred.ravel()] == ["%.6g" % v for v in py_pred.ravel()]

    # A classifier saved in Python: the CLI's class probabilities are Python's.
    clf, xc, _ = trained_classifier(2)
    clf_path = tmp_path / "clf.safetensors"
    clf.save(clf_path)
    write_csv(tmp_path / "xc.csv", xc[:20])
    probs = parse_classes(run_cli(cli, "predict", clf_path, tmp_path / "xc.csv", "--top", 3), 3)
    np.testing.assert_allclose(probs, clf.predict(xc[:20], verbose=0), atol=1.5e-6)


def test_trained_by_the_cli_loaded_in_python(cli, tmp_path):
    x, y = blobs(160, seed=3)
    write_csv(tmp_path / "train.csv", x[:120], y[:120])
    write_csv(tmp_path / "test.csv", x[120:], y[120:])
    spec = {
        "model": {"class_name": "Sequential", "config": {"name": "cli_model", "layers": [
            {"class_name": "Dense", "config": {"name": "hidden", "batch_input_shape": [None, 4], "units": 12,
                                               "activation": "relu"}},
            {"class_name": "Dense", "config": {"name": "out", "units": 3, "activation": "softmax"}}]}},
        "data": {"train": "train.csv", "test": "test.csv", "scale": 1},
        "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
                    "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "fit": {"epochs": 5, "batch_size": 16, "shuffle": True, "seed": 3},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    saved = tmp_path / "cli.safetensors"
    run_cli(cli, "train", tmp_path / "spec.json", "--quiet", "--threads", 1, "--save", saved)
    model = lamina.models.load_model(str(saved))
    assert [l.name for l in model.layers] == ["hidden", "out"]
    probs = parse_classes(run_cli(cli, "predict", saved, tmp_path / "test.csv", "--top", 3), 3)
    py = model.predict(x[120:], verbose=0)
    assert py.shape == (40, 3)
    np.testing.assert_allclose(probs, py, atol=1.5e-6)
    # It learned something, and Python can keep training it (the compile config came along).
    assert model.evaluate(x[120:], y[120:], verbose=0)[1] > 0.6
    model.fit(x[:120], y[:120], epochs=1, verbose=0)
    # And back: saved again by Python, predicted by the CLI.
    again = tmp_path / "again.safetensors"
    model.save(again)
    probs2 = parse_classes(run_cli(cli, "predict", again, tmp_path / "test.csv", "--top", 3), 3)
    np.testing.assert_allclose(probs2, model.predict(x[120:], verbose=0), atol=1.5e-6)


def test_cnn_and_rnn_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((8, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 8)
    cnn = lamina.Sequential([
        lamina.layers.Conv2D(4, 3, activation="relu", padding="same", input_shape=(8, 8, 1)),
        lamina.layers.BatchNormalization(),
        lamina.layers.MaxPooling2D(2),
        lamina.layers.Flatten(),
        lamina.layers.Dense(3, activation="softmax"),
    ])
    cnn.compile("adam", "sparse_categorical_crossentropy")
    cnn.fit(x, y, epochs=2, verbose=0)  # BatchNormalization's moving statistics move
    path = tmp_path / "cnn.safetensors"
    cnn.save(path)
    np.testing.assert_array_equal(lamina.models.load_model(path).predict(x, verbose=0), cnn.predict(x, verbose=0))
    onnx = pytest.importorskip("onnx")
    cv2 = pytest.importorskip("cv2")
    onnx_path = str(tmp_path / "cnn.onnx")
    cnn.export(onnx_path)
    onnx.checker.check_model(onnx.load(onnx_path))
    net = cv2.dnn.readNetFromONNX(onnx_path)
    net.setInput(x)
    np.testing.assert_allclose(net.forward(), cnn.predict(x, verbose=0), rtol=1e-4, atol=1e-5)

    tokens = rng.integers(1, 20, size=(6, 5))  # int64 token ids, converted once
    rnn = lamina.Sequential([lamina.layers.Embedding(20, 4, input_shape=(5,)), lamina.layers.LSTM(3),
                             lamina.layers.Dense(1, activation="sigmoid")])
    rnn.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    rnn.fit(tokens, rng.integers(0, 2, 6), epochs=2, verbose=0)
    path = tmp_path / "rnn.safetensors"
    rnn.save(path)
    np.testing.assert_array_equal(lamina.models.load_model(path).predict(tokens, verbose=0),
                                  rnn.predict(tokens, verbose=0))
