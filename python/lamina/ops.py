"""Differentiable operations on lamina.Tensor, as keras.ops: write custom losses with them::

    def mse(y_true, y_pred):
        return lamina.ops.mean(lamina.ops.square(y_pred - y_true), axis=-1)
"""

from . import _lamina as _l

__all__ = [_n for _n in dir(_l.ops) if not _n.startswith("_")]
globals().update({_n: getattr(_l.ops, _n) for _n in __all__})
