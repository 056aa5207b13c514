"""What a keras_lrkit callback learns about the fit it runs in, shared by all of them.

- ``fit_token``: what tells one fit of a model from the next (the History
  object Keras makes for each fit).
- ``match_schedules_to_fit``: at train begin, a schedule that counts epochs
  must count the epochs this fit runs. ``steps_per_epoch="fit"`` takes the
  number from the fit; a number that differs from it (``validation_split``
  took some batches away, the batch size changed) gets a warning naming both,
  once per fit, whichever keras_lrkit callbacks are in it.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

from .._keras_private import learning_rate_object
from .._warnings import warn
from ..schedules._base import FROM_FIT, Schedule, schedules_in


def base_optimizer(optimizer: Any) -> Any:
    """The optimizer that holds the rate (unwraps a LossScaleOptimizer)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def fit_token(model: Any) -> Any:
    """What identifies a model's current fit: the History object Keras made for it."""
    history = getattr(model, "history", None)
    return None if history is None else id(history)


_matched: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_runs: weakref.WeakKeyDictionary[Any, tuple[Any, int]] = weakref.WeakKeyDictionary()
_next_run = itertools.count()


def run_number(model: Any) -> int:
    """0, 1, 2, ...: one number for each fit in this process (the same for every callback in it)."""
    token = fit_token(model)
    try:
        entry = _runs.get(model)
        if entry is not None and entry[0] == token:
            return entry[1]
        run = next(_next_run)
        _runs[model] = (token, run)
    except TypeError:  # an unhashable stand-in model
        run = next(_next_run)
    return run


def match_schedules_to_fit(callback: Any) -> None:
    """Set "fit" units from the batches this fit runs per epoch; warn where a number differs."""
    model = callback.model
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return
    token = fit_token(model)
    try:
        if _matched.get(model, _matched) == token:
            return  # another keras_lrkit callback in this fit did it
        _matched[model] = token
    except TypeError:  # an unhashable stand-in model
        pass
    steps = (getattr(callback, "params", None) or {}).get("steps")
    for schedule in schedules_in(learning_rate_object(base_optimizer(optimizer))):
        if not isinstance(schedule, Schedule):
            continue
        if schedule.steps_per_epoch == FROM_FIT:
            if steps:
                schedule._take_steps_per_epoch_from_fit(int(steps))
        elif schedule.steps_per_epoch is not None and steps and schedule.steps_per_epoch != steps:
            warn(
                f"{type(schedule).__name__} counts epochs of steps_per_epoch="
                f"{schedule.steps_per_epoch} steps, but this fit runs {steps} steps per epoch, "
                f"so its epochs are not fit's epochs (epoch 10 of the schedule is fit's epoch "
                f"{10 * schedule.steps_per_epoch / steps:.3g}). Pass steps_per_epoch={steps}, or "
                f'steps_per_epoch="fit" to take the number from fit.'
            )
