"""CooldownOnPlateau: train at a stable rate until the run stops improving, then cool down and stop."""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from .._io import say
from .._keras_private import learning_rate_object
from .._validate import check, constructor_arguments, is_int
from ..schedules._base import check_rate
from ..schedules.wsd import Cooldown, check_shape, fall
from ._fit import base_optimizer, match_schedules_to_fit, wrapped_rate
from ._monitor import MonitoringCallback
from .lr_logger import iterations, last_learning_rate


@keras.saving.register_keras_serializable(package="keras_lrkit")
class CooldownOnPlateau(MonitoringCallback):
    """Cool the rate down when the monitored value stops improving, then stop training.

    The anytime recipe (Hägele et al. 2024): train at a stable rate (a float,
    or an open-ended ``WarmupStableDecay``) without fixing the run's length;
    when the monitored value has not improved for ``patience`` epochs, the
    rate starts to fall at the next epoch, from what it is down to
    ``min_learning_rate`` over ``length`` epochs along ``shape``, and training
    stops at the end of the cooldown.

    The improvement rule is ``EarlyStoppingWithBestRestore``'s and
    ``ReduceOnPlateau``'s (``value + min_delta`` below the best in "min" mode,
    compared as Keras compares; ``patience`` 0 and 1 both act at the first
    epoch without improvement). It works with any rate:

    - a schedule (``WarmupStableDecay``, any keras_lrkit or Keras schedule) is
      wrapped in ``Cooldown`` when fit begins, and falls step by step; starting
      the cooldown is an assignment to what the train step reads (no retrace),
      and the start is part of the model's config, so a ``.keras`` file loads
      at the cooled rate;
    - a float rate (Keras's variable) falls once per epoch: epoch ``k`` of the
      cooldown trains at ``min_lr + (lr - min_lr) * fall((k + 0.5) / length)``.

    Start it yourself from outside the training loop: call
    ``start_cooldown()`` (from another thread, a notebook's other cell while
    fit runs in the background, a callback of your own), or create the file
    ``trigger_file`` (``touch COOLDOWN`` from a shell): at the end of the
    epoch that sees either, the cooldown is decided as if the value had
    reached a plateau. With ``keras_lrkit.BackupAndRestore`` in the fit, the
    decision resumes with the rest.

    Args:
        monitor: the log key to watch. Default "val_loss".
        patience: epochs without improvement before the cooldown starts.
        length: the cooldown's length, in epochs (>= 1).
        min_delta: how much better than the best a value must be (>= 0).
        mode: "min", "max" or "auto".
        shape: "1-sqrt" (default, the shape Hägele et al. found best),
            "linear" or "cosine".
        min_learning_rate: where the cooldown ends (>= 0).
        trigger_file: a path whose appearance starts the cooldown, or None.
        strict: a missing ``monitor`` key is a ValueError (default), or one
            warning with ``strict=False``.
        verbose: 1 prints when the cooldown starts and when training stops.
        name: what ``keras_lrkit.BackupAndRestore`` knows this callback by.

    After ``fit``: ``best``, ``best_epoch``, ``wait``, ``cooldown_epoch`` (the
    first epoch of the cooldown, or None) and ``stopped_epoch`` (the epoch
    training stopped after, 0 when it did not).

    Examples:
        >>> from keras_lrkit import CooldownOnPlateau
        >>> cool = CooldownOnPlateau("val_loss", patience=5, length=4)
        >>> cool.length, cool.shape
        (4, '1-sqrt')
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int = 10,
        length: int = 10,
        min_delta: float = 0.0,
        mode: str = "auto",
        shape: str = "1-sqrt",
        min_learning_rate: float = 0.0,
        trigger_file: str | os.PathLike | None = None,
        strict: bool = True,
        verbose: int = 0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        check("length", length, is_int(length) and length >= 1, "an int >= 1 (epochs)")
        self.length = int(length)
        self.shape = check_shape("shape", shape)
        self.min_learning_rate = check_rate("min_learning_rate", min_learning_rate)
        check("trigger_file", trigger_file, trigger_file is None
              or isinstance(trigger_file, (str, os.PathLike)), "None or a path")  # fmt: skip
        self.trigger_file = None if trigger_file is None else os.fspath(trigger_file)
        self._requested = False
        self._init_monitor(monitor, mode, min_delta, patience, strict, verbose, name)

    def _reset_monitor(self) -> None:
        super()._reset_monitor()
        self.cooldown_epoch: int | None = None
        self.stopped_epoch = 0
        self._start_rate: float | None = None  # a float rate when the cooldown began

    def start_cooldown(self) -> None:
        """Start the cooldown at the end of the current epoch, whatever the monitored value says."""
        self._requested = True

    # --- the rate -------------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset_monitor()
        match_schedules_to_fit(self)
        wrapped_rate(self, Cooldown, lambda s: Cooldown(
            s, 1, shape=self.shape, min_learning_rate=self.min_learning_rate))  # fmt: skip
        self._join()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_begin(epoch, logs)
        self._epoch_start = iterations(self.model.optimizer)
        if self._start_rate is not None and self.cooldown_epoch is not None:
            k = epoch - self.cooldown_epoch  # a float rate: one value per epoch of the cooldown
            if 0 <= k < self.length:
                low, high = self.min_learning_rate, self._start_rate
                value = low + (high - low) * float(
                    fall(self.shape, np.float32((k + 0.5) / self.length))
                )
                learning_rate_object(base_optimizer(self.model.optimizer)).assign(value)

    # --- the decision ---------------------------------------------------------------------

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.cooldown_epoch is not None:
            if epoch >= self.cooldown_epoch + self.length - 1:
                self.stopped_epoch = epoch
                self.model.stop_training = True
                if self.verbose:
                    say(f"Epoch {epoch}: CooldownOnPlateau's cooldown is over; training stops.")
            return
        requested = self._requested or (
            self.trigger_file is not None and os.path.exists(self.trigger_file)
        )
        value = self._value(logs)
        if value is not None:
            self._resolve_direction()
            if self._improves(value):
                self._record(value, epoch)
                self.wait = 0
            else:
                self.wait += 1
        if requested or (value is not None and self._plateau()):
            self._begin(epoch)

    def _begin(self, epoch: int) -> None:
        """The cooldown starts with the next epoch."""
        self._requested = False
        optimizer = base_optimizer(self.model.optimizer)
        rate = learning_rate_object(optimizer)
        step = iterations(self.model.optimizer)
        steps = (self.params or {}).get("steps") or max(step - self._epoch_start, 1)
        self.cooldown_epoch = epoch + 1
        if isinstance(rate, Cooldown):
            rate.begin(step, self.length * int(steps))
        else:
            self._start_rate = last_learning_rate(self.model.optimizer)
        if self.verbose:
            say(f"Epoch {epoch}: CooldownOnPlateau starts a cooldown of {self.length} epochs.")

    # --- across an interruption (keras_lrkit.BackupAndRestore) ------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The decision so far; a schedule's cooldown window (a float rate is in the backup)."""
        rate = learning_rate_object(base_optimizer(self.model.optimizer))
        window = [rate.start, rate.length] if isinstance(rate, Cooldown) else None
        return {
            **self._monitor_state(),
            "cooldown_epoch": self.cooldown_epoch,
            "stopped_epoch": self.stopped_epoch,
            "start_rate": self._start_rate,
            "window": window,
        }

    def load_state_dict(self, state: Any) -> None:
        """Check ``state`` in full (ValueError naming the field), then take it."""
        read = self._reader(state)
        fields = {
            **self._read_monitor_state(read),
            "stopped_epoch": read.integer("stopped_epoch"),
            "_start_rate": read.number("start_rate", optional=True, low=0.0),
        }
        fields["cooldown_epoch"] = (
            None if read.field("cooldown_epoch") is None else read.integer("cooldown_epoch")
        )
        rate = learning_rate_object(base_optimizer(self.model.optimizer))
        window = read.field("window")
        if (window is not None) != isinstance(rate, Cooldown):
            raise ValueError(f"{self.state_key()}'s state is of a fit with another kind of rate")
        if window is not None:
            ok = isinstance(window, list) and len(window) == 2
            start, length = window if ok else (None, None)
            ok = ok and (start is None or is_int(start) and 0 <= start < 2**63)
            if not (ok and is_int(length) and 0 < length < 2**63):
                raise ValueError(f"{self.state_key()}'s state has `window`={window!r:.80}")
        self._apply(fields)
        if window is not None:
            rate.begin(window[0], window[1])

    def get_config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in constructor_arguments(self)}
