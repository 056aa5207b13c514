"""Callbacks for ``model.fit``: early stopping with best-weight restore, the rate in the logs, live plots."""

from .early_stopping import EarlyStoppingWithBestRestore
from .history_plotter import HistoryPlotter
from .lr_logger import LearningRateLogger

__all__ = ["EarlyStoppingWithBestRestore", "HistoryPlotter", "LearningRateLogger"]
