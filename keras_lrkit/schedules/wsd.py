"""Warmup-stable-decay: a warmup, a constant rate for as long as the run lasts, then a short cooldown."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from .._validate import fail, is_choice, is_int, is_real
from ._base import (
    DTYPE,
    LearningRateSchedule,
    LiveArrays,
    Schedule,
    check_depth,
    check_floor,
    check_positive,
    check_rate,
    check_schedule,
    elapsed,
    evaluate,
    index_dtype,
    is_integer,
    limits_of,
    reached,
    since,
)

SHAPES = ("linear", "cosine", "1-sqrt")


def _rise(shape: str, p: Any) -> Any:
    """From 0 at p = 0 to 1 at p = 1 (a warmup)."""
    if shape == "linear":
        return p
    if shape == "cosine":
        return 0.5 * (1.0 - ops.cos(math.pi * p))
    return 1.0 - ops.sqrt(1.0 - p)


def fall(shape: str, p: Any) -> Any:
    """From 1 at p = 0 to 0 at p = 1 (a decay, a cooldown)."""
    if shape == "linear":
        return 1.0 - p
    if shape == "cosine":
        return 0.5 * (1.0 + ops.cos(math.pi * p))
    return 1.0 - ops.sqrt(p)


def check_shape(name: str, value: Any) -> str:
    if not is_choice(value, SHAPES):
        raise fail(name, 'one of "linear", "cosine", "1-sqrt"', value)
    return value


def _check_length(name: str, value: Any) -> float | int:
    """A phase's length: 0 (no such phase) or a duration > 0 that float32 holds."""
    if is_real(value) and value == 0:
        return 0
    return check_positive(name, value)


@keras.saving.register_keras_serializable(package="keras_lrkit")
class WarmupStableDecay(Schedule):
    """Warmup-stable-decay (WSD): a warmup, the stable rate, then a decay over the last ``decay``.

        a_t = min_lr + (lr - min_lr) * rise(t / W)                 t < W
        a_t = lr                                                   W <= t < N - D
        a_t = min_lr + (lr - min_lr) * fall((t - (N - D)) / D)     N - D <= t < N
        a_t = min_lr                                               t >= N

    ``lr`` is ``learning_rate``, ``W`` ``warmup``, ``D`` ``decay``, ``N``
    ``total``. The shapes, for ``warmup_shape`` and ``decay_shape``:
    "linear" (``rise(p) = p``, ``fall(p) = 1 - p``), "cosine" (half a cosine
    period) and "1-sqrt" (``rise(p) = 1 - sqrt(1 - p)``, ``fall(p) = 1 -
    sqrt(p)``: a quick drop that slows down, the cooldown Hägele et al. found
    best). With ``total`` and ``decay`` given it is Hugging Face's
    ``get_wsd_schedule(opt, num_warmup_steps=W, num_decay_steps=D,
    num_training_steps=N, warmup_type=..., decay_type=...,
    min_lr_ratio=min_lr / lr)``, number for number.

    With ``total=None`` the rate stays stable after the warmup, for as long as
    training runs: the length of the run is not needed in advance. Train on,
    and branch cooldowns from its checkpoints with a ``WarmupStableDecay`` of
    the length you then choose (``Chain`` it after the steps already run).

    Args:
        learning_rate: ``lr``, the stable rate.
        total: ``N``, the length of the whole run (None: open-ended), in epochs
            or steps.
        warmup: ``W`` >= 0, the warmup's length. Default 0 (none).
        decay: ``D`` >= 0, the decay's length, at the end of ``total``
            (needs ``total``; ``W + D <= N``). Default 0 (none).
        warmup_shape: "linear" (default), "cosine" or "1-sqrt".
        decay_shape: "1-sqrt" (default), "linear" or "cosine".
        min_learning_rate: where the warmup starts and the decay ends
            (absolute, <= ``learning_rate``). Default 0.
        steps_per_epoch: when given (or "fit"), durations count epochs.

    Examples:
        100 steps, a warmup of 10 and a 1-sqrt cooldown over the last 20.

        >>> from keras_lrkit import WarmupStableDecay
        >>> s = WarmupStableDecay(0.1, 100, warmup=10, decay=20)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 79, 80, 85, 99, 100)]
        [0.0, 0.05, 0.1, 0.1, 0.1, 0.05, 0.002532, 0.0]

        Reference: Hägele et al., Scaling Laws and Compute-Optimal Training Beyond
        Fixed Training Durations (NeurIPS 2024); Hu et al., MiniCPM (2024).
    """

    def __init__(
        self,
        learning_rate: float,
        total: float | None = None,
        *,
        warmup: float = 0,
        decay: float = 0,
        warmup_shape: str = "linear",
        decay_shape: str = "1-sqrt",
        min_learning_rate: float = 0.0,
        steps_per_epoch: int | str | None = None,
    ) -> None:
        super().__init__(steps_per_epoch)
        self.learning_rate = check_rate("learning_rate", learning_rate)
        self.total = None if total is None else check_positive("total", total)
        self.warmup = _check_length("warmup", warmup)
        self.decay = _check_length("decay", decay)
        if self.decay and self.total is None:
            raise fail("decay", "0 when total is None (a decay ends at total)", decay)
        if self.total is not None and self.warmup + self.decay > self.total:
            raise fail("decay", f"at most total - warmup = {self.total - self.warmup:g}", decay)
        self.warmup_shape = check_shape("warmup_shape", warmup_shape)
        self.decay_shape = check_shape("decay_shape", decay_shape)
        self.min_learning_rate = check_floor(min_learning_rate, self.learning_rate)
        self._check_units()

    def _check_units(self) -> None:
        for name in ("total", "warmup", "decay"):
            value = getattr(self, name)
            if value:
                check_positive(name, value, self._known_unit)

    def _rate_at_step(self, step: Any) -> Any:
        unit = self._steps_per_unit
        low, high = self.min_learning_rate, self.learning_rate
        t = elapsed(step)
        rate = ops.full_like(t, high)
        if self.warmup:
            w = self.warmup * unit
            ramp = low + (high - low) * _rise(self.warmup_shape, ops.minimum(t / w, 1.0))
            rate = ops.where(reached(step, w), rate, ramp)
        if self.total is not None:
            end = self.total * unit
            if self.decay:
                d = self.decay * unit
                p = ops.minimum(ops.cast(since(step, end - d), t.dtype) / d, 1.0)
                down = low + (high - low) * fall(self.decay_shape, p)
                rate = ops.where(reached(step, end - d), down, rate)
            rate = ops.where(reached(step, end), ops.full_like(t, low), rate)
        return rate

    def _limits(self) -> tuple[float, float]:
        return self.min_learning_rate, self.learning_rate

    def _start(self) -> float:
        if self.warmup:
            return self.min_learning_rate  # every rise starts at 0
        return self.learning_rate  # the stable rate, or a decay that starts at step 0


@keras.saving.register_keras_serializable(package="keras_lrkit")
class Cooldown(Schedule):
    """A schedule that falls to the floor over ``length`` steps from ``start`` on: what ``CooldownOnPlateau`` trains with.

        a_t = s(t)                                                 t < start
        a_t = min(s(t), min_lr + (s(t) - min_lr) * fall(p))        p = (t - start) / L < 1
        a_t = min(s(t), min_lr)                                    t >= start + L

    ``s`` is ``schedule``, ``L`` ``length`` (steps), ``fall`` the ``shape``
    ("1-sqrt", "linear" or "cosine", as in ``WarmupStableDecay``). Before
    ``start`` (None: not yet) the schedule runs as it is; from ``start`` on it
    falls from what it is to ``min_learning_rate``. ``begin(start, length)``
    starts it during training: an assignment to what the train step reads,
    never a retrace. The start and the length are part of the config, so a
    ``.keras`` file saved during or after the cooldown trains on where it was.

    Args:
        schedule: the LearningRateSchedule to cool down.
        length: ``L`` > 0, the cooldown's length in steps.
        shape: "1-sqrt" (default), "linear" or "cosine".
        start: the step the cooldown begins at, or None (not started).
        min_learning_rate: where it ends (>= 0).

    Examples:
        A constant rate, cooled down over 10 steps from step 20.

        >>> from keras_lrkit import Constant, Cooldown
        >>> s = Cooldown(Constant(0.1), 10, shape="linear", start=20)
        >>> [round(float(s(t)), 6) for t in (0, 20, 25, 30, 99)]
        [0.1, 0.1, 0.05, 0.0, 0.0]
    """

    def __init__(
        self,
        schedule: LearningRateSchedule,
        length: int,
        *,
        shape: str = "1-sqrt",
        start: int | None = None,
        min_learning_rate: float = 0.0,
    ) -> None:
        super().__init__(None)
        self.schedule = check_schedule("schedule", schedule)
        self._depth = check_depth("schedule", [self.schedule])
        self.length, self.start = _check_window(length, start)
        self.shape = check_shape("shape", shape)
        self.min_learning_rate = check_rate("min_learning_rate", min_learning_rate)
        self._live = LiveArrays(self._window(), name="lrkit_cooldown")

    def begin(self, start: int | None, length: int) -> None:
        """Cool down over ``length`` steps from step ``start`` on (None: not yet); an assignment, no retrace."""
        self.length, self.start = _check_window(length, start)
        self._live.write(self._window())

    def _window(self) -> np.ndarray:
        never = np.iinfo(index_dtype()).max
        start = never if self.start is None else min(self.start, never)
        return np.array([start, min(self.length, never)], index_dtype())

    def _children(self) -> list[LearningRateSchedule]:
        return [self.schedule]

    def _rate_at_step(self, step: Any) -> Any:
        rate = evaluate(self.schedule, step)
        (window,) = self._live.read(step)
        window = ops.cast(window, step.dtype if is_integer(step) else DTYPE)
        start, length = window[0], window[1]
        after = ops.greater_equal(step, start)
        gone = ops.cast(ops.where(after, step - start, ops.zeros_like(step)), DTYPE)
        p = ops.minimum(gone / ops.cast(length, DTYPE), 1.0)
        floor = self.min_learning_rate
        cooled = ops.minimum(rate, floor + (rate - floor) * fall(self.shape, p))
        return ops.where(after, cooled, rate)

    def _limits(self) -> tuple[float, float] | None:
        inner = limits_of(self.schedule)
        if inner is None:
            return None
        return min(inner[0], self.min_learning_rate), inner[1]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Cooldown:
        config = dict(config)
        config["schedule"] = cls._deserialize("schedule", config["schedule"])
        return cls(**config)


def _check_window(length: Any, start: Any) -> tuple[int, int | None]:
    if not (is_int(length) and 0 < length < 2**63):
        raise fail("length", "an int > 0 (steps)", length)
    if start is not None and not (is_int(start) and 0 <= start < 2**63):
        raise fail("start", "None or an int >= 0 (a step)", start)
    return int(length), None if start is None else int(start)
