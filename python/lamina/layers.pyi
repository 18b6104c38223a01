# Type stubs for lamina.layers. The layer classes are made at import time from the engine's
# registry (lamina._lamina.registered_layers()), which static analysis cannot see; this file
# declares them with Keras' constructor signatures so that editors complete the arguments.
#
# Each __init__ takes the arguments lamina.layers._POSITIONAL lists positionally (in Keras'
# order), then Keras' main arguments by keyword, then the arguments every layer takes
# (_LayerKwargs: name, trainable, dtype, and the input shape in Keras 2's forms). The defaults are
# the engine's, which are Keras'. python/tests/test_stubs.py checks this file against the
# registry, the positional lists and the configs the engine accepts and writes.

from typing import Any, Callable, Literal, Sequence, TypedDict, overload

import numpy as np
from typing_extensions import Unpack

from ._lamina import KerasTensor, Tensor

__all__ = [
    "Layer", "Input", "InputLayer",
    "Activation", "Add", "Average", "AveragePooling1D", "AveragePooling2D", "BatchNormalization", "Bidirectional",
    "Concatenate", "Conv1D", "Conv2D", "Conv2DTranspose", "Cropping2D", "Dense", "Dropout", "Embedding", "Flatten",
    "GRU", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "LSTM", "LayerNormalization",
    "LeakyReLU", "Masking", "MaxPooling1D", "MaxPooling2D", "Maximum", "Minimum", "Multiply", "RepeatVector",
    "Reshape", "Sampling", "SimpleRNN", "Subtract", "SyncBatchNormalization", "TimeDistributed", "UpSampling2D",
    "ZeroPadding2D",
    "Convolution2D", "MaxPool2D", "AvgPool2D",
]

_Shape = Sequence[int | None]
_Size = int | Sequence[int]  # one int for every spatial dimension, or one per dimension
_Activation = str | Callable[..., Any] | None
_Initializer = str | dict[str, Any] | Any  # a name ("glorot_uniform"), a config, or an initializer object
_Regularizer = str | dict[str, Any] | Any | None
_Constraint = str | dict[str, Any] | Any | None
_Padding = Literal["valid", "same"]
_DataFormat = Literal["channels_last", "channels_first"] | None
_ArrayLike = np.ndarray | Tensor | Sequence[Any]

class _BaseKwargs(TypedDict, total=False):
    """The keyword arguments every layer takes."""

    name: str
    trainable: bool
    dtype: str | None
    input_shape: _Shape  # Keras 2: the shape of one sample, (784,)
    batch_input_shape: _Shape  # Keras 2: (None, 784)
    batch_shape: _Shape  # Keras 3's name for batch_input_shape

class _LayerKwargs(_BaseKwargs, total=False):
    """...and Keras 2's input_dim (input_shape=(input_dim,)), except in Embedding, whose input_dim
    is its vocabulary size."""

    input_dim: int

class Layer:
    """The base of every layer: a handle on the engine's layer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    @overload
    def __call__(self, inputs: KerasTensor | Sequence[KerasTensor], training: bool = False) -> KerasTensor: ...
    @overload
    def __call__(self, inputs: np.ndarray | Tensor, training: bool = False) -> Tensor: ...
    @property
    def name(self) -> str: ...
    @property
    def trainable(self) -> bool: ...
    @trainable.setter
    def trainable(self, value: bool) -> None: ...
    @property
    def built(self) -> bool: ...
    @property
    def weights(self) -> list[Tensor]: ...
    def get_weights(self) -> list[np.ndarray]: ...
    def set_weights(self, weights: Sequence[_ArrayLike]) -> None: ...
    def get_config(self) -> dict[str, Any]: ...
    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer: ...
    def count_params(self) -> int: ...

def Input(shape: _Shape | int | None = None, batch_size: int | None = None, name: str | None = None,
          dtype: str | None = None, batch_shape: _Shape | None = None) -> KerasTensor: ...

class InputLayer(Layer):
    def __init__(self, *, sparse: bool = False, ragged: bool = False, **kwargs: Unpack[_LayerKwargs]) -> None: ...

# --- core --------------------------------------------------------------------------------------------------

class Dense(Layer):
    def __init__(self, units: int, activation: _Activation = None, *, use_bias: bool = True,
                 kernel_initializer: _Initializer = "glorot_uniform", bias_initializer: _Initializer = "zeros",
                 kernel_regularizer: _Regularizer = None, bias_regularizer: _Regularizer = None,
                 activity_regularizer: _Regularizer = None, kernel_constraint: _Constraint = None,
                 bias_constraint: _Constraint = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Activation(Layer):
    def __init__(self, activation: _Activation, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Dropout(Layer):
    def __init__(self, rate: float, *, noise_shape: _Shape | None = None, seed: int | None = None,
                 **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Flatten(Layer):
    def __init__(self, *, data_format: _DataFormat = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Reshape(Layer):
    def __init__(self, target_shape: Sequence[int], **kwargs: Unpack[_LayerKwargs]) -> None: ...

class RepeatVector(Layer):
    def __init__(self, n: int, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class LeakyReLU(Layer):
    def __init__(self, negative_slope: float = 0.3, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Masking(Layer):
    def __init__(self, mask_value: float = 0.0, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Embedding(Layer):
    def __init__(self, input_dim: int, output_dim: int, *, embeddings_initializer: _Initializer = "random_uniform",
                 embeddings_regularizer: _Regularizer = None, embeddings_constraint: _Constraint = None,
                 activity_regularizer: _Regularizer = None, mask_zero: bool = False,
                 **kwargs: Unpack[_BaseKwargs]) -> None: ...

class Sampling(Layer):
    """The VAE's reparameterisation: called on [z_mean, z_log_var], z = mean + exp(log_var / 2) * noise;
    with kl_weight > 0 it also adds that multiple of the KL divergence to the loss."""

    def __init__(self, *, kl_weight: float = 0.0, seed: int | None = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

# --- merging ---------------------------------------------------------------------------------------------

class Add(Layer):
    def __init__(self, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Subtract(Layer):
    def __init__(self, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Multiply(Layer):
    def __init__(self, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Average(Layer):
    def __init__(self, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Maximum(Layer):
    def __init__(self, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Minimum(Layer):
    def __init__(self, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Concatenate(Layer):
    def __init__(self, axis: int = -1, **kwargs: Unpack[_LayerKwargs]) -> None: ...

# --- convolution -----------------------------------------------------------------------------------------

class Conv1D(Layer):
    def __init__(self, filters: int, kernel_size: _Size, strides: _Size = 1,
                 padding: Literal["valid", "same", "causal"] = "valid", *, data_format: _DataFormat = None,
                 dilation_rate: _Size = 1, groups: int = 1, activation: _Activation = None, use_bias: bool = True,
                 kernel_initializer: _Initializer = "glorot_uniform", bias_initializer: _Initializer = "zeros",
                 kernel_regularizer: _Regularizer = None, bias_regularizer: _Regularizer = None,
                 activity_regularizer: _Regularizer = None, kernel_constraint: _Constraint = None,
                 bias_constraint: _Constraint = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Conv2D(Layer):
    def __init__(self, filters: int, kernel_size: _Size, strides: _Size = (1, 1), padding: _Padding = "valid", *,
                 data_format: _DataFormat = None, dilation_rate: _Size = (1, 1), groups: int = 1,
                 activation: _Activation = None, use_bias: bool = True,
                 kernel_initializer: _Initializer = "glorot_uniform", bias_initializer: _Initializer = "zeros",
                 kernel_regularizer: _Regularizer = None, bias_regularizer: _Regularizer = None,
                 activity_regularizer: _Regularizer = None, kernel_constraint: _Constraint = None,
                 bias_constraint: _Constraint = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Conv2DTranspose(Layer):
    def __init__(self, filters: int, kernel_size: _Size, strides: _Size = (1, 1), padding: _Padding = "valid", *,
                 output_padding: _Size | None = None, data_format: _DataFormat = None, dilation_rate: _Size = (1, 1),
                 activation: _Activation = None, use_bias: bool = True,
                 kernel_initializer: _Initializer = "glorot_uniform", bias_initializer: _Initializer = "zeros",
                 kernel_regularizer: _Regularizer = None, bias_regularizer: _Regularizer = None,
                 activity_regularizer: _Regularizer = None, kernel_constraint: _Constraint = None,
                 bias_constraint: _Constraint = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

# --- pooling, resizing, padding ----------------------------------------------------------------------------

class MaxPooling1D(Layer):
    def __init__(self, pool_size: _Size = 2, strides: _Size | None = None, padding: _Padding = "valid", *,
                 data_format: _DataFormat = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class AveragePooling1D(Layer):
    def __init__(self, pool_size: _Size = 2, strides: _Size | None = None, padding: _Padding = "valid", *,
                 data_format: _DataFormat = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class MaxPooling2D(Layer):
    def __init__(self, pool_size: _Size = (2, 2), strides: _Size | None = None, padding: _Padding = "valid", *,
                 data_format: _DataFormat = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class AveragePooling2D(Layer):
    def __init__(self, pool_size: _Size = (2, 2), strides: _Size | None = None, padding: _Padding = "valid", *,
                 data_format: _DataFormat = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class GlobalAveragePooling1D(Layer):
    def __init__(self, *, data_format: _DataFormat = None, keepdims: bool = False,
                 **kwargs: Unpack[_LayerKwargs]) -> None: ...

class GlobalAveragePooling2D(Layer):
    def __init__(self, *, data_format: _DataFormat = None, keepdims: bool = False,
                 **kwargs: Unpack[_LayerKwargs]) -> None: ...

class GlobalMaxPooling1D(Layer):
    def __init__(self, *, data_format: _DataFormat = None, keepdims: bool = False,
                 **kwargs: Unpack[_LayerKwargs]) -> None: ...

class UpSampling2D(Layer):
    def __init__(self, size: _Size = (2, 2), *, data_format: _DataFormat = None,
                 interpolation: Literal["nearest", "bilinear"] = "nearest", **kwargs: Unpack[_LayerKwargs]) -> None: ...

class ZeroPadding2D(Layer):
    def __init__(self, padding: int | Sequence[int] | Sequence[Sequence[int]] = (1, 1), *,
                 data_format: _DataFormat = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Cropping2D(Layer):
    def __init__(self, cropping: int | Sequence[int] | Sequence[Sequence[int]] = ((0, 0), (0, 0)), *,
                 data_format: _DataFormat = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

# --- normalization -----------------------------------------------------------------------------------------

class BatchNormalization(Layer):
    def __init__(self, *, axis: int = -1, momentum: float = 0.99, epsilon: float = 0.001, center: bool = True,
                 scale: bool = True, beta_initializer: _Initializer = "zeros", gamma_initializer: _Initializer = "ones",
                 moving_mean_initializer: _Initializer = "zeros", moving_variance_initializer: _Initializer = "ones",
                 beta_regularizer: _Regularizer = None, gamma_regularizer: _Regularizer = None,
                 beta_constraint: _Constraint = None, gamma_constraint: _Constraint = None, synchronized: bool = False,
                 **kwargs: Unpack[_LayerKwargs]) -> None: ...

# BatchNormalization(synchronized=True), TF 2's name: the global batch's statistics in a data-parallel fit.
class SyncBatchNormalization(Layer):
    def __init__(self, *, axis: int = -1, momentum: float = 0.99, epsilon: float = 0.001, center: bool = True,
                 scale: bool = True, beta_initializer: _Initializer = "zeros", gamma_initializer: _Initializer = "ones",
                 moving_mean_initializer: _Initializer = "zeros", moving_variance_initializer: _Initializer = "ones",
                 beta_regularizer: _Regularizer = None, gamma_regularizer: _Regularizer = None,
                 beta_constraint: _Constraint = None, gamma_constraint: _Constraint = None, synchronized: bool = True,
                 **kwargs: Unpack[_LayerKwargs]) -> None: ...

class LayerNormalization(Layer):
    def __init__(self, *, axis: int | Sequence[int] = -1, epsilon: float = 0.001, center: bool = True,
                 scale: bool = True, rms_scaling: bool = False, beta_initializer: _Initializer = "zeros",
                 gamma_initializer: _Initializer = "ones", beta_regularizer: _Regularizer = None,
                 gamma_regularizer: _Regularizer = None, beta_constraint: _Constraint = None,
                 gamma_constraint: _Constraint = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

# --- recurrent -----------------------------------------------------------------------------------------------

class SimpleRNN(Layer):
    def __init__(self, units: int, *, activation: _Activation = "tanh", use_bias: bool = True,
                 kernel_initializer: _Initializer = "glorot_uniform",
                 recurrent_initializer: _Initializer = "orthogonal", bias_initializer: _Initializer = "zeros",
                 kernel_regularizer: _Regularizer = None,
                 recurrent_regularizer: _Regularizer = None, bias_regularizer: _Regularizer = None,
                 activity_regularizer: _Regularizer = None, kernel_constraint: _Constraint = None,
                 recurrent_constraint: _Constraint = None, bias_constraint: _Constraint = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False, seed: int | None = None,
                 zero_output_for_mask: bool = False, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class LSTM(Layer):
    def __init__(self, units: int, *, activation: _Activation = "tanh", recurrent_activation: _Activation = "sigmoid",
                 use_bias: bool = True, kernel_initializer: _Initializer = "glorot_uniform",
                 recurrent_initializer: _Initializer = "orthogonal", bias_initializer: _Initializer = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer: _Regularizer = None,
                 recurrent_regularizer: _Regularizer = None, bias_regularizer: _Regularizer = None,
                 activity_regularizer: _Regularizer = None, kernel_constraint: _Constraint = None,
                 recurrent_constraint: _Constraint = None, bias_constraint: _Constraint = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False, seed: int | None = None,
                 zero_output_for_mask: bool = False, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class GRU(Layer):
    def __init__(self, units: int, *, activation: _Activation = "tanh", recurrent_activation: _Activation = "sigmoid",
                 use_bias: bool = True, kernel_initializer: _Initializer = "glorot_uniform",
                 recurrent_initializer: _Initializer = "orthogonal", bias_initializer: _Initializer = "zeros",
                 kernel_regularizer: _Regularizer = None, recurrent_regularizer: _Regularizer = None,
                 bias_regularizer: _Regularizer = None, activity_regularizer: _Regularizer = None,
                 kernel_constraint: _Constraint = None, recurrent_constraint: _Constraint = None,
                 bias_constraint: _Constraint = None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 return_sequences: bool = False, return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, unroll: bool = False, reset_after: bool = True, seed: int | None = None,
                 zero_output_for_mask: bool = False, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class Bidirectional(Layer):
    def __init__(self, layer: Layer, merge_mode: Literal["concat", "sum", "mul", "ave"] | None = "concat", *,
                 backward_layer: Layer | None = None, **kwargs: Unpack[_LayerKwargs]) -> None: ...

class TimeDistributed(Layer):
    def __init__(self, layer: Layer, **kwargs: Unpack[_LayerKwargs]) -> None: ...

# Keras' other names for the same classes.
Convolution2D = Conv2D
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
