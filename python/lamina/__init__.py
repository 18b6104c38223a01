"""Lamina: Keras' API on a C++ engine.

    import lamina
    model = lamina.Sequential([
        lamina.layers.Flatten(input_shape=(28, 28)),
        lamina.layers.Dense(128, activation="relu"),
        lamina.layers.Dense(10),
    ])
    model.compile(optimizer="adam",
                  loss=lamina.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=5)

``from lamina import keras`` gives the same package under Keras' name, so that code written for
``tensorflow.keras`` runs with its import line changed.
"""

import sys as _sys

from . import _lamina
from ._lamina import IoError, ShapeError, Tensor, from_numpy, tensor
from . import ops, layers, losses, metrics, optimizers, callbacks, utils, explain
from . import models
from .layers import Input
from .models import Model, Sequential
from . import datasets

__version__ = _lamina.__version__

__all__ = ["Tensor", "tensor", "from_numpy", "Input", "Model", "Sequential", "layers", "losses", "metrics",
           "optimizers", "callbacks", "models", "datasets", "explain", "ops", "utils", "ShapeError", "IoError",
           "keras", "__version__"]

# lamina.keras is this package, and lamina.keras.layers & co. are its modules (not second copies
# that `from lamina.keras.layers import Dense` would otherwise load).
keras = _sys.modules[__name__]
for _name, _module in list(_sys.modules.items()):
    if _name == __name__ or _name.startswith(__name__ + "."):
        _sys.modules[__name__ + ".keras" + _name[len(__name__):]] = _module
del _name, _module
