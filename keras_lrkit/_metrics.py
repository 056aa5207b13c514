"""Which way a metric should go, judged by its name."""

from __future__ import annotations

from typing import Any

from ._validate import check, is_choice

_MAXIMIZED = (
    "acc",
    "auc",
    "precision",
    "recall",
    "f1",
    "fbeta",
    "iou",
    "r2",
    "score",
    "psnr",
    "ssim",
)
_MINIMIZED = (
    "loss", "error", "mse", "mae", "mape", "msle", "rmse", "hinge", "crossentropy", "divergence", "perplexity",
)  # fmt: skip


def check_mode(mode: Any) -> None:
    """``mode``: "auto" (the direction the name says), "min" or "max"."""
    check("mode", mode, is_choice(mode, ("auto", "min", "max")), 'one of "auto", "min", "max"')


def direction_from_name(monitor: str) -> str | None:
    """ "min", "max", or None when the name says nothing."""
    name = monitor.lower()
    name = name[4:] if name.startswith("val_") else name
    if any(word in name for word in _MINIMIZED):
        return "min"
    if any(word in name for word in _MAXIMIZED):
        return "max"
    return None
