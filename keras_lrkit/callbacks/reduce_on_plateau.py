"""ReduceOnPlateau: lower the rate when the monitored value stops improving, whatever the rate is."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from .._io import say
from .._keras_private import learning_rate_object
from .._validate import check, constructor_arguments, is_int
from ..schedules._base import check_between, check_rate
from ..schedules.combinators import Reduced
from ._fit import base_optimizer, match_schedules_to_fit
from ._monitor import MonitoringCallback
from ._resume import epoch_done, join_fit
from .lr_logger import iterations, learning_rate_at

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


@keras.saving.register_keras_serializable(package="keras_lrkit")
class ReduceOnPlateau(MonitoringCallback):
    """Multiply the learning rate by ``factor`` when the monitored value stops improving.

    Keras's ``ReduceLROnPlateau``, for any rate: a float, any keras_lrkit
    schedule, or any of Keras's schedules (Keras's callback cannot set a
    schedule's rate and fails mid-fit). A schedule keeps its shape and its
    clock: it is wrapped in ``Reduced``, which multiplies it by the reductions
    made so far, from the step after each one. The reductions are part of the
    model's state: a ``.keras`` file saved after them loads and trains on at the
    reduced rate.

    The rule, in one sentence (as ``EarlyStoppingWithBestRestore`` states it):
    an epoch *improves* when its monitored value is finite and better than the
    best so far by more than ``min_delta``; once ``max(patience, 1)``
    consecutive epochs have not improved, the rate is multiplied by ``factor``
    (never below ``min_learning_rate``), the count starts again, and the next
    ``cooldown`` epochs count no plateau. A non-finite value never improves.
    Epochs on which Keras ran no validation are skipped for a ``val_`` monitor;
    a monitored key missing otherwise is a ValueError listing the keys there
    (``strict=False``: one warning, and the epoch is skipped).

    A reduction decided at an epoch's end applies from the next epoch's first
    step, so every callback at that epoch's end (``LearningRateLogger``,
    ``HistoryPlotter``, TensorBoard) sees the rate the epoch used, whatever
    their order. It is made while the rate the next step would use is above
    ``min_learning_rate``.

    ``min_learning_rate`` bounds what the reductions take away: they never take
    the rate below it. A schedule that goes below it on its own (a cosine to 0)
    still does: the floor holds the reductions, not the schedule.

    Args:
        monitor: the log key to watch. Default "val_loss".
        factor: the multiplier at each reduction, in (0, 1).
        patience: epochs without improvement before a reduction (0 and 1 are
            the same). Default 10, as Keras.
        min_delta: how much better than the best a value must be (>= 0).
            Default 1e-4, as Keras.
        cooldown: epochs after a reduction during which no plateau counts.
        min_learning_rate: the lowest rate the reductions lead to (Keras's
            ``min_lr``).
        mode: "min", "max" or "auto" (by the name; a compiled metric's own
            direction wins).
        strict: a missing ``monitor`` key is a ValueError (default), or one
            warning with ``strict=False``.
        verbose: 1 prints each reduction.

    After ``fit``: ``best``, ``best_epoch``, ``wait``, ``cooldown_counter``
    and ``reductions`` (one ``(epoch, rate after)`` pair per reduction).

    Example:

    >>> from keras_lrkit import ReduceOnPlateau
    >>> reduce = ReduceOnPlateau("val_loss", factor=0.5, patience=3)
    >>> reduce.factor, reduce.patience
    (0.5, 3)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_learning_rate: float = 0.0,
        mode: str = "auto",
        strict: bool = True,
        verbose: int = 0,
    ) -> None:
        super().__init__()
        self.factor = check_between("factor", factor, 0.0, 1.0, open_low=True, open_high=True)
        check("cooldown", cooldown, is_int(cooldown) and cooldown >= 0, "an int >= 0")
        self.cooldown = int(cooldown)
        self.min_learning_rate = check_rate("min_learning_rate", min_learning_rate)
        self._init_monitor(monitor, mode, min_delta, patience, strict, verbose)

    def _reset_monitor(self) -> None:
        super()._reset_monitor()
        self.cooldown_counter = 0
        self.reductions: list[tuple[int, float]] = []
        self._pending: float | None = None  # a float rate to set when the next epoch begins

    # --- the rate ---------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset_monitor()
        match_schedules_to_fit(self)
        optimizer = base_optimizer(self.model.optimizer)
        rate = learning_rate_object(optimizer)
        if isinstance(rate, LearningRateSchedule) and not isinstance(rate, Reduced):
            # Wrapped before the first step is traced: the schedule keeps its shape.
            optimizer.learning_rate = Reduced(rate, min_learning_rate=self.min_learning_rate)
        join_fit(self)

    def _next_rate(self) -> float:
        """The rate the next step would use, reductions so far included."""
        optimizer = self.model.optimizer
        if self._pending is not None:
            return self._pending
        return float(learning_rate_at(optimizer, iterations(optimizer))[()])

    def _reduce(self, epoch: int) -> None:
        optimizer = base_optimizer(self.model.optimizer)
        rate = learning_rate_object(optimizer)
        old = self._next_rate()
        if isinstance(rate, Reduced):
            step = iterations(optimizer)  # the next epoch's first step
            self._set_reductions(rate, [*rate.reductions, [step, self.factor]])
            new = float(learning_rate_at(optimizer, step)[()])
        else:  # a float rate: Keras's variable, set when the next epoch begins
            new = max(old * self.factor, self.min_learning_rate)
            self._pending = new
        self.reductions.append((epoch, new))
        if self.verbose:
            say(
                f"Epoch {epoch}: ReduceOnPlateau lowers the learning rate from {old:.6g} to {new:.6g}."
            )

    def _set_reductions(self, rate: Reduced, reductions: list) -> None:
        """Train on with ``rate``'s schedule under ``reductions`` (compiled into the train step)."""
        optimizer = base_optimizer(self.model.optimizer)
        optimizer.learning_rate = Reduced(
            rate.schedule, reductions, min_learning_rate=self.min_learning_rate
        )
        self.model.make_train_function(force=True)

    def _apply_pending(self) -> None:
        if self._pending is not None:
            base_optimizer(self.model.optimizer).learning_rate = self._pending
            self._pending = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_begin(epoch, logs)
        self._apply_pending()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._apply_pending()  # a model saved after fit trains on at the reduced rate

    # --- the decision -------------------------------------------------------------

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._decide(epoch, logs)
        epoch_done(self, epoch)

    def _decide(self, epoch: int, logs: dict | None) -> None:
        value = self._value(logs)
        if value is None:
            return
        self._resolve_direction()
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improves(value):
            self._record(value, epoch)
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            # As Keras: the rate is compared with the floor in float32, the rate's dtype.
            if self._plateau() and self._next_rate() > np.float32(self.min_learning_rate):
                self._reduce(epoch)
                self.cooldown_counter = self.cooldown
                self.wait = 0

    # --- across an interruption (BackupAndRestore) ------------------------------------

    def _resume_state(self) -> tuple[dict[str, Any], None]:
        rate = learning_rate_object(base_optimizer(self.model.optimizer))
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "direction": self.direction,
            "cooldown_counter": self.cooldown_counter,
            "ever_validated": self._ever_validated,
            "reductions": [list(r) for r in self.reductions],
            "pending": self._pending,
            # A schedule's reductions live in the optimizer's Reduced, which the backup's
            # weights do not hold (a float rate is a variable: the backup holds it).
            "schedule_reductions": rate.reductions if isinstance(rate, Reduced) else None,
        }, None

    def _resume_from(self, state: dict[str, Any], arrays: Any) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.direction, self.cooldown_counter = state["direction"], state["cooldown_counter"]
        self._ever_validated = state["ever_validated"]
        self.reductions = [tuple(r) for r in state["reductions"]]
        self._pending = state["pending"]
        rate = learning_rate_object(base_optimizer(self.model.optimizer))
        if state["schedule_reductions"] is not None and isinstance(rate, Reduced):
            self._set_reductions(rate, state["schedule_reductions"])

    def get_config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in constructor_arguments(self)}
