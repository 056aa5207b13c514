"""Learning-rate schedules: one Keras ``LearningRateSchedule`` per decay."""

from .combinators import Chain, Reduced, Warmup
from .decays import Constant, CosineDecay, InverseSqrtDecay, LinearDecay, StepDecay

__all__ = [
    "Chain",
    "Constant",
    "CosineDecay",
    "InverseSqrtDecay",
    "LinearDecay",
    "Reduced",
    "StepDecay",
    "Warmup",
]
