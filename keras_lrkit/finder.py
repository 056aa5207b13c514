"""The learning-rate range test: raise the rate step by step and watch the loss."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import keras
import numpy as np

from ._keras_private import all_layers, learning_rate_object
from ._signals import deferred_interrupts
from ._validate import check, is_int, is_real
from ._warnings import warn
from .callbacks._fit import base_optimizer
from .plotting import plot_lr_range_test

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule
Array = np.ndarray

#: The rule of ``LRFinderResult.suggestion``, chosen by measurement (docs/guides/range-test.md,
#: "Which rate the range test suggests"; ``benchmarks/case_range_test.py``).
DEFAULT_RULE = "minimum/3"


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


def running_median(values: np.ndarray) -> np.ndarray:
    """Each value replaced by the median of the five centred on it; near the ends, of the three or
    the one centred on it, so that the window stays symmetric and a straight line stays straight."""
    values = np.asarray(values, dtype=float)
    out = values.copy()
    if len(values) >= 3:
        out[1:-1] = np.median(np.lib.stride_tricks.sliding_window_view(values, 3), axis=1)
    if len(values) >= 5:
        out[2:-2] = np.median(np.lib.stride_tricks.sliding_window_view(values, 5), axis=1)
    return out


def local_quadratic(values: np.ndarray, window: int) -> np.ndarray:
    """LOESS of degree 2: at each i, the weighted least-squares parabola through
    values[i-window : i+window+1] (tricube weights (1 - (|j - i| / (window + 1))^3)^3),
    evaluated at i. A parabola follows the bend into the loss's minimum, where a straight
    line cuts the corner."""
    values = np.asarray(values, dtype=float)
    if window < 1 or len(values) < 4:
        return values.copy()
    offsets = np.arange(-window, window + 1, dtype=float)
    kernel = (1 - (np.abs(offsets) / (window + 1)) ** 3) ** 3

    def windows(a: np.ndarray) -> np.ndarray:
        return np.lib.stride_tricks.sliding_window_view(np.pad(a, window), 2 * window + 1)

    w = windows(np.ones(len(values))) * kernel  # no weight past either end
    y = windows(values)
    powers = np.stack([offsets**k for k in range(3)])  # 1, d, d^2
    normal = np.einsum("nj,aj,bj->nab", w, powers, powers)  # sum w d^(a+b)
    right = np.einsum("nj,aj,nj->na", w, powers, y)
    return np.linalg.solve(normal, right[..., None])[:, 0, 0]  # the fit's value at d = 0


def _reading(losses: np.ndarray) -> tuple[np.ndarray, int, int, float, float]:
    """(the running median of the finite losses, skip, break, start, scatter); see ``smooth``."""
    losses = np.asarray(losses, dtype=float)
    finite = np.isfinite(losses)
    n = len(losses) if finite.all() else int(np.argmin(finite))  # up to the first non-finite
    median = running_median(losses[:n])
    skip = max(1, len(losses) // 10)
    if n <= skip:
        return median, skip, n, math.nan, math.nan
    # The batch losses' own scatter, from step-to-step differences (robust to the trend):
    # sigma = 1.4826 * median |l_i+1 - l_i| / sqrt(2).
    scatter = 1.4826 * float(np.median(np.abs(np.diff(losses[:n])))) / math.sqrt(2)
    start = float(np.max(median[: skip + 1]))
    lowest = np.minimum.accumulate(median[skip:])
    broke = np.nonzero(median[skip:] > lowest + 0.25 * np.maximum(start - lowest, 0) + 4 * scatter)
    end = skip + int(broke[0][0]) if broke[0].size else n
    return median, skip, end, start, scatter


def smooth(losses: np.ndarray, window: int) -> np.ndarray:
    """The losses smoothed without lag, up to where training broke; the running median past it.

    1. A running median of 5: each loss is replaced by the median of itself and
       its two neighbours on each side, which removes a spike of one or two
       steps (a bad batch) and keeps a straight stretch as it is.
    2. Where training broke: the first step after the first tenth at which
       that median has climbed back from its lowest so far by a quarter of what
       it had gained from the start (its highest in the first tenth), plus
       four times the batch losses' scatter (sigma = 1.4826 times the median
       step-to-step change over sqrt(2)), so that noise alone does not count.
    3. Up to there, LOESS of degree 2 (``local_quadratic``): at each step the
       parabola that fits the medians of the ``window`` steps on either side
       best, with Cleveland's tricube weights, evaluated at the step. Past
       there, the running median itself, so the divergence is drawn as it
       happened and never pulls the fit before it upward.

    The steps are evenly spaced in log(rate) (exponential mode) or in rate
    (linear mode), so the window is a fixed width of the rate axis. A straight
    or parabolic stretch comes out unchanged, at its ends too: no lag and no shift, where a
    moving average trails a falling loss by about 1 / (1 - beta) steps (50 for
    fastai's beta = 0.98). Non-finite losses, and all after them, come out NaN.

    >>> import numpy as np
    >>> line = np.linspace(3.0, 1.0, 30)
    >>> bool(np.allclose(smooth(line, 5), line))
    True
    >>> spiked = line.copy(); spiked[10] = 50.0  # one bad batch
    >>> bool(np.abs(smooth(spiked, 5) - line).max() < abs(line[1] - line[0]))  # under a step
    True
    """
    losses = np.asarray(losses, dtype=float)
    out = np.full(len(losses), np.nan)
    median, _, end, _, _ = _reading(losses)
    out[: len(median)] = median
    out[:end] = local_quadratic(median[:end], window)
    return out


def smoothing_window_steps(num_steps: int, fraction: float) -> int:
    """The half-width, in steps, of ``smooth``'s window: ``fraction`` of the steps, at least 2."""
    return max(2, int(round(fraction * num_steps)))


def _usable(losses: np.ndarray) -> tuple[int, int] | None:
    """The steps a rule reads, ``(skip, end)``, or None when the loss never fell.

    From the second tenth of the steps (the first is barely trained, and fastai
    and Lightning skip it too) to where training broke (``smooth``, step 2):
    past it the losses of a breaking network bounce, and a bounce can look
    like a descent (fastai drops the last five steps for the same reason).
    When the loss never falls below where it started by more than three times
    its scatter (a model that learned nothing in the test's steps) there is
    nothing to read.
    """
    median, skip, end, start, scatter = _reading(losses)
    if end - skip < 3 or not np.min(median[skip:end]) < start - 3 * scatter:
        return None
    return skip, end


# Each rule reads the smoothed losses of the steps [first, end) (``_usable``) and returns a rate.


def _lowest(smoothed: Array, first: int, end: int) -> int:
    """The step of the lowest smoothed loss among the steps read."""
    return first + int(np.argmin(smoothed[first:end]))


def _fraction_of_minimum(divisor: float) -> Callable[..., float]:
    def rule(rates: Array, smoothed: Array, first: int, end: int, mode: str) -> float:
        return float(rates[_lowest(smoothed, first, end)] / divisor)

    return rule


def _steepest(rates: Array, smoothed: Array, first: int, end: int, mode: str) -> float:
    stop = max(_lowest(smoothed, first, end) + 1, first + 3)  # the descent, three steps at least
    x = np.log(rates) if mode == "exponential" else rates
    slope = np.gradient(smoothed[first:stop], x[first:stop])
    return float(rates[first + int(np.argmin(slope))])


def _valley(rates: Array, smoothed: Array, first: int, end: int, mode: str) -> float:
    curve = smoothed[first:end]
    # The longest run of steps along which the loss keeps falling, a longest
    # decreasing subsequence: length[i] is the longest one that ends at step i.
    length = np.ones(len(curve), dtype=int)
    for i in range(1, len(curve)):
        higher = length[:i][curve[:i] > curve[i]]
        if higher.size:
            length[i] = higher.max() + 1
    last = int(np.argmax(length))  # the first step where a longest run ends
    start = last - length[last]  # fastai's bounds and arithmetic, as they are
    third = (last - start) / 3
    return float(rates[first + max(0, start + int(third) + int(third / 2))])


_RULES = {
    "minimum/3": _fraction_of_minimum(3),
    "valley": _valley,
    "steepest": _steepest,
    "minimum": _fraction_of_minimum(10),
}


@dataclass
class LRFinderResult:
    """What ``find_learning_rate`` measured, and the rates its rules read from it.

    Attributes:
        learning_rates: the rate used at each step taken.
        losses: the training loss of each step's batch.
        smoothed_losses: the losses smoothed without lag (``smooth``: a
            running median of 5, then a local parabola fit over a window
            of the steps, up to where training broke).
        stop_reason: "diverged", "non_finite", "out_of_data" (a generator ended
            before ``num_steps``) or None (all steps taken).
        mode: "exponential" or "linear", the spacing of the rates.
        rule: the rule ``suggestion`` follows ("minimum/3" unless chosen).
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    stop_reason: str | None = None
    mode: str = "exponential"
    rule: str = DEFAULT_RULE

    #: The rules ``suggest`` knows, the default first.
    RULES: ClassVar[tuple[str, ...]] = tuple(_RULES)

    def suggest(self, rule: str | None = None) -> float | None:
        """The rate a rule suggests; None when the loss never fell (nothing to read).

        Every rule reads the smoothed loss from the second tenth of the steps
        to where training broke (where the smoothed loss climbs back a quarter
        of what it had gained):

        - ``"minimum/3"``, the default: a third of the rate at the lowest
          smoothed loss. Smith (2017, "Cyclical learning rates for training
          neural networks", section 3.3): the best rate is usually within a
          factor of two of the largest one that converges; take a third or a
          quarter of it. Of the rules here it is the one whose rate trained
          to at least 0.9x the best of a grid of rates on the most setups
          measured: ten of eleven, a GRU the exception, where no rule did
          (docs/guides/range-test.md, "Which rate the range test suggests").
        - ``"valley"``, fastai's default since 2021 (``valley`` in
          ``fastai/callback/schedule.py``): the longest run of steps along
          which the loss keeps falling (a longest decreasing subsequence) and
          the step halfway along it, by fastai's own arithmetic.
        - ``"steepest"``, fastai's rule before 2021 and Lightning's
          ``LearningRateFinder``'s: the rate where the loss falls fastest
          against log(rate) (against the rate in linear mode), on the descent
          into the lowest loss.
        - ``"minimum"``, fastai's ``minimum``: the rate at the lowest smoothed
          loss, divided by 10.

        fastai's rules read a moving average that trails the loss by about 50
        steps, which moves every rate they pick to the right; read on a curve
        without lag, "valley" and "minimum" come out lower than fastai's.

        ``suggest()`` with no rule follows ``rule``, as ``suggestion`` does.
        """
        rule = self.rule if rule is None else rule
        check("rule", rule, rule in _RULES, "one of " + ", ".join(f'"{r}"' for r in _RULES))
        steps = self.read_steps
        if steps is None:
            return None
        return _RULES[rule](self.learning_rates, self.smoothed_losses, *steps, self.mode)

    @property
    def suggestion(self) -> float | None:
        """The rate of ``rule`` ("minimum/3" unless chosen): where to start training."""
        return self.suggest()

    @property
    def read_steps(self) -> tuple[int, int] | None:
        """``(first, end)``: the steps every rule reads, from the second tenth to where
        training broke (``smooth``); None when the loss never fell (nothing to read)."""
        return _usable(self.losses)

    @property
    def min_loss_lr(self) -> float | None:
        """The rate at the lowest smoothed loss before training broke (None: the loss never fell)."""
        steps = self.read_steps
        return (
            None
            if steps is None
            else float(self.learning_rates[_lowest(self.smoothed_losses, *steps)])
        )

    def plot(self, path: str | None = None) -> Any:
        """Draw loss against rate (log axis), every rule's rate marked; save to ``path`` if given."""
        marks = {name: self.suggest(name) for name in _RULES}
        figure = plot_lr_range_test(
            self.learning_rates, self.losses, self.smoothed_losses, marks, default=self.rule
        )
        if path is not None:
            from ._io import atomic_write

            atomic_write(path, lambda tmp: figure.savefig(tmp, format=_format(path)))
        return figure


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
    num_steps: int = 300,
    mode: str = "exponential",
    smoothing_window: float = 0.05,
    divergence_threshold: float = 4.0,
    rule: str = DEFAULT_RULE,
    verbose: int = 1,
) -> LRFinderResult:
    """Run a learning-rate range test and leave the model exactly as it was.

    For ``num_steps`` steps the compiled model trains with its own optimizer
    and loss on successive batches while the rate rises from ``min_lr`` to
    ``max_lr`` (geometrically in "exponential" mode: lr_i = min_lr * (max_lr /
    min_lr) ** (i / (num_steps - 1)); evenly in "linear" mode). Each step's
    batch loss is recorded. The test stops early once the median of the last
    five losses exceeds ``divergence_threshold`` times the lowest such median
    (a lag of two steps, and one spike does not stop it), or a loss is not
    finite.

    The losses are then smoothed without lag (``smooth``: a robust local
    linear fit over ``smoothing_window`` of the steps on each side), and
    ``result.suggestion`` is the rate of ``rule``: "minimum/3" (a third of
    the rate at the lowest smoothed loss), "valley" (fastai's default),
    "steepest" or "minimum" (``LRFinderResult.suggest``). The default is the
    rule whose rate trained to at least 0.9x the best of a grid of rates on
    the most setups measured, ten of eleven (CNN, MLP, GRU and ResNet; SGD
    with momentum and Adam; with and without BatchNorm; MNIST-1D and the
    digits; a GRU the exception): the table in docs/guides/range-test.md, from
    ``benchmarks/case_range_test.py``.
    When the loss never fell during the test there is nothing to read and the
    suggestion is None: give the test more steps or a narrower range.

    Afterwards every variable of the model and its optimizer (weights, BatchNorm
    statistics, the seed states behind Dropout, iterations, momentum and other
    slots, a LossScaleOptimizer's loss scale) and the optimizer's learning rate
    (a float or a schedule) are bit-identical to what they were, even when an
    exception or Ctrl-C stops the test; a second Ctrl-C during the restore waits
    until the restore is complete. Nothing is written to disk.

    Args:
        model: a compiled Keras model.
        x: an array (sliced into batches in order, cycled if needed), or a
            ``tf.data.Dataset`` / iterable of ``(x, y)`` or ``(x, y, weights)``
            batches, with ``y=None``.
        y: the targets of an array ``x``.
        batch_size: for arrays; default 32.
        min_lr: the first rate, > 0.
        max_lr: the last rate, > min_lr.
        num_steps: how many steps (>= 2).
        mode: "exponential" or "linear".
        smoothing_window: the smoothing window's half-width, a fraction of
            ``num_steps`` in (0, 0.5] (at least two steps).
        divergence_threshold: stop when the median of the last five losses
            passes this multiple of its lowest (> 1).
        rule: the rule of ``result.suggestion``: "valley", "steepest" or "minimum".
        verbose: 1 shows a progress bar.

    Returns:
        An ``LRFinderResult``; ``result.plot("lr.png")`` draws it.

    Examples:
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
    check(
        "smoothing_window",
        smoothing_window,
        is_real(smoothing_window) and 0 < smoothing_window <= 0.5,
        "a float in (0, 0.5]",
    )
    check("rule", rule, rule in _RULES, "one of " + ", ".join(f'"{r}"' for r in _RULES))
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
        best = math.inf
        batch = first
        for i in range(num_steps):
            drive(i)
            loss = float(model.train_on_batch(*batch, return_dict=True)["loss"])
            losses.append(loss)
            if progress is not None:
                progress.update(i + 1, [("lr", rates[i]), ("loss", loss)])
            if not math.isfinite(loss):
                stop_reason = "non_finite"
                break
            recent = statistics.median(losses[-5:])
            best = min(best, recent)
            if recent > divergence_threshold * best:
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
    return LRFinderResult(
        learning_rates=rates[: len(losses)],
        losses=losses_array,
        smoothed_losses=smooth(losses_array, smoothing_window_steps(num_steps, smoothing_window)),
        stop_reason=stop_reason,
        mode=mode,
        rule=rule,
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
