"""Schedules built from schedules: a warmup in front of one, a chain of several."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from .._validate import fail, is_int, is_real
from ._base import (
    LearningRateSchedule,
    LiveArrays,
    Schedule,
    check_depth,
    check_increasing,
    check_positive,
    check_rate,
    check_schedule,
    elapsed,
    evaluate,
    index_dtype,
    is_integer,
    join,
    limits_of,
    start_of,
)

_register = keras.saving.register_keras_serializable(package="keras_lrkit")


@_register
class Warmup(Schedule):
    """A linear ramp in front of any schedule, which then runs on its own clock.

        a_t = a_w + (s(0) - a_w) * t / W      for t < W
        a_t = s(step - W_steps)               for t >= W

    ``s`` is ``schedule``, ``a_w`` the ``initial_learning_rate`` of the ramp and
    ``W`` the ``warmup`` length. The wrapped schedule starts its own clock when
    the warmup ends, so ``Warmup(LinearDecay(lr, N - W), W)`` is Hugging Face's
    ``get_linear_schedule_with_warmup(num_warmup_steps=W,
    num_training_steps=N)`` and ``Warmup(InverseSqrtDecay(lr, timescale=W), W)``
    its inverse-sqrt schedule.

    Args:
        schedule: the LearningRateSchedule that follows the warmup.
        warmup: ``W`` > 0, the ramp's length, in epochs when ``steps_per_epoch``
            is given, else steps. (The wrapped schedule keeps its own units.)
        initial_learning_rate: ``a_w``, where the ramp starts. Default 0.
        steps_per_epoch: when given, ``warmup`` counts epochs.

    Examples:
        >>> from keras_lrkit import Constant, Warmup
        >>> s = Warmup(Constant(0.1), 10)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 100)]
        [0.0, 0.05, 0.1, 0.1]
    """

    def __init__(
        self,
        schedule: LearningRateSchedule,
        warmup: float,
        *,
        initial_learning_rate: float = 0.0,
        steps_per_epoch: int | str | None = None,
    ) -> None:
        super().__init__(steps_per_epoch)
        self.schedule = check_schedule("schedule", schedule)
        self._depth = check_depth("schedule", [self.schedule])
        self.warmup = check_positive("warmup", warmup)
        self._check_units()
        self.initial_learning_rate = check_rate("initial_learning_rate", initial_learning_rate)
        # The ramp ends where the schedule starts. s(0) is a constant: worked out
        # once here, the training step does not evaluate the schedule twice.
        self._ramp_end = start_of(self.schedule)

    def _check_units(self) -> None:
        check_positive("warmup", self.warmup, self._known_unit)

    def _children(self) -> list[LearningRateSchedule]:
        return [self.schedule]

    @property
    def _warmup_steps(self) -> float:
        return self.warmup * self._steps_per_unit

    def _ramp(self, step: Any) -> Any:
        start = self.initial_learning_rate
        return start + (self._ramp_end - start) * (elapsed(step) / float(self._warmup_steps))

    def _rate_at_step(self, step: Any) -> Any:
        return join(step, [self._warmup_steps], [self._ramp, self.schedule])

    def _limits(self) -> tuple[float, float] | None:
        inner = limits_of(self.schedule)
        if inner is None:
            return None
        return min(inner[0], self.initial_learning_rate), max(inner[1], self.initial_learning_rate)

    def _start(self) -> float:
        return self.initial_learning_rate  # the ramp's start: step 0 < W always

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Warmup:
        config = dict(config)
        config["schedule"] = cls._deserialize("schedule", config["schedule"])
        return cls(**config)


@_register
class Chain(Schedule):
    """Several schedules one after another, each on its own clock.

        a_t = s_i(step - b_{i-1})      for b_{i-1} <= t < b_i    (b_{-1} = 0)

    As optax's ``join_schedules`` and torch's ``SequentialLR`` do: schedule
    ``i`` sees the time since its own start.

    Args:
        schedules: the LearningRateSchedules, in order (at least one).
        boundaries: strictly increasing times where the next schedule takes
            over; ``len(schedules) - 1`` of them.
        steps_per_epoch: when given, ``boundaries`` count epochs, else steps.
            (Each schedule keeps its own units.)

    Examples:
        5 steps at 0.1, then a linear decay to 0 over 10 steps.

        >>> from keras_lrkit import Chain, Constant, LinearDecay
        >>> s = Chain([Constant(0.1), LinearDecay(0.1, 10)], [5])
        >>> [round(float(s(t)), 6) for t in (0, 4, 5, 10, 15)]
        [0.1, 0.1, 0.1, 0.05, 0.0]
    """

    def __init__(
        self,
        schedules: Sequence[LearningRateSchedule],
        boundaries: Sequence[float],
        *,
        steps_per_epoch: int | str | None = None,
    ) -> None:
        super().__init__(steps_per_epoch)
        if isinstance(schedules, (LearningRateSchedule, str, bytes)) or not isinstance(
            schedules, Sequence
        ):
            raise fail("schedules", "a non-empty list of LearningRateSchedules", schedules)
        if not schedules:
            raise fail("schedules", "a non-empty list of LearningRateSchedules", schedules)
        self.schedules = [check_schedule("schedules", s) for s in schedules]
        self._depth = check_depth("schedules", self.schedules)
        self.boundaries = check_increasing("boundaries", boundaries, allow_empty=True)
        if len(self.boundaries) != len(self.schedules) - 1:
            raise ValueError(
                "Argument `boundaries` must have len(schedules) - 1 = "
                f"{len(self.schedules) - 1} entries. Received: boundaries={boundaries!r}"
            )

    def _children(self) -> list[LearningRateSchedule]:
        return list(self.schedules)

    @property
    def _step_boundaries(self) -> list[float]:
        return [b * self._steps_per_unit for b in self.boundaries]

    def _rate_at_step(self, step: Any) -> Any:
        return join(step, self._step_boundaries, self.schedules)

    def _limits(self) -> tuple[float, float] | None:
        limits = [limits_of(s) for s in self.schedules]
        if any(limit is None for limit in limits):
            return None
        return min(low for low, _ in limits), max(high for _, high in limits)

    def _start(self) -> float:
        # The schedule that runs at step 0 (the second one when the first boundary is 0).
        active = int(bool(self.boundaries) and self.boundaries[0] == 0)
        return start_of(self.schedules[active])

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Chain:
        config = dict(config)
        config["schedules"] = [cls._deserialize("schedules", s) for s in config["schedules"]]
        return cls(**config)


# How many reductions a Reduced holds apart; past that, the oldest two are folded
# into one (the rate from the newest reduction on stays exact).
MAX_REDUCTIONS = 64


@_register
class Reduced(Schedule):
    """A schedule multiplied by the reductions made so far: what ``ReduceOnPlateau`` trains with.

        a_t = max(s(t) * prod(f_i for (step_i, f_i) in reductions if step_i <= t),
                  min(s(t), min_lr))

    ``s`` is ``schedule``; each reduction multiplies the rate by its factor
    ``f_i`` from step ``step_i`` on, so ``s`` keeps its shape and its clock.
    ``min_lr`` (``min_learning_rate``) bounds what the reductions take away:
    they never take the rate below it, and a schedule that goes below it on its
    own (a cosine to 0) still does. The reductions are part of the config, so a
    ``.keras`` file saved after them loads and trains on at the reduced rate.

    ``reduce(step, factor)`` adds a reduction during training. It is an
    assignment to the table of reductions that the train step reads (a
    Keras variable on TensorFlow and PyTorch; on JAX a host array the
    compiled step reads through ``jax.pure_callback``), never a retrace or a
    recompilation. Reductions at the same step compound. The table holds
    ``MAX_REDUCTIONS`` (64) reductions apart; past that the oldest two are
    folded into one, at the later one's step (rates from the newest reduction
    on stay exact; ``reductions`` keeps them all).

    Args:
        schedule: the LearningRateSchedule being reduced.
        reductions: ``[step, factor]`` pairs, steps strictly increasing, each
            factor in (0, 1].
        min_learning_rate: the floor of the reductions (>= 0).

    Examples:
        A cosine, halved from step 10 on.

        >>> from keras_lrkit import CosineDecay, Reduced
        >>> s = Reduced(CosineDecay(0.1, 100), [[10, 0.5]])
        >>> [round(float(s(t)), 6) for t in (0, 9, 10, 50)]
        [0.1, 0.098015, 0.048776, 0.025]
    """

    def __init__(
        self,
        schedule: LearningRateSchedule,
        reductions: Sequence[Sequence[float]] = (),
        *,
        min_learning_rate: float = 0.0,
    ) -> None:
        super().__init__(None)
        self.schedule = check_schedule("schedule", schedule)
        self._depth = check_depth("schedule", [self.schedule])
        self.reductions = check_reductions(reductions)
        self.min_learning_rate = check_rate("min_learning_rate", min_learning_rate)
        self._table = LiveArrays(*_table(self.reductions), name="lrkit_reductions")

    def reduce(self, step: int, factor: float) -> None:
        """Multiply the rate by ``factor`` from ``step`` on (compounding at the same step)."""
        if self.reductions and self.reductions[-1][0] == step:
            pairs = [*self.reductions[:-1], [step, self.reductions[-1][1] * factor]]
        else:
            pairs = [*self.reductions, [step, factor]]
        self.set_reductions(pairs)

    def set_reductions(self, reductions: Sequence[Sequence[float]]) -> None:
        """Train on under ``reductions`` (checked as the argument): an assignment, no retrace."""
        self.reductions = check_reductions(reductions)
        self._table.write(*_table(self.reductions))

    def _children(self) -> list[LearningRateSchedule]:
        return [self.schedule]

    def _rate_at_step(self, step: Any) -> Any:
        rate = evaluate(self.schedule, step)
        steps, factors = self._table.read(step)
        if is_integer(step):
            steps = ops.cast(steps, keras.backend.standardize_dtype(step.dtype))
        else:
            steps = ops.cast(steps, "float32")
        after = ops.greater_equal(ops.expand_dims(step, -1), steps)
        scale = ops.prod(ops.where(after, factors, ops.ones_like(factors)), axis=-1)
        floor = ops.minimum(rate, self.min_learning_rate)
        return ops.maximum(rate * scale, floor)

    def _limits(self) -> tuple[float, float] | None:
        inner = limits_of(self.schedule)
        if inner is None:
            return None
        return min(inner[0], self.min_learning_rate), inner[1]

    def _start(self) -> float:  # the formula above at t = 0
        rate = start_of(self.schedule)
        scale = math.prod(factor for step, factor in self.reductions if step == 0)
        return max(rate * scale, min(rate, self.min_learning_rate))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Reduced:
        config = dict(config)
        config["schedule"] = cls._deserialize("schedule", config["schedule"])
        return cls(**config)


def _table(reductions: list[list]) -> tuple[np.ndarray, np.ndarray]:
    """The steps and factors the train step reads: ``MAX_REDUCTIONS`` places, unused ones factor 1.

    Past ``MAX_REDUCTIONS`` the oldest two are folded into one, at the later step.
    """
    folded = [list(pair) for pair in reductions]
    while len(folded) > MAX_REDUCTIONS:
        (_, f0), (s1, f1) = folded[0], folded[1]
        folded[:2] = [[s1, f0 * f1]]
    steps = np.zeros(MAX_REDUCTIONS, index_dtype())
    factors = np.ones(MAX_REDUCTIONS, "float32")
    if folded:
        steps[: len(folded)] = [min(s, np.iinfo(steps.dtype).max) for s, _ in folded]
        factors[: len(folded)] = [f for _, f in folded]
    return steps, factors


def check_reductions(reductions: Any) -> list[list]:
    """``[step, factor]`` pairs: steps >= 0 strictly increasing, factors in (0, 1]."""
    pairs = [list(pair) for pair in reductions] if _pairs(reductions) else None
    if pairs is None or not all(
        is_int(step) and 0 <= step < 2**63 and is_real(f) and 0 < f <= 1 for step, f in pairs
    ):
        raise fail("reductions", "a list of [step, factor] with steps >= 0 and factors in (0, 1]",
                   reductions)  # fmt: skip
    check_increasing("reductions", [step for step, _ in pairs], allow_empty=True)
    return [[int(step), float(f)] for step, f in pairs]


def _pairs(value: Any) -> bool:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return False
    return all(
        isinstance(pair, Sequence) and not isinstance(pair, (str, bytes)) and len(pair) == 2
        for pair in value
    )
