"""The learning-rate range test: raise the rate step by step and watch the loss."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from ._keras_private import all_layers, learning_rate_object
from ._signals import deferred_interrupts
from ._validate import check, is_int, is_real
from ._warnings import warn
from .callbacks._fit import base_optimizer
from .plotting import plot_lr_range_test

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


@dataclass
class LRFinderResult:
    """What ``find_learning_rate`` measured.

    Attributes:
        learning_rates: the rate used at each step taken.
        losses: the training loss of each step's batch.
        smoothed_losses: the bias-corrected exponential moving average of the losses.
        suggestion: the rate at the steepest descent of the smoothed loss (see
            ``find_learning_rate``), or None when too few steps were taken.
        min_loss_lr: the rate at the lowest smoothed loss. A common rule of
            thumb takes a tenth of it.
        stop_reason: "diverged", "non_finite", "out_of_data" (a generator ended
            before ``num_steps``) or None (all steps taken).
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggestion: float | None
    min_loss_lr: float
    stop_reason: str | None = None

    def plot(self, path: str | None = None) -> Any:
        """Draw loss against rate (log axis) with the suggestion marked; save to ``path`` if given."""
        figure = plot_lr_range_test(
            self.learning_rates, self.losses, self.smoothed_losses, self.suggestion
        )
        if path is not None:
            from ._io import atomic_write

            atomic_write(path, lambda tmp: figure.savefig(tmp, format=_format(path)))
        return figure


def _format(path: str) -> str:
    return str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else "png"


class _PlannedRates(LearningRateSchedule):
    """The range test's rates as a schedule of the optimizer step (no host round trip)."""

    def __init__(self, rates: np.ndarray, first_step: int) -> None:
        super().__init__()
        self.rates = keras.ops.convert_to_tensor(rates.astype("float32"))
        self.first_step = first_step
        self.last = len(rates) - 1

    def __call__(self, step: Any) -> Any:
        index = keras.ops.clip(keras.ops.cast(step, "int32") - self.first_step, 0, self.last)
        return keras.ops.take(self.rates, index)

    def get_config(self) -> dict[str, Any]:  # pragma: no cover - never saved
        return {}


def planned_rates(min_lr: float, max_lr: float, num_steps: int, mode: str) -> np.ndarray:
    """The rates of the test: geometric (exponential) or evenly spaced (linear) from min_lr to max_lr."""
    if mode == "exponential":
        return np.geomspace(min_lr, max_lr, num_steps)
    return np.linspace(min_lr, max_lr, num_steps)


def smooth(losses: np.ndarray, beta: float) -> np.ndarray:
    """Bias-corrected exponential moving average: m_i / (1 - beta^(i+1)), m_i = beta m_{i-1} + (1 - beta) l_i."""
    out, average = np.empty(len(losses)), 0.0
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        out[i] = average / (1 - beta ** (i + 1))
    return out


def steepest_descent(rates: np.ndarray, smoothed: np.ndarray, mode: str) -> float | None:
    """The rate where the smoothed loss falls fastest (against log(rate) in exponential mode).

    The first tenth of the steps (noisy, barely trained) is skipped, as fastai and
    Lightning do.
    """
    finite = np.isfinite(smoothed)
    rates, smoothed = rates[finite], smoothed[finite]
    skip = max(1, len(rates) // 10)
    if len(rates) - skip < 3:
        return None
    x = np.log(rates) if mode == "exponential" else rates
    slope = np.gradient(smoothed[skip:], x[skip:])
    return float(rates[skip + int(np.argmin(slope))])


def _batches(x: Any, y: Any, batch_size: int | None) -> Iterator[tuple]:
    """(x, y[, sample_weight]) batches: arrays sliced in order and cycled, a dataset cycled.

    A dataset or a list of batches starts again when it ends; a generator or
    another one-shot iterator cannot, so the batches end with it.
    """
    if hasattr(x, "as_numpy_iterator") or (y is None and not hasattr(x, "shape")):
        source = x.as_numpy_iterator if hasattr(x, "as_numpy_iterator") else lambda: iter(x)
        first = True
        while True:
            empty = True
            for batch in source():
                empty = False
                yield tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
            if empty and first:
                raise ValueError(
                    f"Argument `x` must yield at least one batch. Received an empty dataset: x={x!r}"
                )
            if empty:  # a one-shot iterator, used up
                return
            first = False
    n = len(x)
    if n == 0:
        raise ValueError(
            f"Argument `x` must hold at least one sample. Received: x with shape {np.shape(x)}"
        )
    size = min(batch_size or 32, n)
    while True:
        for start in range(0, n - size + 1, size):
            yield (x[start : start + size],) + (() if y is None else (y[start : start + size],))


def find_learning_rate(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    batch_size: int | None = None,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exponential",
    smoothing: float = 0.98,
    divergence_threshold: float = 4.0,
    verbose: int = 1,
) -> LRFinderResult:
    """Run a learning-rate range test and leave the model exactly as it was.

    For ``num_steps`` steps the compiled model trains with its own optimizer
    and loss on successive batches while the rate rises from ``min_lr`` to
    ``max_lr`` (geometrically in "exponential" mode: lr_i = min_lr * (max_lr /
    min_lr) ** (i / (num_steps - 1)); evenly in "linear" mode). Each step's
    batch loss is recorded and smoothed with a bias-corrected exponential
    moving average (``smoothing`` = beta). The test stops early once the
    smoothed loss exceeds ``divergence_threshold`` times its best, or any loss
    is not finite.

    The suggestion is the rate at the steepest descent of the smoothed loss
    against log(rate) (against the rate in linear mode), skipping the first
    tenth of the steps: the rule of fastai's ``lr_find`` and Lightning's
    ``LearningRateFinder``.

    Afterwards every variable of the model and its optimizer (weights, BatchNorm
    statistics, the seed states behind Dropout, iterations, momentum and other
    slots, a LossScaleOptimizer's loss scale) and the optimizer's learning rate
    (a float or a schedule) are bit-identical to what they were, even when an
    exception or Ctrl-C stops the test; a second Ctrl-C during the restore waits
    until the restore is complete. Nothing is written to disk.

    Args:
        model: a compiled Keras model.
        x, y: arrays (sliced into batches in order, cycled if needed), or a
            ``tf.data.Dataset`` / iterable of ``(x, y)`` or ``(x, y, weights)``
            batches as ``x`` with ``y=None``.
        batch_size: for arrays; default 32.
        min_lr, max_lr: the range, 0 < min_lr < max_lr.
        num_steps: how many steps (>= 2).
        mode: "exponential" or "linear".
        smoothing: beta of the moving average, in [0, 1).
        divergence_threshold: stop when the smoothed loss passes this multiple
            of its best (> 1).
        verbose: 1 shows a progress bar.

    Returns:
        An ``LRFinderResult``; ``result.plot("lr.png")`` draws it.

    Example:

    >>> import keras, numpy as np
    >>> from keras_lrkit import find_learning_rate
    >>> x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    >>> y = x @ np.ones((4, 1), "float32")
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(0.01), "mse")
    >>> result = find_learning_rate(model, x, y, num_steps=40, verbose=0)
    >>> 1e-7 <= result.suggestion <= 10.0
    True
    """
    check(
        "model",
        model,
        getattr(model, "compiled", False) and model.optimizer is not None,
        "a compiled Keras model",
    )
    check("min_lr", min_lr, is_real(min_lr) and min_lr > 0, "a finite float > 0")
    check("max_lr", max_lr, is_real(max_lr), "a finite float")
    if not max_lr > min_lr:
        raise ValueError(
            "Arguments `min_lr` and `max_lr` must satisfy min_lr < max_lr. "
            f"Received: min_lr={min_lr!r}, max_lr={max_lr!r}"
        )
    check(
        "num_steps",
        num_steps,
        is_int(num_steps) and num_steps >= 2,
        "an int >= 2",
    )
    check("mode", mode, mode in ("exponential", "linear"), 'one of "exponential", "linear"')
    check("smoothing", smoothing, is_real(smoothing) and 0 <= smoothing < 1, "a float in [0, 1)")
    check(
        "divergence_threshold",
        divergence_threshold,
        is_real(divergence_threshold) and divergence_threshold > 1,
        "a float > 1",
    )
    check(
        "batch_size",
        batch_size,
        batch_size is None or (is_int(batch_size) and batch_size >= 1),
        "None or an int >= 1",
    )
    batches = _batches(x, y, batch_size)
    first = next(batches)  # fails here, before anything is touched, on empty data
    optimizer = base_optimizer(model.optimizer)
    if not model.built:
        model(first[0])
    if not optimizer.built:
        optimizer.build(model.trainable_variables)

    rates = planned_rates(float(min_lr), float(max_lr), num_steps, mode)
    state = _ModelState(model, optimizer)
    losses: list[float] = []
    stop_reason = None
    progress = keras.utils.Progbar(num_steps, stateful_metrics=["lr", "loss"]) if verbose else None
    try:
        drive = state.take_over_learning_rate(rates)
        best, average = math.inf, 0.0
        batch = first
        for i in range(num_steps):
            drive(i)
            loss = float(model.train_on_batch(*batch, return_dict=True)["loss"])
            losses.append(loss)
            average = (
                smoothing * average + (1 - smoothing) * loss
            )  # as smooth(), one step at a time
            smoothed = average / (1 - smoothing ** (i + 1))
            if progress is not None:
                progress.update(i + 1, [("lr", rates[i]), ("loss", loss)])
            if not (math.isfinite(loss) and math.isfinite(smoothed)):
                stop_reason = "non_finite"
                break
            best = min(best, smoothed)
            if smoothed > divergence_threshold * best:
                stop_reason = "diverged"
                break
            if i + 1 < num_steps:
                batch = next(batches, None)
                if batch is None:
                    stop_reason = "out_of_data"
                    warn(
                        f"find_learning_rate: the data ran out after {i + 1} batches, before "
                        f"num_steps={num_steps}; the test stops with the steps it took. Pass data "
                        "that can be iterated again (arrays, a dataset) or lower num_steps."
                    )
                    break
    finally:
        state.restore()
    losses_array = np.asarray(losses, dtype=float)
    smoothed_all = smooth(losses_array, smoothing)
    taken = rates[: len(losses)]
    finite = np.where(np.isfinite(smoothed_all), smoothed_all, np.inf)
    return LRFinderResult(
        learning_rates=taken,
        losses=losses_array,
        smoothed_losses=smoothed_all,
        suggestion=steepest_descent(taken, smoothed_all, mode),
        min_loss_lr=float(taken[int(np.argmin(finite))]),
        stop_reason=stop_reason,
    )


class _ModelState:
    """Everything the test changes, copied on the host and put back bit for bit.

    Every variable the model and its optimizer own: weights, BatchNorm
    statistics, the seed generators' states behind Dropout and other random
    layers, metric accumulators, the optimizer's step, slots and learning rate,
    a wrapper's own variables (a LossScaleOptimizer's loss scale and counter),
    and the variables a layer keeps outside ``model.variables`` (the carried
    states of a stateful RNN). Not restored: Keras's process-wide seed generator, which only
    ``keras.random`` calls without a ``seed`` (and no layer) draw from; it is
    global state like NumPy's, not the model's.
    """

    def __init__(self, model: keras.Model, optimizer: Any) -> None:
        self.model, self.optimizer = model, optimizer
        owned = [*model.variables, *model.optimizer.variables, *model.metrics_variables,
                 *_layer_variables(model)]  # fmt: skip
        self.variables = list({id(v): v for v in owned}.values())  # each once, in order
        self.values = [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in self.variables]
        self.rate = learning_rate_object(optimizer)  # a Variable (float rate) or a schedule
        self.train_function = model.train_function
        self.torch_rng = _torch_rng_state()

    def take_over_learning_rate(self, rates: np.ndarray) -> Any:
        """Make the optimizer use ``rates[i]`` at step i of the test; returns ``drive(i)``."""
        if isinstance(self.rate, keras.Variable):
            # A float rate: set the optimizer's own variable before each step.
            def drive(i: int) -> None:
                self.optimizer.learning_rate = float(rates[i])

            return drive
        # A schedule: swap in one that reads the planned rate from the step counter.
        first_step = int(keras.ops.convert_to_numpy(self.optimizer.iterations))
        self.optimizer.learning_rate = _PlannedRates(rates, first_step)
        self.model.train_function = None  # retrace with the new schedule
        return lambda i: None

    def restore(self) -> None:
        """Put everything back; a Ctrl-C meanwhile waits until all of it is back."""
        with deferred_interrupts():
            if learning_rate_object(self.optimizer) is not self.rate:
                self.optimizer.learning_rate = self.rate
            for variable, value in zip(self.variables, self.values):
                variable.assign(value)
            self.model.train_function = self.train_function
            _set_torch_rng_state(self.torch_rng)


def _layer_variables(model: keras.Model) -> list[Any]:
    """The variables each layer holds in its attributes, alone or in a list: a stateful RNN's
    ``states``, which Keras keeps out of ``model.variables``."""
    found = []
    for layer in all_layers(model):
        for value in vars(layer).values():
            for item in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(item, keras.Variable):
                    found.append(item)
    return found


def _torch_rng_state() -> Any:
    """torch's global generators (CPU, and every GPU), which unseeded torch Dropout draws from."""
    if keras.backend.backend() != "torch":
        return None
    import torch

    gpus = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return torch.get_rng_state(), gpus


def _set_torch_rng_state(state: Any) -> None:
    if state is None:
        return
    import torch

    cpu, gpus = state
    torch.set_rng_state(cpu)
    if gpus is not None:
        torch.cuda.set_rng_state_all(gpus)
