"""The GIL is released while the engine computes (other Python threads run during fit and
predict), and Ctrl-C (SIGINT) stops fit within a batch, leaving a usable model."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import lamina


def busy_model(features=256, units=512):
    model = lamina.Sequential([
        lamina.layers.Dense(units, activation="relu", input_shape=(features,)),
        lamina.layers.Dense(units, activation="relu"),
        lamina.layers.Dense(10),
    ])
    model.compile(lamina.optimizers.SGD(learning_rate=0.01),
                  lamina.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def busy_data(n=4096, features=256):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, features)).astype(np.float32), rng.integers(0, 10, size=n)


class Counter(threading.Thread):
    """Counts in pure Python as fast as it can: it progresses only while it holds the GIL."""

    def __init__(self):
        super().__init__(daemon=True)
        self.count = 0
        self.stop = False

    def run(self):
        while not self.stop:
            self.count += 1


def progress_during(fn):
    """The counter's increments while fn runs, and fn's duration."""
    counter = Counter()
    counter.start()
    while counter.count == 0:
        time.sleep(0.001)
    start_count, start = counter.count, time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    progressed = counter.count - start_count
    counter.stop = True
    counter.join()
    return progressed, seconds


def baseline_rate():
    """Increments per second with the main thread asleep (GIL free)."""
    progressed, seconds = progress_during(lambda: time.sleep(0.2))
    return progressed / seconds


def share(fn):
    """The counter's progress while fn runs, as a fraction of its free rate (about 0 when fn
    holds the GIL throughout), and fn's duration."""
    rate = baseline_rate()
    progressed, seconds = progress_during(fn)
    return progressed / (rate * seconds), seconds


# Released, the counter runs at a fair share of its free rate (fit's own threads compete with it
# for the cores: 0.3 to 0.9 measured on 2 cores, idle or busy); held throughout, it gets only the
# moments between calls (0.03 measured around sorted()).
RELEASED = 0.15


def test_the_measure_sees_a_held_gil():
    values = np.random.default_rng(0).random(1_000_000).tolist()  # ~0.5 s a sort: few switches
    fraction, seconds = share(repeated(lambda: sorted(values)))  # C code that keeps the GIL
    assert fraction < RELEASED / 2, (fraction, seconds)


def repeated(fn, seconds=0.4):
    """fn run again and again for at least `seconds`, so that the measure holds on fast and on
    busy machines alike."""
    def run():
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            fn()
    return run


def test_fit_releases_the_gil():
    model = busy_model()
    x, y = busy_data(512)
    model.fit(x[:64], y[:64], epochs=1, verbose=0)  # first-use setup outside the measure
    fraction, seconds = share(repeated(lambda: model.fit(x, y, epochs=1, batch_size=64, verbose=0)))
    assert fraction > RELEASED, (fraction, seconds)


def test_predict_and_evaluate_release_the_gil():
    model = busy_model()
    x, y = busy_data(2048)
    model.predict(x[:64], verbose=0)
    fraction, seconds = share(repeated(lambda: model.predict(x, batch_size=256, verbose=0)))
    assert fraction > RELEASED, (fraction, seconds)
    fraction, seconds = share(repeated(lambda: model.evaluate(x, y, batch_size=256, verbose=0)))
    assert fraction > RELEASED, (fraction, seconds)


def test_keyboard_interrupt_stops_fit_within_a_batch_and_leaves_a_usable_model():
    model = busy_model(units=256)
    x, y = busy_data(1024)
    # One batch of 64 takes milliseconds; 2000 epochs would take a minute or more.
    t0 = time.perf_counter()
    model.fit(x[:640], y[:640], epochs=1, batch_size=64, verbose=0)
    batch_seconds = (time.perf_counter() - t0) / 10
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, epochs=2000, batch_size=64, verbose=0)
    finally:
        timer.cancel()
    elapsed = time.perf_counter() - start
    assert elapsed < 0.3 + 20 * batch_seconds + 0.5, (elapsed, batch_seconds)
    # The weights are those of the last finished batch: finite, and the model works.
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    p = model.predict(x[:100], verbose=0)
    assert p.shape == (100, 10) and np.all(np.isfinite(p))
    # fit again trains on, from the weights of the last finished batch.
    before = model.evaluate(x, y, batch_size=256, verbose=0)
    h = model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert len(h.history["loss"]) == 2
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert model.evaluate(x, y, batch_size=256, verbose=0) < before


def interrupted_model():
    model = busy_model(8)
    x, y = busy_data(512, 8)

    class Interrupt(lamina.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, batch_size=32, callbacks=[Interrupt()], verbose=0)
    return model, x, y


def test_keyboard_interrupt_in_a_python_callback_leaves_fit():
    model, x, y = interrupted_model()
    assert model.predict(x, verbose=0).shape == (512, 10)


def test_fit_on_other_data_after_an_interrupt():
    # As Keras: the next fit starts afresh, with no memory of the half-done epoch.
    model, x, y = interrupted_model()
    h = model.fit(x[:100], y[:100], epochs=2, verbose=0)
    assert h.epoch == [0, 1]

