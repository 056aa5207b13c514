"""LearningRateLogger: the rate the optimizer used, in the epoch logs."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from .._keras_private import learning_rate_object, step_counter
from .._validate import check
from .._values import to_float
from ..schedules._base import evaluate
from ._fit import base_optimizer, match_schedules_to_fit
from ._state import StatefulCallback

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


def learning_rate_at(optimizer: Any, steps: Any) -> np.ndarray:
    """The rate ``optimizer`` uses at optimizer step(s) ``steps``, as float64.

    A schedule is evaluated at all the steps in one call; a float rate (a
    variable) or a callable rate is the same at every step.
    """
    rate = learning_rate_object(base_optimizer(optimizer))
    steps = np.asarray(steps, dtype="int64")
    if isinstance(rate, LearningRateSchedule):
        value = evaluate(rate, steps)
    elif callable(rate) and not isinstance(rate, keras.Variable):
        value = rate()
    else:
        value = rate
    value = np.asarray(keras.ops.convert_to_numpy(value), dtype="float64")
    return np.broadcast_to(value, steps.shape).copy()


def iterations(optimizer: Any) -> int:
    """The step the optimizer evaluates its schedule at next: its batch counter.

    Under ``gradient_accumulation_steps=n`` Keras updates the weights every n
    batches, and evaluates the schedule at the batch counter (not at
    ``optimizer.iterations``, which counts updates): so does keras_lrkit.
    """
    return int(keras.ops.convert_to_numpy(step_counter(base_optimizer(optimizer))))


def last_learning_rate(optimizer: Any) -> float:
    """The rate of the optimizer's last step (``iterations - 1``), as a float.

    A float rate is its variable's value, read without the step; a schedule
    (or a callable) is evaluated at that step.
    """
    rate = learning_rate_object(base_optimizer(optimizer))
    if isinstance(rate, keras.Variable):
        return to_float(rate)
    return float(learning_rate_at(optimizer, max(iterations(optimizer) - 1, 0)))


@keras.saving.register_keras_serializable(package="keras_lrkit")
class LearningRateLogger(StatefulCallback):
    """Put the learning rate into the logs, so History and CSVLogger record it.

    At each epoch end, ``logs["learning_rate"]`` becomes the rate the optimizer
    used for the epoch's last batch: a float rate, or the schedule evaluated at
    that batch's step (``iterations - 1``), as a Python float. Where a callback
    before it already put the epoch's rate into the logs (``ReduceOnPlateau``
    and Keras's ``ReduceLROnPlateau`` do, before they lower a float rate),
    that value stays. Place it before the callbacks that should see it
    (CSVLogger, HistoryPlotter); Keras's History always comes last and
    records it. Keras's TensorBoard logs the rate it reads from the optimizer
    after the epoch (the next step's rate); ``keras_lrkit.TensorBoard`` logs
    the rate the epoch used, as History does.

    Args:
        per_batch: also keep the rate of every batch in ``batch_learning_rates``
            (a list of floats over the whole fit; one value per call of
            ``on_train_batch_end``, so one per execution with
            ``steps_per_execution > 1``).
        name: what ``keras_lrkit.BackupAndRestore`` knows this callback by
            (default: its class and ``per_batch``).

    Examples:
        >>> import keras, numpy as np
        >>> from keras_lrkit import LearningRateLogger, StepDecay
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile(keras.optimizers.SGD(StepDecay(0.1, [2], steps_per_epoch=4)), "mse")
        >>> h = model.fit(np.ones((8, 1)), np.ones((8, 1)), batch_size=2, epochs=3,
        ...               verbose=0, callbacks=[LearningRateLogger()])
        >>> [round(r, 6) for r in h.history["learning_rate"]]
        [0.1, 0.1, 0.01]
    """

    def __init__(self, per_batch: bool = False, *, name: str | None = None) -> None:
        super().__init__()
        check("per_batch", per_batch, isinstance(per_batch, bool), "a bool")
        self.per_batch = per_batch
        self._init_name(name)
        self.batch_learning_rates: list[float] = []
        self._batch_steps: list[int] = []
        self._epoch_start = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.batch_learning_rates = []
        self._batch_steps = []
        match_schedules_to_fit(self)
        self._join()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_begin(epoch, logs)
        if self.per_batch:
            self._epoch_start = iterations(self.model.optimizer)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.per_batch:  # no device read here: the step is counted on the host
            self._batch_steps.append(self._epoch_start + batch)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        optimizer = self.model.optimizer
        logged = (logs or {}).get("learning_rate")
        try:
            rate = to_float(logged)  # the epoch's rate, put there before a reduction
        except (TypeError, ValueError):
            rate = last_learning_rate(optimizer)
        if logs is not None:
            logs["learning_rate"] = rate
        if self._batch_steps:
            if isinstance(learning_rate_object(base_optimizer(optimizer)), keras.Variable):
                # A float rate holds through an epoch; a reduction at its end may have changed it.
                self.batch_learning_rates.extend([rate] * len(self._batch_steps))
            else:
                # With steps_per_execution > 1 Keras reports the last execution's nominal end
                # (batch 5 of an epoch of 4 batches run 3 at a time): no step past the epoch's last.
                last = iterations(optimizer) - 1
                steps = [min(step, last) for step in self._batch_steps]
                self.batch_learning_rates.extend(learning_rate_at(optimizer, steps).tolist())
            self._batch_steps = []

    # --- across an interruption (keras_lrkit.BackupAndRestore) --------------------------

    def _identity(self) -> dict[str, Any]:
        return {"per_batch": self.per_batch}

    def state_dict(self) -> dict[str, Any]:
        """The per-batch rates logged so far."""
        return {"batch_learning_rates": list(self.batch_learning_rates)}

    def load_state_dict(self, state: Any) -> None:
        """Check ``state`` (ValueError naming the field), then take it."""
        rates = self._reader(state).numbers("batch_learning_rates", low=0.0)
        self.batch_learning_rates = rates

    def get_config(self) -> dict[str, Any]:
        return {"per_batch": self.per_batch, "name": self.name}
