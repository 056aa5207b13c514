"""Every demo runs on MNIST-1D in a smoke mode and writes what it promises."""

from __future__ import annotations

import csv
import json
import os
import pickle
import re
import subprocess
import sys
import tarfile
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


@pytest.fixture(scope="module")
def common():
    sys.path.insert(0, str(DEMOS))
    try:
        import _common

        yield _common
    finally:
        sys.path.remove(str(DEMOS))


def test_mnist1d_is_generated_offline_and_the_same_seed_gives_the_same_bytes(common, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("MNIST-1D must be generated, never downloaded")

    monkeypatch.setattr(socket, "create_connection", no_network)
    (x, y), (x_test, y_test) = common.load_mnist1d()
    assert x.shape == (4000, 40, 1) and x_test.shape == (1000, 40, 1)
    assert sorted(np.unique(y)) == list(range(10))
    (x2, y2), (x_test2, y_test2) = common.load_mnist1d()
    for a, b in [(x, x2), (y, y2), (x_test, x_test2), (y_test, y_test2)]:
        assert a.tobytes() == b.tobytes()
    (x3, _), _ = common.load_mnist1d(seed=7)
    assert x3.tobytes() != x.tobytes()
    splits = common.load_data("mnist1d")
    assert [len(splits[k][0]) for k in ("train", "val", "test")] == [3600, 400, 1000]


def test_cifar10_reads_the_python_archive(common, tmp_path):
    # A tiny file in CIFAR-10's python format: pickled dicts of uint8 rows and labels.
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    expected = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=4).tolist()
        expected[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    for source in (tmp_path, tmp_path / "archive_only"):
        if source.name == "archive_only":  # the archive alone, not unpacked
            source.mkdir()
            (tmp_path / "cifar-10-python.tar.gz").rename(source / "cifar-10-python.tar.gz")
        (x, y), (x_test, y_test) = common.load_cifar10(str(source))
        assert x.shape == (20, 32, 32, 3) and x_test.shape == (4, 32, 32, 3)
        first = expected["data_batch_1"][0][0].reshape(3, 32, 32).transpose(1, 2, 0) / 255.0
        np.testing.assert_allclose(x[0], first, rtol=1e-6)
        assert y_test.tolist() == expected["test_batch"][1]
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        common.load_cifar10(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("shape", [(40, 1), (8, 8, 1)])
def test_the_resnet_s_augmentation_moves_samples_in_training_only(common, shape):
    keras.utils.set_random_seed(0)
    model = common.build_resnet(shape, depth=8, width=4, shift=3)
    first = next(layer for layer in model.layers if "translation" in layer.name)
    # The augmentation alone: from the input to the layer after the translation.
    stop = model.layers[model.layers.index(first) + (1 if len(shape) == 2 else 0)]
    augment = keras.Model(model.input, stop.output)
    x = np.arange(np.prod((64, *shape)), dtype="float32").reshape(64, *shape) + 1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augment(x, training=False)), x)
    moved = keras.ops.convert_to_numpy(augment(x, training=True))
    seen = set()
    for sample, out in zip(x, moved):
        if len(shape) == 2:  # a sequence: moved by k in [-3, 3], its edge value repeated
            index = np.arange(shape[0])
            shifts = [k for k in range(-3, 4)
                      if np.array_equal(out, sample[np.clip(index - k, 0, shape[0] - 1)])]  # fmt: skip
        else:  # an image: moved by (dy, dx) in [-3, 3]^2, zeros where it came from outside
            shifts = []
            for dy in range(-3, 4):
                for dx in range(-3, 4):
                    expected = np.zeros_like(sample)
                    h, w = shape[:2]
                    expected[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = sample[
                        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
                    ]
                    if np.array_equal(out, expected):
                        shifts.append((dy, dx))
        assert shifts, f"not a whole shift of at most 3: {out.ravel()[:12]}"
        seen.update(shifts)
    assert len(seen) > 3  # the shifts vary from sample to sample


def test_resnet_step_decay_smoke(tmp_path):
    out = run_demo(
        "resnet_step_decay.py", "--epochs", 6, "--milestones", 2, 4, 5, "--depth", 8, "--width", 8,
        "--seeds", 2, "--max-samples", 600, "--output", tmp_path,
    )  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and len(summary["test_accuracies"]) == 2
    assert summary["test_accuracy"] == pytest.approx(np.mean(summary["test_accuracies"]))
    assert [p["milestone"] for p in summary["phases"]] == [2, 4, 5]
    for phase in summary["phases"]:  # the rate before and at each milestone
        assert phase["rate_after"] == pytest.approx(phase["rate_before"] / 10, rel=1e-5)
    for seed in (0, 1):
        with open(tmp_path / f"seed{seed}" / "history.csv") as f:
            rates = [float(r["learning_rate"]) for r in csv.DictReader(f)]
        # 0.1 until just before each milestone, divided by 10 at it (epochs 1|2, 3|4, 4|5).
        np.testing.assert_allclose(rates, [0.1, 0.1, 0.01, 0.01, 0.001, 0.0001], rtol=1e-6)
    assert summary["marked_best_epoch"] == summary["best_epoch"]  # printed = marked
    assert f"peaks at epoch {summary['best_epoch']}" in out
    assert "human expert" in out and "At each milestone" in out
    model = keras.models.load_model(tmp_path / "seed0" / "model.keras")
    assert type(model.optimizer._learning_rate).__name__ == "StepDecay"
    height, width = matplotlib.image.imread(tmp_path / "step_decay.png").shape[:2]
    assert height >= 300 and width > 2 * height


def test_each_seed_s_figure_shows_the_staircase_as_the_summary_does(common, tmp_path):
    import resnet_step_decay as demo

    # A loss of 12 in the first epoch, then errors of 3% and 1%: a linear axis hides the drop.
    history = {"loss": [12.0, 0.5, 0.3, 0.1, 0.09, 0.08], "val_loss": [9.0, 0.4, 0.3, 0.1, 0.1, 0.1],
               "accuracy": [0.2, 0.9, 0.96, 0.99, 0.99, 0.99],
               "val_accuracy": [0.3, 0.9, 0.967, 0.987, 0.988, 0.987],
               "learning_rate": [0.1, 0.1, 0.1, 0.01, 0.01, 0.001]}  # fmt: skip
    figure = demo.figure([history], [3, 5], 4, str(tmp_path / "h.png"), "ResNet-8, seed 7")
    assert (tmp_path / "h.png").stat().st_size > 10_000
    assert figure._suptitle.get_text() == "ResNet-8, seed 7"
    panels = {ax.get_title(): ax for ax in figure.axes}
    assert panels["loss"].get_yscale() == panels["error"].get_yscale() == "log"
    for ax in figure.axes:  # the milestones, on every panel
        assert {3, 5} <= {
            line.get_xdata()[0] for line in ax.get_lines() if line.get_color() == "gray"
        }
    labels = {line.get_label() for line in figure.axes[0].get_lines() if line.get_visible()}
    assert "best epoch 4 (lowest val_error)" in labels
    assert demo.seeds_text(1) == "1 seed" and demo.seeds_text(3) == "3 seeds"


def test_the_gallery_draws_a_staircase_on_a_log_axis(common, tmp_path):
    import argparse

    import schedule_gallery as demo

    args = argparse.Namespace(epochs=100, steps_per_epoch=5, initial=0.1)
    figure = demo.draw(demo.gallery(0.1, 100, 5), "t", args, str(tmp_path / "g.png"))
    scales = {
        ax.get_title().split(":")[0]: ax.get_yscale() for ax in figure.axes if ax.get_visible()
    }
    # The step decay spends 40 of its 100 epochs at 0.001 and below: each drop shows on a log axis.
    assert scales["step"] == "log" and scales["cosine"] == scales["linear"] == "linear"


@pytest.mark.skipif(
    BACKEND == "jax",
    reason="the README's numbers are TensorFlow's, and Keras's JAX backend trains this ResNet "
    "about 10x slower on CPU (170 s); the demo's code is the same on every backend, and its "
    "smoke test runs on all",
)
def test_the_readme_s_short_resnet_run_does_not_look_broken(tmp_path):
    # `lrkit demo resnet --epochs 10 --milestones 3 6 9` ended at 0.71 (TF) and 0.35 (JAX)
    # validation accuracy before BatchNorm's moving statistics kept up with training.
    run_demo("resnet_step_decay.py", "--epochs", 10, "--milestones", 3, 6, 9, "--seeds", 1,
             "--output", tmp_path)  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.9  # the paper's CNN: 0.94; chance: 0.1


def test_resnet_flags_are_explained():
    out = run_demo("resnet_step_decay.py", "--help")
    for flag in ["--epochs", "--milestones", "--seeds", "--depth", "--dataset", "--data-dir"]:
        assert flag in out


def test_schedule_gallery(tmp_path):
    out = run_demo("schedule_gallery.py", "-o", tmp_path / "gallery.png", "--epochs", 20)
    assert (tmp_path / "gallery.png").stat().st_size > 10_000
    assert (tmp_path / "gallery_more.png").stat().st_size > 10_000
    for name in ["step", "cosine", "linear", "inverse sqrt", "constant", "warmup",
                 "exponential", "polynomial", "warm restarts", "one-cycle", "cyclic"]:  # fmt: skip
        assert name in out


def test_early_stopping_demo(tmp_path):
    out = run_demo("early_stopping.py", "--max-samples", 800, "--epochs", 20, "--patience", 4,
                   "--output", tmp_path)  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["restored_equals_best"] is True
    with open(tmp_path / "history.csv") as f:
        val_accuracy = [float(r["val_accuracy"]) for r in csv.DictReader(f)]
    assert summary["best_val_accuracy"] == max(val_accuracy)
    assert summary["best_epoch"] == int(np.argmax(val_accuracy)) == summary["marked_best_epoch"]
    assert (tmp_path / "early_stopping.png").exists() and "peaked at" in out


def test_compare_schedules(tmp_path):
    out = run_demo("compare_schedules.py", "--epochs", 3, "--seeds", 2, "--max-samples", 400,
                   "--output", tmp_path)  # fmt: skip
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["cells"]) == 10  # five schedules x two optimizers
    assert len(results["runs"]) == 20 and results["seeds"] == [0, 1]
    for cell in results["cells"]:
        mean, low, high = cell["final_test_accuracy"]
        runs = [r["final_test_accuracy"] for r in results["runs"]
                if (r["optimizer"], r["schedule"]) == (cell["optimizer"], cell["schedule"])]  # fmt: skip
        assert mean == pytest.approx(np.mean(runs)) and low <= mean <= high
    inverse_sqrt = next(r for r in results["runs"] if r["schedule"] == "inverse sqrt")
    assert inverse_sqrt["rates"][0] == pytest.approx(0.1)  # the rate at the first step: 0.1
    assert len(results["verdict"]) == 10 and "Verdict" in out
    assert (tmp_path / "compare_schedules.png").exists()
    assert (results["shift"], results["weight_decay"]) == (3, 5e-4)  # the noise the advice needs
    for cell in results["cells"]:  # the table's training loss is the mean of its runs'
        losses = [r["final_train_loss"] for r in results["runs"]
                  if (r["optimizer"], r["schedule"]) == (cell["optimizer"], cell["schedule"])]  # fmt: skip
        assert cell["mean_final_train_loss"] == pytest.approx(np.mean(losses))


def test_find_lr_demo(tmp_path):
    out = run_demo("find_lr.py", "--epochs", 1, "--num-steps", 30, "--max-samples", 400,
                   "--output", tmp_path)  # fmt: skip

    def not_json(constant):  # NaN, Infinity: Python's json writes them, JSON has no such thing
        raise AssertionError(f"summary.json holds {constant}")

    summary = json.loads((tmp_path / "summary.json").read_text(), parse_constant=not_json)
    assert list(summary["rules"]) == ["minimum/3", "valley", "steepest", "minimum"]
    assert 1e-5 <= summary["suggestion"] <= 10
    assert summary["suggestion"] == summary["rules"]["minimum/3"] == summary["min_loss_lr"] / 3
    assert set(summary["runs"]) == {"suggestion / 100", "suggestion", "suggestion x 100"}
    assert summary["runs"]["suggestion"]["learning_rate"] == summary["suggestion"]
    assert f"the suggestion (minimum/3): {summary['suggestion']:.3g}" in out and "None" not in out
    assert (tmp_path / "lr_range_test.png").exists()


def test_anytime_demo_in_smoke_mode(tmp_path):
    out = run_demo("anytime.py", "--budgets", 2, 3, "--seeds", 2, "--max-samples", 200,
                   "--depth", 8, "--max-epochs", 4, "--output", tmp_path)  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    # Cooldowns of round(0.2 x budget), at least one epoch: branched at epochs 1 and 2.
    assert summary["branch_epochs"] == [1, 2]
    assert summary["compute_epochs"] == {"branched": 2 + 1 + 1, "separate": 2 + 3}
    from scipy import stats

    for row in summary["table"]:
        wsd, cosine = row["wsd"]["values"], row["cosine"]["values"]
        assert len(wsd) == len(cosine) == 2
        assert row["wsd"]["mean"] == pytest.approx(np.mean(wsd))
        # The paired interval is scipy's paired t-test's.
        expected = stats.ttest_rel(wsd, cosine).confidence_interval(0.95)
        difference = row["wsd_minus_cosine"]
        assert difference["mean"] == pytest.approx(np.mean(wsd) - np.mean(cosine))
        if np.ptp(np.subtract(wsd, cosine)) > 0:
            assert (difference["low"], difference["high"]) == pytest.approx(
                (expected.low, expected.high)
            )
        verdict = ("better" if difference["low"] > 0 else "worse" if difference["high"] < 0
                   else "no difference shown")  # fmt: skip
        assert difference["verdict"] == verdict and verdict in out
    plateau = summary["plateau"]
    for epochs, start in zip(plateau["epochs"], plateau["cooldown_epoch"]):
        # Stopped at the end of its cooldown, or at --max-epochs.
        assert epochs == 4 or (start is not None and epochs == start + plateau["cooldown_epochs"])
    # The checkpoints the cooldowns branched from: at epochs 1 and 2 of the constant-rate run.
    steps = summary["steps_per_epoch"]
    for epoch in (1, 2):
        model = keras.models.load_model(tmp_path / "seed0" / f"constant-{epoch}.keras")
        assert int(model.optimizer.iterations) == epoch * steps
        assert type(model.optimizer._learning_rate).__name__ == "WarmupStableDecay"
    height, width = matplotlib.image.imread(tmp_path / "anytime.png").shape[:2]
    assert width > 2 * height >= 600


BAD_ARGUMENTS = [
    ("anytime.py", ["--budgets", "5", "3"], "--budgets"),
    ("anytime.py", ["--cooldown", "1.5"], "--cooldown"),
    ("anytime.py", ["--seeds", "0"], "--seeds"),
    ("resnet_step_decay.py", ["--depth", "7"], "--depth"),
    ("resnet_step_decay.py", ["--learning-rate", "-1"], "--learning-rate"),
    ("resnet_step_decay.py", ["--max-samples", "-5"], "--max-samples"),
    ("resnet_step_decay.py", ["--epochs", "0"], "--epochs"),
    ("resnet_step_decay.py", ["--weight-decay", "nan"], "--weight-decay"),
    ("resnet_step_decay.py", ["--output", "/dev/null/runs"], "--output"),
    ("compare_schedules.py", ["--batch-size", "0"], "--batch-size"),
    ("compare_schedules.py", ["--shift", "-1"], "--shift"),
    ("early_stopping.py", ["--epochs", "0"], "--epochs"),
    ("early_stopping.py", ["--label-noise", "1"], "--label-noise"),
    ("find_lr.py", ["--num-steps", "1"], "--num-steps"),
    ("find_lr.py", ["--depth", "9"], "--depth"),
    ("schedule_gallery.py", ["--epochs", "0"], "--epochs"),
    ("schedule_gallery.py", ["-o", "/dev/null/x.png"], "--output"),
]


@pytest.mark.parametrize("demo, args, option", BAD_ARGUMENTS)
def test_a_bad_demo_argument_is_one_line_before_keras_loads(demo, args, option):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(DEMOS / demo), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    imports = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    messages = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert result.returncode == 2 and len(messages) == 1, result.stderr[-2000:]
    assert option in messages[0] and args[-1] in messages[0]
    # Refused before Keras (or TensorFlow, or keras_lrkit) was imported.
    assert not [line for line in imports if re.search(r"\|\s+(keras|tensorflow)\b", line)]
