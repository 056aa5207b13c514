"""What the keras_lrkit callbacks of one fit share, kept on the model of that fit.

Keras gives every callback of a fit the same model and the same ``params``
dict (``set_params``), and nothing else in common. So the one place where the
keras_lrkit callbacks of a fit meet is a small record on the model,
``model._keras_lrkit_fit``, made anew by the first keras_lrkit callback of
each fit (a fit is told from the next by its ``params`` dict). It holds:

- the keras_lrkit callbacks of the fit, weakly, in the order they began:
  ``keras_lrkit.BackupAndRestore`` saves their state, ``HistoryPlotter``
  marks the epochs an ``EarlyStoppingWithBestRestore`` chose;
- the ``keras_lrkit.BackupAndRestore`` of the fit and the states it read
  back, which each callback takes when it begins;
- the fit's number in this process (``{run}`` in ``HistoryPlotter`` paths) and
  whether the schedules were matched to the fit already.

A callback joins by calling ``join(self)`` in ``on_train_begin``. A subclass
that overrides ``on_train_begin`` without ``super()`` does not join: it loses
its own resumability and marks, and nothing of any other callback. Nothing of
it outlives the model, and a fit without keras_lrkit callbacks never makes one.

``match_schedules_to_fit``: at train begin, a schedule that counts epochs
must count the epochs this fit runs. ``steps_per_epoch="fit"`` takes the number
from each fit (one schedule shared by fits of other sizes too); a number that differs from it (``validation_split`` took some
batches away, the batch size changed) gets a warning naming both, once per fit.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

import keras

from .._keras_private import learning_rate_object
from .._warnings import warn
from ..schedules._base import Schedule, schedules_in

_ATTRIBUTE = "_keras_lrkit_fit"
_next_run = itertools.count()


def base_optimizer(optimizer: Any) -> Any:
    """The optimizer that holds the rate (unwraps a LossScaleOptimizer)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


class FitRecord:
    """What the keras_lrkit callbacks of one fit share (see the module's docstring)."""

    def __init__(self, params: Any) -> None:
        self.params = params
        self.run = next(_next_run)
        self.matched = False  # the schedules were matched to this fit
        self.backup: Any = None  # the keras_lrkit.BackupAndRestore of this fit
        self.resumed: dict[str, Any] | None = None  # its states, by key, once it read them
        self.warned: set[str] = set()
        self._members: list[weakref.ref] = []

    def add(self, callback: Any) -> None:
        if all(ref() is not callback for ref in self._members):
            self._members.append(weakref.ref(callback))

    def members(self) -> list[Any]:
        """The keras_lrkit callbacks that joined this fit, in the order they began."""
        return [c for c in (ref() for ref in self._members) if c is not None]

    def warn_once(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            warn(message)


def fit_record(callback: Any) -> FitRecord:
    """The record of the fit ``callback`` runs in (made by the first keras_lrkit callback of the fit)."""
    model, params = callback.model, getattr(callback, "params", None)
    record = getattr(model, "__dict__", {}).get(_ATTRIBUTE)
    if record is None or record.params is not params:
        record = FitRecord(params)
        try:  # past Keras's attribute tracking: the record is no state of the model's
            object.__setattr__(model, _ATTRIBUTE, record)
        except (AttributeError, TypeError):  # a stand-in model that takes no attributes
            pass
    return record


def current_record(model: Any) -> FitRecord | None:
    """The record of ``model``'s latest fit with a keras_lrkit callback, if any."""
    return getattr(model, "__dict__", {}).get(_ATTRIBUTE)


def join(callback: Any) -> FitRecord:
    """``callback`` takes part in its fit: resumable, visible to the others; it takes its resumed state."""
    record = fit_record(callback)
    record.add(callback)
    if record.backup is not None:
        record.backup._hand_over(callback)
    return record


def run_number(callback: Any) -> int:
    """0, 1, 2, ...: one number for each fit in this process (the same for every callback in it)."""
    return fit_record(callback).run


def match_schedules_to_fit(callback: Any) -> None:
    """Set "fit" units from the batches this fit runs per epoch; warn where a number differs."""
    model = callback.model
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return
    record = fit_record(callback)
    if record.matched:
        return  # another keras_lrkit callback in this fit did it
    record.matched = True
    steps = (getattr(callback, "params", None) or {}).get("steps")
    changed = False
    for schedule in schedules_in(learning_rate_object(base_optimizer(optimizer))):
        if not isinstance(schedule, Schedule):
            continue
        if schedule._from_fit:
            if steps:
                changed |= schedule._take_steps_per_epoch_from_fit(int(steps))
        elif schedule.steps_per_epoch is not None and steps and schedule.steps_per_epoch != steps:
            warn(
                f"{type(schedule).__name__} counts epochs of steps_per_epoch="
                f"{schedule.steps_per_epoch} steps, but this fit runs {steps} steps per epoch, "
                f"so its epochs are not fit's epochs (epoch 10 of the schedule is fit's epoch "
                f"{10 * schedule.steps_per_epoch / steps:.3g}). Pass steps_per_epoch={steps}, or "
                f'steps_per_epoch="fit" to take the number from each fit.'
            )
    if changed and getattr(model, "train_function", None) is not None:
        # A step traced in an earlier fit of another size holds its number: rebuilt, once.
        model.make_train_function(force=True)


def wrapped_rate(callback: Any, kind: type, wrap: Any) -> Any:
    """The optimizer's rate, a schedule wrapped in ``kind`` (by ``wrap(schedule)``) once.

    A float rate (Keras's variable) comes back as it is; a callable rate, which
    cannot be changed, is a ValueError naming it. A train step traced before
    the wrap holds the old schedule: it is rebuilt once, here, at train begin.
    """
    optimizer = base_optimizer(callback.model.optimizer)
    rate = learning_rate_object(optimizer)
    if isinstance(rate, kind) or isinstance(rate, keras.Variable):
        return rate
    if not isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        raise ValueError(
            f"{type(callback).__name__} lowers a float learning rate or a LearningRateSchedule; "
            f"this optimizer's rate is a callable it cannot change. Received: learning_rate={rate!r}"
        )
    optimizer.learning_rate = wrap(rate)
    if getattr(callback.model, "train_function", None) is not None:
        callback.model.make_train_function(force=True)
    return learning_rate_object(optimizer)
