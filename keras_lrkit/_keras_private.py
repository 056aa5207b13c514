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
