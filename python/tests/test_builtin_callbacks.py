"""The built-in callbacks (lamina.callbacks.EarlyStopping, ModelCheckpoint, TerminateOnNaN,
LearningRateScheduler, ReduceLROnPlateau, CSVLogger): Keras' arguments and behaviour, in fit
and, for exact sequences of monitored values, driven directly with a stand-in model.

Run with the package built: PYTHONPATH=<build>/python python3 -m pytest -q python/tests
"""

import csv
import math
import os

import numpy as np
import pytest

import lamina
from lamina import ops
from lamina.callbacks import (CSVLogger, EarlyStopping, LambdaCallback, LearningRateScheduler, ModelCheckpoint,
                              ReduceLROnPlateau, TerminateOnNaN)


def regression(n=64, features=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (x @ rng.normal(size=(features, 1)) + 0.5).astype(np.float32)
    return x, y


def linear(lr=0.05, use_bias=True):
    lamina.utils.set_random_seed(7)
    model = lamina.Sequential([lamina.layers.Dense(1, input_shape=(4,), use_bias=use_bias)])
    model.compile(lamina.optimizers.SGD(learning_rate=lr), "mse")
    return model


def diverging(lr=0.05, good_epochs=3, bad_lr=1.6):
    """A schedule that trains well for `good_epochs`, then with a rate so large that the loss of
    this linear regression grows every epoch: the best epoch is known to be among the first."""
    return LearningRateScheduler(lambda epoch, _: lr if epoch < good_epochs else bad_lr)


def snapshots(model, into):
    """A callback recording the model's weights at every epoch end."""
    return LambdaCallback(on_epoch_end=lambda epoch, logs: into.append(model.get_weights()))


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


class FakeOptimizer:
    def __init__(self, lr):
        self.learning_rate = lr

    def get_config(self):
        return {"learning_rate": self.learning_rate}


class FakeModel:
    """What the callbacks use of a model, to drive them with chosen logs."""

    def __init__(self, lr=1.0):
        self.stop_training = False
        self.weights = [np.zeros(2, np.float32)]
        self.optimizer = FakeOptimizer(lr)

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]


def drive(cb, values, monitor="val_loss", model=None):
    """Runs `cb` over epochs whose logs hold `values` of `monitor`; the fake model's weight is the
    epoch index. Returns the model and the number of epochs run before stop_training."""
    model = model or FakeModel()
    cb.set_model(model)
    cb.on_train_begin({})
    ran = 0
    for epoch, v in enumerate(values):
        cb.on_epoch_begin(epoch, {})
        model.weights = [np.full(2, epoch, np.float32)]
        cb.on_epoch_end(epoch, {monitor: v})
        ran += 1
        if model.stop_training:
            break
    cb.on_train_end({})
    return model, ran


# --- EarlyStopping --------------------------------------------------------------------------------------

def test_early_stopping_counts_patience_epochs_without_improvement():
    #                 0    1    2    3    4    5
    values = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7]
    _, ran = drive(EarlyStopping(patience=3), values)
    assert ran == 5  # best at epoch 1; epochs 2, 3, 4 without improvement: stops at epoch 4
    cb = EarlyStopping(patience=3)
    drive(cb, values)
    assert (cb.stopped_epoch, cb.best_epoch, cb.best) == (4, 1, 0.8)
    # patience=0 stops at the first epoch that does not improve (never at epoch 0).
    cb = EarlyStopping()
    _, ran = drive(cb, values)
    assert ran == 3 and cb.stopped_epoch == 2


def test_early_stopping_min_delta_mode_and_auto_direction():
    # An improvement of 0.05 is no improvement with min_delta=0.1.
    _, ran = drive(EarlyStopping(patience=1, min_delta=0.1), [1.0, 0.95, 0.9, 0.5])
    assert ran == 2
    # Accuracy-like names are maximised under mode="auto"; a decrease is no improvement.
    cb = EarlyStopping(monitor="val_accuracy", patience=1)
    _, ran = drive(cb, [0.5, 0.6, 0.55, 0.9], monitor="val_accuracy")
    assert ran == 3 and cb.best == 0.6
    cb = EarlyStopping(monitor="val_loss", mode="max", patience=1)
    _, ran = drive(cb, [0.5, 0.6, 0.55, 0.9])
    assert ran == 3 and cb.best == 0.6
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="cannot tell"):
        EarlyStopping(monitor="val_something")
    assert EarlyStopping(monitor="val_something", mode="min").monitor == "val_something"


def test_early_stopping_baseline_and_start_from_epoch():
    # Nothing beats the baseline 0.5, so the count never restarts: epoch 1 improves on epoch 0
    # yet counts, and epoch 2 is the second epoch without beating the baseline.
    cb = EarlyStopping(patience=2, baseline=0.5, restore_best_weights=True)
    model, ran = drive(cb, [0.9, 0.8, 0.85, 0.4])
    assert ran == 3 and cb.stopped_epoch == 2 and cb.best_epoch == 1
    assert model.weights[0][0] == 1  # the best epoch's weights even so, as Keras
    # Without a baseline epoch 1 restarts the count and training goes on to the improvement.
    _, ran = drive(EarlyStopping(patience=2), [0.9, 0.8, 0.85, 0.4])
    assert ran == 4
    # Warm-up: the rising values of epochs 0-2 are not looked at.
    cb = EarlyStopping(patience=1, start_from_epoch=3)
    _, ran = drive(cb, [0.1, 0.2, 0.3, 0.4, 0.35, 0.5, 0.6])
    assert ran == 6 and cb.stopped_epoch == 5


def test_early_stopping_missing_monitor_warns_and_never_stops():
    cb = EarlyStopping(monitor="val_loss")
    with pytest.warns(UserWarning, match="val_loss"):
        _, ran = drive(cb, [1.0, 2.0, 3.0], monitor="loss")
    assert ran == 3


def test_early_stopping_in_fit_stops_and_restores_the_best_weights():
    x, y = regression()
    model = linear()
    snaps = []
    stop = EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    h = model.fit(x, y, epochs=30, batch_size=16, verbose=0, shuffle=False,
                  callbacks=[diverging(), snapshots(model, snaps), stop])
    losses = h.history["loss"]
    best = int(np.argmin(losses))
    assert best <= 2 < len(losses) < 30  # it learned, then diverged, then stopped
    assert losses[-1] > losses[best]
    assert stop.best_epoch == best and stop.stopped_epoch == best + 2 and len(losses) == best + 3
    assert same(model.get_weights(), snaps[best])
    assert not same(model.get_weights(), snaps[-1])


def test_early_stopping_without_restore_keeps_the_last_weights():
    x, y = regression()
    model = linear()
    snaps = []
    h = model.fit(x, y, epochs=30, batch_size=16, verbose=0, shuffle=False,
                  callbacks=[diverging(), snapshots(model, snaps), EarlyStopping(monitor="loss", patience=1)])
    assert len(h.history["loss"]) < 30
    assert same(model.get_weights(), snaps[-1])


def test_early_stopping_instance_is_reusable():
    x, y = regression()
    model = linear()
    stop = EarlyStopping(monitor="loss", patience=1)
    model.fit(x, y, epochs=30, batch_size=16, verbose=0, callbacks=[diverging(), stop])
    first = stop.stopped_epoch
    assert first > 0
    model = linear()
    h = model.fit(x, y, epochs=30, batch_size=16, verbose=0, callbacks=[diverging(), stop])
    assert len(h.history["loss"]) == stop.stopped_epoch + 1 < 30


# --- ModelCheckpoint ------------------------------------------------------------------------------------

def test_model_checkpoint_formats_epoch_and_logs_into_the_path(tmp_path):
    x, y = regression()
    model = linear()
    snaps = []
    pattern = str(tmp_path / "ckpt" / "{epoch:02d}-{loss:.3f}.safetensors")
    h = model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                  callbacks=[snapshots(model, snaps), ModelCheckpoint(pattern, monitor="loss")])
    expected = [f"{e + 1:02d}-{loss:.3f}.safetensors" for e, loss in enumerate(h.history["loss"])]
    assert sorted(os.listdir(tmp_path / "ckpt")) == sorted(expected)  # the directory was made
    for epoch, name in enumerate(expected):
        loaded = lamina.models.load_model(tmp_path / "ckpt" / name)
        assert same(loaded.get_weights(), snaps[epoch])
    # A full model: architecture and compile config come back too.
    loaded = lamina.models.load_model(tmp_path / "ckpt" / expected[-1])
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert isinstance(loaded.optimizer, lamina.optimizers.SGD)


def test_model_checkpoint_save_best_only(tmp_path):
    x, y = regression()
    model = linear()
    snaps = []
    best_path = tmp_path / "best.safetensors"
    per_epoch = str(tmp_path / "e{epoch}.safetensors")
    h = model.fit(x, y, epochs=7, batch_size=16, verbose=0, shuffle=False,
                  callbacks=[diverging(), snapshots(model, snaps),
                             ModelCheckpoint(best_path, monitor="loss", save_best_only=True),
                             ModelCheckpoint(per_epoch, monitor="loss", save_best_only=True)])
    losses = h.history["loss"]
    best = int(np.argmin(losses))
    assert best < len(losses) - 1  # later epochs were worse, so the file was not overwritten
    assert same(lamina.models.load_model(best_path).get_weights(), snaps[best])
    # With {epoch} in the path: one file per epoch that beat every earlier one.
    improving = [e for e in range(len(losses)) if losses[e] < min(losses[:e], default=math.inf)]
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith("e")) == \
        sorted(f"e{e + 1}.safetensors" for e in improving)


def test_model_checkpoint_initial_value_threshold_and_max_mode(tmp_path):
    x, y = regression()
    model = linear()
    path = tmp_path / "never.safetensors"
    model.fit(x, y, epochs=2, batch_size=16, verbose=0,
              callbacks=[ModelCheckpoint(path, monitor="loss", save_best_only=True, initial_value_threshold=1e-9)])
    assert not path.exists()
    # mode="max" on a falling loss: only the first epoch is "best".
    pattern = str(tmp_path / "max{epoch}.safetensors")
    model.fit(x, y, epochs=3, batch_size=16, verbose=0,
              callbacks=[ModelCheckpoint(pattern, monitor="loss", save_best_only=True, mode="max")])
    assert sorted(os.listdir(tmp_path)) == ["max1.safetensors"]


def test_model_checkpoint_every_n_batches(tmp_path):
    x, y = regression(64)
    model = linear()
    pattern = str(tmp_path / "{epoch}-{batch}.safetensors")
    # 4 batches per epoch, a save every 3 batches counted across epochs: epoch 1 batch 3, epoch 2 batch 2.
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[ModelCheckpoint(pattern, save_freq=3)])
    assert sorted(os.listdir(tmp_path)) == ["1-3.safetensors", "2-2.safetensors"]
    assert not ModelCheckpoint(pattern)._lamina_wants_batches  # epoch saves cost no per-batch call
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint(pattern, save_freq="batch")
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint(pattern, save_freq=0)


def test_model_checkpoint_weights_only_and_bad_fields(tmp_path):
    x, y = regression()
    model = linear()
    path = tmp_path / "w.safetensors"
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[ModelCheckpoint(path, save_weights_only=True)])
    other = linear()
    other.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert not same(other.get_weights(), model.get_weights())
    other.load_weights(path)
    assert same(other.get_weights(), model.get_weights())
    with pytest.raises(KeyError, match="val_loss"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0,
                  callbacks=[ModelCheckpoint(str(tmp_path / "{val_loss:.2f}.safetensors"))])


# --- TerminateOnNaN -------------------------------------------------------------------------------------

def test_terminate_on_nan_stops_at_the_first_bad_batch(capsys):
    x, y = regression()
    model = linear()

    def nan_loss(y_true, y_pred):  # log of a negative number
        return ops.log(ops.negative(ops.square(y_pred - y_true)) - 1.0)

    model.compile("sgd", nan_loss)
    batches = []
    h = model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                  callbacks=[TerminateOnNaN(), LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))])
    assert batches == [0]
    assert len(h.history["loss"]) == 1 and math.isnan(h.history["loss"][0])
    assert "Invalid loss" in capsys.readouterr().out


def test_terminate_on_nan_lets_finite_training_run():
    x, y = regression()
    model = linear()
    h = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[TerminateOnNaN()])
    assert len(h.history["loss"]) == 2


# --- LearningRateScheduler ------------------------------------------------------------------------------

def rates(model, into):
    """A callback recording the optimizer's rate as each epoch starts (after the schedulers)."""
    return LambdaCallback(on_epoch_begin=lambda epoch, logs: into.append(model.optimizer.learning_rate))


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    x, y = regression()
    model = linear(lr=0.1)
    seen, args = [], []

    def schedule(epoch, lr):
        args.append((epoch, lr))
        return 0.1 * 0.5 ** epoch

    model.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[LearningRateScheduler(schedule), rates(model, seen)])
    want = [np.float32(0.1 * 0.5 ** e) for e in range(4)]
    np.testing.assert_allclose(seen, want, rtol=1e-7)
    assert model.optimizer.learning_rate == pytest.approx(want[-1], rel=1e-7)
    # The schedule is given the epoch and the current rate (the previous epoch's).
    assert [e for e, _ in args] == [0, 1, 2, 3]
    np.testing.assert_allclose([lr for _, lr in args], [0.1] + want[:-1], rtol=1e-7)


def test_learning_rate_scheduler_rate_reaches_training():
    x, y = regression()
    model = linear()
    snaps = []
    # Rate 0 from epoch 1: SGD leaves the weights where epoch 0 put them.
    model.fit(x, y, epochs=3, batch_size=16, verbose=0,
              callbacks=[LearningRateScheduler(lambda e, lr: 0.05 if e == 0 else 0.0), snapshots(model, snaps)])
    assert same(snaps[0], snaps[1]) and same(snaps[1], snaps[2])
    assert not same(snaps[0], linear().get_weights())


def test_learning_rate_scheduler_old_form_verbose_and_errors(capsys):
    x, y = regression()
    model = linear()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[LearningRateScheduler(lambda e: 0.25, verbose=1)])
    assert model.optimizer.learning_rate == 0.25
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.25." in capsys.readouterr().out
    with pytest.raises(ValueError, match="float"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: "fast")])
    with pytest.raises(ValueError, match="finite"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: -1.0)])
    with pytest.raises(TypeError, match="function"):
        LearningRateScheduler(0.1)
    # A schedule's own TypeError is not mistaken for the old one-argument form.
    with pytest.raises(TypeError, match="mine"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[LearningRateScheduler(lambda e, lr: (_ for _ in ()).throw(TypeError("mine")))])


def test_learning_rate_callbacks_refuse_a_schedule_optimizer():
    x, y = regression()
    model = lamina.Sequential([lamina.layers.Dense(1, input_shape=(4,))])
    decay = lamina.optimizers.schedules.ExponentialDecay(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5)
    model.compile(lamina.optimizers.SGD(learning_rate=decay), "mse")
    for cb in (LearningRateScheduler(lambda e, lr: lr), ReduceLROnPlateau(monitor="loss")):
        with pytest.raises(TypeError, match="schedule"):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])


# --- ReduceLROnPlateau ----------------------------------------------------------------------------------

def lr_sequence(cb, values, lr=1.0):
    """The rate after each epoch of `values`."""
    model = FakeModel(lr)
    cb.set_model(model)
    cb.on_train_begin({})
    out = []
    for epoch, v in enumerate(values):
        cb.on_epoch_end(epoch, {"val_loss": v})
        out.append(model.optimizer.learning_rate)
    return out


def test_reduce_lr_on_plateau_after_patience_with_cooldown_and_floor():
    flat = [1.0] * 8
    assert lr_sequence(ReduceLROnPlateau(factor=0.5, patience=2), flat) == \
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    # cooldown=2: as Keras, the counter goes down before the check, so the epoch after a
    # reduction is skipped and the one after that counts again.
    assert lr_sequence(ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2), flat) == \
        [1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.0625]
    assert lr_sequence(ReduceLROnPlateau(factor=0.5, patience=1, cooldown=3), flat) == \
        [1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]
    assert lr_sequence(ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.05), flat[:4]) == [1.0, 0.1, 0.05, 0.05]
    # Improvements smaller than min_delta do not reset the count; larger ones do.
    assert lr_sequence(ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.1), [1.0, 0.95, 0.9, 0.7, 0.65, 0.6]) == \
        [1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(TypeError):
        ReduceLROnPlateau(epsilon=1e-3)


def test_reduce_lr_on_plateau_in_fit():
    x, y = regression()
    # Zero inputs and no bias: the gradient is zero, so the loss stays flat while the rate is not.
    model = linear(lr=0.1, use_bias=False)
    seen = []
    reduce = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2)
    model.fit(np.zeros_like(x), y, epochs=6, batch_size=16, verbose=0, callbacks=[reduce, rates(model, seen)])
    np.testing.assert_allclose(seen, [0.1, 0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-6)
    # Epoch 5 is the first without improvement since the reduction at epoch 4: no change yet.
    assert model.optimizer.learning_rate == pytest.approx(0.025, rel=1e-6)
    assert reduce.wait == 1


# --- CSVLogger ------------------------------------------------------------------------------------------

def read_rows(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_writes_a_row_per_epoch(tmp_path):
    x, y = regression()
    model = linear()
    model.compile(lamina.optimizers.SGD(learning_rate=0.05), "mse")
    path = tmp_path / "log.csv"
    h = model.fit(x, y, epochs=3, batch_size=16, verbose=0, validation_split=0.25, callbacks=[CSVLogger(path)])
    rows = read_rows(path)
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for epoch, row in enumerate(rows[1:]):
        assert float(row[1]) == h.history["loss"][epoch]  # written exactly (repr)
        assert float(row[2]) == h.history["val_loss"][epoch]


def test_csv_logger_append_and_separator(tmp_path):
    x, y = regression()
    model = linear()
    path = tmp_path / "log.csv"
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[CSVLogger(path, separator=";")])
    logger = CSVLogger(path, separator=";", append=True)
    model.fit(x, y, epochs=4, initial_epoch=2, batch_size=16, verbose=0, callbacks=[logger])
    rows = read_rows(path, ";")
    assert rows[0] == ["epoch", "loss"] and [r[0] for r in rows[1:]] == ["0", "1", "2", "3"]
    assert logger.csv_file.closed
    # Without append the file starts over.
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[CSVLogger(path)])
    assert [r[0] for r in read_rows(path)] == ["epoch", "0"]
    # append to a file that does not exist yet writes the header.
    fresh = tmp_path / "sub.csv"
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[CSVLogger(fresh, append=True)])
    assert read_rows(fresh)[0] == ["epoch", "loss"]


def test_csv_logger_rows_are_on_disk_before_training_ends(tmp_path):
    x, y = regression()
    model = linear()
    path = tmp_path / "live.csv"
    seen = []
    model.fit(x, y, epochs=2, batch_size=16, verbose=0,
              callbacks=[CSVLogger(path),
                         LambdaCallback(on_epoch_end=lambda e, logs: seen.append(len(read_rows(path))))])
    assert seen == [2, 3]  # header + one row after epoch 0, another after epoch 1


# --- messages -------------------------------------------------------------------------------------------

def test_verbose_messages(capsys, tmp_path):
    cb = EarlyStopping(patience=1, verbose=1, restore_best_weights=True)
    drive(cb, [1.0, 2.0, 3.0])
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 1." in out
    lr_sequence(ReduceLROnPlateau(factor=0.5, patience=1, verbose=1), [1.0, 1.0])
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.5." in capsys.readouterr().out

    x, y = regression()
    model = linear()
    path = tmp_path / "m.safetensors"
    model.fit(x, y, epochs=2, batch_size=16, verbose=0,
              callbacks=[ModelCheckpoint(path, monitor="loss", save_best_only=True, verbose=1,
                                         mode="min", initial_value_threshold=1e9)])
    out = capsys.readouterr().out
    assert "Epoch 1: loss improved from 1000000000.00000 to" in out and f"saving model to {path}" in out
    # Without the monitored value, save_best_only saves every time, with a warning (as Keras).
    with pytest.warns(UserWarning, match="val_loss"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0,
                  callbacks=[ModelCheckpoint(tmp_path / "any.safetensors", save_best_only=True)])
    assert (tmp_path / "any.safetensors").exists()
