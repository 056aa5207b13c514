"""keras_lrkit: which learning rate, when, and when to stop, for Keras 3."""

from ._version import __version__ as __version__
from ._warnings import LRKitWarning
from .callbacks import (
    BackupAndRestore,
    CooldownOnPlateau,
    EarlyStoppingWithBestRestore,
    HistoryPlotter,
    LearningRateLogger,
    ReduceOnPlateau,
    TensorBoard,
)
from .finder import LRFinderResult, find_learning_rate
from .plotting import plot_history, plot_schedule
from .schedules import (
    Chain,
    Constant,
    Cooldown,
    CosineDecay,
    CosineRestarts,
    Cyclic,
    ExponentialDecay,
    InverseSqrtDecay,
    LinearDecay,
    OneCycle,
    PolynomialDecay,
    Reduced,
    StepDecay,
    Warmup,
    WarmupStableDecay,
)

__all__ = [
    "BackupAndRestore",
    "Chain",
    "Constant",
    "Cooldown",
    "CooldownOnPlateau",
    "CosineDecay",
    "CosineRestarts",
    "Cyclic",
    "EarlyStoppingWithBestRestore",
    "ExponentialDecay",
    "HistoryPlotter",
    "InverseSqrtDecay",
    "LRFinderResult",
    "LRKitWarning",
    "LearningRateLogger",
    "LinearDecay",
    "OneCycle",
    "PolynomialDecay",
    "ReduceOnPlateau",
    "Reduced",
    "StepDecay",
    "TensorBoard",
    "Warmup",
    "WarmupStableDecay",
    "find_learning_rate",
    "plot_history",
    "plot_schedule",
]
