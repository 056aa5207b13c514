"""ReduceOnPlateau: lower the rate when the monitored value stops improving, whatever the rate is."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from .._io import say
from .._keras_private import learning_rate_object
from .._validate import check, constructor_arguments, is_int, is_real
from ..schedules._base import check_between, check_rate
from ..schedules.combinators import Reduced, check_reductions
from ._fit import base_optimizer, match_schedules_to_fit, wrapped_rate
from ._monitor import MonitoringCallback
from .lr_logger import iterations, last_learning_rate, learning_rate_at


@keras.saving.register_keras_serializable(package="keras_lrkit")
class ReduceOnPlateau(MonitoringCallback):
    """Multiply the learning rate by ``factor`` when the monitored value stops improving.

    Keras's ``ReduceLROnPlateau``, for any rate: a float, any keras_lrkit
    schedule, or any of Keras's schedules (Keras's callback cannot set a
    schedule's rate and fails mid-fit). A float rate is Keras's variable,
    multiplied in place. A schedule keeps its shape and its clock: when fit
    begins it is wrapped in ``Reduced``, which multiplies it by the reductions
    made so far, from the step after each one. Either way a reduction is an
    assignment to what the train step reads: never a retrace or a
    recompilation. (Wrapping a schedule whose optimizer already trained
    rebuilds the train step once, when that fit begins.) Several reducers in
    one fit compound, as Keras's do. The reductions are part of the model's
    state: a ``.keras`` file saved after them loads and trains on at the
    reduced rate. A callable rate (``SGD(lambda: 0.1)``) cannot be lowered: a
    ValueError when fit begins.

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
    step. Before deciding, it puts the rate the epoch used into the logs as
    ``learning_rate`` (as Keras's ``ReduceLROnPlateau`` does), so the callbacks
    after it (``LearningRateLogger``, ``HistoryPlotter``,
    ``keras_lrkit.TensorBoard``, History) record the epoch's rate, whatever
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
        name: what ``keras_lrkit.BackupAndRestore`` knows this callback by
            (default: its class, ``monitor`` and ``mode``).

    After ``fit``: ``best``, ``best_epoch``, ``wait``, ``cooldown_counter``
    and ``reductions`` (one ``(epoch, rate after)`` pair per reduction).

    Examples:
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
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.factor = check_between("factor", factor, 0.0, 1.0, open_low=True, open_high=True)
        check("cooldown", cooldown, is_int(cooldown) and cooldown >= 0, "an int >= 0")
        self.cooldown = int(cooldown)
        self.min_learning_rate = check_rate("min_learning_rate", min_learning_rate)
        self._init_monitor(monitor, mode, min_delta, patience, strict, verbose, name)

    def _reset_monitor(self) -> None:
        super()._reset_monitor()
        self.cooldown_counter = 0
        self.reductions: list[tuple[int, float]] = []

    # --- the rate ---------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset_monitor()
        match_schedules_to_fit(self)
        rate = wrapped_rate(self, Reduced,
                            lambda s: Reduced(s, min_learning_rate=self.min_learning_rate))  # fmt: skip
        if isinstance(rate, Reduced) and rate.min_learning_rate != self.min_learning_rate:
            raise ValueError(
                "Argument `min_learning_rate` must be the floor of the Reduced schedule this "
                f"optimizer trains with ({rate.min_learning_rate!r}: another ReduceOnPlateau "
                f"set it). Received: min_learning_rate={self.min_learning_rate!r}"
            )
        self._join()

    def _next_rate(self) -> float:
        """The rate the next step would use, reductions so far included."""
        optimizer = self.model.optimizer
        return float(learning_rate_at(optimizer, iterations(optimizer))[()])

    def _reduce(self, epoch: int, old: float) -> None:
        """Lower the rate the next step would use (``old``) by ``factor``."""
        optimizer = base_optimizer(self.model.optimizer)
        rate = learning_rate_object(optimizer)
        if isinstance(rate, Reduced):
            rate.reduce(iterations(optimizer), self.factor)  # from the next epoch's first step
        else:  # Keras's variable, as Keras's ReduceLROnPlateau sets it
            rate.assign(max(old * self.factor, self.min_learning_rate))
        new = self._next_rate()
        self.reductions.append((epoch, new))
        if self.verbose:
            say(
                f"Epoch {epoch}: ReduceOnPlateau lowers the learning rate from {old:.6g} to {new:.6g}."
            )

    # --- the decision -------------------------------------------------------------

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None and "learning_rate" not in logs:
            logs["learning_rate"] = last_learning_rate(self.model.optimizer)  # before a reduction
        self._decide(epoch, logs)

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
            old = self._next_rate() if self._plateau() else None
            if old is not None and old > np.float32(self.min_learning_rate):
                self._reduce(epoch, old)
                self.cooldown_counter = self.cooldown
                self.wait = 0

    # --- across an interruption (keras_lrkit.BackupAndRestore) --------------------------

    def state_dict(self) -> dict[str, Any]:
        """The decision so far, and the reductions of a schedule's ``Reduced`` (a float rate is a
        variable, which the backup's weights hold)."""
        rate = learning_rate_object(base_optimizer(self.model.optimizer))
        return {
            **self._monitor_state(),
            "cooldown_counter": self.cooldown_counter,
            "reductions": [list(r) for r in self.reductions],
            "schedule_reductions": rate.reductions if isinstance(rate, Reduced) else None,
        }

    def load_state_dict(self, state: Any) -> None:
        """Check ``state`` in full (ValueError naming the field), then take it."""
        read = self._reader(state)
        fields = {
            **self._read_monitor_state(read),
            "cooldown_counter": read.integer("cooldown_counter", high=self.cooldown),
        }
        pairs = read.field("reductions")
        ok = isinstance(pairs, list) and all(
            isinstance(p, list) and len(p) == 2 and is_int(p[0]) and p[0] >= 0 and is_real(p[1])
            and p[1] >= 0 for p in pairs
        )  # fmt: skip
        if not ok:
            raise ValueError(f"{self.state_key()}'s state has `reductions`={pairs!r:.80}, not "
                             "[epoch, rate] pairs")  # fmt: skip
        reductions = [(int(e), float(r)) for e, r in pairs]
        fields["reductions"] = reductions
        rate = learning_rate_object(base_optimizer(self.model.optimizer))
        schedule = read.field("schedule_reductions")
        if (schedule is not None) != isinstance(rate, Reduced):
            raise ValueError(f"{self.state_key()}'s state is of a fit with another kind of rate")
        if schedule is not None:
            try:
                schedule = check_reductions(schedule)
            except ValueError as error:
                raise ValueError(f"{self.state_key()}'s state: {error}") from None
        self._apply(fields)
        if schedule is not None:
            rate.set_reductions(schedule)

    def get_config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in constructor_arguments(self)}
