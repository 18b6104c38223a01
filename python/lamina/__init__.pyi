# Type stubs for the package's front door, so that `from lamina import keras` (the package under
# Keras' name, an alias made at import time) is typed like `import lamina`. Checked against
# lamina.__all__ by python/tests/test_stubs.py.

import lamina as keras

from . import callbacks as callbacks
from . import datasets as datasets
from . import explain as explain
from . import layers as layers
from . import losses as losses
from . import metrics as metrics
from . import models as models
from . import ops as ops
from . import optimizers as optimizers
from . import utils as utils
from ._lamina import IoError as IoError
from ._lamina import ShapeError as ShapeError
from ._lamina import Tensor as Tensor
from ._lamina import from_numpy as from_numpy
from ._lamina import tensor as tensor
from .layers import Input as Input
from .models import Model as Model
from .models import Sequential as Sequential

__version__: str

__all__ = ["Tensor", "tensor", "from_numpy", "Input", "Model", "Sequential", "layers", "losses", "metrics",
           "optimizers", "callbacks", "models", "datasets", "explain", "ops", "utils", "ShapeError", "IoError",
           "keras", "__version__"]
