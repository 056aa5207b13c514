"""EarlyStoppingWithBestRestore: the stopping rule, the restore, the checkpoint."""

from __future__ import annotations

import math
import os
import warnings

import keras
import numpy as np
import pytest

from keras_lrkit import EarlyStoppingWithBestRestore

from .helpers import Inject, batchnorm_model, tiny_model, tiny_regression_data

NAN, INF = math.nan, math.inf


class RecordWeights(keras.callbacks.Callback):
    """Keep a host copy of every weight at the end of each epoch."""

    def on_train_begin(self, logs=None):
        self.by_epoch = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch] = [np.array(w, copy=True) for w in self.model.get_weights()]


class StopAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.stop_training = True


def run(values, monitor="val_loss", extra=(), model=None, **kwargs):
    """Fit len(values) epochs with scripted monitored values; return (callback, recorder, model)."""
    x, y = tiny_regression_data(32)
    model = model or tiny_model()
    stop = EarlyStoppingWithBestRestore(monitor, **kwargs)
    record = RecordWeights()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=len(values),
        verbose=0,
        callbacks=[Inject(monitor, values), stop, record, *extra],
    )
    return stop, record, model


def assert_weights_equal(model, expected):
    got = model.get_weights()
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert np.array_equal(g, e)


# (values, kwargs, stopped_epoch, best_epoch, stop_reason), worked out by hand from the rule:
# stop at the first epoch where max(patience, 1) consecutive epochs have not improved.
CASES = {
    "patience0": ([1.0, 0.9, 0.95, 0.8], {"patience": 0}, 2, 1, "patience"),
    "patience1_same_as_0": ([1.0, 0.9, 0.95, 0.8], {"patience": 1}, 2, 1, "patience"),
    "patience2": ([1.0, 0.9, 0.95, 0.96, 0.8], {"patience": 2}, 3, 1, "patience"),
    "patience3_reset_by_improvement": (
        [1.0, 0.9, 0.95, 0.96, 0.85, 0.9, 0.91, 0.92, 0.5],
        {"patience": 3},
        7,
        4,
        "patience",
    ),
    "min_delta_too_small_a_gain": (
        [1.0, 0.95, 0.85],
        {"patience": 1, "min_delta": 0.1},
        1,
        0,
        "patience",
    ),
    "min_delta_no_stop": ([1.0, 0.85, 0.80, 0.7], {"patience": 2, "min_delta": 0.1}, None, 3, None),
    "keras_baseline_case": (
        [0.9, 0.8, 0.7, 0.71, 0.72, 0.73],
        {"patience": 5, "baseline": 0.5},
        4,
        2,
        "baseline",
    ),
    "baseline_beaten_then_patience": (
        [0.9, 0.4, 0.45, 0.5],
        {"patience": 2, "baseline": 0.5},
        3,
        1,
        "patience",
    ),
    "start_from_epoch": (
        [0.1, 0.05, 1.0, 0.9, 0.95],
        {"patience": 1, "start_from_epoch": 2},
        4,
        3,
        "patience",
    ),
    "nan_stops_at_once": ([1.0, NAN, 0.5], {"patience": 5}, 1, 0, "non_finite"),
    "inf_stops_at_once": ([1.0, 0.8, INF, 0.5], {"patience": 5}, 2, 1, "non_finite"),
    "nan_without_check_finite": (
        [1.0, NAN, 0.5, 0.6, 0.7],
        {"patience": 2, "check_finite": False},
        4,
        2,
        "patience",
    ),
    "mode_min_forced_on_accuracy": (
        [0.5, 0.6, 0.55],
        {"patience": 1, "mode": "min"},
        1,
        0,
        "patience",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_stopping_rule(case):
    values, kwargs, stopped, best, reason = CASES[case]
    monitor = "val_accuracy" if case == "mode_min_forced_on_accuracy" else "val_loss"
    stop, record, model = run(values, monitor=monitor, **kwargs)
    # As Keras's EarlyStopping: stopped_epoch is 0 when this callback did not stop training.
    expected_stopped = 0 if stopped is None else stopped
    assert (stop.stopped_epoch, stop.best_epoch, stop.stop_reason) == (
        expected_stopped,
        best,
        reason,
    )
    assert stop.best == pytest.approx(values[best])
    last = max(record.by_epoch)
    assert last == (stopped if stopped is not None else len(values) - 1)
    assert_weights_equal(model, record.by_epoch[best])


@pytest.mark.parametrize(
    "monitor,mode", [("val_accuracy", "auto"), ("val_auc", "auto"), ("custom", "max")]
)
def test_maximized_metrics(monitor, mode):
    stop, _, _ = run([0.5, 0.6, 0.55, 0.7], monitor=monitor, mode=mode, patience=1)
    assert (stop.stopped_epoch, stop.best_epoch, stop.direction) == (2, 1, "max")


def test_compiled_metric_direction_wins():
    class Gain(keras.metrics.Mean):
        def __init__(self, name="gain_loss", **kwargs):  # the name says "minimize"...
            super().__init__(name=name, **kwargs)
            self._direction = "up"  # ...the metric says "maximize"

        def update_state(self, y_true, y_pred, sample_weight=None):
            return super().update_state(keras.ops.mean(y_pred))

    model = tiny_model(metrics=[Gain()])
    stop, _, _ = run([0.5, 0.6, 0.55], monitor="val_gain_loss", model=model, patience=1)
    assert stop.direction == "max"
    assert (stop.stopped_epoch, stop.best_epoch) == (2, 1)


def test_unknown_name_in_auto_mode_asks_for_mode():
    with pytest.raises(ValueError, match="mode"):
        run([1.0, 0.9], monitor="val_wobble")


def test_missing_key_strict_lists_the_keys():
    x, y = tiny_regression_data(32)
    stop = EarlyStoppingWithBestRestore("val_mea")  # a typo, while validation runs
    with pytest.raises(ValueError, match=r"val_mea.*Available keys: \['loss', 'val_loss'\]"):
        tiny_model().fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[stop])
    stop = EarlyStoppingWithBestRestore("mea", mode="min")  # a training key is always there
    with pytest.raises(ValueError, match=r"`mea`.*Available keys: \['loss'\]"):
        tiny_model().fit(x, y, epochs=2, verbose=0, callbacks=[stop])


def test_no_validation_at_all_warns_at_the_first_epoch():
    x, y = tiny_regression_data(32)
    stop = EarlyStoppingWithBestRestore("val_loss")
    with pytest.warns(UserWarning, match="ran no validation") as caught:
        tiny_model().fit(x, y, epochs=3, verbose=0, callbacks=[stop])
    assert len([w for w in caught if "ran no validation" in str(w.message)]) == 1
    assert stop.stop_reason is None and stop.best_weights is None


@pytest.mark.parametrize("freq,validated", [(2, [1, 3, 5, 7]), ([2, 3, 5, 8], [1, 2, 4, 7])])
def test_validation_freq_skips_epochs_without_validation(freq, validated):
    # Keras validates after epoch e when (e + 1) % freq == 0, or e + 1 is in the list.
    x, y = tiny_regression_data(48)
    model, record = tiny_model(), RecordWeights()
    logged = {}
    keep = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: logged.update({e: dict(logs)})
    )
    stop = EarlyStoppingWithBestRestore("val_loss", patience=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the first epoch's note that it ran no validation
        model.fit(x[:32], y[:32], validation_data=(x[32:], y[32:]), validation_freq=freq,
                  epochs=8, verbose=0, callbacks=[keep, stop, record])  # fmt: skip
    assert [e for e in sorted(logged) if "val_loss" in logged[e]] == validated[: len(logged)]
    # The rule applied to the validated epochs only, worked out here:
    best, best_epoch, wait, stopped = math.inf, None, 0, None
    for e in validated:
        if e not in logged:
            break
        value = logged[e]["val_loss"]
        best, best_epoch, wait = (value, e, 0) if value < best else (best, best_epoch, wait + 1)
        if wait >= 2:
            stopped = e
            break
    assert (stop.best_epoch, stop.best) == (best_epoch, pytest.approx(best))
    assert stop.stopped_epoch == (stopped or 0) and max(logged) == (stopped or 7)
    assert_weights_equal(model, record.by_epoch[best_epoch])


def test_missing_key_not_strict_warns_once_and_never_stops():
    x, y = tiny_regression_data(32)
    stop = EarlyStoppingWithBestRestore("val_loss", strict=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = tiny_model().fit(x, y, epochs=3, verbose=0, callbacks=[stop])
    relevant = [w for w in caught if "val_loss" in str(w.message)]
    assert len(relevant) == 1
    assert len(history.epoch) == 3 and stop.stop_reason is None and stop.best_weights is None


def test_stop_from_another_callback_still_restores_best():
    values = [1.0, 0.5, 0.7, 0.8, 0.9, 1.0]
    stop, record, model = run(values, patience=10, extra=[StopAt(3)])
    assert (stop.stopped_epoch, stop.stop_reason, stop.best_epoch) == (0, None, 1)
    assert max(record.by_epoch) == 3
    assert_weights_equal(model, record.by_epoch[1])


def test_last_epoch_ends_training_and_best_is_restored():
    stop, record, model = run([1.0, 0.5, 0.6, 0.7], patience=10)
    assert stop.stop_reason is None and stop.best_epoch == 1
    assert not np.array_equal(record.by_epoch[3][0], record.by_epoch[1][0])  # training did move on
    assert_weights_equal(model, record.by_epoch[1])


def test_restore_best_weights_false_keeps_last_weights():
    stop, record, model = run([1.0, 0.5, 0.6, 0.7], patience=10, restore_best_weights=False)
    assert_weights_equal(model, record.by_epoch[3])


def test_batchnorm_statistics_are_restored_too():
    model = batchnorm_model()
    model.compile(keras.optimizers.SGD(0.05), "mse")
    stop, record, model = run([1.0, 0.4, 0.6, 0.7, 0.8], model=model, patience=10)
    assert len(model.non_trainable_weights) == 2
    assert_weights_equal(model, record.by_epoch[1])


def test_one_instance_serves_several_fits():
    x, y = tiny_regression_data(32)
    stop = EarlyStoppingWithBestRestore("val_loss", patience=1)
    model = tiny_model()
    model.fit(x, y, epochs=3, verbose=0, callbacks=[Inject("val_loss", [1.0, 2.0, 3.0]), stop])
    assert (stop.stopped_epoch, stop.best_epoch) == (1, 0)
    record = RecordWeights()
    model.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        callbacks=[Inject("val_loss", [5.0, 4.0, 3.0, 2.0]), stop, record],
    )
    assert (stop.stopped_epoch, stop.best_epoch, stop.stop_reason, stop.best) == (0, 3, None, 2.0)
    assert_weights_equal(model, record.by_epoch[3])


def test_verbose_says_why_and_which_epoch(capsys):
    run([1.0, 0.5, 0.7], patience=1, verbose=1)
    out = capsys.readouterr().out
    assert "Early stopping (patience) after epoch 2" in out
    assert "Restored the weights from the end of epoch 1 (progress bar: Epoch 2)" in out


class Crash(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 3:
            raise RuntimeError("simulated crash")


def test_checkpoint_holds_best_weights_and_survives_a_crash(tmp_path):
    path = tmp_path / "best.weights.h5"
    x, y = tiny_regression_data(32)
    model, record = tiny_model(), RecordWeights()
    stop = EarlyStoppingWithBestRestore(patience=10, checkpoint_path=path)
    callbacks = [Inject("val_loss", [1.0, 0.5, 0.6, 0.7, 0.8]), stop, record, Crash()]
    with pytest.raises(RuntimeError, match="simulated crash"):
        model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=callbacks)
    assert max(record.by_epoch) == 3  # it crashed after epoch 3, best was epoch 1
    assert sorted(os.listdir(tmp_path)) == ["best.weights.h5"]  # no temporary file left
    fresh = tiny_model()
    fresh.load_weights(path)
    assert_weights_equal(fresh, record.by_epoch[1])


def test_checkpoint_write_failure_warns_and_training_goes_on(tmp_path):
    path = tmp_path / "missing_dir" / "best.weights.h5"
    with pytest.warns(UserWarning, match="Could not write the best weights"):
        stop, _, _ = run([1.0, 0.5, 0.6], patience=10, checkpoint_path=path)
    assert stop.best_epoch == 1


BAD = [
    ("monitor", {"monitor": ""}),
    ("mode", {"mode": "maximize"}),
    ("patience", {"patience": -1}),
    ("patience", {"patience": 1.5}),
    ("min_delta", {"min_delta": -0.1}),
    ("min_delta", {"min_delta": NAN}),
    ("baseline", {"baseline": "low"}),
    ("start_from_epoch", {"start_from_epoch": -2}),
    ("restore_best_weights", {"restore_best_weights": "yes"}),
    ("checkpoint_path", {"checkpoint_path": "best.h5"}),
    ("verbose", {"verbose": None}),
]


@pytest.mark.parametrize("name,kwargs", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_bad_arguments(name, kwargs):
    with pytest.raises(ValueError, match=f"`{name}`"):
        EarlyStoppingWithBestRestore(**kwargs)


# --- models that build their weights inside fit -----------------------------------


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]),
        Subclassed,
    ],
    ids=["sequential_without_input", "subclassed"],
)
def test_best_weights_restored_for_a_model_built_inside_fit(make, capsys):
    model = make()
    model.compile(keras.optimizers.SGD(0.05), "mse")
    assert not model.weights  # nothing to snapshot at train begin
    stop, record, model = run([3.0, 1.0, 2.0, 3.0, 4.0], model=model, patience=3, verbose=1)
    assert (stop.best_epoch, stop.stopped_epoch) == (1, 4)
    assert not np.array_equal(record.by_epoch[4][0], record.by_epoch[1][0])  # training moved on
    assert_weights_equal(model, record.by_epoch[1])
    assert "Restored the weights from the end of epoch 1" in capsys.readouterr().out


# --- what is restored however a fit ends ----------------------------------------------


def test_nan_at_the_first_epoch_with_verbose_says_nothing_was_restored(capsys):
    stop, record, model = run([NAN, 1.0, 0.5], patience=3, verbose=1)
    assert (stop.stop_reason, stop.stopped_epoch, stop.best_epoch, stop.best) == (
        "non_finite",
        0,
        0,
        None,
    )
    out = capsys.readouterr().out
    assert "no epoch had a finite val_loss" in out
    assert "No weights restored" in out and "Restored the weights" not in out
    assert_weights_equal(model, record.by_epoch[0])  # the weights training ended with
    assert stop.restore() is False


def test_no_finite_epoch_at_all_keeps_the_last_weights():
    stop, record, model = run([NAN, INF, NAN], patience=5, check_finite=False)
    assert stop.best is None and stop.best_weights is None and stop.restore() is False
    assert_weights_equal(model, record.by_epoch[2])


class Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch, error):
        super().__init__()
        self.epoch, self.error = epoch, error

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise self.error


@pytest.mark.parametrize("error", [RuntimeError("crash"), KeyboardInterrupt()], ids=repr)
def test_a_fit_that_raises_keeps_its_weights_until_restore_is_called(error):
    x, y = tiny_regression_data(32)
    model, record = tiny_model(), RecordWeights()
    stop = EarlyStoppingWithBestRestore(patience=10)
    callbacks = [Inject("val_loss", [1.0, 0.5, 0.6, 0.7]), stop, record, Interrupt(3, error)]
    with pytest.raises(type(error)):
        model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=callbacks)
    # Keras skips on_train_end when fit raises: the weights are where training left them...
    assert_weights_equal(model, record.by_epoch[3])
    # ...and the best ones are one call away.
    assert stop.restore() is True
    assert_weights_equal(model, record.by_epoch[1])


# --- nothing kept alive ------------------------------------------------------------------


def test_fitted_models_are_freed_after_del():
    import gc
    import weakref

    x, y = tiny_regression_data(32)
    refs = []
    for _ in range(3):
        model = tiny_model()
        model.fit(
            x,
            y,
            epochs=3,
            verbose=0,
            callbacks=[Inject("val_loss", [1.0, 0.5, 0.7]), EarlyStoppingWithBestRestore()],
        )
        refs.append(weakref.ref(model))
        del model
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


# --- values Keras logs, attributes Keras users read ---------------------------------


def test_f1_score_logged_as_a_one_element_array_is_monitored():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=[keras.metrics.F1Score(threshold=0.5)])
    logged = []
    keep = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: logged.append(logs["val_f1_score"])
    )
    stop = EarlyStoppingWithBestRestore("val_f1_score", patience=10)
    model.fit(x, y, validation_split=0.25, epochs=3, verbose=0, callbacks=[keep, stop])
    assert np.shape(logged[0]) == (1,)  # what Keras logs for F1Score
    values = [float(np.asarray(v).reshape(())) for v in logged]
    assert stop.direction == "max" and stop.best == pytest.approx(max(values))


def test_a_metric_of_several_values_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"`val_f1` is logged as 3 numbers \(shape \(3,\)\)"):
        run([np.array([0.1, 0.2, 0.3])] * 2, monitor="val_f1")


def test_attributes_start_as_keras_early_stopping_s():
    x, y = tiny_regression_data(32)
    ours = EarlyStoppingWithBestRestore("loss", patience=50)
    theirs = keras.callbacks.EarlyStopping("loss", patience=50)
    for callback in (ours, theirs):
        callback.set_model(tiny_model())
        callback.on_train_begin()
    for name in ("best", "best_epoch", "stopped_epoch", "wait"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.best is None and ours.best_weights is None and theirs.best_weights is None


def test_best_weights_are_the_best_epoch_s_as_numpy_arrays():
    stop, record, model = run([1.0, 0.5, 0.6, 0.7], patience=10)
    assert len(stop.best_weights) == len(model.weights)
    for got, want in zip(stop.best_weights, record.by_epoch[1]):
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("cls", [EarlyStoppingWithBestRestore, keras.callbacks.EarlyStopping])
def test_best_weights_can_be_set_as_in_keras_early_stopping(cls):
    # As Keras's test_state_reset_across_fit_calls does: set between fits, reset by the next.
    stop, record, model = run([1.0, 0.5, 0.6, 0.7], patience=10)
    given = [np.full(w.shape, 0.25, w.dtype) for w in model.get_weights()]
    if cls is keras.callbacks.EarlyStopping:  # Keras's attribute, the behaviour we match
        stop = cls("val_loss", restore_best_weights=True)
        stop.set_model(model)
    stop.best_weights = given
    assert all(np.array_equal(a, b) for a, b in zip(stop.best_weights, given))
    stop.best_weights = None
    assert stop.best_weights is None
    if cls is EarlyStoppingWithBestRestore:
        stop.best_weights = given
        assert stop.restore()
        for got, want in zip(model.get_weights(), given):
            np.testing.assert_array_equal(got, want)
        with pytest.raises(ValueError, match="`best_weights`"):
            stop.best_weights = given[:1]
        stop.on_train_begin()
        assert stop.best_weights is None  # each fit starts without one, as Keras's
