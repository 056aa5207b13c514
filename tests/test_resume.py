"""Interrupted = uninterrupted: keras_lrkit.BackupAndRestore saves the callbacks' state with its backup."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_lrkit import (
    BackupAndRestore,
    CosineDecay,
    EarlyStoppingWithBestRestore,
    HistoryPlotter,
    LearningRateLogger,
    LRKitWarning,
    ReduceOnPlateau,
)
from keras_lrkit.callbacks._state import STATE_FILE

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
        # Named: its key would hold its paths, and some tests resume a copied folder elsewhere.
        "plotter": HistoryPlotter(tmp_path / "h.png", csv_path=tmp_path / "h.csv", name="plotter"),
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
        bar = BackupAndRestore(backup)
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
    (backup / STATE_FILE).write_text(json.dumps({"format": 2, "records": []}))
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
    # The crash at the end of epoch 3 came before epoch 3's backup: it resumes at epoch 3.
    assert callbacks["plotter"].history["epoch"][0] == 3


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
    import keras_lrkit.callbacks._state as state
    from tests import test_resume as t
    from pathlib import Path

    folder = Path(sys.argv[1])
    real_write = state._write_text
    calls = []

    def slow_write(path, text):
        calls.append(path)
        if len(calls) == 4:  # the fourth state: half of it, then killed
            with open(path, "w") as f:
                f.write(text[:50])
                f.flush()
            print("writing", flush=True)
            time.sleep(120)
        real_write(path, text)

    state._write_text = slow_write
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


# --- issue 21: inside keras_lrkit's own boundaries ------------------------------------------


def crash_at_end_of(epoch):
    crash = Crash("end", epoch)
    return [epoch_tracker(crash), crash]


def backup_epoch(folder):
    """The epoch recorded by the backup in ``folder`` (Keras's own metadata file)."""
    return json.loads((folder / "training_metadata.json").read_text())["epoch"]


def _no_super(cls, hook):
    """A user's subclass of ``cls`` that overrides ``hook`` and never calls super()."""
    return type(f"My{cls.__name__}", (cls,), {hook: lambda self, *args, **kwargs: None})


SUBCLASSED = {
    "logger": lambda cls: cls(per_batch=True),
    "stop": lambda cls: cls("val_score", mode="min", patience=30),
    "reduce": lambda cls: cls("val_plateau", mode="min", patience=1),
    "plotter": lambda cls: cls(None),
}
CLASSES = {"logger": LearningRateLogger, "stop": EarlyStoppingWithBestRestore,
           "reduce": ReduceOnPlateau, "plotter": HistoryPlotter}  # fmt: skip


@pytest.mark.parametrize("hook", ["on_epoch_end", "on_train_begin"])
@pytest.mark.parametrize("which", sorted(SUBCLASSED))
def test_a_subclass_that_skips_super_loses_nothing_of_the_backup(tmp_path, which, hook):
    mine = SUBCLASSED[which](_no_super(CLASSES[which], hook))
    backup = tmp_path / "backup"
    bar = BackupAndRestore(backup)
    stop = EarlyStoppingWithBestRestore("val_score", mode="min", patience=30)
    model = build(0.05)
    x, y = data()
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0,
                  callbacks=[Script(), mine, bar, stop, *crash_at_end_of(4)])  # fmt: skip
    assert backup_epoch(backup) == 4  # the backups of epochs 0-3, written as every epoch ended
    saved = json.loads((backup / STATE_FILE).read_text())["records"][-1]["callbacks"]
    assert stop.state_key() in saved  # the other callback's state is there


@pytest.mark.parametrize("keras_first", [True, False])
def test_every_backup_callback_writes_its_backup(tmp_path, keras_first):
    first, second = tmp_path / "local", tmp_path / "remote"
    bars = [keras.callbacks.BackupAndRestore(str(first)), BackupAndRestore(second)]
    if not keras_first:
        bars = [BackupAndRestore(first), BackupAndRestore(second)]
    model = build(CosineDecay(0.05, 60))
    x, y = data()
    with pytest.raises(RuntimeError):
        model.fit(x, y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0,
                  callbacks=[Script(), *ours(tmp_path).values(), *bars, *crash_at_end_of(4)])  # fmt: skip
    assert backup_epoch(first) >= 4 and backup_epoch(second) == 4


def stoppers():
    return (EarlyStoppingWithBestRestore("val_score", mode="min", patience=5),
            EarlyStoppingWithBestRestore("val_acc", mode="max", patience=5))  # fmt: skip


class Accuracy(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        logs["val_acc"] = [0.5, 0.6, 0.7, 0.65, 0.66, 0.67, 0.68, 0.69, 0.7, 0.71][epoch]


def test_a_state_goes_back_to_the_callback_it_came_from_never_by_position(tmp_path):
    backup = tmp_path / "backup"
    model = build(0.05)
    x, y = data()
    with pytest.raises(RuntimeError):
        model.fit(x, y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0,
                  callbacks=[Script(), Accuracy(), *stoppers(), BackupAndRestore(backup),
                             *crash_at_end_of(4)])  # fmt: skip
    # Resumed with the accuracy stopper alone: it takes its own state, not the first one's.
    _, by_acc = stoppers()
    model = build(0.05)
    model.fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0,
              callbacks=[Script(), Accuracy(), by_acc, BackupAndRestore(backup)])  # fmt: skip
    assert by_acc.direction == "max" and by_acc.best == 0.7 and by_acc.best_epoch == 2


def test_a_stopper_whose_mode_changed_starts_afresh_with_one_warning(tmp_path):
    backup = tmp_path / "backup"
    model = build(0.05)
    x, y = data()
    with pytest.raises(RuntimeError):
        model.fit(x, y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0,
                  callbacks=[Script(), stoppers()[0], BackupAndRestore(backup),
                             *crash_at_end_of(4)])  # fmt: skip
    changed = EarlyStoppingWithBestRestore("val_score", mode="max", patience=5)
    with pytest.warns(LRKitWarning, match=r"no state for EarlyStoppingWithBestRestore\(monitor='val_score', mode='max'\)") as caught:
        build(0.05).fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0,
                        callbacks=[Script(), changed, BackupAndRestore(backup)])  # fmt: skip
    assert len([w for w in caught if issubclass(w.category, LRKitWarning)]) == 1
    assert changed.best == SCORE[4] and changed.best_epoch == 4  # from the resumed epoch only


def test_two_callbacks_with_one_key_are_told_apart_by_name(tmp_path):
    backup = tmp_path / "backup"
    x, y = data()

    def pair():
        return (EarlyStoppingWithBestRestore("val_score", mode="min", patience=9, name="a"),
                EarlyStoppingWithBestRestore("val_score", mode="min", patience=9, min_delta=0.15,
                                             name="b"))  # fmt: skip

    with pytest.raises(RuntimeError):
        build(0.05).fit(x, y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0,
                        callbacks=[Script(), *pair(), BackupAndRestore(backup),
                                   *crash_at_end_of(4)])  # fmt: skip
    a, b = pair()
    build(0.05).fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0,
                    callbacks=[Script(), b, a, BackupAndRestore(backup)])  # fmt: skip
    assert (a.best, a.best_epoch) == (0.7, 3)
    assert (b.best, b.best_epoch) == (0.8, 1)  # 0.7 is not 0.15 better than 0.8


@pytest.fixture(scope="module")
def interrupted_once(tmp_path_factory):
    """The backup folder of a run interrupted at the end of epoch 4 (backup of epoch 4 written)."""
    folder = tmp_path_factory.mktemp("interrupted")
    with pytest.raises(RuntimeError):
        fit("float", folder, extra=crash_at_end_of(4), backup=folder / "backup")
    return folder / "backup"


@pytest.fixture
def interrupted(interrupted_once, tmp_path):
    """A copy of that backup folder for one test to damage."""
    return lambda tmp_path: Path(shutil.copytree(interrupted_once, tmp_path / "backup"))


def backup_weights(backup, kind="float"):
    """The weights of the backup in ``backup``, as Keras loads them into a fresh model."""
    twin = build(make_rate(kind))
    twin.optimizer.build(twin.trainable_variables)
    twin.load_weights(str(backup / "latest.weights.h5"))
    return twin.get_weights()


def resume_without_training(tmp_path, backup, kind="float"):
    """Resume the backup in a fit with no epoch left: the callbacks' state is all that acts."""
    model = build(make_rate(kind))
    callbacks = ours(tmp_path)
    x, y = data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0,
                  callbacks=[Script(), *callbacks.values(), BackupAndRestore(backup)])  # fmt: skip
    ours_ = [str(w.message) for w in caught if issubclass(w.category, LRKitWarning)]
    return model, callbacks, ours_


def edit_state(backup, edit):
    path = backup / STATE_FILE
    data_ = json.loads(path.read_text())
    entries = data_["records"][-1]["callbacks"]
    edit({key.split("(")[0]: entry for key, entry in entries.items()})
    path.write_text(json.dumps(data_))


def arrays_file(backup):
    """The best weights' file that the last backup's state refers to."""
    entries = json.loads((backup / STATE_FILE).read_text())["records"][-1]["callbacks"]
    (version,) = [e["arrays"][1] for e in entries.values() if e["arrays"]]
    (path,) = backup.glob(f"keras_lrkit_arrays-*-{version}.npz")
    return path


def test_best_weights_of_the_wrong_shape_never_touch_the_model(interrupted, tmp_path):
    backup = interrupted(tmp_path)
    path = arrays_file(backup)
    with np.load(path) as saved:
        arrays = [saved[f"a{i}"] for i in range(len(saved.files))]
    arrays[1] = np.ones(3, arrays[1].dtype)  # the first kernel stays right, the second is wrong
    with open(path, "wb") as f:
        np.savez(f, **{f"a{i}": a for i, a in enumerate(arrays)})
    expected = backup_weights(backup)
    model, callbacks, warned = resume_without_training(tmp_path, backup)
    assert len(warned) == 1 and "EarlyStoppingWithBestRestore" in warned[0]
    assert callbacks["stop"].best is None  # a fresh start
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_array_equal(got, want)  # the backup's weights, untouched


HOSTILE = {
    "direction_sideways": ("EarlyStoppingWithBestRestore", lambda s: s.update(direction="sideways")),
    "nan_best": ("EarlyStoppingWithBestRestore", lambda s: s.update(best=float("nan"))),
    "negative_wait": ("EarlyStoppingWithBestRestore", lambda s: s.update(wait=-1)),
    "pending_rate": ("ReduceOnPlateau", lambda s: s.update(pending=-5.0)),
    "reduction_rate_string": ("ReduceOnPlateau", lambda s: s.update(reductions=[[1, "x"]])),
    "plotter_paths": ("HistoryPlotter", lambda s: s.update(current_path="/tmp/evil.png")),
    "plotter_ragged": ("HistoryPlotter", lambda s: s["history"]["epoch"].append(99)),
    "plotter_bool_column": ("HistoryPlotter", lambda s: s["history"].update(loss=[True] * 4)),
    "negative_rate": ("LearningRateLogger", lambda s: s.update(batch_learning_rates=[-5.0])),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_state_is_one_warning_and_a_fresh_start(interrupted, tmp_path, case):
    owner, edit = HOSTILE[case]
    backup = interrupted(tmp_path)
    edit_state(backup, lambda entries: edit(entries[owner]["state"]))
    model, callbacks, warned = resume_without_training(tmp_path, backup)
    assert len(warned) == 1 and owner in warned[0], warned
    fresh = {"EarlyStoppingWithBestRestore": callbacks["stop"].best is None,
             "ReduceOnPlateau": callbacks["reduce"].reductions == [],
             "HistoryPlotter": callbacks["plotter"].history == {"epoch": []},
             "LearningRateLogger": callbacks["logger"].batch_learning_rates == []}  # fmt: skip
    assert fresh[owner]
    assert not os.path.exists("/tmp/evil.png")


def test_arrays_are_read_only_under_names_keras_lrkit_makes(interrupted, tmp_path):
    backup = interrupted(tmp_path)
    outside = tmp_path / "outside.npz"
    np.savez(outside, a0=np.zeros(1))
    edit_state(backup, lambda e: e["EarlyStoppingWithBestRestore"].update(arrays=["best_weights", "../outside"]))
    model, callbacks, warned = resume_without_training(tmp_path, backup)
    assert len(warned) == 1 and callbacks["stop"].best is None
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".npz") == ["outside.npz"]


def _fuzz_cases():
    def text(edit):
        return lambda backup: (backup / STATE_FILE).write_text(edit((backup / STATE_FILE).read_text()))

    def arrays(edit):
        def apply(backup):
            path = arrays_file(backup)
            with np.load(path) as saved:
                values = [saved[f"a{i}"] for i in range(len(saved.files))]
            with open(path, "wb") as f:
                np.savez(f, **{f"a{i}": a for i, a in enumerate(edit(values))})
        return apply

    cases = {f"truncated_{n}": text(lambda t, n=n: t[: int(len(t) * n / 10)]) for n in range(0, 10, 2)}
    cases.update({
        "binary": text(lambda t: "\x00\xff" * 50),
        "nested": text(lambda t: "[" * 100_000 + "]" * 100_000),
        "nested_in_state": lambda b: edit_state(b, lambda e: e["HistoryPlotter"]["state"].update(
            history=json.loads("[" * 900 + "]" * 900))),
        "huge_number": text(lambda t: t.replace('"wait": 0', '"wait": 1' + "0" * 5000)),
        "records_not_a_list": text(lambda t: json.dumps({"format": 2, "records": {"a": 1}})),
        "state_a_list": lambda b: edit_state(b, lambda e: e["ReduceOnPlateau"].update(state=[1, 2])),
        "one_of_four_arrays": arrays(lambda v: v[:1]),
        "nan_arrays": arrays(lambda v: [np.full_like(a, np.nan) for a in v]),
        "int_arrays": arrays(lambda v: [a.astype("int32") for a in v]),
        "arrays_missing": lambda b: arrays_file(b).unlink(),
        "arrays_not_a_zip": lambda b: arrays_file(b).write_bytes(b"PK\x03\x04" + b"\x00" * 30),
        "wrong_types": lambda b: edit_state(b, lambda e: [entry["state"].update(
            {k: "x" for k in entry["state"]}) for entry in e.values()]),
    })
    return cases


FUZZ = _fuzz_cases()


@pytest.mark.parametrize("case", sorted(FUZZ))
def test_fuzzed_state_files_warn_start_afresh_and_leave_the_weights(interrupted, tmp_path, case):
    backup = interrupted(tmp_path)
    FUZZ[case](backup)
    expected = backup_weights(backup)
    model, callbacks, warned = resume_without_training(tmp_path, backup)
    assert warned, "a damaged state says so"
    assert len(warned) <= len(callbacks)  # at most one per callback, one for a whole file
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_array_equal(got, want)


def test_save_freq_in_batches_warns_once_that_keras_resumes_from_the_epoch_start(tmp_path):
    with pytest.warns(LRKitWarning, match="first batch") as caught:
        fit("float", tmp_path, backup=None, extra=[BackupAndRestore(tmp_path / "b", save_freq=2)])
    assert len([w for w in caught if "first batch" in str(w.message)]) == 1


def test_keras_s_backup_with_keras_lrkit_callbacks_says_so_once(tmp_path):
    backup = tmp_path / "backup"
    x, y = data()
    with pytest.raises(RuntimeError):
        build(0.05).fit(x, y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0,
                        callbacks=[Script(), keras.callbacks.BackupAndRestore(str(backup)),
                                   *crash_at_end_of(4)])  # fmt: skip
    with pytest.warns(LRKitWarning, match="keras_lrkit.BackupAndRestore") as caught:
        build(0.05).fit(x, y, batch_size=8, epochs=6, shuffle=False, verbose=0,
                        callbacks=[Script(), *ours(tmp_path).values(),
                                   keras.callbacks.BackupAndRestore(str(backup))])  # fmt: skip
    assert len([w for w in caught if issubclass(w.category, LRKitWarning)]) == 1


def test_a_plain_keras_resume_after_importing_keras_lrkit_says_nothing(tmp_path):
    backup = tmp_path / "backup"
    x, y = data()
    with pytest.raises(RuntimeError):
        build(0.05).fit(x, y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0,
                        callbacks=[keras.callbacks.BackupAndRestore(str(backup)),
                                   *crash_at_end_of(4)])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", LRKitWarning)
        history = build(0.05).fit(x, y, batch_size=8, epochs=6, shuffle=False, verbose=0,
                                  callbacks=[keras.callbacks.BackupAndRestore(str(backup))])  # fmt: skip
    assert history.epoch == [5]  # Keras's backup of epoch 4 came before the crash
