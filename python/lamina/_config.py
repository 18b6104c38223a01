"""Turning Keras-style Python arguments into the JSON configs the engine reads. Internal."""

import numbers


def serialize(value):
    """A JSON-ready form of a Keras argument: objects with a config become
    {"class_name": ..., "config": ...}; tuples become lists; numpy scalars become numbers."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [serialize(v) for v in value]
    if isinstance(value, dict):
        return {str(k): serialize(v) for k, v in value.items()}
    to_config = getattr(value, "_lamina_config", None)
    if to_config is not None:
        return to_config()
    if hasattr(value, "get_config"):
        return {"class_name": type(value).__name__, "config": serialize(value.get_config())}
    if callable(value) and hasattr(value, "__name__"):  # an activation function given by name
        return value.__name__
    raise TypeError(f"cannot use {type(value).__name__} {value!r} as a configuration value")


class ConfigObject:
    """An object known to the engine by its Keras class name and config (an initializer, a
    regularizer, a learning-rate schedule): ``Cls(**config)`` as Keras writes it."""

    _known: "tuple[str, ...] | None" = None  # the argument names the class takes; None: any

    def __init__(self, **kwargs):
        if self._known is not None:
            for k in kwargs:
                if k not in self._known:
                    raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument '{k}' "
                                    f"(it takes: {', '.join(self._known)})")
        self._config = {k: v for k, v in kwargs.items()}

    def get_config(self):
        return dict(self._config)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _lamina_config(self):
        return {"class_name": type(self).__name__, "config": serialize(self._config)}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._config.items())
        return f"{type(self).__name__}({args})"
