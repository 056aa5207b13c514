"""The benchmarks' harness: variants run interleaved in a balanced order, medians, rows, the device.

Every figure is a ratio of two medians measured in one process, the variants
interleaved (A, B, A, B, ...), at least 5 repeats each. A case module builds
its variants and turns the medians into rows with ``row``.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lrkit as lrk  # noqa: E402

BACKEND = keras.backend.backend()
HERE = Path(__file__).resolve().parent


def interleaved(
    variants: dict, repeats: int, setup: dict | None = None, statistic=statistics.median
) -> dict:
    """Median seconds (or ``statistic``'s) of each zero-argument callable, run interleaved in a
    balanced order.

    Round r runs the variants in row r of a Williams design (see ``balanced_orders``):
    across the rounds every variant comes first as often as any other and follows
    every other one equally often, so neither a slot in the round nor what ran just
    before (a warm or a trashed cache, a pending free) favours one variant. A plain
    rotation (A B C, B C A, ...) always puts B after A.
    ``setup[name]``, when given, runs untimed right before each call of ``name``.
    A variant that returns a float is timed by it (seconds from a clock of its
    own, such as ``StepClock``) instead of by the wall time of the whole call.
    """
    times = {name: [] for name in variants}
    names = list(variants)
    setup = setup or {}
    orders = balanced_orders(len(names))
    for r in range(repeats):
        for name in (names[i] for i in orders[r % len(orders)]):
            run = variants[name]
            if name in setup:
                setup[name]()
            gc.collect()
            start = time.perf_counter()
            result = run()
            wall = time.perf_counter() - start
            times[name].append(result if isinstance(result, float) else wall)
    return {name: statistic(t) for name, t in times.items()}


def balanced_orders(n: int) -> list[list[int]]:
    """A Williams design: orders of 0..n-1 in which each i comes right after each j != i equally often.

    The first order is 0, 1, n-1, 2, n-2, ...; the others add 1, 2, ... (mod n).
    For odd n the reversed orders are appended (2n orders); for even n, n suffice.

    >>> balanced_orders(4)
    [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
    """
    first = [0]
    for k in range(1, n):
        first.append((k + 1) // 2 if k % 2 else n - k // 2)
    orders = [[(i + shift) % n for i in first] for shift in range(n)]
    return orders + [order[::-1] for order in orders] if n % 2 else orders


def sync(value=None):
    """Wait for the device (JAX dispatches asynchronously)."""
    if BACKEND == "jax":
        import jax

        jax.block_until_ready(value if value is not None else jax.numpy.zeros(()))
    elif BACKEND == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    return value


def row(case, name, value, unit, target=None, met=None, **extra):
    return {
        "case": case,
        "name": name,
        "value": value,
        "unit": unit,
        "target": target,
        "met": met,
        **extra,
    }


class StepClock(keras.callbacks.Callback):
    """Seconds from the start of an epoch's first batch to its end: the steps, not fit's setup or teardown.

    Fit's teardown varies on its own: on TensorFlow, destroying the tf.data
    iterator waits for its autotuning thread, which took 0 ms or 0.25-1 s at
    random after ``on_train_end`` here (gone with ``autotune.enabled = False``):
    a whole second on a 2-second fit. Only batch *begin* hooks are used, so
    Keras keeps dispatching batch ends asynchronously as it does without this
    callback; ``on_epoch_end`` comes after the last step's results are fetched.
    """

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def timed_fit(model, x, y, batch: int) -> float:
    """One epoch of ``model.fit``; the seconds its steps took (``StepClock``)."""
    clock = StepClock()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    return clock.seconds


def device_name() -> str:
    if BACKEND == "jax":
        import jax

        d = jax.devices()[0]
        return "cpu" if d.platform == "cpu" else d.device_kind
    if BACKEND == "torch":
        import torch

        return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return gpus[0].name if gpus else "cpu"


def environment() -> dict:
    versions = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "numpy": np.__version__,
        "keras_lrkit": lrk.__version__,
    }
    for name in ("tensorflow", "jax", "torch"):
        if name in sys.modules:
            versions[name] = sys.modules[name].__version__
    return {
        "backend": BACKEND,
        "device": device_name(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "versions": versions,
        "date": time.strftime("%Y-%m-%d"),
    }
