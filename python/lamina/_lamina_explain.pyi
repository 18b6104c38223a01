# The members of the extension's submodule lamina._lamina.explain, for _lamina.pyi (a stub of an
# extension module file cannot hold a nested module, so it imports this one as `explain`). There
# is no module of this name at run time: import lamina.explain, whose functions wrap these with
# Captum's signatures. The arguments are positional (the bindings give them no names).

from typing import Any

import numpy as np

from ._lamina import Model, Tensor

_Target = int | np.ndarray | list[int] | None
_Size = int | tuple[int, ...] | list[int] | None

def saliency(model: Model, inputs: Any, target: _Target, abs: bool, layer: str, internal_batch_size: int,
             /) -> Tensor: ...
def input_x_gradient(model: Model, inputs: Any, target: _Target, layer: str, internal_batch_size: int, /) -> Tensor: ...
def integrated_gradients(model: Model, inputs: Any, target: _Target, baselines: Any, n_steps: int, method: str,
                         layer: str, internal_batch_size: int, /) -> tuple[Tensor, Tensor, list[int]]: ...
def noise_tunnel(model: Model, inputs: Any, method: str, nt_type: str, nt_samples: int, stdevs: float,
                 target: _Target, seed: int | None, /) -> Tensor: ...
def occlusion(model: Model, inputs: Any, sliding_window_shapes: _Size, strides: _Size, baselines: float,
              target: _Target, perturbations_per_eval: int, /) -> Tensor: ...
def grad_cam(model: Model, inputs: Any, layer: str, target: _Target, relu: bool, upsample: bool, /) -> Tensor: ...
def overlay(image: Any, attributions: Any, alpha: float, /) -> Tensor: ...
