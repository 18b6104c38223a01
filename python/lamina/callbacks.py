"""Keras' callbacks: subclass ``Callback`` and override the methods you need, or use the
built-in ones (EarlyStopping, ModelCheckpoint, TerminateOnNaN, LearningRateScheduler,
ReduceLROnPlateau, CSVLogger). fit calls them between batches and epochs, with the GIL held."""

import csv
import inspect
import math
import numbers
import os
import warnings

import numpy as np

from ._config import ConfigObject

__all__ = ["Callback", "History", "LambdaCallback", "CallbackList", "EarlyStopping", "ModelCheckpoint",
           "TerminateOnNaN", "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger"]


class Callback:
    """The base of callbacks, with Keras' method names and arguments. ``self.model`` is the model
    being trained; set ``self.model.stop_training = True`` to end fit after this epoch."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        """Called by fit with the model being trained (``self.model``)."""
        self.model = model

    def set_params(self, params):
        """Called by fit before training with ``{"epochs", "steps", "samples"}``: the epochs to run,
        the batches per epoch and the training samples."""
        self.params = params

    def on_train_begin(self, logs=None):
        """Called once when fit starts, before the first epoch (``logs`` is empty)."""

    def on_train_end(self, logs=None):
        """Called once when fit ends, normally or stopped, with the last epoch's logs."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of each epoch; ``epoch`` counts from 0 (from fit's initial_epoch)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of each epoch with its logs: "loss", the metrics, and with validation
        data their "val_" forms, by name (the values History records for that epoch)."""

    def on_train_batch_end(self, batch, logs=None):
        """Called after each training batch (``batch`` counts from 0 in each epoch) with the
        running means of the loss and metrics over the epoch so far. fit calls it only for
        callbacks that define it (or on_batch_end), so that epoch-level callbacks cost nothing
        per batch. By default it calls on_batch_end, as Keras'."""
        self.on_batch_end(batch, logs)

    def on_batch_end(self, batch, logs=None):
        """Keras 2's name for on_train_batch_end, still called by Keras 3's: code written for it
        runs unchanged."""

    @property
    def _lamina_wants_batches(self):
        """Whether fit must call on_train_batch_end (only when a subclass defines it or
        on_batch_end)."""
        cls = type(self)
        return cls.on_train_batch_end is not Callback.on_train_batch_end or cls.on_batch_end is not Callback.on_batch_end


class History(Callback):
    """What fit returns: ``history`` maps each logged name to its value per epoch."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []


class LambdaCallback(Callback):
    """A callback from functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_end=None, on_batch_end=None):
        super().__init__()
        noop = lambda *a, **k: None  # noqa: E731
        self.on_epoch_begin = on_epoch_begin or noop
        self.on_epoch_end = on_epoch_end or noop
        self.on_train_begin = on_train_begin or noop
        self.on_train_end = on_train_end or noop
        self._batch = on_train_batch_end or on_batch_end
        if self._batch is not None:
            self.on_train_batch_end = self._batch

    @property
    def _lamina_wants_batches(self):
        return self._batch is not None


class CallbackList:
    """fit's callbacks, each given the model. Internal."""

    def __init__(self, callbacks, model):
        if callbacks is None:
            callbacks = []
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks: expected lamina.callbacks.Callback objects, got {type(cb).__name__}")
            cb.set_model(model)
        self.callbacks = list(callbacks)


# --- built-in callbacks ----------------------------------------------------------------------------


def _maximizes(monitor, mode, who, strict=True):
    """Whether a larger ``monitor`` is better. Mode "auto" reads it from the name, as Keras: losses
    go down, accuracy-like metrics (accuracy, precision, recall, f1_score, auc) go up. A name
    that is neither is an error when ``strict`` (Keras' EarlyStopping and ModelCheckpoint), and
    minimised otherwise (Keras' ReduceLROnPlateau)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode == "max"
    name = monitor[len("val_"):] if monitor.startswith("val_") else monitor
    if name == "loss" or name.endswith("_loss"):
        return False
    if any(part in name for part in ("acc", "precision", "recall", "f1", "auc")):
        return True
    if strict:
        raise ValueError(f"{who}: cannot tell whether monitor='{monitor}' should be maximized or minimized; "
                         "pass mode='max' or mode='min'")
    return False


def _monitor_value(logs, monitor, who):
    """logs[monitor], or None with Keras' warning naming the keys there are."""
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(f"{who} is conditioned on '{monitor}', which is not in the logs "
                      f"(they hold: {', '.join(logs or {}) or 'nothing'})", stacklevel=3)
    return value


def _settable_optimizer(model, who):
    """The model's optimizer, whose learning rate a callback may set: not one driven by a
    learning-rate schedule (the schedule sets the rate at every step, so a callback's rate would
    be silently overridden or, here, silently replace the schedule)."""
    opt = getattr(model, "optimizer", None)
    if opt is None:
        raise ValueError(f"{who}: the model has no optimizer; compile it before fit")
    if isinstance(opt.get_config().get("learning_rate"), (dict, ConfigObject)):
        raise TypeError(f"{who}: the optimizer's learning_rate is a schedule, which sets the rate at every step; "
                        "give the optimizer a number as its learning_rate to change it from a callback")
    return opt


class EarlyStopping(Callback):
    """Stops training when ``monitor`` has stopped improving, as keras.callbacks.EarlyStopping.

    At each epoch end the monitored value counts as an improvement when it beats the best so far
    by more than ``min_delta``; after ``patience`` epochs in a row without one, fit stops. With
    ``baseline``, an improvement also has to beat the baseline to reset the count. Epochs before
    ``start_from_epoch`` are not monitored (a warm-up). With ``restore_best_weights``, the weights
    of the best epoch are put back when training ends.

    After fit: ``stopped_epoch`` (0-based; 0 if it never stopped training), ``best``,
    ``best_epoch``, ``wait``.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self._maximize = _maximizes(monitor, mode, "EarlyStopping")
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = -math.inf if self._maximize else math.inf
        self.best_epoch = 0
        self.best_weights = None

    def _is_improvement(self, value, reference):
        if self._maximize:
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def on_train_begin(self, logs=None):
        self._reset()  # an instance may be reused for another fit

    def on_epoch_end(self, epoch, logs=None):
        current = _monitor_value(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Until something improves, the weights of the first monitored epoch are the best.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # The count restarts only for a value that also beats the baseline.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.", flush=True)
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Saves the model while training, as keras.callbacks.ModelCheckpoint.

    ``filepath`` may name the epoch (1-based) and any logged value with Python's format syntax:
    ``"ckpt/{epoch:02d}-{val_loss:.2f}.safetensors"`` (and ``{batch}``, 1-based, when saving
    every ``save_freq`` batches). Missing directories are created. Each file is written by
    Model.save, atomically (a crash leaves the previous file whole), in the format load_model,
    the C++ API and the CLI read. With ``save_best_only``, a file is written only when
    ``monitor`` beats the best value so far (``initial_value_threshold`` at the start); the best
    is kept across fit calls, so a continued training does not overwrite a better file.
    ``save_weights_only`` writes with save_weights (load it back with load_weights).
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = mode
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a number of batches >= 1, "
                             f"got {save_freq!r}")
        self.save_freq = save_freq
        # The direction matters only when comparing; a plain checkpoint may monitor anything.
        self._maximize = _maximizes(monitor, mode, "ModelCheckpoint") if save_best_only else False
        if initial_value_threshold is not None:
            self.best = float(initial_value_threshold)
        else:
            self.best = -math.inf if self._maximize else math.inf
        self._epoch = 0
        self._batches_since_save = 0

    @property
    def _lamina_wants_batches(self):
        return self.save_freq != "epoch"

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._epoch, batch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _filepath(self, epoch, batch, logs):
        fields = dict(logs)
        fields["epoch"] = epoch + 1
        if batch is not None:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except KeyError as e:
            raise KeyError(f"ModelCheckpoint: filepath '{self.filepath}' names {e}, which is not one of: "
                           f"{', '.join(fields)}") from None

    def _save(self, epoch, batch, logs):
        filepath = self._filepath(epoch, batch, logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                # As Keras: without the value there is nothing to compare, so it saves.
                warnings.warn(f"ModelCheckpoint: can save the best model only with '{self.monitor}' in the logs "
                              f"(they hold: {', '.join(logs) or 'nothing'}); saving every time", stacklevel=2)
            elif (current > self.best) if self._maximize else (current < self.best):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                          f"saving model to {filepath}", flush=True)
                self.best = current
            else:
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}", flush=True)
                return
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {filepath}", flush=True)
        directory = os.path.dirname(filepath)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self.model.save(filepath, overwrite=True)


class TerminateOnNaN(Callback):
    """Stops training at the first batch whose loss is NaN or infinite, as
    keras.callbacks.TerminateOnNaN (fit ends after that batch's epoch is logged)."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training", flush=True)
            self.model.stop_training = True


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of every epoch to ``schedule(epoch, lr)`` (epoch
    0-based, lr the current rate), as keras.callbacks.LearningRateScheduler; a ``schedule(epoch)``
    of one argument works too. The optimizer must have a number as its learning rate, not a
    schedule."""

    _lamina_logs_learning_rate = True  # fit adds "learning_rate" to the logs, as Keras

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function (epoch, lr) -> lr, "
                            f"got {type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose

    def _takes_lr(self):
        """Whether the schedule is Keras' schedule(epoch, lr) rather than the old schedule(epoch)."""
        try:
            sig = inspect.signature(self.schedule)
        except (TypeError, ValueError):  # a builtin without a signature: assume the current form
            return True
        try:
            sig.bind(0, 0.0)
            return True
        except TypeError:
            return False

    def on_train_begin(self, logs=None):
        _settable_optimizer(self.model, "LearningRateScheduler")

    def on_epoch_begin(self, epoch, logs=None):
        opt = _settable_optimizer(self.model, "LearningRateScheduler")
        if self._takes_lr():
            lr = self.schedule(epoch, float(opt.learning_rate))
        else:
            lr = self.schedule(epoch)
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            raise ValueError(f"LearningRateScheduler: the schedule must return a float, got {lr!r} for epoch {epoch}")
        lr = float(lr)
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"LearningRateScheduler: the schedule gave learning rate {lr} for epoch {epoch}; "
                             "it must be finite and >= 0")
        opt.learning_rate = lr
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.", flush=True)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` has not improved (by more than
    ``min_delta``) for ``patience`` epochs, then waits ``cooldown`` epochs before counting again,
    never going below ``min_lr``: keras.callbacks.ReduceLROnPlateau. The optimizer must have a
    number as its learning rate, not a schedule."""

    _lamina_logs_learning_rate = True  # fit adds "learning_rate" to the logs, as Keras

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__()
        if not 0 <= factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1) (it multiplies the rate down), got {factor}")
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.min_delta = min_delta
        self.cooldown = cooldown
        self.min_lr = min_lr
        self._maximize = _maximizes(monitor, mode, "ReduceLROnPlateau", strict=False)
        self._reset()

    def _reset(self):
        self.best = -math.inf if self._maximize else math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def in_cooldown(self):
        """Whether the epochs of waiting after the last reduction are still running."""
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        _settable_optimizer(self.model, "ReduceLROnPlateau")
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = _monitor_value(logs, self.monitor, "ReduceLROnPlateau")
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        improved = current > self.best + self.min_delta if self._maximize else current < self.best - self.min_delta
        if improved:
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                opt = _settable_optimizer(self.model, "ReduceLROnPlateau")
                old_lr = float(opt.learning_rate)
                # The engine keeps the rate in float32: compare there, or a rate already at
                # min_lr would be "reduced" to itself forever.
                if np.float32(old_lr) > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    opt.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.", flush=True)
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class CSVLogger(Callback):
    """Writes each epoch's logs to a CSV file, as keras.callbacks.CSVLogger: a header ``epoch``
    and the logged names (sorted), then one row per epoch (0-based), written and flushed as each
    epoch ends so that the file can be followed while training. ``append=True`` continues an
    existing file (no second header)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys = None
        self.append_header = True
        self.csv_file = None
        self.writer = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, encoding="utf-8") as f:
                    self.append_header = not f.readline()
            mode = "a"
        else:
            self.append_header = True
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="", encoding="utf-8")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self.writer is None:
            self.writer = csv.writer(self.csv_file, delimiter=self.sep, lineterminator="\n")
            if self.append_header:
                self.writer.writerow(["epoch"] + self.keys)
        self.writer.writerow([epoch] + [logs.get(k, "NA") for k in self.keys])
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None
