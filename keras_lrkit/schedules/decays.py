"""The decays: the lecture's step, cosine, linear, inverse sqrt and constant; exponential and polynomial."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from .._validate import fail, is_real
from ._base import (
    DTYPE,
    Schedule,
    as_float,
    check_between,
    check_floor,
    check_increasing,
    check_positive,
    check_rate,
    float32_holds,
    is_integer,
    periods,
)

_register = keras.saving.register_keras_serializable(package="keras_lrkit")


@_register
class StepDecay(Schedule):
    """Multiply (or lower) the rate by a fixed amount at given epochs or steps.

    With ``k(t)`` the number of milestones ``m_i <= t`` (or ``floor(t / every)``
    with a period):

        a_t = max(min_lr, a_0 * factor ** k(t))        # factor mode
        a_t = max(min_lr, a_0 - decrement * k(t))      # decrement mode

    ``a_0`` is ``initial_learning_rate`` and ``min_lr`` is
    ``min_learning_rate``. The decay applies *at* the milestone, as torch's
    ``MultiStepLR`` and ``StepLR`` do: with ``steps_per_epoch=n`` the new rate
    is used from the first batch of the milestone epoch. (Keras's
    ``PiecewiseConstantDecay`` switches one step later, at ``step > boundary``.)

    Args:
        initial_learning_rate: ``a_0``, the rate before the first milestone.
        milestones: strictly increasing epochs (or steps) at which to decay.
        every: a period instead of milestones: decay at every multiple of it.
            Give exactly one of ``milestones`` and ``every``.
        factor: the multiplier in (0, 1] applied at each milestone.
            Default 0.1 (ResNet divides by 10).
        decrement: when given (>= 0), subtract this at each milestone instead
            of multiplying by ``factor``.
        min_learning_rate: absolute floor, never gone below. Default 0.
        steps_per_epoch: when given, ``milestones`` and ``every`` count epochs;
            otherwise optimizer steps.

    Examples:
        ResNet: divide by 10 at epochs 30, 60 and 90.

        >>> from keras_lrkit import StepDecay
        >>> s = StepDecay(0.1, [30, 60, 90], steps_per_epoch=100)
        >>> [round(float(s(e * 100)), 6) for e in (0, 29, 30, 59, 60, 90, 200)]
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.0001, 0.0001]
        >>> round(float(s(2999)), 6), round(float(s(3000)), 6)  # last batch of 29, first of 30
        (0.1, 0.01)
    """

    def __init__(
        self,
        initial_learning_rate: float,
        milestones: Sequence[float] | None = None,
        *,
        every: float | None = None,
        factor: float = 0.1,
        decrement: float | None = None,
        min_learning_rate: float = 0.0,
        steps_per_epoch: int | str | None = None,
    ) -> None:
        super().__init__(steps_per_epoch)
        self.initial_learning_rate = check_rate("initial_learning_rate", initial_learning_rate)
        if (milestones is None) == (every is None):
            raise ValueError(
                "Exactly one of `milestones` and `every` must be given. "
                f"Received: milestones={milestones!r}, every={every!r}"
            )
        self.milestones = None if milestones is None else check_increasing("milestones", milestones)
        self.every = None if every is None else check_positive("every", every)
        self._check_units()
        self.factor = check_between("factor", factor, 0.0, 1.0, open_low=True)
        if decrement is not None:
            decrement = check_rate("decrement", decrement)
        self.decrement = decrement
        self.min_learning_rate = check_floor(min_learning_rate, self.initial_learning_rate)

    def _check_units(self) -> None:
        if self.every is not None:
            check_positive("every", self.every, self._known_unit)

    def _decays_reached(self, step: Any) -> Any:
        """k: how many decays have happened by ``step``, as float32.

        An integer step is compared with whole steps in integer arithmetic, so
        the switch lands on its exact step at any count; a step between two
        whole steps (a fractional period, or a float step) is compared in float32.
        """
        unit = self._steps_per_unit
        if self.every is not None:
            k, _ = periods(step, self.every * unit)
            return k
        if is_integer(step):  # the first whole step at or after each milestone
            dtype = keras.backend.standardize_dtype(step.dtype)
            firsts = [math.ceil(m * unit) for m in self.milestones]
            boundaries = [b for b in firsts if b <= np.iinfo(dtype).max]  # others never come
        else:
            dtype, boundaries = DTYPE, [m * unit for m in self.milestones]
        if not boundaries:
            return ops.zeros_like(as_float(step))
        passed = ops.expand_dims(step, -1) >= ops.convert_to_tensor(boundaries, dtype=dtype)
        return ops.sum(ops.cast(passed, DTYPE), axis=-1)

    def _rate_at_step(self, step: Any) -> Any:
        # Compares steps with milestones scaled to steps, so the switch lands
        # exactly on the first batch of a milestone epoch.
        k = self._decays_reached(step)
        if self.decrement is not None:
            rate = self.initial_learning_rate - self.decrement * k
        else:
            rate = self.initial_learning_rate * ops.power(self.factor, k)
        return rate  # the floor: every rate is clipped to [min_learning_rate, a_0]

    def _limits(self) -> tuple[float, float]:
        return self.min_learning_rate, self.initial_learning_rate


class _DecayToFloor(Schedule):
    """From ``a_0`` at t = 0 to ``min_lr`` at t = T along a shape, then held.

        a_t = min_lr + (a_0 - min_lr) * shape(min(t, T) / T)

    with ``shape(0) = 1`` and ``shape(1) = 0``; a subclass gives only ``_decay``,
    the formula at ``t`` in [0, T] (its constants folded: fewer ops per step).
    """

    def __init__(
        self,
        initial_learning_rate: float,
        total: float,
        *,
        min_learning_rate: float = 0.0,
        steps_per_epoch: int | str | None = None,
    ) -> None:
        super().__init__(steps_per_epoch)
        self.initial_learning_rate = check_rate("initial_learning_rate", initial_learning_rate)
        self.total = check_positive("total", total)
        self.min_learning_rate = check_floor(min_learning_rate, self.initial_learning_rate)

    def _decay(self, t: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _limits(self) -> tuple[float, float]:
        return self.min_learning_rate, self.initial_learning_rate

    def _rate(self, t: Any) -> Any:
        return self._decay(ops.minimum(t, self.total))


@_register
class CosineDecay(_DecayToFloor):
    """Half a cosine period from the initial rate down to the floor.

        a_t = min_lr + (a_0 - min_lr) * (1 + cos(pi * min(t, T) / T)) / 2

    ``a_0`` at ``t = 0``, ``min_lr`` at ``t = T`` (``total``), and held there
    afterwards: it never rises again (torch's ``CosineAnnealingLR`` would).
    Equal to Keras's ``CosineDecay(a_0, T, alpha=min_lr / a_0)`` and to
    Hugging Face's cosine schedule (after any warmup).

    Args:
        initial_learning_rate: ``a_0``.
        total: ``T``, the length of the decay, in epochs or steps.
        min_learning_rate: absolute floor reached at ``T``. Default 0.
        steps_per_epoch: when given, ``total`` counts epochs and ``t`` moves
            smoothly inside an epoch (``t = step / steps_per_epoch``).

    Examples:
        >>> from keras_lrkit import CosineDecay
        >>> s = CosineDecay(0.1, 100)
        >>> [round(float(s(t)), 6) for t in (0, 50, 100, 150)]
        [0.1, 0.05, 0.0, 0.0]

        Reference: Loshchilov & Hutter, SGDR: Stochastic Gradient Descent with
        Warm Restarts (2017).
    """

    def _decay(self, t: Any) -> Any:
        half = (self.initial_learning_rate - self.min_learning_rate) / 2
        return self.min_learning_rate + half * (1.0 + ops.cos(t * (math.pi / self.total)))


@_register
class PolynomialDecay(_DecayToFloor):
    """A polynomial from the initial rate down to the floor, then held.

        a_t = min_lr + (a_0 - min_lr) * (1 - min(t, T) / T) ** p

    ``p`` (``power``) > 0: 1 is a straight line (``LinearDecay``), 2 bends it
    down early, 0.5 keeps it high longer. Held at ``min_lr`` after ``T``; the
    base never goes below 0, so a fractional power gives no NaN past the end,
    compiled or not. Keras's ``PolynomialDecay(a_0, T, end_learning_rate=min_lr,
    power=p)`` without ``cycle``, and torch's ``PolynomialLR(total_iters=T,
    power=p)`` (whose floor is 0).

    Args:
        initial_learning_rate: ``a_0``.
        total: ``T``, the length of the decay, in epochs or steps.
        power: ``p`` > 0. Default 1.
        min_learning_rate: absolute floor reached at ``T``. Default 0.
        steps_per_epoch: when given, ``total`` counts epochs.

    Examples:
        >>> from keras_lrkit import PolynomialDecay
        >>> s = PolynomialDecay(0.1, 10, power=2.0)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 20)]
        [0.1, 0.025, 0.0, 0.0]
    """

    def __init__(
        self,
        initial_learning_rate: float,
        total: float,
        *,
        power: float = 1.0,
        min_learning_rate: float = 0.0,
        steps_per_epoch: int | str | None = None,
    ) -> None:
        super().__init__(
            initial_learning_rate,
            total,
            min_learning_rate=min_learning_rate,
            steps_per_epoch=steps_per_epoch,
        )
        if not is_real(power) or power <= 0 or not float32_holds(float(power)):
            raise fail("power", "a float > 0 that float32 holds", power)
        self.power = float(power)

    def _decay(self, t: Any) -> Any:
        # Counted back from the end, so the floor is exact once t reaches T,
        # and the base (T - t) / T is never below 0.
        drop = self.initial_learning_rate - self.min_learning_rate
        remaining = (self.total - t) / self.total
        if self.power != 1.0:
            remaining = ops.power(remaining, self.power)
        return self.min_learning_rate + drop * remaining


@_register
class LinearDecay(PolynomialDecay):
    """A straight line from the initial rate down to the floor.

        a_t = min_lr + (a_0 - min_lr) * (1 - min(t, T) / T)

    Held at ``min_lr`` after ``T``: ``PolynomialDecay`` with ``power=1``. Equal
    to torch's ``LinearLR`` (from factor 1 to ``min_lr / a_0``), Keras's
    ``PolynomialDecay`` with ``power=1``, and Hugging Face's linear schedule
    (after any warmup).

    Args:
        initial_learning_rate: ``a_0``.
        total: ``T``, the length of the decay, in epochs or steps.
        min_learning_rate: absolute floor reached at ``T``. Default 0.
        steps_per_epoch: when given, ``total`` counts epochs.

    Examples:
        >>> from keras_lrkit import LinearDecay
        >>> s = LinearDecay(0.1, 10)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 20)]
        [0.1, 0.05, 0.0, 0.0]
    """

    def __init__(
        self,
        initial_learning_rate: float,
        total: float,
        *,
        min_learning_rate: float = 0.0,
        steps_per_epoch: int | str | None = None,
    ) -> None:
        super().__init__(
            initial_learning_rate,
            total,
            power=1.0,
            min_learning_rate=min_learning_rate,
            steps_per_epoch=steps_per_epoch,
        )


@_register
class ExponentialDecay(Schedule):
    """Multiply the rate by ``rate`` every ``every`` units of time, smoothly or in steps.

        a_t = max(min_lr, a_0 * rate ** (t / every))           # smooth
        a_t = max(min_lr, a_0 * rate ** floor(t / every))      # staircase

    Keras's ``ExponentialDecay(a_0, decay_steps=every, decay_rate=rate,
    staircase=...)``; torch's ``ExponentialLR(gamma=rate)``, stepped once an
    epoch, is ``ExponentialDecay(a_0, rate, staircase=True, steps_per_epoch=n)``.
    With ``staircase`` the exponent switches on its exact step, as
    ``StepDecay(a_0, every=every, factor=rate)`` does (the same numbers).

    Args:
        initial_learning_rate: ``a_0``.
        rate: the multiplier per ``every``, in (0, 1].
        every: the time over which the rate is multiplied by ``rate``, > 0, in
            epochs or steps. Default 1.
        staircase: floor the exponent: the rate changes once every ``every``.
        min_learning_rate: absolute floor. Default 0.
        steps_per_epoch: when given, ``every`` counts epochs.

    Examples:
        >>> from keras_lrkit import ExponentialDecay
        >>> s = ExponentialDecay(0.1, 0.5, every=10)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 20)]
        [0.1, 0.070711, 0.05, 0.025]
    """

    def __init__(
        self,
        initial_learning_rate: float,
        rate: float,
        every: float = 1,
        *,
        staircase: bool = False,
        min_learning_rate: float = 0.0,
        steps_per_epoch: int | str | None = None,
    ) -> None:
        super().__init__(steps_per_epoch)
        self.initial_learning_rate = check_rate("initial_learning_rate", initial_learning_rate)
        self.rate = check_between("rate", rate, 0.0, 1.0, open_low=True)
        self.every = check_positive("every", every)
        self._check_units()
        if not isinstance(staircase, bool):
            raise fail("staircase", "a bool", staircase)
        self.staircase = staircase
        self.min_learning_rate = check_floor(min_learning_rate, self.initial_learning_rate)

    def _check_units(self) -> None:
        check_positive("every", self.every, self._known_unit)

    def _rate_at_step(self, step: Any) -> Any:
        period = self.every * self._steps_per_unit  # in steps
        if self.staircase:
            exponent, _ = periods(step, period)
        else:  # a negative step gives a rate above a_0, which the clip brings back to a_0
            exponent = as_float(step) / float(period)
        return self.initial_learning_rate * ops.power(self.rate, exponent)  # clipped to the floor

    def _limits(self) -> tuple[float, float]:
        return self.min_learning_rate, self.initial_learning_rate


@_register
class InverseSqrtDecay(Schedule):
    """Decay proportional to one over the square root of time.

        a_t = a_0 * sqrt(tau / (t + tau))

    ``a_0`` at ``t = 0``, then proportional to ``1 / sqrt(t)``; ``tau``
    (``timescale``) sets how soon the decay bites. Wrapped in
    ``Warmup(..., warmup=W)`` with ``timescale=W`` it is the Transformer /
    Hugging Face inverse-sqrt schedule.

    Args:
        initial_learning_rate: ``a_0``.
        timescale: ``tau`` > 0, in epochs or steps. Default 1.
        steps_per_epoch: when given, ``timescale`` counts epochs.

    Examples:
        >>> from keras_lrkit import InverseSqrtDecay
        >>> s = InverseSqrtDecay(0.1, timescale=100)
        >>> [round(float(s(t)), 6) for t in (0, 300, 9900)]
        [0.1, 0.05, 0.01]

        Reference: Vaswani et al., Attention Is All You Need (2017), section 5.3.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        *,
        timescale: float = 1,
        steps_per_epoch: int | str | None = None,
    ) -> None:
        super().__init__(steps_per_epoch)
        self.initial_learning_rate = check_rate("initial_learning_rate", initial_learning_rate)
        self.timescale = check_positive("timescale", timescale)

    def _limits(self) -> tuple[float, float]:
        return 0.0, self.initial_learning_rate

    def _rate(self, t: Any) -> Any:
        tau = float(self.timescale)
        return self.initial_learning_rate * ops.sqrt(tau / (t + tau))


@_register
class Constant(Schedule):
    """The same rate at every step: ``a_t = a``.

    Useful in ``Chain`` and ``Warmup``, and to compare against a decay with
    the same code path. (A plain float ``learning_rate`` does the same in an
    optimizer.)

    Args:
        learning_rate: ``a``.
        steps_per_epoch: only used to label plots in epochs.

    Examples:
        >>> from keras_lrkit import Constant
        >>> s = Constant(0.01)
        >>> [round(float(s(t)), 6) for t in (0, 10**6)]
        [0.01, 0.01]
    """

    def __init__(self, learning_rate: float, *, steps_per_epoch: int | str | None = None) -> None:
        super().__init__(steps_per_epoch)
        self.learning_rate = check_rate("learning_rate", learning_rate)

    def _limits(self) -> tuple[float, float]:
        return self.learning_rate, self.learning_rate

    def _rate(self, t: Any) -> Any:
        return ops.zeros_like(t) + self.learning_rate
