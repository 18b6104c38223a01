"""Exception types and messages: ValueError (lamina.ShapeError is one) for bad shapes and
unknown names, TypeError for wrong types, OSError (lamina.IoError) for unreadable files."""

import numpy as np
import pytest

import lamina
from lamina import ops
from conftest import blobs, mlp


def test_exception_hierarchy():
    assert issubclass(lamina.ShapeError, ValueError)
    assert issubclass(lamina.IoError, OSError)


def test_bad_input_shapes_raise_shape_errors_naming_the_shapes():
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = blobs(20)
    with pytest.raises(ValueError, match="5") as e:
        model.predict(np.ones((3, 5), np.float32), verbose=0)
    assert "4" in str(e.value)
    with pytest.raises(ValueError):
        model.fit(np.ones((20, 7), np.float32), y, verbose=0)
    with pytest.raises(ValueError, match="20|19"):
        model.fit(x, y[:19], verbose=0)  # x and y disagree on the number of samples
    with pytest.raises(lamina.ShapeError):
        lamina.tensor(np.ones((2, 3))) @ lamina.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="None"):
        model.fit(x, None, verbose=0)
    # The model is unharmed.
    assert model.predict(x, verbose=0).shape == (20, 3)


def test_unknown_layer_kwarg_names_layer_and_key():
    with pytest.raises(ValueError, match="unitz") as e:
        lamina.layers.Dense(3, unitz=4)
    assert "Dense" in str(e.value)
    with pytest.raises(TypeError, match="positional"):
        lamina.layers.Dense(3, "relu", True, 4)
    with pytest.raises(ValueError, match="activation|relux"):
        lamina.layers.Dense(3, activation="relux")


def test_unknown_optimizer_loss_and_metric():
    model = mlp()
    with pytest.raises(ValueError, match="adamm"):
        model.compile(optimizer="adamm", loss="mse")
    with pytest.raises(ValueError, match="msee"):
        model.compile(optimizer="adam", loss="msee")
    with pytest.raises(ValueError, match="acuracy"):
        model.compile(optimizer="adam", loss="mse", metrics=["acuracy"])
    with pytest.raises(TypeError, match="momentm"):
        lamina.optimizers.SGD(momentm=0.9)
    with pytest.raises(TypeError):
        model.compile(optimizer=3.5, loss="mse")
    with pytest.raises(TypeError):
        model.compile(optimizer="adam", loss=42)
    with pytest.raises(ValueError, match="loss"):
        model.compile(optimizer="adam")


def test_string_arrays_and_wrong_argument_types_are_type_errors():
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    strings = np.array([["a", "b", "c", "d"]] * 4)
    with pytest.raises(TypeError, match="dtype"):
        model.predict(strings, verbose=0)
    with pytest.raises(TypeError):
        model.fit(strings, np.zeros(4), verbose=0)
    with pytest.raises(TypeError):
        lamina.tensor(["x", "y"])
    with pytest.raises(TypeError):
        lamina.tensor({"a": 1})
    with pytest.raises(TypeError):
        model.fit(*blobs(8), epochs=[2], verbose=0)
    with pytest.raises(TypeError, match="Callback"):
        model.fit(*blobs(8), callbacks=[lambda: None], verbose=0)
    with pytest.raises(TypeError):
        lamina.Sequential([np.ones(3)])
    with pytest.raises(ValueError, match="verbose"):
        model.fit(*blobs(8), verbose=7)


def test_a_custom_loss_returning_numpy_is_a_type_error():
    x, y = blobs(16)

    def numpy_loss(y_true, y_pred):
        return np.mean((np.asarray(y_pred) - np.asarray(y_true)) ** 2, axis=-1)

    model = mlp()
    model.compile("sgd", numpy_loss)
    with pytest.raises(TypeError, match="numpy_loss") as e:
        model.fit(x, lamina.utils.to_categorical(y, 3), verbose=0)
    assert "lamina.ops" in str(e.value)
    # And the model still trains with a proper loss.
    model.compile("sgd", lambda t, p: ops.mean(ops.square(p - t), axis=-1))
    model.fit(x, lamina.utils.to_categorical(y, 3), verbose=0)


def test_missing_and_corrupt_files_are_os_errors(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(lamina.IoError, match="nope.safetensors"):
        lamina.models.load_model(str(missing))
    with pytest.raises(OSError):
        lamina.models.load_model(missing)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(OSError, match="corrupt.safetensors"):
        lamina.models.load_model(str(corrupt))
    # A truncated real file.
    model = mlp()
    good = tmp_path / "good.safetensors"
    model.save(str(good))
    data = good.read_bytes()
    torn = tmp_path / "torn.safetensors"
    torn.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="torn.safetensors"):
        lamina.models.load_model(str(torn))
    with pytest.raises(OSError):
        model.save(str(tmp_path / "no_such_dir" / "m.safetensors"))


def test_model_json_errors():
    with pytest.raises(ValueError):
        lamina.models.model_from_json("{not json")
    with pytest.raises(ValueError, match="Bogus"):
        lamina.models.model_from_json('{"class_name": "Sequential", "config": {"layers": ['
                                      '{"class_name": "Bogus", "config": {}}]}}')


def test_get_layer_errors():
    model = mlp()
    with pytest.raises(ValueError, match="nosuch"):
        model.get_layer("nosuch")
    with pytest.raises(ValueError, match="index"):
        model.get_layer(index=5)
