"""EarlyStoppingWithBestRestore: stop when the monitored value stops improving, keep the best weights."""

from __future__ import annotations

import math
import os
from typing import Any

import keras
import numpy as np

from .._io import atomic_write, is_chief, say
from .._signals import deferred_interrupts
from .._validate import check, constructor_arguments, is_int, is_real
from .._warnings import warn
from ._fit import match_schedules_to_fit
from ._monitor import MonitoringCallback
from ._snapshot import WeightSnapshot
from ._state import Arrays


@keras.saving.register_keras_serializable(package="keras_lrkit")
class EarlyStoppingWithBestRestore(MonitoringCallback):
    """Stop training when the monitored value stops improving, and always restore the best weights.

    The rule, in one sentence: an epoch *improves* when its monitored value is
    finite and better than the best so far by more than ``min_delta`` (lower in
    "min" mode, higher in "max" mode; with ``baseline``, it must also beat the
    baseline to reset the count); training stops at the end of the first epoch
    at which ``max(patience, 1)`` consecutive epochs have not improved. So
    ``patience=0`` and ``patience=1`` both stop at the first epoch without
    improvement, ``patience=2`` at the second in a row, and so on. Epochs
    before ``start_from_epoch`` are ignored, and so are epochs on which Keras
    ran no validation when ``monitor`` is a ``val_`` key (``validation_freq >
    1``). ``ReduceOnPlateau`` judges improvement by the same rule.

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

    The attributes a Keras ``EarlyStopping`` user reads mean the same here and
    start from the same values when ``fit`` begins:

    - ``best``: the best value so far (None before any finite value);
    - ``best_epoch``: its epoch (0 before any);
    - ``wait``: epochs since the last improvement;
    - ``stopped_epoch``: the epoch at which this callback stopped training, 0
      when it did not (as Keras); ``stop_reason`` tells the two apart:
      "patience", "baseline" (stopped before the baseline was ever beaten),
      "non_finite", or None when this callback did not stop training;
    - ``best_weights``: the best weights as NumPy arrays in ``model.weights``
      order (what ``model.get_weights()`` gives), or None before any.

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
            stops), except on epochs where Keras ran no validation (those are
            skipped; a fit that never validates gets a warning at its first
            epoch). With ``strict=False`` it warns once and the epoch is skipped.
        checkpoint_path: also write the best weights to this ``.weights.h5``
            file at each improvement, atomically, so a crash loses nothing.
            Under distributed training only the chief writes it.
        verbose: 1 prints why training stopped and which epoch was restored.
        name: what ``keras_lrkit.BackupAndRestore`` knows this callback by
            (default: its class, ``monitor`` and ``mode``); give one to tell
            apart two that watch the same thing.

    Examples:
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
        name: str | None = None,
    ) -> None:
        super().__init__()
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
        self.baseline = None if baseline is None else float(baseline)
        self.start_from_epoch = int(start_from_epoch)
        self.restore_best_weights = restore_best_weights
        self.check_finite = check_finite
        self.checkpoint_path = None if checkpoint_path is None else os.fspath(checkpoint_path)
        self._init_monitor(monitor, mode, min_delta, patience, strict, verbose, name)

    def _reset_monitor(self) -> None:
        super()._reset_monitor()
        self.stopped_epoch = 0
        self.stop_reason: str | None = None
        self._baseline_beaten = False
        self._snapshot: WeightSnapshot | None = None
        self._writes = False

    # --- the decision ---------------------------------------------------------

    def _stop(self, epoch: int, reason: str) -> None:
        self.stopped_epoch = epoch
        self.stop_reason = reason
        self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._decide(epoch, logs)

    def _decide(self, epoch: int, logs: dict | None) -> None:
        if epoch < self.start_from_epoch:
            return
        value = self._value(logs)
        if value is None:
            return
        self._resolve_direction()
        finite = math.isfinite(value)
        improved = self._improves(value)
        if improved:
            self._record(value, epoch)
            self._record_best()
        if improved and (self.baseline is None or self._better(value, self.baseline)):
            self._baseline_beaten = True
            self.wait = 0
        else:
            self.wait += 1
        if not finite and self.check_finite:
            self._stop(epoch, "non_finite")
        elif self._plateau():
            beaten = self.baseline is None or self._baseline_beaten
            self._stop(epoch, "patience" if beaten else "baseline")

    # --- the weights ----------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset_monitor()
        self._writes = self.checkpoint_path is not None and is_chief()
        match_schedules_to_fit(self)
        self._join()

    def _record_best(self) -> None:
        if self.restore_best_weights:
            self._snapshot = self._current_snapshot()
            self._snapshot.capture()
        if self._writes:
            try:
                atomic_write(self.checkpoint_path, self.model.save_weights)
            except Exception as error:  # a failed write never stops training
                warn(f"Could not write the best weights to {self.checkpoint_path!r}: {error}")

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
                if self.best is not None
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

    @property
    def best_weights(self) -> list[np.ndarray] | None:
        """The best epoch's weights as NumPy arrays (``model.get_weights()`` order), or None.

        Assignable, as in Keras's EarlyStopping: None forgets them; a list of
        arrays (the shapes of ``model.weights``) becomes what ``restore()``
        and the end of ``fit`` put back.
        """
        snapshot = self._snapshot
        if snapshot is None or not snapshot.captured:
            return None
        return snapshot.values()

    @best_weights.setter
    def best_weights(self, values: list[np.ndarray] | None) -> None:
        if values is None:
            self._snapshot = None
            return
        weights = self.model.weights if self.model is not None else None
        if weights is None:
            raise ValueError(
                "best_weights can be set once the callback has a model (in or after fit)."
            )
        arrays = [np.asarray(v) for v in values]
        ok = len(arrays) == len(weights) and all(
            a.shape == tuple(w.shape) for a, w in zip(arrays, weights)
        )
        check("best_weights", f"{len(arrays)} arrays", ok,
              f"None or {len(weights)} arrays of the shapes of model.weights")  # fmt: skip
        snapshot = self._current_snapshot()
        snapshot.set_values([a.astype(w.dtype) for a, w in zip(arrays, weights)])
        self._snapshot = snapshot

    # --- across an interruption (keras_lrkit.BackupAndRestore) --------------------------

    def state_dict(self) -> dict[str, Any]:
        """The decision so far and the best weights (as ``Arrays``), as plain data."""
        snapshot = self._snapshot
        captured = snapshot is not None and snapshot.captured
        return {
            **self._monitor_state(),
            "stopped_epoch": self.stopped_epoch,
            "stop_reason": self.stop_reason,
            "baseline_beaten": self._baseline_beaten,
            "best_weights": Arrays(self.best_epoch, snapshot.values) if captured else None,
        }

    def load_state_dict(self, state: Any) -> None:
        """Check ``state`` in full (ValueError naming the field), then take it; the model is untouched."""
        read = self._reader(state)
        fields = {
            **self._read_monitor_state(read),
            "stopped_epoch": read.integer("stopped_epoch"),
            "stop_reason": read.choice("stop_reason", [None, "patience", "baseline", "non_finite"]),
            "_baseline_beaten": read.flag("baseline_beaten"),
        }
        arrays = read.arrays("best_weights", self.model.weights)
        if (arrays is None) != (fields["best"] is None) and self.restore_best_weights:
            raise ValueError(f"{self.state_key()}'s state has a best value without best weights, "
                             "or weights without a best value")  # fmt: skip
        snapshot = None
        if arrays is not None and self.restore_best_weights:
            snapshot = self._current_snapshot()
            snapshot.set_values(arrays)
        self._apply(fields)
        self._snapshot = snapshot

    def marks(self) -> tuple[int | None, int | None]:
        """(best epoch, stopped epoch) for a plot: None where there is none."""
        return (
            self.best_epoch if self.best is not None else None,
            self.stopped_epoch if self.stop_reason is not None else None,
        )

    def get_config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in constructor_arguments(self)}
