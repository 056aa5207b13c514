"""keras_lrkit: which learning rate, when, and when to stop, for Keras 3."""

from .schedules import (
    Chain,
    Constant,
    CosineDecay,
    InverseSqrtDecay,
    LinearDecay,
    StepDecay,
    Warmup,
)

__version__ = "0.1.0"

__all__ = [
    "Chain",
    "Constant",
    "CosineDecay",
    "InverseSqrtDecay",
    "LinearDecay",
    "StepDecay",
    "Warmup",
]
