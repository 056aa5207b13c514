"""Schedules that go up as well as down: cosine with warm restarts, one-cycle, cyclical rates."""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import ops

from .._validate import fail, is_choice
from ._base import (
    DTYPE,
    FLOAT32_MAX,
    FROM_FIT,
    Schedule,
    _largest,
    at_least_zero,
    check_between,
    check_floor,
    check_positive,
    check_rate,
    elapsed,
    float32_holds,
    is_integer,
    periods,
)

_register = keras.saving.register_keras_serializable(package="keras_lrkit")


@_register
class CosineRestarts(Schedule):
    """Cosine annealing with warm restarts (SGDR): a cosine from a peak to the floor, again and again.

        T_i    = T * m ** i                           (the length of period i)
        peak_i = min_lr + (a_0 - min_lr) * d ** i     (its starting height)
        a_t    = min_lr + (peak_i - min_lr) * (1 + cos(pi * t_i / T_i)) / 2

    ``t_i`` is the time since period ``i`` began. ``T`` is ``period``, ``m``
    ``period_factor`` (>= 1: each period that many times the last), ``d``
    ``peak_factor`` (in (0, 1]: each restart's height above the floor that
    fraction of the last). In torch's ``CosineAnnealingWarmRestarts`` these are
    ``T_0``, ``T_mult`` and ``eta_min`` (its restarts keep their height: ``d``
    = 1); in Keras's ``CosineDecayRestarts`` they are ``first_decay_steps``,
    ``t_mul``, ``m_mul`` and ``alpha`` = ``min_lr / a_0``: the same numbers.
    Every period starts on its exact step, for whole and fractional ``T`` and
    ``m``, at any step the optimizer's counter holds: the first step of each
    period is worked out once in exact rational arithmetic (the starts
    ``T (m^i - 1) / (m - 1)``, rounded up), and a step finds its period among
    them by integer comparison, as ``StepDecay`` finds its milestones; only the
    position within a period is float32. (For ``m`` very close to 1, past the
    1024th period, the period comes from the logarithm instead.) torch steps
    ``T_cur`` one step at a time in integers; Keras takes a float32 logarithm,
    which restarts a step late at some restarts.

    Args:
        initial_learning_rate: ``a_0``, the first peak.
        period: ``T`` > 0, the first period, in epochs or steps.
        period_factor: ``m`` >= 1. Default 1 (equal periods).
        peak_factor: ``d`` in (0, 1]. Default 1 (every restart back to ``a_0``).
        min_learning_rate: absolute floor, reached at the end of each period.
        steps_per_epoch: when given, ``period`` counts epochs.

    Examples:
        Periods of 10, 20, 40 steps; each restart half as high.

        >>> from keras_lrkit import CosineRestarts
        >>> s = CosineRestarts(0.1, 10, period_factor=2, peak_factor=0.5)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 20, 30)]
        [0.1, 0.05, 0.05, 0.025, 0.025]

        Reference: Loshchilov & Hutter, SGDR: Stochastic Gradient Descent with
        Warm Restarts (2017).
    """

    def __init__(
        self,
        initial_learning_rate: float,
        period: float,
        *,
        period_factor: float = 1.0,
        peak_factor: float = 1.0,
        min_learning_rate: float = 0.0,
        steps_per_epoch: int | str | None = None,
    ) -> None:
        super().__init__(steps_per_epoch)
        self.initial_learning_rate = check_rate("initial_learning_rate", initial_learning_rate)
        self.period = check_positive("period", period)
        self._check_units()
        self.period_factor = check_between("period_factor", period_factor, 1.0, 1e6)
        self.peak_factor = check_between("peak_factor", peak_factor, 0.0, 1.0, open_low=True)
        self.min_learning_rate = check_floor(min_learning_rate, self.initial_learning_rate)

    def _check_units(self) -> None:
        check_positive("period", self.period, self._known_unit)

    def _period_at(self, step: Any) -> tuple[Any, Any]:
        """(i, the fraction of period i done at ``step``)."""
        first = self.period * self._steps_per_unit  # in steps
        m = self.period_factor
        if m == 1.0:
            i, since = periods(step, first)
            return i, since / float(first)
        largest = _largest(step) if is_integer(step) else 2**63 - 1
        table = _period_table(first, m, largest)
        if is_integer(step):  # (ops.maximum may narrow int64; the table needs the full width)
            t = ops.cast(at_least_zero(step), step.dtype)
            starts = ops.convert_to_tensor(table.first_steps, dtype=step.dtype)
        else:
            t, starts = elapsed(step), ops.convert_to_tensor(table.starts, dtype=DTYPE)
        k = _periods_begun(starts, t) - 1
        offset = ops.take(ops.convert_to_tensor(table.offsets, DTYPE), k)
        since = ops.cast(t - ops.take(starts, k), DTYPE) + offset
        i = ops.cast(k, DTYPE)
        done = since / ops.take(ops.convert_to_tensor(table.lengths, DTYPE), k)
        if table.complete:
            return i, done
        # Past the table (m very close to 1): the period from the logarithm, corrected.
        t = elapsed(step)
        j = ops.floor(ops.log(1.0 + t * ((m - 1.0) / first)) / math.log(m))

        def start(n: Any) -> Any:
            return first * (ops.power(m, n) - 1.0) / (m - 1.0)

        j = ops.where(start(j + 1.0) <= t, j + 1.0, j)
        j = ops.maximum(ops.where(start(j) > t, j - 1.0, j), 0.0)
        late = ops.greater_equal(t, float(table.end))
        return (ops.where(late, j, i),
                ops.where(late, (t - start(j)) / (first * ops.power(m, j)), done))  # fmt: skip

    def _rate_at_step(self, step: Any) -> Any:
        i, done = self._period_at(step)
        floor = self.min_learning_rate
        height = (self.initial_learning_rate - floor) * ops.power(self.peak_factor, i)
        return floor + height * (0.5 * (1.0 + ops.cos(math.pi * done)))

    def _limits(self) -> tuple[float, float]:
        return self.min_learning_rate, self.initial_learning_rate


MAX_PERIODS = 1024


def _periods_begun(starts: Any, t: Any) -> Any:
    """How many of the sorted ``starts`` are <= ``t``."""
    if keras.backend.backend() == "numpy":  # its ops.searchsorted narrows int64 to int32
        return np.searchsorted(np.asarray(starts), np.asarray(t), side="right")
    flat = ops.reshape(t, [-1])  # TensorFlow's searchsorted takes 1-D values only
    return ops.reshape(ops.searchsorted(starts, flat, side="right"), ops.shape(t))


class _PeriodTable(NamedTuple):
    first_steps: list[int]  # the first whole step of each period
    offsets: list[float]  # how far that step lies past the period's exact start
    starts: list[float]  # the exact starts, as floats (for steps that are not whole)
    lengths: list[float]  # each period's length, in steps
    end: float  # where the table ends
    complete: bool  # whether it holds every period up to the counter's largest step


@functools.lru_cache(maxsize=64)
def _period_table(first: float, m: float, largest: int) -> _PeriodTable:
    """The periods of ``first * m**i`` steps, from exact rational arithmetic (m and first are floats,
    so exact fractions), up to the counter's ``largest`` step or ``MAX_PERIODS``."""
    ratio, start, length = Fraction(m), Fraction(0), Fraction(first)
    first_steps, offsets, starts, lengths = [], [], [], []
    while len(first_steps) < MAX_PERIODS and math.ceil(start) <= largest:
        whole = math.ceil(start)
        first_steps.append(whole)
        offsets.append(float(whole - start))
        starts.append(float(start))
        lengths.append(float(length))
        start, length = start + length, length * ratio
    complete = math.ceil(start) > largest
    return _PeriodTable(first_steps, offsets, starts, lengths, float(start), complete)


@_register
class OneCycle(Schedule):
    """The one-cycle policy: up from a low rate to the peak, then down far below where it began.

    torch's ``OneCycleLR`` rate, number for number at every step from 0 to
    ``total - 1``, then held at its last value. With ``N`` the steps in
    ``total``, ``a_max`` the peak, ``a_0 = a_max / initial_div`` and
    ``a_end = a_0 / final_div``, the phases end at steps

        two phases:   w N - 1 (a_0 -> a_max),  N - 1 (a_max -> a_end)
        three phases: w N - 1 (a_0 -> a_max),  2 w N - 2 (a_max -> a_0),  N - 1 (a_0 -> a_end)

    (``w`` is ``warmup_fraction``), and within a phase from ``s_0`` to ``s_1``,
    at ``p = (step - s_0) / (s_1 - s_0)``:

        cosine: a = a_to + (a_from - a_to) * (1 + cos(pi p)) / 2
        linear: a = a_from + (a_to - a_from) * p

    In torch's names: ``total`` is ``total_steps`` (or ``epochs`` with
    ``steps_per_epoch``), ``warmup_fraction`` ``pct_start``, ``initial_div``
    ``div_factor``, ``final_div`` ``final_div_factor``, ``shape``
    ``anneal_strategy``. torch and fastai also cycle the momentum against the
    rate; a schedule sets the rate only: to compare with torch, give it
    ``cycle_momentum=False`` (or keep your optimizer's momentum fixed here).

    Args:
        max_learning_rate: ``a_max``, the peak.
        total: the length of the cycle, in epochs or steps; in steps a whole
            number ``N`` (with ``steps_per_epoch=n``, ``total * n``).
        warmup_fraction: ``w`` in (0, 1), the share of the cycle spent rising.
            Default 0.3.
        initial_div: ``a_0 = a_max / initial_div`` (> 0). Default 25.
        final_div: ``a_end = a_0 / final_div`` (> 0). Default 1e4.
        shape: "cosine" (default) or "linear", the curve of each phase.
        three_phase: go back down to ``a_0`` before the final descent.
        steps_per_epoch: when given, ``total`` counts epochs.

    Examples:
        >>> from keras_lrkit import OneCycle
        >>> s = OneCycle(0.1, 100)
        >>> [round(float(s(t)), 6) for t in (0, 29, 64, 99, 500)]
        [0.004, 0.1, 0.05, 0.0, 0.0]

        Reference: Smith & Topin, Super-Convergence (2017).
    """

    def __init__(
        self,
        max_learning_rate: float,
        total: float,
        *,
        warmup_fraction: float = 0.3,
        initial_div: float = 25.0,
        final_div: float = 1e4,
        shape: str = "cosine",
        three_phase: bool = False,
        steps_per_epoch: int | str | None = None,
    ) -> None:
        super().__init__(steps_per_epoch)
        self.max_learning_rate = check_rate("max_learning_rate", max_learning_rate)
        self.total = check_positive("total", total)
        self.warmup_fraction = check_between(
            "warmup_fraction", warmup_fraction, 0.0, 1.0, open_low=True, open_high=True
        )
        self.initial_div = check_positive("initial_div", initial_div)
        self.final_div = check_positive("final_div", final_div)
        if not is_choice(shape, ("cosine", "linear")):
            raise fail("shape", 'one of "cosine", "linear"', shape)
        self.shape = shape
        if not isinstance(three_phase, bool):
            raise fail("three_phase", "a bool", three_phase)
        self.three_phase = three_phase
        low = self.max_learning_rate / self.initial_div
        if not float32_holds(low):
            raise fail("initial_div", "a divisor that leaves rates float32 holds", initial_div)
        if not float32_holds(low / self.final_div):
            raise fail("final_div", "a divisor that leaves the last rate, max_learning_rate / "
                       "initial_div / final_div, a number float32 holds", final_div)  # fmt: skip
        self._check_units()

    def _check_units(self) -> None:
        if self.steps_per_epoch == FROM_FIT:
            return  # checked once fit gives the number
        steps = self.total * self._known_unit
        if not float(steps).is_integer():
            raise fail("total", f"a whole number of steps (total x steps_per_epoch = {steps:g})",
                       self.total)  # fmt: skip
        self._phases(self._known_unit)  # raises where a phase would be empty

    def _phases(self, unit: int) -> list[tuple[float, float, float, float]]:
        """(start step, end step, rate at the start, rate at the end) of each phase, as torch has them."""
        steps = float(self.total * unit)
        peak = self.max_learning_rate
        low = peak / self.initial_div
        end = low / self.final_div
        w = self.warmup_fraction
        if self.three_phase:
            ends = [w * steps - 1, 2 * w * steps - 2, steps - 1]
            values = [(low, peak), (peak, low), (low, end)]
        else:
            ends = [w * steps - 1, steps - 1]
            values = [(low, peak), (peak, end)]
        starts = [0.0, *ends[:-1]]
        if steps <= 1:  # no warmup_fraction leaves the phases room: the total is what is short
            raise fail("total", f"more than one step (total x steps_per_epoch = {steps:g})",
                       self.total)  # fmt: skip
        if any(b <= a for a, b in zip(starts, ends)):
            raise fail(
                "warmup_fraction",
                f"a fraction that leaves every phase of the {steps:g}-step cycle a step or more",
                self.warmup_fraction,
            )
        return [(s, e, a, b) for (s, e), (a, b) in zip(zip(starts, ends), values)]

    def _anneal(self, start: float, end: float, done: Any) -> Any:
        if self.shape == "cosine":
            return end + (start - end) / 2.0 * (ops.cos(math.pi * done) + 1.0)
        # Anchored at the nearer end, so both ends are exact in float32 (the last
        # rate, a_end, is 4e5 times below the peak: from the peak it would cancel).
        from_start = start + (end - start) * done
        from_end = end + (start - end) * (1.0 - done)
        return ops.where(done < 0.5, from_start, from_end)

    def _rate_at_step(self, step: Any) -> Any:
        phases = self._phases(self._steps_per_unit)
        s = ops.minimum(elapsed(step), phases[-1][1])  # held at its last value
        value = None
        for start, end, a, b in reversed(phases):  # the first phase whose end is >= s
            rate = self._anneal(a, b, (s - start) / (end - start))
            value = rate if value is None else ops.where(s <= end, rate, value)
        return value

    def _limits(self) -> tuple[float, float]:
        peak = self.max_learning_rate
        low = peak / self.initial_div
        rates = [peak, low, low / self.final_div]
        return min(rates), max(rates)


@_register
class Cyclic(Schedule):
    """Cyclical learning rates: up and down between two rates, in triangles.

        x     = (t mod 2H) / 2H                       (where in the cycle, 0 to 1)
        tri   = 2x for x <= 1/2, else 2(1 - x)         (0 -> 1 -> 0)
        a_t   = base + (max - base) * tri * scale

    ``H`` is ``half_period``. ``scale`` is 1 in "triangular" mode, halves each
    cycle in "triangular2" (``0.5 ** (cycle - 1)``), and is ``gamma ** t`` in
    "exp_range" (``t`` in the schedule's unit: steps, or epochs with
    ``steps_per_epoch``). torch's ``CyclicLR`` with ``step_size_up =
    step_size_down = H`` and ``cycle_momentum=False``, number for number.

    Args:
        base_learning_rate: ``base``, the bottom of each cycle.
        max_learning_rate: ``max`` >= ``base``, the top of the first.
        half_period: ``H`` > 0, the time from bottom to top, in epochs or steps.
        mode: "triangular" (default), "triangular2" or "exp_range".
        gamma: in (0, 1], for "exp_range". Default 1.
        steps_per_epoch: when given, ``half_period`` (and exp_range's ``t``)
            count epochs.

    Examples:
        >>> from keras_lrkit import Cyclic
        >>> s = Cyclic(0.001, 0.01, 5)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 12)]
        [0.001, 0.01, 0.001, 0.0046]

        Reference: Smith, Cyclical Learning Rates for Training Neural Networks (2017).
    """

    def __init__(
        self,
        base_learning_rate: float,
        max_learning_rate: float,
        half_period: float,
        *,
        mode: str = "triangular",
        gamma: float = 1.0,
        steps_per_epoch: int | str | None = None,
    ) -> None:
        super().__init__(steps_per_epoch)
        self.base_learning_rate = check_rate("base_learning_rate", base_learning_rate)
        self.max_learning_rate = check_rate("max_learning_rate", max_learning_rate)
        if self.max_learning_rate < self.base_learning_rate:
            raise fail(
                "max_learning_rate",
                f">= base_learning_rate={self.base_learning_rate!r}",
                max_learning_rate,
            )
        self.half_period = check_positive("half_period", half_period)
        self._check_units()
        if not is_choice(mode, ("triangular", "triangular2", "exp_range")):
            raise fail("mode", 'one of "triangular", "triangular2", "exp_range"', mode)
        self.mode = mode
        self.gamma = check_between("gamma", gamma, 0.0, 1.0, open_low=True)

    def _check_units(self) -> None:
        check_positive("half_period", self.half_period, self._known_unit)
        if 2.0 * self.half_period * self._known_unit > FLOAT32_MAX:  # a cycle is two of them
            raise fail("half_period", "a number whose cycle, 2 x half_period steps, float32 holds",
                       self.half_period)  # fmt: skip

    def _rate_at_step(self, step: Any) -> Any:
        cycle = 2 * self.half_period * self._steps_per_unit  # in steps
        k, since = periods(step, cycle)
        x = since / float(cycle)
        triangle = ops.where(x <= 0.5, 2.0 * x, 2.0 * (1.0 - x))
        height = (self.max_learning_rate - self.base_learning_rate) * triangle
        if self.mode == "triangular2":
            height = height * ops.power(0.5, k)
        elif self.mode == "exp_range":
            height = height * ops.power(self.gamma, self._time(step))
        return self.base_learning_rate + height

    def _limits(self) -> tuple[float, float]:
        return self.base_learning_rate, self.max_learning_rate
