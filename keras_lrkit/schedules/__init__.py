"""Learning-rate schedules: one Keras ``LearningRateSchedule`` per decay."""

from .combinators import Chain, Reduced, Warmup
from .cycles import CosineRestarts, Cyclic, OneCycle
from .decays import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    InverseSqrtDecay,
    LinearDecay,
    PolynomialDecay,
    StepDecay,
)
from .wsd import Cooldown, WarmupStableDecay

__all__ = [
    "Chain",
    "Constant",
    "Cooldown",
    "CosineDecay",
    "CosineRestarts",
    "Cyclic",
    "ExponentialDecay",
    "InverseSqrtDecay",
    "LinearDecay",
    "OneCycle",
    "PolynomialDecay",
    "Reduced",
    "StepDecay",
    "Warmup",
    "WarmupStableDecay",
]
