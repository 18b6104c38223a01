"""Python callbacks run by fit: epoch and batch methods with Keras' arguments, and
stop_training."""

import numpy as np
import pytest

import lamina
from lamina.callbacks import Callback, LambdaCallback
from conftest import blobs, mlp


def compiled():
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, dict(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end",))


def test_epoch_methods_get_the_epoch_and_its_logs():
    x, y = blobs(96)
    model = compiled()
    rec = Recorder()
    h = model.fit(x, y, epochs=3, batch_size=32, validation_split=0.25, callbacks=[rec], verbose=0)
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["train_begin"] + ["epoch_begin", "epoch_end"] * 3 + ["train_end"]
    ends = [c for c in rec.calls if c[0] == "epoch_end"]
    assert [c[1] for c in ends] == [0, 1, 2]
    for epoch, (_, _, logs) in enumerate(ends):
        assert set(logs) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        # The logs are History's values for that epoch.
        for k, v in logs.items():
            assert v == h.history[k][epoch]
    assert rec.model is model
    assert rec.params["epochs"] == 3 and rec.params["steps"] == 3  # 72 training samples / 32


def test_train_batch_end_is_called_per_batch():
    x, y = blobs(100)
    seen = []

    class Batches(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, logs["loss"]))

    compiled().fit(x, y, epochs=2, batch_size=25, callbacks=[Batches()], verbose=0)
    assert [b for b, _ in seen] == [0, 1, 2, 3] * 2
    assert all(np.isfinite(l) and l > 0 for _, l in seen)
    lam = []
    compiled().fit(x, y, epochs=1, batch_size=50, verbose=0,
                   callbacks=[LambdaCallback(on_train_batch_end=lambda b, logs: lam.append(b),
                                             on_epoch_end=lambda e, logs: lam.append(("end", e)))])
    assert lam == [0, 1, ("end", 0)]


def test_stop_training_from_a_callback():
    x, y = blobs(64)

    class StopAfter(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    model = compiled()
    h = model.fit(x, y, epochs=10, callbacks=[StopAfter()], verbose=0)
    assert h.epoch == [0, 1]
    assert len(h.history["loss"]) == 2
    # The flag is cleared for the next fit.
    h2 = model.fit(x, y, epochs=3, verbose=0)
    assert len(h2.history["loss"]) == 3


def test_a_callback_changes_the_learning_rate():
    x, y = blobs(64)
    model = compiled()
    rates = []

    class Halve(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.optimizer.learning_rate = self.model.optimizer.learning_rate / 2
            rates.append(self.model.optimizer.learning_rate)

    model.fit(x, y, epochs=3, callbacks=[Halve()], verbose=0)
    assert rates == pytest.approx([0.0005, 0.00025, 0.000125], rel=1e-6)


def test_an_exception_in_a_callback_propagates():
    x, y = blobs(32)

    class Boom(Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise ZeroDivisionError("boom at epoch %d" % epoch)

    model = compiled()
    try:
        model.fit(x, y, epochs=3, callbacks=[Boom()], verbose=0)
    except ZeroDivisionError as e:
        assert "epoch 0" in str(e)
    else:
        raise AssertionError("the callback's exception was swallowed")
    assert model.predict(x, verbose=0).shape == (32, 3)


def test_keras2_on_batch_end_is_called():
    x, y = blobs(64)
    seen = []

    class Keras2(Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append((batch, sorted(logs)))

    compiled().fit(x, y, epochs=1, batch_size=32, callbacks=[Keras2()], verbose=0)
    assert seen == [(0, ["accuracy", "loss"]), (1, ["accuracy", "loss"])]


def test_stop_training_from_a_batch():
    x, y = blobs(100)
    batches = []

    class StopAtBatch(Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(batch)
            if batch == 1:
                self.model.stop_training = True

    h = compiled().fit(x, y, epochs=5, batch_size=10, callbacks=[StopAtBatch()], verbose=0)
    assert batches == [0, 1]
    assert len(h.history["loss"]) == 1
