"""lamina.Tensor, lamina.tensor, lamina.from_numpy and lamina.ops: values, autograd, and memory
shared with NumPy without copies."""

import numpy as np
import pytest

import lamina
from lamina import ops


def test_from_numpy_shares_memory_both_ways():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = lamina.from_numpy(a)
    assert t.data_ptr() == a.ctypes.data
    assert t.shape == (3, 4) and t.ndim == 2 and t.size == 12 and len(t) == 3
    back = np.asarray(t)
    assert back.ctypes.data == a.ctypes.data
    assert back.dtype == np.float32 and back.shape == (3, 4)
    a[1, 2] = 100.0  # a write through NumPy is seen by the tensor
    assert np.asarray(t)[1, 2] == 100.0
    back[0, 0] = -7.0  # and one through the tensor's view by the original array
    assert a[0, 0] == -7.0
    assert t.numpy().ctypes.data == a.ctypes.data


def test_from_numpy_keeps_the_array_alive():
    t = lamina.from_numpy(np.full((1000,), 3.0, dtype=np.float32))
    # The array has no other reference; the tensor's memory must still hold its values.
    filler = [np.zeros(1000, dtype=np.float32) for _ in range(50)]
    assert np.all(np.asarray(t) == 3.0)
    del filler


def test_from_numpy_refuses_fortran_order():
    f = np.asfortranarray(np.ones((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="Fortran"):
        lamina.from_numpy(f)


def test_from_numpy_refuses_strided_read_only_and_other_dtypes():
    a = np.ones((4, 6), dtype=np.float32)
    with pytest.raises(ValueError, match="strided"):
        lamina.from_numpy(a[:, ::2])
    ro = np.ones(5, dtype=np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        lamina.from_numpy(ro)
    with pytest.raises(TypeError, match="float64"):
        lamina.from_numpy(np.ones(3))
    with pytest.raises(TypeError, match="list"):
        lamina.from_numpy([1.0, 2.0])


def test_tensor_copies():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = lamina.tensor(a)
    assert t.data_ptr() != a.ctypes.data
    a[0, 0] = 50
    assert np.asarray(t)[0, 0] == 0
    # Lists, other dtypes and Fortran order are converted into a float32 C-order copy.
    assert np.array_equal(np.asarray(lamina.tensor([[1, 2], [3, 4]])), [[1, 2], [3, 4]])
    f = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))
    assert np.array_equal(np.asarray(lamina.tensor(f)), f)
    assert np.array_equal(np.asarray(lamina.Tensor(np.arange(4))), np.arange(4))
    assert lamina.tensor(2.5).item() == 2.5
    assert float(lamina.tensor([[4.0]])) == 4.0


def test_tensor_arithmetic_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4)).astype(np.float32)
    b = rng.normal(size=(3, 4)).astype(np.float32)
    m = rng.normal(size=(4, 2)).astype(np.float32)
    ta, tb, tm = lamina.tensor(a), lamina.tensor(b), lamina.tensor(m)
    close = lambda t, ref: np.testing.assert_allclose(np.asarray(t), ref, rtol=1e-5, atol=1e-6)  # noqa: E731
    close(ta + tb, a + b)
    close(ta - tb, a - b)
    close(ta * tb, a * b)
    close(ta / (tb * tb + 1), a / (b * b + 1))
    close(ta @ tm, a @ m)
    close(-ta, -a)
    close(ta ** 2, a ** 2)
    close(2 * ta + 1, 2 * a + 1)
    close(1 - ta, 1 - a)
    close(ta + b, a + b)  # a NumPy operand
    close(ta.reshape([4, 3]), a.reshape(4, 3))


def test_ops_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    pos = np.abs(x) + 0.1
    close = lambda t, ref: np.testing.assert_allclose(np.asarray(t), ref, rtol=1e-5, atol=1e-6)  # noqa: E731
    close(ops.square(x), x * x)
    close(ops.abs(x), np.abs(x))
    close(ops.exp(x), np.exp(x))
    close(ops.log(pos), np.log(pos))
    close(ops.sqrt(pos), np.sqrt(pos))
    close(ops.relu(x), np.maximum(x, 0))
    close(ops.sigmoid(x), 1 / (1 + np.exp(-x)))
    close(ops.tanh(x), np.tanh(x))
    close(ops.sum(x), x.sum())
    close(ops.sum(x, axis=1), x.sum(axis=1))
    close(ops.mean(x, axis=0, keepdims=True), x.mean(axis=0, keepdims=True))
    close(ops.max(x, axis=-1), x.max(axis=-1))
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    close(ops.softmax(x), e / e.sum(axis=-1, keepdims=True))
    close(ops.log_softmax(x), np.log(e / e.sum(axis=-1, keepdims=True)))
    close(ops.clip(x, -0.5, 0.5), np.clip(x, -0.5, 0.5))
    close(ops.maximum(x, pos - 0.5), np.maximum(x, pos - 0.5))
    close(ops.minimum(x, pos - 0.5), np.minimum(x, pos - 0.5))
    close(ops.one_hot(np.array([0, 2, 1], dtype=np.float32), 3), np.eye(3)[[0, 2, 1]])


def test_maximum_and_minimum_broadcast_as_keras_ops():
    x = lamina.tensor([[1.0, -2.0, 3.0], [-0.5, 0.25, -4.0]])
    x.requires_grad = True
    np.testing.assert_array_equal(np.asarray(ops.maximum(x, 0.0)), np.maximum(np.asarray(x), 0.0))
    np.testing.assert_array_equal(np.asarray(ops.minimum(1.0, x)), np.minimum(1.0, np.asarray(x)))
    row = lamina.tensor([0.0, 0.0, 5.0])
    row.requires_grad = True
    y = ops.maximum(x, row)  # (2, 3) against (3,)
    np.testing.assert_array_equal(np.asarray(y), [[1.0, 0.0, 5.0], [0.0, 0.25, 5.0]])
    ops.sum(y).backward()
    # Each element's gradient goes to the larger operand; the row's is summed over the batch.
    np.testing.assert_array_equal(np.asarray(x.grad), [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(np.asarray(row.grad), [1, 1, 2])


def test_backward_and_grad():
    x = lamina.tensor([[1.0, -2.0, 3.0]])
    x.requires_grad = True
    assert x.requires_grad and x.grad is None
    w = lamina.tensor([[0.5], [1.5], [-1.0]])
    loss = ops.sum(ops.square(x @ w))  # (x.w)^2, d/dx = 2 (x.w) w
    loss.backward()
    xw = 0.5 - 3.0 - 3.0
    assert loss.item() == pytest.approx(xw * xw)
    np.testing.assert_allclose(np.asarray(x.grad), 2 * xw * np.array([[0.5, 1.5, -1.0]]), rtol=1e-6)
    assert w.grad is None  # w did not ask for a gradient
    assert x.detach().data_ptr() == x.data_ptr()
    c = x.clone()
    assert c.data_ptr() != x.data_ptr() and np.array_equal(np.asarray(c), np.asarray(x))


def test_layer_weights_share_memory_with_the_layer():
    model = lamina.Sequential([lamina.layers.Dense(2, input_shape=(3,), use_bias=False)])
    layer = model.layers[0]
    kernel = np.asarray(layer.weights[0])  # a view on the layer's kernel
    assert kernel.shape == (3, 2)
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    kernel[...] = 0.0
    kernel[0, 1] = 2.0
    np.testing.assert_allclose(model.predict(x, verbose=0), [[0.0, 2.0]])
    # get_weights is a copy: writing to it leaves the layer alone.
    copy = layer.get_weights()[0]
    copy[...] = 9.0
    np.testing.assert_allclose(model.predict(x, verbose=0), [[0.0, 2.0]])
    assert np.asarray(model.weights[0]).ctypes.data == kernel.ctypes.data


def test_no_references_leak():
    import gc
    import sys
    x = np.random.default_rng(0).random((64, 4), dtype=np.float32)
    y = np.ones((64, 1), np.float32)
    model = lamina.Sequential([lamina.layers.Dense(1, input_shape=(4,))])
    model.compile("sgd", "mse")

    def refs():
        gc.collect()
        return sys.getrefcount(x), sys.getrefcount(y)

    before = refs()
    model.fit(x, y, epochs=2, validation_data=(x, y), verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    model(x)
    lamina.explain.saliency(model, x, target=0)
    assert refs() == before
    t = lamina.from_numpy(x)  # the tensor holds the array while it lives
    assert refs()[0] == before[0] + 1
    del t
    assert refs() == before
