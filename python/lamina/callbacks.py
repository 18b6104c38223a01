"""Keras' callbacks: subclass ``Callback`` and override the methods you need, or use the
built-in ones. fit calls them between batches and epochs, with the GIL held."""

__all__ = ["Callback", "History", "LambdaCallback", "CallbackList"]


class Callback:
    """The base of callbacks, with Keras' method names and arguments. ``self.model`` is the model
    being trained; set ``self.model.stop_training = True`` to end fit after this epoch."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    @property
    def _lamina_wants_batches(self):
        """Whether fit must call on_train_batch_end (only when a subclass defines it)."""
        return type(self).on_train_batch_end is not Callback.on_train_batch_end


class History(Callback):
    """What fit returns: ``history`` maps each logged name to its value per epoch."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []


class LambdaCallback(Callback):
    """A callback from functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_end=None, on_batch_end=None):
        super().__init__()
        noop = lambda *a, **k: None  # noqa: E731
        self.on_epoch_begin = on_epoch_begin or noop
        self.on_epoch_end = on_epoch_end or noop
        self.on_train_begin = on_train_begin or noop
        self.on_train_end = on_train_end or noop
        self._batch = on_train_batch_end or on_batch_end
        if self._batch is not None:
            self.on_train_batch_end = self._batch

    @property
    def _lamina_wants_batches(self):
        return self._batch is not None


class CallbackList:
    """fit's callbacks, each given the model. Internal."""

    def __init__(self, callbacks, model):
        if callbacks is None:
            callbacks = []
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks: expected lamina.callbacks.Callback objects, got {type(cb).__name__}")
            cb.set_model(model)
        self.callbacks = list(callbacks)
