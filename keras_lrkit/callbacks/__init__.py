"""Callbacks for ``model.fit``: early stopping with best-weight restore, plateau reduction, the rate in the
logs, live plots; and Keras's BackupAndRestore and TensorBoard, aware of them."""

from .backup import BackupAndRestore
from .cooldown import CooldownOnPlateau
from .early_stopping import EarlyStoppingWithBestRestore
from .history_plotter import HistoryPlotter
from .lr_logger import LearningRateLogger
from .reduce_on_plateau import ReduceOnPlateau
from .tensorboard import TensorBoard

__all__ = [
    "BackupAndRestore",
    "CooldownOnPlateau",
    "EarlyStoppingWithBestRestore",
    "HistoryPlotter",
    "LearningRateLogger",
    "ReduceOnPlateau",
    "TensorBoard",
]
