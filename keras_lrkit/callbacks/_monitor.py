"""The rule that EarlyStoppingWithBestRestore and ReduceOnPlateau share: one watched value, and when it improves.

The rule, in one sentence: an epoch *improves* when its monitored value is
finite and better than the best so far by more than ``min_delta`` (in "min"
mode ``value + min_delta < best``, in "max" mode ``value - min_delta > best``,
compared in float32 as Keras's callbacks compare, so a tie decides as there); ``wait`` counts the epochs since the last
improvement, and a *plateau* is reached when ``wait`` reaches ``max(patience,
1)``. A non-finite value never improves. An epoch is *skipped* (it
neither improves nor counts) when the value is missing from its logs because
Keras ran no validation in it (``validation_freq > 1``); a value missing while
validation ran, or a training key that is missing, is a ValueError listing the
keys that are there (``strict=False``: one warning, and the epoch is skipped).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from .._keras_private import metric_direction
from .._metrics import check_mode, direction_from_name
from .._validate import check, is_int, is_real
from .._values import to_float
from .._warnings import warn
from ._state import StatefulCallback, StateReader


def direction_from_compiled_metrics(model: Any, monitor: str) -> str | None:
    """ "min" or "max" from a compiled Keras metric's own direction, when it has one."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    metrics = []
    for m in getattr(model, "metrics", []) or []:
        metrics.extend(getattr(m, "metrics", []) if m.name == "compile_metrics" else [m])
    for m in metrics:
        direction = metric_direction(m)
        if m.name == name and direction in ("up", "down"):
            return "max" if direction == "up" else "min"
    return None


def logged_number(key: str, value: Any) -> float:
    """One number from a logged value: a Python or NumPy number, or a size-1 array or tensor.

    Keras logs some metrics as one-element arrays (``F1Score`` logs
    ``array([0.39])``); a metric of several values (``F1Score(average=None)``,
    one per class) cannot be monitored: ValueError naming the key and the shape.
    """
    try:
        return to_float(value)
    except (TypeError, ValueError):
        pass
    array = np.asarray(keras.ops.convert_to_numpy(value))
    if array.size != 1:
        raise ValueError(
            f"`{key}` is logged as {array.size} numbers (shape {array.shape}); a monitored "
            "value must be one number. Monitor a metric that averages them (e.g. "
            "F1Score(average='macro'))."
        )
    return float(array.reshape(()))


class MonitoringCallback(StatefulCallback):
    """Base of the callbacks that decide from one monitored value (see the module's rule).

    A subclass calls ``_init_monitor`` from ``__init__`` and ``_reset_monitor``
    from ``on_train_begin``, then in ``on_epoch_end`` reads the epoch's value
    with ``_value(logs)`` (None: a skipped epoch) and judges it with
    ``_improves(value)``.
    """

    def _init_monitor(
        self,
        monitor: str,
        mode: str,
        min_delta: float,
        patience: int,
        strict: bool,
        verbose: int,
        name: str | None,
    ) -> None:
        check("monitor", monitor, isinstance(monitor, str) and monitor != "", "a non-empty str")
        check_mode(mode)
        check("patience", patience, is_int(patience) and patience >= 0, "an int >= 0")
        check("min_delta", min_delta, is_real(min_delta) and min_delta >= 0, "a finite float >= 0")
        check("strict", strict, isinstance(strict, bool), "a bool")
        check("verbose", verbose, is_int(verbose), "an int")
        self.monitor = monitor
        self.mode = mode
        self.min_delta = float(min_delta)
        self.patience = int(patience)
        self.strict = strict
        self.verbose = int(verbose)
        self._init_name(name)
        self._reset_monitor()

    def _reset_monitor(self) -> None:
        self.direction = self.mode if self.mode != "auto" else None
        self.best: float | None = None  # as Keras's EarlyStopping: None before any finite value
        self.best_epoch = 0
        self.wait = 0
        self._validated = False  # Keras ran validation in the current epoch
        self._ever_validated = False
        self._warned: set[str] = set()

    # --- which epochs have a value ----------------------------------------------

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_begin(epoch, logs)
        self._validated = False

    def on_test_begin(self, logs: dict | None = None) -> None:
        # Inside fit, Keras runs validation through evaluate() with the same callbacks.
        self._validated = self._ever_validated = True

    def _value(self, logs: dict | None) -> float | None:
        """The epoch's monitored value, or None for a skipped epoch."""
        logs = logs or {}
        if self.monitor in logs:
            return logged_number(self.monitor, logs[self.monitor])
        name = type(self).__name__
        if self.monitor.startswith("val_") and not self._validated:
            if not self._ever_validated:
                self._warn_once(
                    "no_validation",
                    f"{name} monitors `{self.monitor}`, but fit ran no validation in this "
                    "epoch, which is skipped; so are later epochs without validation "
                    "(validation_freq > 1). If this fit has no validation data, pass "
                    "validation_data or validation_split, or monitor a training metric: "
                    "otherwise it never acts.",
                )
            return None
        message = (
            f"{name} is monitoring `{self.monitor}`, which is not in this epoch's logs. "
            f"Available keys: {sorted(logs)}."
        )
        if self.strict:
            raise ValueError(
                message + " Pass the right `monitor`, or strict=False to skip such epochs."
            )
        self._warn_once("missing", message + " Epochs without it are skipped.")
        return None

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warn(message)

    # --- when a value improves -----------------------------------------------------

    def _resolve_direction(self) -> None:
        if self.direction is not None:
            return
        compiled = direction_from_compiled_metrics(self.model, self.monitor)
        self.direction = compiled or direction_from_name(self.monitor)
        if self.direction is None:
            raise ValueError(
                f"{type(self).__name__} cannot tell whether `{self.monitor}` should go up "
                f'or down. Pass mode="min" or mode="max". Received: monitor={self.monitor!r}'
            )

    def _better(self, value: float, reference: float) -> bool:
        # As Keras's MonitorCallback._is_improvement: the shifted value against the
        # reference, in float32 (ops.less / ops.greater on Python floats).
        if self.direction == "min":
            return bool(np.float32(value + self.min_delta) < np.float32(reference))
        return bool(np.float32(value - self.min_delta) > np.float32(reference))

    def _improves(self, value: float) -> bool:
        """Whether ``value`` improves on the best (the module's rule); call after _resolve_direction."""
        return math.isfinite(value) and (self.best is None or self._better(value, self.best))

    def _record(self, value: float, epoch: int) -> None:
        """``value`` at ``epoch`` is the new best."""
        self.best, self.best_epoch = value, epoch

    def _plateau(self) -> bool:
        """Whether ``wait`` has reached the patience: ``patience`` 0 and 1 both act at once."""
        return self.wait >= max(self.patience, 1)

    # --- the state (see _state.py) ------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "mode": self.mode}

    def _monitor_state(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "direction": self.direction,
            "ever_validated": self._ever_validated,
        }

    def _read_monitor_state(self, read: StateReader) -> dict[str, Any]:
        """The fields of ``_monitor_state`` from a saved state, checked (ValueError otherwise)."""
        directions = ["min", "max", None] if self.mode == "auto" else [self.mode]
        return {
            "best": read.number("best", optional=True),
            "best_epoch": read.integer("best_epoch"),
            "wait": read.integer("wait"),
            "direction": read.choice("direction", directions),
            "_ever_validated": read.flag("ever_validated"),
        }

    def _apply(self, fields: dict[str, Any]) -> None:
        for name, value in fields.items():
            setattr(self, name, value)
