"""Keras' layers: ``lamina.layers.Dense(128, activation='relu')``.

Every layer takes Keras' arguments under Keras' names (and the Keras 2 aliases the course's code
uses, such as ``input_dim``); the engine checks them and names any it does not know. Call a layer
on a symbolic tensor (``lamina.Input``) to build a graph (the Functional API), or on an array to
run it once.
"""

from . import _lamina
from ._config import serialize

__all__ = ["Layer", "Input", "InputLayer"]

_CLASSES = {}


class Layer:
    """The base of every layer: a handle on the engine's layer."""

    _class_name = None
    _positional = ()

    def __init__(self, *args, **kwargs):
        cls = type(self).__name__
        if self._class_name is None:
            raise TypeError(
                "lamina.layers.Layer cannot be subclassed with a Python call() yet; "
                "compose built-in layers with the Functional API instead")
        if len(args) > len(self._positional):
            raise TypeError(f"{cls}() takes at most {len(self._positional)} positional arguments "
                            f"({', '.join(self._positional) or 'none'}), got {len(args)}")
        config = {}
        for name, value in zip(self._positional, args):
            config[name] = value
        for name, value in kwargs.items():
            if name in config:
                raise TypeError(f"{cls}() got multiple values for argument '{name}'")
            config[name] = value
        _keras2_aliases(self._class_name, config)
        self._impl = _lamina.layer_from_config(self._class_name, serialize(config))

    @classmethod
    def _wrap(cls, impl):
        """The Python object for an engine layer (a model's layers, a loaded model's)."""
        if isinstance(impl, _lamina.Model):
            from .models import Model
            return Model._wrap(impl)
        obj = object.__new__(_CLASSES.get(impl.class_name, Layer))
        obj._impl = impl
        return obj

    def __call__(self, inputs, training=False):
        """On a symbolic tensor (lamina.Input, another layer's output) or a list of them: the
        layer's output in the graph being built (the Functional API). On an array: the layer run
        once (built for that input shape if needed), as a lamina.Tensor; ``training=True``
        applies dropout and batch statistics as fit does."""
        if isinstance(inputs, _lamina.KerasTensor) or (
                isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], _lamina.KerasTensor)):
            return self._impl.call_symbolic(inputs)
        return self._call_eager(inputs, training)

    def _call_eager(self, inputs, training):
        """The call on arrays (a Model overrides it with its differentiable forward pass)."""
        return self._impl.call_eager(inputs, training)

    @property
    def name(self):
        """The layer's name, unique within its model."""
        return self._impl.name

    @property
    def trainable(self):
        """Whether fit updates this layer's weights; False freezes them (each fit reads it when it starts)."""
        return self._impl.trainable

    @trainable.setter
    def trainable(self, value):
        self._impl.trainable = bool(value)

    @property
    def built(self):
        """Whether the weights exist yet (they are made for the first input shape the layer sees)."""
        return self._impl.built

    @property
    def weights(self):
        """The weights as lamina.Tensor objects sharing the layer's memory."""
        return self._impl.weights()

    def get_weights(self):
        """The weights as NumPy arrays (copies), in Keras' order."""
        return self._impl.get_weights()

    def set_weights(self, weights):
        """Copies ``weights`` (arrays of the same shapes, in get_weights' order) into the layer."""
        self._impl.set_weights(list(weights))

    def get_config(self):
        """Keras' config of the layer: every argument, as a dict that from_config takes back."""
        return self._impl.get_config()

    @classmethod
    def from_config(cls, config):
        """A new layer (fresh weights) from a get_config dict."""
        return cls(**config)

    def count_params(self):
        """The number of weight elements (trainable and not)."""
        return self._impl.count_params()

    def _lamina_config(self):
        return {"class_name": self._impl.class_name, "config": self._impl.get_config()}

    def __eq__(self, other):
        return isinstance(other, Layer) and other._impl is self._impl

    def __hash__(self):
        return hash(id(self._impl))

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _keras2_aliases(class_name, config):
    """Keras 2's argument names, as the course's code writes them."""
    if "input_dim" in config and class_name != "Embedding":
        dim = config.pop("input_dim")
        if "input_shape" not in config:
            config["input_shape"] = (dim,)
    if "input_shape" in config:
        config["batch_input_shape"] = [None] + list(config.pop("input_shape"))
    if "batch_shape" in config:
        config["batch_input_shape"] = list(config.pop("batch_shape"))
    if class_name == "InputLayer" and "shape" in config:  # Keras 3's InputLayer(shape=...)
        config["batch_input_shape"] = [None] + list(config.pop("shape"))


# The built-in classes and their positional arguments, in Keras' order.
_POSITIONAL = {
    "Dense": ("units", "activation"),
    "Activation": ("activation",),
    "Dropout": ("rate",),
    "Flatten": (),
    "Reshape": ("target_shape",),
    "LeakyReLU": ("negative_slope",),
    "Conv1D": ("filters", "kernel_size", "strides", "padding"),
    "Conv2D": ("filters", "kernel_size", "strides", "padding"),
    "Conv2DTranspose": ("filters", "kernel_size", "strides", "padding"),
    "MaxPooling1D": ("pool_size", "strides", "padding"),
    "AveragePooling1D": ("pool_size", "strides", "padding"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "AveragePooling2D": ("pool_size", "strides", "padding"),
    "UpSampling2D": ("size",),
    "ZeroPadding2D": ("padding",),
    "Cropping2D": ("cropping",),
    "Embedding": ("input_dim", "output_dim"),
    "SimpleRNN": ("units",),
    "LSTM": ("units",),
    "GRU": ("units",),
    "Bidirectional": ("layer", "merge_mode"),
    "TimeDistributed": ("layer",),
    "RepeatVector": ("n",),
    "Concatenate": ("axis",),
    "Masking": ("mask_value",),
}


def _make(class_name):
    positional = _POSITIONAL.get(class_name, ())
    doc = (f"Keras' {class_name} layer: ``{class_name}({', '.join(positional + ('**kwargs',))})``, "
           f"with Keras' keyword arguments.")
    cls = type(class_name, (Layer,), {"_class_name": class_name, "_positional": positional, "__doc__": doc,
                                      "__module__": __name__})
    _CLASSES[class_name] = cls
    return cls


for _name in _lamina.registered_layers():
    if _name in ("Functional", "Model", "Sequential"):
        continue
    if _name in __all__:
        __all__.remove(_name)
    globals()[_name] = _make(_name)
    __all__.append(_name)

# Keras' other names for the same classes.
Convolution2D = globals()["Conv2D"]
MaxPool2D = globals()["MaxPooling2D"]
AvgPool2D = globals()["AveragePooling2D"]
__all__ += ["Convolution2D", "MaxPool2D", "AvgPool2D"]


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None, **kwargs):
    """A symbolic input of per-sample ``shape``, as keras.Input: the start of a Functional model."""
    if kwargs:
        raise TypeError(f"Input() got an unexpected keyword argument '{next(iter(kwargs))}'")
    if shape is None and batch_shape is not None:
        shape = tuple(batch_shape)[1:]
    if shape is None:
        raise ValueError("Input: give shape=(...), the shape of one sample")
    if isinstance(shape, int):
        shape = (shape,)
    return _lamina.Input([int(d) for d in shape], name or "")
