"""Callbacks for ``model.fit``: early stopping with best-weight restore, the rate in the logs, live plots."""

from .early_stopping import EarlyStoppingWithBestRestore
from .history_plotter import HistoryPlotter
from .lr_logger import LearningRateLogger
from .reduce_on_plateau import ReduceOnPlateau

__all__ = [
    "EarlyStoppingWithBestRestore",
    "HistoryPlotter",
    "LearningRateLogger",
    "ReduceOnPlateau",
]
