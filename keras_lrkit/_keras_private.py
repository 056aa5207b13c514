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


def all_layers(model: Any) -> list[Any]:
    """The model and every layer inside it, nested ones and an RNN's cell included
    (``Layer._flatten_layers``): Keras lists only the top level (``model.layers``)."""
    return list(model._flatten_layers(include_self=True, recursive=True))


def step_counter(optimizer: Any) -> Any:
    """The counter the optimizer evaluates its schedule at (``Optimizer._iterations``).

    ``optimizer.iterations`` counts updates: with ``gradient_accumulation_steps=n``
    it is the batch counter divided by ``n``. Keras evaluates a schedule at the
    batch counter itself (``_get_current_learning_rate``), so the rate of a batch
    is the schedule at that counter.
    """
    return optimizer._iterations


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


# Two subclasses override a private method of the Keras class they extend:
# keras_lrkit.TensorBoard's ``_collect_learning_rate`` (what Keras logs as the
# epoch's rate) and keras_lrkit.BackupAndRestore's ``_save_model`` (where Keras
# writes a backup). tests/test_keras_private.py checks that Keras still calls them.


def backup_position(bar: Any) -> dict[str, int]:
    """What a BackupAndRestore is about to record: {"epoch": epochs done, "batch": batch}."""
    return {"epoch": int(bar._current_epoch), "batch": int(bar._last_batch_seen)}


def backup_metadata_path(bar: Any) -> str:
    """The file in which a BackupAndRestore records the epoch of its backup."""
    return bar._training_metadata_path


def resumed_epoch(model: Any) -> int | None:
    """The epoch Keras's BackupAndRestore resumed ``model``'s fit at (``Model._initial_epoch``)."""
    return getattr(model, "_initial_epoch", None)
