"""Keras' optimizers: ``SGD(learning_rate=0.01, momentum=0.9)`` (Keras 2's ``lr=`` too), ``Adam``,
``AdamW``, ``RMSprop``, ``Adagrad``, and learning-rate ``schedules``."""

from . import _lamina
from ._config import ConfigObject, serialize

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get", "schedules"]

_COMMON = ("learning_rate", "name", "clipnorm", "clipvalue", "global_clipnorm")


class Optimizer:
    """An optimizer's configuration until compile, then a handle on the engine's optimizer:
    ``learning_rate`` reads and sets the rate training uses (callbacks may change it)."""

    _defaults: "dict[str, object]" = {}

    def __init__(self, *args, **kwargs):
        # Keras takes its arguments by position too, in _defaults' order: SGD(0.01), Adam(1e-3).
        names = list(self._defaults)
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes at most {len(names)} positional arguments "
                            f"({', '.join(names)}), got {len(args)}")
        for name, value in zip(names, args):
            if name in kwargs or (name == "learning_rate" and "lr" in kwargs):
                raise TypeError(f"{type(self).__name__}() got multiple values for argument '{name}'")
            kwargs[name] = value
        if "lr" in kwargs:  # Keras 2
            if "learning_rate" in kwargs:
                raise TypeError(f"{type(self).__name__}() got both lr and learning_rate")
            kwargs["learning_rate"] = kwargs.pop("lr")
        for k in kwargs:
            if k not in self._defaults and k not in _COMMON:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument '{k}' (it takes: "
                                f"{', '.join(list(self._defaults) + list(_COMMON))})")
        self._config = dict(self._defaults)
        self._config.update(kwargs)
        self._impl = None

    def _engine(self):
        if self._impl is None:
            config = {k: v for k, v in self._config.items() if k != "name"}
            self._impl = _lamina.optimizer_from_config({"class_name": type(self).__name__, "config": serialize(config)})
        return self._impl

    @classmethod
    def _from_engine(cls, impl):
        sub = {c.__name__: c for c in (SGD, Adam, AdamW, RMSprop, Adagrad)}.get(impl.name, Optimizer)
        obj = object.__new__(sub)
        obj._config = impl.get_config()
        obj._impl = impl
        return obj

    @property
    def learning_rate(self):
        """The rate the next step uses (a float; with a schedule, its current value). Setting it
        replaces any schedule with the fixed rate, at once for a compiled model."""
        return self._impl.learning_rate if self._impl is not None else self._config.get("learning_rate")

    @learning_rate.setter
    def learning_rate(self, value):
        if self._impl is not None:
            self._impl.learning_rate = float(value)
        self._config["learning_rate"] = value

    lr = learning_rate  # Keras 2

    @property
    def iterations(self):
        """The number of training steps taken (0 before compile)."""
        return self._impl.iterations if self._impl is not None else 0

    def get_config(self):
        """Keras' optimizer config: every argument with its value (the engine's once compiled)."""
        return self._impl.get_config() if self._impl is not None else dict(self._config)

    @classmethod
    def from_config(cls, config):
        """The optimizer for a get_config dict."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} learning_rate={self.learning_rate}>"


class SGD(Optimizer):
    """Gradient descent, with momentum and Nesterov's variant."""
    _defaults = {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}


class Adam(Optimizer):
    """Adam: per-weight rates from running means of the gradient and its square (AMSGrad's
    variant with amsgrad=True)."""

    _defaults = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False}


class AdamW(Optimizer):
    """Adam with decoupled weight decay (weight_decay, applied to the weights directly)."""

    _defaults = {"learning_rate": 0.001, "weight_decay": 0.004, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
                 "amsgrad": False}


class RMSprop(Optimizer):
    """Divides the gradient by a running root mean square of recent gradients (centered: minus
    their running mean); optional momentum."""

    _defaults = {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False}


class Adagrad(Optimizer):
    """Per-weight rates that shrink with the sum of that weight's squared gradients."""

    _defaults = {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7}


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(identifier):
    """An optimizer from a name ('adam'), a config dict or an optimizer (returned as is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer '{identifier}' (known: {', '.join(sorted(_BY_NAME))})")
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _BY_NAME.get(identifier["class_name"].lower())
        if cls is None:
            raise ValueError(f"unknown optimizer '{identifier['class_name']}'")
        return cls(**identifier.get("config", {}))
    raise TypeError(f"optimizer: expected a name or a lamina.optimizers object, got {type(identifier).__name__}")


class schedules:  # noqa: N801 (Keras' module name)
    """Learning-rate schedules, as keras.optimizers.schedules."""

    class ExponentialDecay(ConfigObject):
        """initial_learning_rate * decay_rate ** (step / decay_steps) (whole periods with staircase)."""

        _known = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name")

    class PiecewiseConstantDecay(ConfigObject):
        """values[i] while the step is within boundaries[i-1] < step <= boundaries[i]."""

        _known = ("boundaries", "values", "name")

    class CosineDecay(ConfigObject):
        """A half cosine over decay_steps from the rate down to alpha times it. With
        warmup_target: first a linear ramp from initial_learning_rate to warmup_target over
        warmup_steps, then the cosine from warmup_target."""

        _known = ("initial_learning_rate", "decay_steps", "alpha", "name", "warmup_target", "warmup_steps")

    class InverseTimeDecay(ConfigObject):
        """initial_learning_rate / (1 + decay_rate * step / decay_steps) (whole periods with staircase)."""

        _known = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name")
