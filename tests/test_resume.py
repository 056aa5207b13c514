"""Interrupted = uninterrupted: the callbacks' state saved with Keras's BackupAndRestore backup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest

from keras_lrkit import (
    CosineDecay,
    EarlyStoppingWithBestRestore,
    HistoryPlotter,
    LearningRateLogger,
    LRKitWarning,
    ReduceOnPlateau,
)
from keras_lrkit.callbacks._resume import STATE_FILE

from .helpers import BACKEND

EPOCHS = 10
# Scripted values: the best val_score is epoch 3, and early stopping (patience 3) stops
# after epoch 6; val_plateau gives reductions (patience 1) after epochs 1, 3, 4 and 6.
SCORE = [1.0, 0.8, 0.9, 0.7, 0.75, 0.76, 0.77, 0.6, 0.65, 0.66]
PLATEAU = [1.0, 1.0, 0.5, 0.5, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4]


class Script(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        logs["val_score"], logs["val_plateau"] = SCORE[epoch], PLATEAU[epoch]


class Crash(keras.callbacks.Callback):
    """Raise at a given place: an epoch's end, an epoch's beginning, or inside an epoch."""

    def __init__(self, where, epoch):
        super().__init__()
        self.where, self.epoch = where, epoch

    def _maybe(self, where, epoch):
        if (where, epoch) == (self.where, self.epoch):
            raise RuntimeError(f"interrupted at {where} {epoch}")

    def on_epoch_end(self, epoch, logs=None):
        self._maybe("end", epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self._maybe("begin", epoch)

    def on_train_batch_end(self, batch, logs=None):
        if batch == 2:
            self._maybe("batch", self._epoch)

    def on_epoch_begin_wrapper(self, epoch):  # pragma: no cover - unused
        pass


def epoch_tracker(crash):
    def begin(epoch, logs=None):
        crash._epoch = epoch

    return keras.callbacks.LambdaCallback(on_epoch_begin=begin)


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    return x, (x @ rng.normal(size=(4, 1))).astype("float32")


def build(rate):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(rate, momentum=0.9), "mse")
    return model


def make_rate(kind):
    return 0.05 if kind == "float" else CosineDecay(0.05, 60)


def ours(tmp_path):
    return {
        "logger": LearningRateLogger(per_batch=True),
        "stop": EarlyStoppingWithBestRestore("val_score", mode="min", patience=3),
        "reduce": ReduceOnPlateau("val_plateau", mode="min", factor=0.5, patience=1),
        "plotter": HistoryPlotter(tmp_path / "h.png", csv_path=tmp_path / "h.csv"),
    }


def fit(rate_kind, tmp_path, extra=(), bar_first=False, backup=None):
    model = build(make_rate(rate_kind))
    callbacks = ours(tmp_path)
    listed = [
        callbacks["logger"],
        Script(),
        callbacks["stop"],
        callbacks["reduce"],
        callbacks["plotter"],
    ]
    if backup is not None:
        bar = keras.callbacks.BackupAndRestore(str(backup))
        listed = [bar, *listed] if bar_first else [*listed, bar]
    x, y = data()
    model.fit(x, y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0,
              callbacks=[*listed, *extra])  # fmt: skip
    return model, callbacks


def outcome(model, callbacks, tmp_path):
    stop, reduce = callbacks["stop"], callbacks["reduce"]
    return {
        "stop": (stop.best, stop.best_epoch, stop.stopped_epoch, stop.stop_reason),
        "reductions": list(reduce.reductions),
        "rates": callbacks["logger"].batch_learning_rates,
        "weights": model.get_weights(),
        "csv": (tmp_path / "h.csv").read_text(),
        "plotted": callbacks["plotter"].history["epoch"],
    }


def assert_same(got, want):
    assert got["stop"] == want["stop"]
    assert got["reductions"] == want["reductions"]
    assert got["rates"] == want["rates"]
    assert got["csv"] == want["csv"]  # every epoch of the whole run, once
    assert got["plotted"] == want["plotted"]
    assert len(got["weights"]) == len(want["weights"])
    for a, b in zip(got["weights"], want["weights"]):
        np.testing.assert_array_equal(a, b)  # bit for bit


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted runs, one per kind of rate."""
    runs = {}
    for kind in ("float", "schedule"):
        folder = tmp_path_factory.mktemp(f"straight_{kind}")
        model, callbacks = fit(kind, folder)
        runs[kind] = outcome(model, callbacks, folder)
        assert runs[kind]["stop"] == (0.7, 3, 6, "patience")  # the scripted decision
        assert [e for e, _ in runs[kind]["reductions"]] == [1, 3, 4, 6]
    return runs


@pytest.mark.parametrize("kind", ["float", "schedule"])
@pytest.mark.parametrize(
    "where,epoch,bar_first",
    [
        ("end", 1, False),  # right after a reduction, before the best
        ("end", 3, True),  # at the best epoch, and a reduction
        ("begin", 5, False),  # between epochs, after the best
        ("batch", 4, True),  # inside an epoch
        ("end", 5, True),  # a step before early stopping decides
    ],
)
def test_an_interrupted_and_resumed_fit_ends_as_the_straight_one(
    straight, tmp_path, kind, where, epoch, bar_first
):
    backup = tmp_path / "backup"
    crash = Crash(where, epoch)
    with pytest.raises(RuntimeError, match="interrupted"):
        fit(kind, tmp_path, extra=[epoch_tracker(crash), crash], bar_first=bar_first, backup=backup)
    assert (backup / STATE_FILE).exists()
    model, callbacks = fit(
        kind, tmp_path, bar_first=not bar_first, backup=backup
    )  # a new process would
    assert_same(outcome(model, callbacks, tmp_path), straight[kind])
    assert not backup.exists()  # BackupAndRestore removes its folder at the end, ours with it


def test_a_new_or_emptied_backup_folder_starts_clean(straight, tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    # A state file from another run, without BackupAndRestore's backup beside it: never read.
    (backup / STATE_FILE).write_text(json.dumps({"format": 1, "records": []}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LRKitWarning)
        model, callbacks = fit("schedule", tmp_path, backup=backup)
    assert_same(outcome(model, callbacks, tmp_path), straight["schedule"])


@pytest.mark.parametrize("damage", ["missing", "torn", "other_backup"])
def test_a_missing_or_damaged_state_warns_and_starts_clean(tmp_path, damage):
    backup = tmp_path / "backup"
    crash = Crash("end", 3)
    with pytest.raises(RuntimeError):
        fit("float", tmp_path, extra=[epoch_tracker(crash), crash], backup=backup)
    path = backup / STATE_FILE
    if damage == "missing":
        path.unlink()
    elif damage == "torn":
        path.write_text(path.read_text()[:40])
    else:
        data = json.loads(path.read_text())
        for record in data["records"]:
            record["backup"]["epoch"] += 100
        path.write_text(json.dumps(data))
    with pytest.warns(LRKitWarning, match="cannot resume its callbacks' state"):
        model, callbacks = fit("float", tmp_path, backup=backup)
    # A clean start of the callbacks, from the backup's epoch on (the weights are resumed).
    assert callbacks["plotter"].history["epoch"][0] == 4


RUNNER = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, {root!r})
    import keras
    from tests import test_resume as t
    from pathlib import Path

    folder, kill_at, out = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no on_train_end

    extra = [Kill()] if kill_at >= 0 else []
    model, callbacks = t.fit("schedule", folder, extra=extra, backup=folder / "backup")
    result = t.outcome(model, callbacks, folder)
    result["weights"] = [w.tolist() for w in result["weights"]]
    with open(out, "w") as f:
        json.dump(result, f)
    """
)


def test_a_killed_process_resumed_by_a_new_one_ends_as_the_straight_run(straight, tmp_path):
    script = RUNNER.format(root=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, KERAS_BACKEND=BACKEND, MPLBACKEND="Agg")
    run = [sys.executable, "-c", script, str(tmp_path)]
    killed = subprocess.run([*run, "4", str(tmp_path / "never.json")], env=env, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    subprocess.run([*run, "-1", str(tmp_path / "out.json")], env=env, timeout=300, check=True)
    got = json.loads((tmp_path / "out.json").read_text())
    want = straight["schedule"]
    assert tuple(got["stop"]) == want["stop"] and got["csv"] == want["csv"]
    assert [tuple(r) for r in got["reductions"]] == want["reductions"]
    assert got["rates"] == want["rates"] and got["plotted"] == want["plotted"]
    for a, b in zip(got["weights"], want["weights"]):
        np.testing.assert_array_equal(np.asarray(a, dtype=b.dtype), b)


SLOW_WRITER = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {root!r})
    import keras
    import keras_lrkit.callbacks._resume as resume
    from tests import test_resume as t
    from pathlib import Path

    folder = Path(sys.argv[1])
    real_write = resume._write_json
    calls = []

    def slow_write(path, data):
        calls.append(path)
        if len(calls) == 4:  # the fourth state: half of it, then killed
            with open(path, "w") as f:
                f.write(resume.json.dumps(data)[:50])
                f.flush()
            print("writing", flush=True)
            time.sleep(120)
        real_write(path, data)

    resume._write_json = slow_write
    t.fit("float", folder, backup=folder / "backup")
    """
)


def test_a_kill_during_a_state_write_leaves_the_previous_state(tmp_path):
    script = SLOW_WRITER.format(root=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, KERAS_BACKEND=BACKEND, MPLBACKEND="Agg")
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    data = json.loads((tmp_path / "backup" / STATE_FILE).read_text())  # whole, not torn
    assert [r["backup"]["epoch"] for r in data["records"]] == [2, 3]  # the last two before
