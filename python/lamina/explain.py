"""Why a model decides as it does: attributions per input feature, with Captum's methods and
names. Each function takes a compiled or uncompiled model and inputs (N, ...) and returns NumPy
attributions of the inputs' shape (Grad-CAM: of the image's height and width).

``target``: None (each sample's predicted class), one class for all, or one per sample."""

import numpy as np

from . import _lamina

__all__ = ["saliency", "input_x_gradient", "integrated_gradients", "noise_tunnel", "occlusion", "grad_cam",
           "overlay"]

_E = _lamina.explain


def saliency(model, inputs, target=None, abs=True, layer=None, internal_batch_size=0):
    """The gradient of the target output with respect to the inputs (|gradient| unless abs=False)."""
    return np.asarray(_E.saliency(model._impl, inputs, target, abs, layer or "", internal_batch_size))


def input_x_gradient(model, inputs, target=None, layer=None, internal_batch_size=0):
    """Inputs times their gradient."""
    return np.asarray(_E.input_x_gradient(model._impl, inputs, target, layer or "", internal_batch_size))


def integrated_gradients(model, inputs, target=None, baselines=None, n_steps=50, method="gausslegendre",
                         layer=None, internal_batch_size=0, return_convergence_delta=False):
    """Integrated Gradients from ``baselines`` (zeros by default) to the inputs, with Captum's rules
    ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid").
    With return_convergence_delta: (attributions, delta), delta being each sample's completeness
    error sum(attributions) - (f(x) - f(baseline))."""
    attr, delta, _ = _E.integrated_gradients(model._impl, inputs, target, baselines, int(n_steps), method,
                                             layer or "", internal_batch_size)
    if return_convergence_delta:
        return np.asarray(attr), np.asarray(delta)
    return np.asarray(attr)


def noise_tunnel(model, inputs, method="saliency", nt_type="smoothgrad", nt_samples=5, stdevs=1.0, target=None,
                 seed=None):
    """SmoothGrad ("smoothgrad"), its square ("smoothgrad_sq") or VarGrad ("vargrad") around
    "saliency", "input_x_gradient" or "integrated_gradients"."""
    return np.asarray(_E.noise_tunnel(model._impl, inputs, method, nt_type, int(nt_samples), float(stdevs), target,
                                      seed))


def occlusion(model, inputs, sliding_window_shapes, strides=None, baselines=0.0, target=None,
              perturbations_per_eval=0):
    """The drop in the target output when a window of the input is replaced by ``baselines``."""
    return np.asarray(_E.occlusion(model._impl, inputs, sliding_window_shapes, strides, float(baselines), target,
                                   perturbations_per_eval))


def grad_cam(model, inputs, layer=None, target=None, relu=True, upsample=True):
    """Grad-CAM at a convolutional layer (by default the last one with an image-shaped output)."""
    return np.asarray(_E.grad_cam(model._impl, inputs, layer or "", target, relu, upsample))


def overlay(image, attributions, alpha=0.6):
    """A heat map of one image's attributions over the image: (H, W, 3) RGB in [0, 1]."""
    return np.asarray(_E.overlay(image, attributions, float(alpha)))
