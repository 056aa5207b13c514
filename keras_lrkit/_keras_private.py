"""Every private Keras API keras_lrkit uses, each in one place, with why it is needed.

``tests/test_keras_private.py`` checks each one against the installed Keras, so
that a Keras release that changes one fails loudly there instead of silently
somewhere else.
"""

from __future__ import annotations

import sys
from typing import Any


def learning_rate_object(optimizer: Any) -> Any:
    """What the optimizer holds as its rate: a schedule, a Variable (a float rate) or a callable.

    Keras exposes only the rate's current value (``optimizer.learning_rate``);
    the logger, the range test and the plateau reducer need the schedule itself.
    """
    return optimizer._learning_rate


def metric_direction(metric: Any) -> str | None:
    """ "up" or "down" where a Keras metric knows which way is better (``Metric._direction``)."""
    return getattr(metric, "_direction", None)


def stored_array(variable: Any) -> Any:
    """The array a Keras variable stores (``Variable._value``), without ``.value``'s scope checks.

    ``Variable.value`` first looks for a stateless scope and an autocast scope
    (about 1 microsecond a variable); outside them the stored array is the value.
    """
    value = getattr(variable, "_value", None)
    return variable.value if value is None else value


def assign_exact(variable: Any, value: Any) -> None:
    """Put an array of the variable's own dtype, shape and sharding into it.

    JAX's ``Variable._direct_assign`` skips ``assign``'s conversions and checks,
    which cost 30x the assignment itself; bit-for-bit copies cannot fail them.
    """
    direct = getattr(variable, "_direct_assign", None)
    (direct or variable.assign)(value)


try:  # Keras routes messages to absl logging when interactive logging is off.
    from keras.src.utils.io_utils import print_msg
except ImportError:  # pragma: no cover - a Keras without it

    def print_msg(message: str) -> None:
        sys.stdout.write(f"{message}\n")
        sys.stdout.flush()


def correct_tensorboard_learning_rate(rate_for: Any) -> bool:
    """Make Keras's TensorBoard log the rate each epoch used where ``rate_for(model)`` says so.

    ``TensorBoard._collect_learning_rate`` writes ``optimizer.learning_rate`` at
    the end of an epoch: with a schedule, that is the rate of the *next* step,
    so at every milestone TensorBoard shows the new rate one epoch early while
    History and CSVLogger show the rate the epoch used. Wrapped once (per
    process): where ``rate_for(model)`` returns a number (a LearningRateLogger
    runs in the model's fit), that number is logged instead; elsewhere
    TensorBoard is unchanged. Returns False (and changes nothing) if this
    Keras has no such method.
    """
    from keras.callbacks import TensorBoard

    original = getattr(TensorBoard, "_collect_learning_rate", None)
    if original is None:
        return False
    if getattr(original, "_lrkit_rate_for", None) is rate_for:
        return True

    def collect_learning_rate(self: Any, logs: dict) -> dict:
        logs = original(self, logs)
        rate = rate_for(self.model)
        if rate is not None and "learning_rate" in logs:
            logs["learning_rate"] = rate
        return logs

    collect_learning_rate._lrkit_rate_for = rate_for  # type: ignore[attr-defined]
    collect_learning_rate.__wrapped__ = original  # type: ignore[attr-defined]
    TensorBoard._collect_learning_rate = collect_learning_rate
    return True


def hook_backup_and_restore(around_save: Any, after_restore: Any) -> bool:
    """Let ``around_save(bar, save)`` decide when a BackupAndRestore writes its backup (``save()``),
    and call ``after_restore(bar)`` after it loads one.

    Keras's ``BackupAndRestore`` saves the weights and the epoch, not the state
    of the other callbacks. Hooked here (once per process), keras_lrkit's
    callbacks save theirs in the same folder before each backup (so a backup
    never exists without their state, holding the same epochs) and take it
    back right after a backup is loaded, whatever the order of the callbacks.
    Returns False (and changes nothing) if this Keras's BackupAndRestore has no
    ``_save_model``.
    """
    from keras.callbacks import BackupAndRestore

    save = getattr(BackupAndRestore, "_save_model", None)
    begin = BackupAndRestore.on_train_begin
    if save is None:
        return False
    if getattr(save, "_lrkit_hooked", False):
        return True

    def _save_model(self: Any) -> None:
        around_save(self, lambda: save(self))

    def on_train_begin(self: Any, logs: dict | None = None) -> Any:
        result = begin(self, logs)
        after_restore(self)
        return result

    _save_model._lrkit_hooked = True  # type: ignore[attr-defined]
    BackupAndRestore._save_model = _save_model
    BackupAndRestore.on_train_begin = on_train_begin
    return True


def backup_position(bar: Any) -> dict[str, int]:
    """What a BackupAndRestore is about to record: {"epoch": epochs done, "batch": batch}."""
    return {"epoch": int(bar._current_epoch), "batch": int(bar._last_batch_seen)}


def backup_metadata_path(bar: Any) -> str:
    """The file in which a BackupAndRestore records the epoch of its backup."""
    return bar._training_metadata_path
