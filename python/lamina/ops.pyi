# Type stubs for lamina.ops: the module copies the functions of the engine's lamina._lamina.ops
# at import time, which static analysis cannot follow. _lamina.pyi declares _lamina.ops as this
# module (they hold the same function objects). Checked by python/tests/test_stubs.py.

from typing import Sequence

import numpy as np

from ._lamina import Tensor

_ArrayLike = Tensor | np.ndarray | Sequence[float] | float

__all__ = ["abs", "add", "clip", "convert_to_tensor", "divide", "exp", "log", "log_softmax", "matmul", "max",
           "maximum", "mean", "minimum", "multiply", "negative", "one_hot", "power", "relu", "reshape", "sigmoid",
           "softmax", "sqrt", "square", "subtract", "sum", "tanh"]

def square(x: _ArrayLike) -> Tensor:
    """x * x, elementwise."""
def abs(x: _ArrayLike) -> Tensor:
    """|x|, elementwise."""
def exp(x: _ArrayLike) -> Tensor:
    """e ** x, elementwise."""
def log(x: _ArrayLike) -> Tensor:
    """The natural logarithm, elementwise."""
def sqrt(x: _ArrayLike) -> Tensor:
    """The square root, elementwise."""
def relu(x: _ArrayLike) -> Tensor:
    """max(x, 0), elementwise."""
def sigmoid(x: _ArrayLike) -> Tensor:
    """1 / (1 + e ** -x), elementwise."""
def tanh(x: _ArrayLike) -> Tensor:
    """tanh(x), elementwise."""
def negative(x: _ArrayLike) -> Tensor:
    """-x."""
def add(x1: _ArrayLike, x2: _ArrayLike) -> Tensor:
    """x1 + x2, broadcasting."""
def subtract(x1: _ArrayLike, x2: _ArrayLike) -> Tensor:
    """x1 - x2, broadcasting."""
def multiply(x1: _ArrayLike, x2: _ArrayLike) -> Tensor:
    """x1 * x2, broadcasting."""
def divide(x1: _ArrayLike, x2: _ArrayLike) -> Tensor:
    """x1 / x2, broadcasting."""
def maximum(x1: _ArrayLike, x2: _ArrayLike) -> Tensor:
    """The larger of x1 and x2, elementwise."""
def minimum(x1: _ArrayLike, x2: _ArrayLike) -> Tensor:
    """The smaller of x1 and x2, elementwise."""
def matmul(x1: _ArrayLike, x2: _ArrayLike) -> Tensor:
    """The matrix product."""
def sum(x: _ArrayLike, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """The sum over `axis` (all elements: None)."""
def mean(x: _ArrayLike, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """The mean over `axis` (all elements: None)."""
def max(x: _ArrayLike, axis: int = -1, keepdims: bool = False) -> Tensor:
    """The maximum along `axis`."""
def softmax(x: _ArrayLike, axis: int = -1) -> Tensor: ...
def log_softmax(x: _ArrayLike, axis: int = -1) -> Tensor: ...
def clip(x: _ArrayLike, x_min: float, x_max: float) -> Tensor:
    """x clipped to [x_min, x_max]."""
def power(x: _ArrayLike, p: float) -> Tensor: ...
def reshape(x: _ArrayLike, newshape: Sequence[int]) -> Tensor: ...
def one_hot(x: _ArrayLike, num_classes: int) -> Tensor: ...
def convert_to_tensor(x: _ArrayLike) -> Tensor:
    """A tensor for x (no copy for a C-contiguous float32 array)."""
