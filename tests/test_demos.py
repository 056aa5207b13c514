"""Every demo runs in a smoke mode and writes its files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import matplotlib.image
import numpy as np
import pytest

import keras_lrkit  # noqa: F401  (registers the schedules for load_model)

from .helpers import BACKEND

DEMOS = Path(__file__).resolve().parent.parent / "demos"


def run_demo(name, *args, timeout=600):
    env = dict(os.environ, KERAS_BACKEND=BACKEND, MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, str(DEMOS / name), *map(str, args)],
        capture_output=True, text=True, env=env, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_resnet_step_decay_smoke_milestones_in_history_csv(tmp_path):
    out = run_demo(
        "resnet_step_decay.py", "--epochs", 6, "--milestones", 2, 4, 5, "--depth", 8,
        "--max-samples", 320, "--batch-size", 64, "--output", tmp_path, "--verbose", 0,
    )  # fmt: skip
    assert {"history.csv", "history.png", "summary.json", "model.keras"} <= set(
        os.listdir(tmp_path)
    )
    with open(tmp_path / "history.csv") as f:
        rows = list(csv.DictReader(f))
    rates = [float(r["learning_rate"]) for r in rows]
    # 0.1 until just before each milestone, divided by 10 at it (epochs 1|2, 3|4, 4|5).
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.01, 0.01, 0.001, 0.0001], rtol=1e-6)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["epochs_run"] == 6 and summary["milestones"] == [2, 4, 5]
    assert [p["epochs"] for p in summary["phases"]] == ["0-1", "2-3", "4-4", "5-5"]
    assert "learning rate" in out and "val accuracy at end" in out
    model = keras.models.load_model(tmp_path / "model.keras")
    assert type(model.optimizer._learning_rate).__name__ == "StepDecay"
    height, width = matplotlib.image.imread(tmp_path / "history.png").shape[:2]
    assert height >= 300 and width > 2 * height


def test_resnet_flags_are_explained():
    out = run_demo("resnet_step_decay.py", "--help")
    for flag in [
        "--epochs",
        "--milestones",
        "--batch-size",
        "--depth",
        "--seed",
        "--output",
        "--dataset",
    ]:
        assert flag in out


def test_schedule_gallery(tmp_path):
    out = run_demo("schedule_gallery.py", "-o", tmp_path / "gallery.png", "--epochs", 20)
    assert (tmp_path / "gallery.png").stat().st_size > 10_000
    for name in ["step", "cosine", "linear", "inverse sqrt", "constant", "warmup"]:
        assert name in out


def test_early_stopping_demo(tmp_path):
    out = run_demo(
        "early_stopping.py", "--train-samples", 120, "--epochs", 30, "--patience", 5, "--width", 256,
        "--output", tmp_path,
    )  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["restored_equals_best"] is True
    assert summary["best_epoch"] is not None
    with open(tmp_path / "history.csv") as f:
        val_acc = [float(r["val_accuracy"]) for r in csv.DictReader(f)]
    assert summary["best_val_accuracy"] == pytest.approx(max(val_acc))
    assert (tmp_path / "early_stopping.png").exists() and "peaked at" in out


def test_compare_schedules(tmp_path):
    out = run_demo(
        "compare_schedules.py", "--epochs", 3, "--train-samples", 300, "--output", tmp_path
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results) == 10  # five schedules x two optimizers
    assert {r["optimizer"] for r in results} == {"SGD+momentum", "Adam"}
    assert (tmp_path / "compare_schedules.png").exists() and "best val acc" in out


def test_find_lr_demo(tmp_path):
    out = run_demo(
        "find_lr.py", "--epochs", 1, "--num-steps", 30, "--max-samples", 300, "--output", tmp_path
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert 1e-5 <= summary["suggestion"] <= 10
    assert set(summary["runs"]) == {"suggestion / 100", "suggestion", "suggestion x 100"}
    assert (tmp_path / "lr_range_test.png").exists() and "suggested learning rate" in out
