"""keras_lrkit: which learning rate, when, and when to stop, for Keras 3."""

from ._version import __version__ as __version__
from ._warnings import LRKitWarning
from .callbacks import (
    EarlyStoppingWithBestRestore,
    HistoryPlotter,
    LearningRateLogger,
    ReduceOnPlateau,
)
from .finder import LRFinderResult, find_learning_rate
from .plotting import plot_history, plot_schedule
from .schedules import (
    Chain,
    Constant,
    CosineDecay,
    InverseSqrtDecay,
    LinearDecay,
    Reduced,
    StepDecay,
    Warmup,
)

__all__ = [
    "Chain",
    "Constant",
    "CosineDecay",
    "EarlyStoppingWithBestRestore",
    "HistoryPlotter",
    "InverseSqrtDecay",
    "LearningRateLogger",
    "LRFinderResult",
    "LRKitWarning",
    "LinearDecay",
    "Reduced",
    "ReduceOnPlateau",
    "StepDecay",
    "Warmup",
    "find_learning_rate",
    "plot_history",
    "plot_schedule",
]
