"""What every keras_lrkit schedule shares: units, validation and config."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

from .._validate import constructor_arguments, fail, is_int, is_real

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule

# Every schedule computes in this dtype, the dtype of a float learning rate in
# Keras's own schedules and of the optimizer's learning-rate variable.
DTYPE = "float32"


def check_rate(name: str, value: Any) -> float:
    """A learning rate: a finite real number >= 0, returned as a float."""
    if not is_real(value) or value < 0:
        raise fail(name, "a finite float >= 0", value)
    return float(value)


def check_positive(name: str, value: Any) -> float | int:
    """A duration or scale: a finite real number > 0 (ints stay ints)."""
    if not is_real(value) or value <= 0:
        raise fail(name, "> 0" if is_real(value) else "a finite number > 0", value)
    return int(value) if is_int(value) else float(value)


def check_steps_per_epoch(value: Any) -> int | None:
    if value is None:
        return None
    if not is_int(value) or value <= 0:
        raise fail("steps_per_epoch", "None or a positive int", value)
    return int(value)


def check_increasing(name: str, values: Any, *, allow_empty: bool = False) -> list[float | int]:
    """A strictly increasing sequence of finite numbers >= 0, as a list."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        try:
            values = list(values)
        except TypeError:
            raise fail(name, "a sequence of numbers", values) from None
    values = list(values)
    if not values and not allow_empty:
        raise fail(name, "a non-empty sequence", values)
    if not all(is_real(v) and v >= 0 for v in values):
        raise fail(name, "a sequence of finite numbers >= 0", values)
    checked = [int(v) if is_int(v) else float(v) for v in values]
    if any(b <= a for a, b in zip(checked, checked[1:])):
        raise fail(name, "strictly increasing", values)
    return checked


def check_schedule(name: str, value: Any) -> LearningRateSchedule:
    if not isinstance(value, LearningRateSchedule):
        raise fail(name, "a keras LearningRateSchedule", value)
    return value


def as_step(step: Any) -> Any:
    """The optimizer step (an int tensor, a number or an array) as float32."""
    return ops.cast(ops.convert_to_tensor(step), DTYPE)


def join(
    step: Any,
    boundaries: Sequence[float],
    pieces: Sequence[Callable[[Any], Any]],
) -> Any:
    """``pieces[i](step - boundaries[i-1])`` on ``[boundaries[i-1], boundaries[i])``.

    The boundaries are in steps; every piece runs on its own clock. All pieces
    are evaluated (no Python branching on the step) and the right value is
    selected with ``ops.where``, so this compiles and vectorizes.
    """
    value = pieces[0](step)
    for boundary, piece in zip(boundaries, pieces[1:]):
        local = ops.maximum(step - boundary, 0.0)
        value = ops.where(step >= boundary, piece(local), value)
    return value


class Schedule(LearningRateSchedule):
    """Base of every keras_lrkit schedule.

    A subclass validates and stores its constructor arguments under their own
    names, calls ``super().__init__(steps_per_epoch)``, and implements
    ``_rate(t)`` where ``t`` is the time in the schedule's unit (epochs when
    ``steps_per_epoch`` is set, steps otherwise) as a float32 tensor.
    ``get_config`` then returns exactly the constructor arguments.
    """

    def __init__(self, steps_per_epoch: int | None = None) -> None:
        super().__init__()
        self.steps_per_epoch = check_steps_per_epoch(steps_per_epoch)

    @property
    def _steps_per_unit(self) -> int:
        return self.steps_per_epoch or 1

    def __call__(self, step: Any) -> Any:
        return self._rate_at_step(as_step(step))

    def _rate_at_step(self, step: Any) -> Any:
        if self.steps_per_epoch is None:
            return self._rate(step)
        return self._rate(step / float(self.steps_per_epoch))

    def _rate(self, t: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {
            name: self._config_value(getattr(self, name)) for name in constructor_arguments(self)
        }

    @staticmethod
    def _config_value(value: Any) -> Any:
        if isinstance(value, LearningRateSchedule):
            return keras.optimizers.schedules.serialize(value)
        if isinstance(value, list):
            return [Schedule._config_value(v) for v in value]
        return value

    @staticmethod
    def _deserialize(config: Any) -> LearningRateSchedule:
        if isinstance(config, LearningRateSchedule):
            return config
        return keras.optimizers.schedules.deserialize(config)

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in constructor_arguments(self))
        return f"{type(self).__name__}({args})"
