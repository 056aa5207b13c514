"""EarlyStoppingWithBestRestore: stop when the monitored value stops improving, keep the best weights."""

from __future__ import annotations

import math
import os
import warnings
import weakref
from typing import Any

import keras

from .._io import atomic_write, is_chief, say
from .._metrics import direction_from_name
from .._signals import deferred_interrupts
from .._validate import check, constructor_arguments, is_int, is_real
from .._values import to_float
from ._snapshot import WeightSnapshot

# The EarlyStoppingWithBestRestore of each model's latest fit, so that a
# HistoryPlotter in the same fit can mark its best and stop epochs. Weak on both
# sides: the table keeps neither a model nor a callback alive. Each entry holds
# the fit's History (Keras makes one per fit), so a later fit without early
# stopping does not see the marks of an earlier one.
_ACTIVE: weakref.WeakKeyDictionary[Any, tuple[weakref.ref, Any]] = weakref.WeakKeyDictionary()


def _fit_token(model: Any) -> Any:
    """What identifies a model's current fit: the History object Keras made for it."""
    history = getattr(model, "history", None)
    return None if history is None else id(history)


def _register(model: Any, callback: EarlyStoppingWithBestRestore) -> None:
    try:
        _ACTIVE[model] = (weakref.ref(callback), _fit_token(model))
    except TypeError:  # an unhashable stand-in model
        pass


def active_early_stopping(model: Any) -> EarlyStoppingWithBestRestore | None:
    """The EarlyStoppingWithBestRestore in ``model``'s current fit, if there is one."""
    try:
        entry = _ACTIVE.get(model)
    except TypeError:  # an unhashable stand-in model
        return None
    if entry is None or entry[1] != _fit_token(model):
        return None
    return entry[0]()


def _direction_from_compiled_metrics(model: Any, monitor: str) -> str | None:
    name = monitor[4:] if monitor.startswith("val_") else monitor
    metrics = []
    for m in getattr(model, "metrics", []) or []:
        metrics.extend(getattr(m, "metrics", []) if m.name == "compile_metrics" else [m])
    for m in metrics:
        if m.name == name and getattr(m, "_direction", None) in ("up", "down"):
            return "max" if m._direction == "up" else "min"
    return None


@keras.saving.register_keras_serializable(package="keras_lrkit")
class EarlyStoppingWithBestRestore(keras.callbacks.Callback):
    """Stop training when the monitored value stops improving, and always restore the best weights.

    The rule, in one sentence: an epoch *improves* when its value is better
    than the best so far by more than ``min_delta`` (and, with ``baseline``,
    also better than the baseline); training stops at the end of the first
    epoch at which ``max(patience, 1)`` consecutive epochs have not improved.
    So ``patience=0`` and ``patience=1`` both stop at the first epoch without
    improvement, ``patience=2`` at the second in a row, and so on. Epochs before
    ``start_from_epoch`` are ignored.

    The best epoch is the one with the best value seen (beyond ``min_delta``),
    whether or not it beat the baseline. When ``fit`` ends, however it ended
    (this callback, the last epoch, another callback setting
    ``model.stop_training``, a non-finite value), the model's weights are set
    back to their values at the end of the best epoch, bit for bit, whatever
    the model (built before ``fit`` or inside its first step). The copy is kept
    on the device that holds the variables (one backup, overwritten at each
    improvement), never round-tripped through host memory where the backend
    allows. What is not restored, and why:

    - no epoch had a finite monitored value: there is no best epoch, so the
      weights stay as training left them (``verbose=1`` says so);
    - ``fit`` raised (an exception, Ctrl-C): Keras skips ``on_train_end``, so
      the weights stay as training left them; ``restore()`` puts the best ones
      back, and ``checkpoint_path`` has them on disk.

    After ``fit``, the callback holds ``best``, ``best_epoch``,
    ``stopped_epoch`` (None when this callback did not stop training) and
    ``stop_reason``: "patience", "baseline" (stopped before the baseline was
    ever beaten), "non_finite", or None.

    Args:
        monitor: the log key to watch, e.g. "val_loss" or "val_accuracy".
        mode: "min", "max" or "auto". Auto minimizes loss- and error-like names
            and maximizes accuracy-, auc-, precision-, recall- and f1-like
            names; a compiled Keras metric's own direction wins where it has
            one; a name it cannot judge raises ValueError asking for ``mode``.
        patience: epochs without improvement to wait (0 and 1 are the same).
        min_delta: how much better than the best a value must be (>= 0).
        baseline: a value an epoch must also beat to count as improving.
        start_from_epoch: the first epoch that is watched.
        restore_best_weights: set the best weights back at the end (default).
        check_finite: stop at once on a NaN or inf value. A non-finite value
            never counts as an improvement either way.
        strict: a ``monitor`` key missing from an epoch's logs raises ValueError
            listing the keys there (Keras only warns, and training silently never
            stops). With ``strict=False`` it warns once and the epoch is skipped.
            (With ``validation_freq > 1`` the ``val_`` keys are absent on some
            epochs: use ``strict=False``.)
        checkpoint_path: also write the best weights to this ``.weights.h5``
            file at each improvement, atomically, so a crash loses nothing.
            Under distributed training only the chief writes it.
        verbose: 1 prints why training stopped and which epoch was restored.

    Example:

    >>> from keras_lrkit import EarlyStoppingWithBestRestore
    >>> stop = EarlyStoppingWithBestRestore("val_loss", patience=3)
    >>> stop.patience, stop.mode
    (3, 'auto')
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        mode: str = "auto",
        patience: int = 0,
        min_delta: float = 0.0,
        baseline: float | None = None,
        start_from_epoch: int = 0,
        restore_best_weights: bool = True,
        check_finite: bool = True,
        strict: bool = True,
        checkpoint_path: str | os.PathLike | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__()
        check("monitor", monitor, isinstance(monitor, str) and monitor != "", "a non-empty str")
        check("mode", mode, mode in ("auto", "min", "max"), 'one of "auto", "min", "max"')
        check("patience", patience, is_int(patience) and patience >= 0, "an int >= 0")
        check("min_delta", min_delta, is_real(min_delta) and min_delta >= 0, "a finite float >= 0")
        check("baseline", baseline, baseline is None or is_real(baseline), "None or a finite float")
        check(
            "start_from_epoch",
            start_from_epoch,
            is_int(start_from_epoch) and start_from_epoch >= 0,
            "an int >= 0",
        )
        for flag, value in [
            ("restore_best_weights", restore_best_weights),
            ("check_finite", check_finite),
            ("strict", strict),
        ]:
            check(flag, value, isinstance(value, bool), "a bool")
        if checkpoint_path is not None:
            check(
                "checkpoint_path",
                checkpoint_path,
                isinstance(checkpoint_path, (str, os.PathLike))
                and os.fspath(checkpoint_path).endswith(".weights.h5"),
                'None or a path ending in ".weights.h5"',
            )
        check("verbose", verbose, is_int(verbose), "an int")
        self.monitor = monitor
        self.mode = mode
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.baseline = None if baseline is None else float(baseline)
        self.start_from_epoch = int(start_from_epoch)
        self.restore_best_weights = restore_best_weights
        self.check_finite = check_finite
        self.strict = strict
        self.checkpoint_path = None if checkpoint_path is None else os.fspath(checkpoint_path)
        self.verbose = int(verbose)
        self._reset()

    def _reset(self) -> None:
        self.direction = self.mode if self.mode != "auto" else None
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.stop_reason: str | None = None
        self.wait = 0
        self._baseline_beaten = False
        self._warned_missing = False
        self._snapshot: WeightSnapshot | None = None
        self._writes = False

    # --- the decision ---------------------------------------------------------

    def _better(self, value: float, reference: float) -> bool:
        if self.direction == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def _resolve_direction(self) -> None:
        if self.direction is not None:
            return
        compiled = _direction_from_compiled_metrics(self.model, self.monitor)
        self.direction = compiled or direction_from_name(self.monitor)
        if self.direction is None:
            raise ValueError(
                f"EarlyStoppingWithBestRestore cannot tell whether `{self.monitor}` should go up "
                f'or down. Pass mode="min" or mode="max". Received: monitor={self.monitor!r}'
            )

    def _monitored_value(self, logs: dict | None) -> float | None:
        logs = logs or {}
        if self.monitor in logs:
            return to_float(logs[self.monitor])
        message = (
            f"EarlyStoppingWithBestRestore is monitoring `{self.monitor}`, which is not in "
            f"this epoch's logs. Available keys: {sorted(logs)}."
        )
        if self.strict:
            raise ValueError(
                message + " Pass the right `monitor`, or strict=False to skip such epochs."
            )
        if not self._warned_missing:
            warnings.warn(message + " Epochs without it are skipped.", stacklevel=2)
            self._warned_missing = True
        return None

    def _stop(self, epoch: int, reason: str) -> None:
        self.stopped_epoch = epoch
        self.stop_reason = reason
        self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch < self.start_from_epoch:
            return
        value = self._monitored_value(logs)
        if value is None:
            return
        self._resolve_direction()
        finite = math.isfinite(value)
        improved = finite and (self.best is None or self._better(value, self.best))
        if improved:
            self.best, self.best_epoch = value, epoch
            self._record_best()
        if improved and (self.baseline is None or self._better(value, self.baseline)):
            self._baseline_beaten = True
            self.wait = 0
        else:
            self.wait += 1
        if not finite and self.check_finite:
            self._stop(epoch, "non_finite")
        elif self.wait >= max(self.patience, 1):
            beaten = self.baseline is None or self._baseline_beaten
            self._stop(epoch, "patience" if beaten else "baseline")

    # --- the weights ----------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()
        self._writes = self.checkpoint_path is not None and is_chief()
        _register(self.model, self)

    def _record_best(self) -> None:
        if self.restore_best_weights:
            self._snapshot = self._current_snapshot()
            self._snapshot.capture()
        if self._writes:
            try:
                atomic_write(self.checkpoint_path, self.model.save_weights)
            except Exception as error:  # a failed write never stops training
                warnings.warn(
                    f"Could not write the best weights to {self.checkpoint_path!r}: {error}",
                    stacklevel=2,
                )

    def _current_snapshot(self) -> WeightSnapshot:
        """A snapshot of the weights the model has now.

        Made at the first improvement, not at train begin: a model without an
        ``Input`` (or a subclassed one) may only build its weights inside the
        first train step, and a snapshot of no weights would restore nothing.
        """
        weights = self.model.weights
        snapshot = self._snapshot
        if snapshot is None or not snapshot.covers(weights):
            snapshot = WeightSnapshot(weights)
        return snapshot

    def restore(self) -> bool:
        """Put the weights of the best epoch back into the model now; True if it did.

        ``fit`` does this when it ends. Keras skips ``on_train_end`` when a fit
        raises (an exception in a step or a callback, or Ctrl-C): call this
        then to get the best weights back. False when there is nothing to
        restore (no epoch had a finite monitored value, or
        ``restore_best_weights=False``).
        """
        snapshot = self._snapshot
        if snapshot is None or not snapshot.captured or not snapshot.variables:
            return False
        with deferred_interrupts():  # never half restored
            snapshot.restore()
        return True

    def on_train_end(self, logs: dict | None = None) -> None:
        restored = self.restore()
        if not self.verbose:
            return
        # Epochs are 0-based here as everywhere in keras_lrkit; the progress bar counts from 1.
        if self.stop_reason is not None:
            best = (
                f"best {self.monitor} = {self.best:.6g} at epoch {self.best_epoch}"
                if self.best_epoch is not None
                else f"no epoch had a finite {self.monitor}"
            )
            say(
                f"Early stopping ({self.stop_reason}) after epoch {self.stopped_epoch} "
                f"(progress bar: Epoch {self.stopped_epoch + 1}); {best}."
            )
        if restored:
            say(
                f"Restored the weights from the end of epoch {self.best_epoch} "
                f"(progress bar: Epoch {self.best_epoch + 1})."
            )
        elif self.restore_best_weights:
            say(
                f"No weights restored: no epoch had a finite {self.monitor}; the model keeps "
                "the weights training ended with."
            )

    def get_config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in constructor_arguments(self)}
