"""Keras' models: ``Sequential``, ``Model`` (the Functional API), ``load_model``, ``model_from_json``.

Training runs in the engine with the GIL released: other Python threads keep running during
``fit``, ``evaluate`` and ``predict``, and Ctrl-C raises KeyboardInterrupt within one batch,
leaving the model as it was after the last finished batch.
"""

import sys

import numpy as np

from . import _lamina
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .layers import Layer

__all__ = ["Model", "Sequential", "load_model", "model_from_json", "clone_model"]


def _verbose(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2, True, False):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def _batch_size(batch_size):
    """Keras' default of 32 when None; anything else goes to the engine, which refuses 0 or less."""
    return 32 if batch_size is None else int(batch_size)


def _flush():
    try:
        sys.stdout.flush()
    except (AttributeError, ValueError):
        pass


class Model(Layer):
    """A graph of layer calls from inputs to outputs (Keras' Functional API)::

        inputs = lamina.Input(shape=(784,))
        x = lamina.layers.Dense(64, activation="relu")(inputs)
        outputs = lamina.layers.Dense(10)(x)
        model = lamina.Model(inputs=inputs, outputs=outputs)
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        if kwargs:
            raise TypeError(f"Model() got an unexpected keyword argument '{next(iter(kwargs))}'")
        if inputs is None or outputs is None:
            raise TypeError("Model(inputs=..., outputs=...): subclassing Model with a Python call() is not "
                            "supported; build the graph from lamina.Input and layer calls")
        self._impl = _lamina.Model(inputs, outputs, name or "functional")
        self._setup()

    def _setup(self):
        self.history = None
        self._optimizer = None
        self._loss = None
        self._metrics = []

    @classmethod
    def _wrap(cls, impl):
        obj = object.__new__(Sequential if impl.is_sequential else Model)
        obj._impl = impl
        obj._setup()
        return obj

    def _ready(self):
        """Builds what can be built before the weights are read (a Sequential of known input shape;
        a Functional model is built when made)."""

    # --- structure ---------------------------------------------------------------------------
    @property
    def layers(self):
        """The layers, in the order the graph calls them (a Sequential leaves out its InputLayer)."""
        self._ready()
        out = [Layer._wrap(l) for l in self._impl.layers]
        if self._impl.is_sequential:
            out = [l for l in out if l._impl.class_name != "InputLayer"]
        return out

    def get_layer(self, name=None, index=None):
        """A layer by name or by index into ``layers``."""
        if index is not None:
            layers = self.layers
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"get_layer: index {index} is out of range for {len(layers)} layers")
            return layers[index]
        if name is None:
            raise ValueError("get_layer: give a name or an index")
        self._ready()
        return Layer._wrap(self._impl.get_layer(name))

    @property
    def input_names(self):
        """The names of the model's inputs (its InputLayers), in order: the keys of a dict x."""
        return self._impl.input_names

    @property
    def output_names(self):
        """The names of the layers giving the model's outputs, in order: the keys of a dict y, of
        compile's per-output losses and of the "<name>_loss" logs."""
        return self._impl.output_names

    @property
    def input_shape(self):
        """(None, ...) per input: one tuple, or a list for several inputs."""
        shapes = self._impl.input_shapes
        if not shapes:
            raise AttributeError("the model has no input shape yet: give one (input_shape=, lamina.Input) or call build")
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        """(None, ...) per output: one tuple, or a list for several outputs."""
        shapes = self._impl.output_shapes
        return shapes[0] if len(shapes) == 1 else shapes

    def build(self, input_shape):
        """Creates the weights for ``input_shape`` (with or without the batch entry ``None``)."""
        shape = list(input_shape)
        if shape and shape[0] is None:
            shape = shape[1:]
        self._impl.build([int(d) for d in shape])

    @property
    def trainable_weights(self):
        """The weights fit updates (those of trainable layers), as lamina.Tensor objects sharing
        the model's memory."""
        return [w for l in self.layers for w, on in zip(l.weights, [l.trainable] * len(l.weights)) if on]

    @property
    def stop_training(self):
        """Set it to True from a callback to end fit: after the current epoch from on_epoch_end,
        after the current batch from on_train_batch_end. fit resets it when it starts."""
        return self._impl.stop_training

    @stop_training.setter
    def stop_training(self, value):
        self._impl.stop_training = bool(value)

    @property
    def optimizer(self):
        """The optimizer given to compile (a lamina.optimizers object), None before compile. Its
        learning_rate reads and sets the rate training uses."""
        return self._optimizer

    # --- training ----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", **kwargs):
        """Configures training, as Keras.

        Args:
            optimizer: a name ("adam", "sgd", "rmsprop", "adamw", "adagrad") or a
                lamina.optimizers object.
            loss: a name ("sparse_categorical_crossentropy", "mse", ...), a lamina.losses object,
                a function ``(y_true, y_pred) -> Tensor`` of per-sample losses written with
                lamina.ops, or one of these per output as a list or a dict keyed by output name.
            loss_weights: with several outputs, the weight of each output's loss (list or dict).
            metrics: names ("accuracy", "precision", "recall", "f1_score", ...) or
                lamina.metrics objects, logged as "accuracy" and "val_accuracy".
            weighted_metrics: metrics weighed by fit's sample_weight and class_weight.
            run_eagerly, steps_per_execution, jit_compile: accepted for Keras' code; the engine
                always runs compiled C++.
        """
        if kwargs:
            raise TypeError(f"compile() got an unexpected keyword argument '{next(iter(kwargs))}'")
        if loss is None:
            raise ValueError("compile: give a loss (loss='sparse_categorical_crossentropy', a lamina.losses "
                             "object or a function)")
        opt = optimizers_module.get(optimizer)
        if isinstance(loss, dict):
            loss = [loss[n] for n in self.output_names]
        if isinstance(loss_weights, dict):
            loss_weights = [loss_weights[n] for n in self.output_names]
        losses = list(loss) if isinstance(loss, (list, tuple)) else [loss]
        self._impl.compile(opt._engine(), [losses_module.serialize_for_engine(l) for l in losses],
                           metrics_module.names(metrics), [float(w) for w in (loss_weights or [])],
                           metrics_module.names(weighted_metrics))
        self._optimizer = opt
        self._loss = loss
        self._metrics = metrics
        self._compile_args = {"optimizer": opt, "loss": loss, "loss_weights": loss_weights, "metrics": metrics,
                              "weighted_metrics": weighted_metrics}

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1, seed=None):
        """Trains for ``epochs`` epochs on NumPy arrays and returns a History whose ``.history`` maps
        "loss", the metrics and their "val_" forms to one value per epoch.

        A C-contiguous float32 ``x`` is read in place (no copy); other dtypes are converted once.
        The GIL is released while training; Python callbacks run between batches and epochs, and
        Ctrl-C raises KeyboardInterrupt within one batch.

        Args:
            x: the inputs: an array (N, ...), a list of arrays (one per input) or a dict keyed by
                input name.
            y: the targets, in the same forms (per output).
            batch_size: samples per gradient step (default 32).
            epochs: the epoch to stop at (with initial_epoch, the count continues from it).
            verbose: "auto" or 1: a progress bar (a line per epoch off a terminal); 2: a line per
                epoch; 0: silent.
            callbacks: lamina.callbacks.Callback objects (EarlyStopping, ModelCheckpoint, ...).
            validation_split: the fraction of the samples, taken from the end before shuffling,
                held out for the "val_" logs.
            validation_data: (x_val, y_val) for the "val_" logs, instead of validation_split.
            shuffle: whether to shuffle the training samples every epoch.
            class_weight: {class: weight}, weighing each sample's loss by its label's class.
            sample_weight: an array (N,) of per-sample weights of the loss.
            initial_epoch: the epoch to start at (to continue an earlier fit).
            steps_per_epoch: batches per epoch (default: one pass over the data).
            seed: the shuffling seed (default: drawn from lamina's generator).
            validation_steps, validation_batch_size, validation_freq: not supported (an error
                unless left at their defaults).
        """
        if validation_steps is not None or validation_batch_size is not None or validation_freq != 1:
            raise ValueError("fit: validation_steps, validation_batch_size and validation_freq are not supported")
        cbs = callbacks_module.CallbackList(callbacks, model=self)
        history = callbacks_module.History()
        history.set_model(self)
        _flush()
        result = self._impl.fit(x, y, _batch_size(batch_size), int(epochs), _verbose(verbose), cbs.callbacks,
                                float(validation_split), validation_data, bool(shuffle), class_weight, sample_weight,
                                int(initial_epoch), steps_per_epoch, seed)
        history.history = result["history"]
        history.epoch = result["epoch"]
        history.params = {"verbose": _verbose(verbose), "epochs": epochs, "steps": steps_per_epoch}
        self.history = history
        return history

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """The loss and metrics on (x, y), in inference mode: a float when the model has no
        metrics, else ``[loss, *metrics]`` in compile's order (a dict with return_dict=True).
        x and y take fit's forms; batch_size defaults to 32; verbose as in fit.
        sample_weight, steps and callbacks are not supported (an error if given)."""
        if sample_weight is not None or steps is not None or callbacks:
            raise ValueError("evaluate: sample_weight, steps and callbacks are not supported")
        _flush()
        logs = self._impl.evaluate(x, y, _batch_size(batch_size), _verbose(verbose))
        if return_dict:
            return dict(logs)
        values = [v for _, v in logs]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The outputs for x (fit's forms), in inference mode, as a NumPy array (a list for
        several outputs), batch_size (default 32) samples at a time. steps and callbacks are not
        supported (an error if given)."""
        if steps is not None or callbacks:
            raise ValueError("predict: steps and callbacks are not supported")
        return self._impl.predict(x, _batch_size(batch_size))

    def predict_on_batch(self, x):
        """predict on all of x as one batch."""
        return self.predict(x, batch_size=max(1, len(x)))

    def _call_eager(self, inputs, training):
        """``model(arrays)``: the forward pass as a lamina.Tensor, differentiable (on symbolic
        tensors, Layer.__call__ makes the model a layer in a bigger graph)."""
        return self._impl.call(inputs, training)

    # --- inspection and files ------------------------------------------------------------------
    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False):
        """Prints Keras' table of layers, output shapes and parameter counts (or hands each line to
        print_fn)."""
        text = self._impl.summary()
        if print_fn is None:
            print(text, end="" if text.endswith("\n") else "\n")
        else:
            for line in text.rstrip("\n").split("\n"):
                print_fn(line)

    def count_params(self):
        """The number of weight elements in every layer (trainable and not)."""
        self._ready()
        return self._impl.count_params()

    def get_weights(self):
        """Every weight as a NumPy array (copies), layer by layer, in Keras' order."""
        self._ready()
        return self._impl.get_weights()

    def set_weights(self, weights):
        """The reverse of get_weights: every count and shape is checked before anything is copied."""
        self._ready()
        self._impl.set_weights(list(weights))

    @property
    def weights(self):
        """Every weight as a lamina.Tensor sharing the model's memory, in get_weights' order."""
        self._ready()
        return [t for _, t in self._impl.named_weights()]

    def get_config(self):
        """Keras' model config: the "config" part of to_json (layers and their connections)."""
        import json
        return json.loads(self.to_json())["config"]

    def to_json(self, **kwargs):
        """Keras' model JSON (architecture, no weights)."""
        import json
        text = self._impl.to_json()
        return json.dumps(json.loads(text), **kwargs) if kwargs else text

    def save(self, filepath, overwrite=True):
        """Weights, architecture and compile config in one safetensors file, written atomically; the
        same format as the C++ API and the CLI (lamina predict, Model::load)."""
        import os
        filepath = os.fspath(filepath)
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"save: {filepath} exists and overwrite=False")
        self._ready()
        self._impl.save(filepath)

    def save_weights(self, filepath, overwrite=True):
        """Writes the weights (in save's file, which also holds the architecture); load_weights
        reads them back into a model of the same architecture."""
        self.save(filepath, overwrite)

    def load_weights(self, filepath):
        """Weights from a file written by save (or the C++ API), checked against this architecture."""
        import os
        other = _lamina.load_model(os.fspath(filepath))
        self._ready()
        self._impl.set_weights(other.get_weights())

    def export(self, filepath, format="onnx"):
        """Writes the model for other runtimes: format "onnx" (opset 13; OpenCV's dnn, ONNX Runtime)."""
        import os
        if format != "onnx":
            raise ValueError(f"export: format '{format}' is not supported (supported: 'onnx')")
        self._ready()
        self._impl.save_onnx(os.fspath(filepath))

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class Sequential(Model):
    """A stack of layers, each feeding the next::

        model = lamina.Sequential([
            lamina.layers.Flatten(input_shape=(28, 28)),
            lamina.layers.Dense(128, activation="relu"),
            lamina.layers.Dense(10),
        ])
    """

    def __init__(self, layers=None, name=None, trainable=True):
        self._impl = _lamina.Sequential(name or "sequential")
        self._setup()
        for layer in layers or []:
            self.add(layer)
        if not trainable:
            self.trainable = False

    def add(self, layer):
        """Appends a layer (or a lamina.Input, which declares the input shape)."""
        if isinstance(layer, _lamina.KerasTensor):
            shape = list(layer.shape)
            layer = Layer._wrap(_lamina.layer_from_config("InputLayer", {"batch_input_shape": shape,
                                                                          "name": layer.name}))
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a lamina layer, got {type(layer).__name__}")
        if self._impl.built:
            # The engine's Sequential takes no layers once built, Keras' does: the layers move to
            # a new one, built again with the weights they had.
            old = self._impl
            kept = [(l, l.get_weights()) for l in old.layers]
            self._impl = _lamina.Sequential(old.name)
            for l, _ in kept:
                self._impl.add(l)
            self._impl.add(layer._impl)
            self._ready()
            for l, w in kept:
                l.set_weights(w)
            if old.compiled and getattr(self, "_compile_args", None):
                self.compile(**self._compile_args)  # the new engine model, compiled as the old one
            return
        self._impl.add(layer._impl)

    def _ready(self):
        # As Keras' (built once its input shape is known): get_weights, count_params and
        # layer.weights work before fit. Built at the first such read rather than at each add, so
        # that the weights drawn are those fit would draw: one draw per layer, in order.
        shapes = self._impl.input_shapes
        if not self._impl.built and shapes:
            self._impl.build([int(d) for d in shapes[0][1:]])


def load_model(filepath, custom_objects=None, compile=True):
    """A model saved by Model.save (Python), Model::save (C++) or the CLI, or an ONNX file.
    ``custom_objects`` names the Python losses it was compiled with ({"my_loss": my_loss}), so that
    it loads compiled; without them such a model loads uncompiled."""
    import os
    for name, obj in (custom_objects or {}).items():  # Python losses the file was compiled with
        if isinstance(obj, losses_module.Loss) or (callable(obj) and not isinstance(obj, type)):
            _lamina.register_loss(name, losses_module.serialize_for_engine(obj))
    model = Model._wrap(_lamina.load_model(os.fspath(filepath)))
    if model._impl.compiled:
        model._optimizer = optimizers_module.Optimizer._from_engine(model._impl.optimizer)
    return model


def model_from_json(json_string, custom_objects=None):
    """A model (unbuilt weights drawn fresh) from Keras' JSON, as to_json writes it."""
    return Model._wrap(_lamina.model_from_json(json_string))


def clone_model(model):
    """The same architecture with a copy of every weight, as an independent model."""
    model._ready()  # the engine's clone copies the weights, so there must be some
    return Model._wrap(model._impl.clone())
