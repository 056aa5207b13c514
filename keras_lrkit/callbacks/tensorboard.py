"""TensorBoard: Keras's, logging the learning rate each epoch used."""

from __future__ import annotations

from typing import Any

import keras

from .._values import to_float
from .lr_logger import last_learning_rate


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras's ``TensorBoard`` (a subclass, the same arguments), whose ``epoch_learning_rate`` is the rate the epoch used.

    Keras's TensorBoard reads ``optimizer.learning_rate`` after an epoch: with
    a schedule, that is the rate of the *next* step, so at every milestone it
    shows the new rate one epoch early, while History and CSVLogger show the
    rate the epoch used. This one logs the rate of the epoch's last step: the
    ``learning_rate`` in the epoch's logs where a callback put it there
    (``LearningRateLogger``, ``ReduceOnPlateau``), else the rate the optimizer
    used for the epoch's last step. Everything else is Keras's.

    Examples:
        >>> from keras_lrkit import TensorBoard
        >>> board = TensorBoard("runs/logs")
        >>> board.log_dir
        'runs/logs'
    """

    def _collect_learning_rate(self, logs: dict) -> dict:
        logged: Any = logs.get("learning_rate")  # the epoch's logs, before Keras overwrites them
        logs = super()._collect_learning_rate(logs)
        if "learning_rate" in logs:
            try:
                logs["learning_rate"] = to_float(logged)
            except (TypeError, ValueError):
                logs["learning_rate"] = last_learning_rate(self.model.optimizer)
        return logs
