"""Keras' losses: ``SparseCategoricalCrossentropy(from_logits=True)``, ``CategoricalCrossentropy``,
``BinaryCrossentropy``, ``MeanSquaredError``, ``MeanAbsoluteError``, their names
("sparse_categorical_crossentropy", "mse", ...), and losses of your own: a function
``(y_true, y_pred) -> Tensor`` of per-sample losses written with lamina.ops, or a subclass of
``Loss`` with a ``call`` method. A Python loss runs under the GIL once per batch."""

from . import _lamina
from ._config import serialize

__all__ = ["Loss", "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy",
           "MeanSquaredError", "MeanAbsoluteError", "get"]


class Loss:
    """The base of losses. Subclass it and define ``call(self, y_true, y_pred)`` returning the
    per-sample losses as a lamina.Tensor (lamina.ops keep it differentiable); compile averages
    them over the batch."""

    _builtin = None  # the engine's class name for the built-in losses

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        if reduction != "sum_over_batch_size":
            raise ValueError(f"Loss: reduction '{reduction}' is not supported (only 'sum_over_batch_size')")
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction

    def call(self, y_true, y_pred):
        """The per-sample losses (N,) for targets and predictions (lamina.Tensor): define it in a
        subclass, with lamina.ops so that gradients flow through it."""
        raise NotImplementedError(f"{type(self).__name__}.call(y_true, y_pred) is not defined")

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The loss on one batch, as a one-element lamina.Tensor: the mean of ``call``'s
        per-sample losses, each weighted by ``sample_weight`` (N,) when given (Keras'
        sum_over_batch_size: the weighted sum divided by N). Built-in losses run inside fit only
        (compile(loss=...))."""
        out = self.call(_lamina.ops.convert_to_tensor(y_true), _lamina.ops.convert_to_tensor(y_pred))
        if sample_weight is None:
            return _lamina.ops.mean(out)
        w = _lamina.ops.convert_to_tensor(sample_weight)
        if out.ndim > 1:  # per-element losses: a sample's is their mean
            out = _lamina.ops.mean(out, axis=-1)
        if w.shape != out.shape:
            raise ValueError(f"{type(self).__name__}: sample_weight has shape {w.shape}, "
                             f"expected {out.shape} (one weight per sample)")
        return _lamina.ops.mean(out * w)

    def get_config(self):
        """The constructor's arguments, as Keras' get_config."""
        return {"name": self.name, "reduction": self.reduction}


def _snake(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class _Builtin(Loss):
    def __init__(self, from_logits=False, name=None, reduction="sum_over_batch_size", **kwargs):
        super().__init__(name, reduction)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument '{next(iter(kwargs))}'")
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "from_logits": self.from_logits}

    def _lamina_config(self):
        return {"class_name": type(self).__name__, "config": {"from_logits": self.from_logits}}

    def __call__(self, y_true, y_pred, sample_weight=None):
        raise TypeError(f"{type(self).__name__} is computed by the engine during fit; call it there "
                        "(model.compile(loss=...)), or write the formula with lamina.ops")


class SparseCategoricalCrossentropy(_Builtin):
    """Cross-entropy with integer class labels (N,) against (N, K) probabilities or logits."""


class CategoricalCrossentropy(_Builtin):
    """Cross-entropy with one-hot targets (N, K)."""


class BinaryCrossentropy(_Builtin):
    """Cross-entropy of one probability (or logit) per unit against 0/1 targets."""


class MeanSquaredError(_Builtin):
    """The mean over the last axis of (y_true - y_pred) ** 2, per sample."""

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        super().__init__(False, name, reduction)

    def _lamina_config(self):
        return {"class_name": "MeanSquaredError", "config": {}}


class MeanAbsoluteError(_Builtin):
    """The mean over the last axis of |y_true - y_pred|, per sample."""

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        super().__init__(False, name, reduction)

    def _lamina_config(self):
        return {"class_name": "MeanAbsoluteError", "config": {}}


def serialize_for_engine(loss):
    """What the engine's compile takes: a name or config, or a callable for a Python loss."""
    if isinstance(loss, str):
        return loss
    if isinstance(loss, _Builtin):
        return loss._lamina_config()
    if isinstance(loss, Loss):
        def per_sample(y_true, y_pred, _loss=loss):
            return _loss.call(y_true, y_pred)
        per_sample.__name__ = loss.name
        return per_sample
    if isinstance(loss, dict):
        return serialize(loss)
    if callable(loss):
        return loss
    raise TypeError(f"loss: expected a name, a lamina.losses.Loss or a function, got {type(loss).__name__}")


def get(identifier):
    """The loss for ``identifier`` as compile takes it. Names ("mse"), configs, Loss objects and
    functions are all resolved by compile itself, so this returns ``identifier`` as given."""
    return identifier
