"""Shared fixtures: deterministic seeds, a headless matplotlib, small models."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import matplotlib  # noqa: E402
import pytest  # noqa: E402

matplotlib.use("Agg")

# A script run in subprocesses by test_distribute.py, not a test module (it reads sys.argv).
collect_ignore = ["distributed_worker.py"]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
