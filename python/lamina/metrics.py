"""Keras' metrics, by name ("accuracy", "precision", "recall", "f1_score", ...) or as objects."""

__all__ = ["Metric", "Accuracy", "SparseCategoricalAccuracy", "CategoricalAccuracy", "BinaryAccuracy",
           "Precision", "Recall", "F1Score"]


class Metric:
    """A built-in metric, as an object: compile takes it as its name."""

    _engine_name: "str | None" = None

    def __init__(self, name=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}(): the arguments {', '.join(kwargs)} are not supported")
        self.name = name or self._engine_name

    def get_config(self):
        """The constructor's arguments, as Keras' get_config."""
        return {"name": self.name}


class Accuracy(Metric):
    """How often the predicted class is the true one (the engine reads the class from the loss:
    sparse labels, one-hot targets or 0/1 targets)."""

    _engine_name = "accuracy"


class SparseCategoricalAccuracy(Metric):
    """How often the highest-scoring class is the integer label."""

    _engine_name = "sparse_categorical_accuracy"


class CategoricalAccuracy(Metric):
    """How often the highest-scoring class is the one-hot target's."""

    _engine_name = "categorical_accuracy"


class BinaryAccuracy(Metric):
    """How often a thresholded prediction (0.5, or 0 for logits) equals the 0/1 target."""

    _engine_name = "binary_accuracy"


class Precision(Metric):
    """True positives over predicted positives (binary), or its mean over classes (macro)."""

    _engine_name = "precision"


class Recall(Metric):
    """True positives over actual positives (binary), or its mean over classes (macro)."""

    _engine_name = "recall"


class F1Score(Metric):
    """The harmonic mean of precision and recall (binary), or its mean over classes (macro)."""

    _engine_name = "f1_score"


def names(metrics):
    """compile's metrics as the engine's names."""
    if metrics is None:
        return []
    if isinstance(metrics, (str, Metric)):
        metrics = [metrics]
    out = []
    for m in metrics:
        if isinstance(m, str):
            out.append(m)
        elif isinstance(m, Metric):
            out.append(m._engine_name)
        else:
            raise TypeError(f"metrics: expected names or lamina.metrics objects, got {type(m).__name__} "
                            "(a metric function of your own is not supported yet)")
    return out
