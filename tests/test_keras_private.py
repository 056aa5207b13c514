"""Every private Keras API keras_lrkit uses (keras_lrkit/_keras_private.py), checked against this Keras.

If a Keras release renames or changes one, the test of that one fails here,
loudly, instead of a callback misbehaving quietly somewhere else.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import keras_lrkit
from keras_lrkit import StepDecay
from keras_lrkit import _keras_private as private


def test_the_optimizer_holds_its_schedule_or_variable_in_learning_rate_object():
    schedule = StepDecay(0.1, [3])
    assert private.learning_rate_object(keras.optimizers.SGD(schedule)) is schedule
    rate = private.learning_rate_object(keras.optimizers.SGD(0.25))
    assert isinstance(rate, keras.Variable)
    assert float(keras.ops.convert_to_numpy(rate)) == 0.25


def test_all_layers_reaches_nested_layers_and_an_rnn_s_cell():
    inner = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)], name="inner")
    rnn = keras.layers.LSTM(2)
    model = keras.Sequential([keras.Input((4, 3)), rnn, keras.layers.RepeatVector(2),
                              keras.layers.TimeDistributed(inner)])  # fmt: skip
    layers = private.all_layers(model)
    assert layers[0] is model and rnn in layers and rnn.cell in layers
    assert inner in layers and inner.layers[0] in layers


def test_keras_metrics_carry_their_direction():
    assert private.metric_direction(keras.metrics.BinaryAccuracy()) == "up"
    assert private.metric_direction(keras.metrics.MeanSquaredError()) == "down"


def test_a_variable_s_stored_array_is_its_value():
    variable = keras.Variable(np.arange(3, dtype="float32"))
    variable.assign(np.array([3.0, 4.0, 5.0], "float32"))
    stored = private.stored_array(variable)
    assert not isinstance(stored, keras.Variable)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(stored), [3.0, 4.0, 5.0])


def test_assign_exact_puts_the_array_in():
    variable = keras.Variable(np.zeros(3, "float32"))
    private.assign_exact(
        variable, keras.ops.convert_to_tensor(np.array([1.0, 2.0, 3.0], "float32"))
    )
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), [1.0, 2.0, 3.0])


def test_print_msg_is_keras_s_own(capsys):
    assert private.print_msg.__module__.startswith("keras")  # not the fallback
    private.print_msg("hello from keras_lrkit")
    assert "hello from keras_lrkit" in capsys.readouterr().out


def test_tensorboard_logs_its_rate_through_the_method_our_subclass_overrides():
    calls = []

    class Watching(keras_lrkit.TensorBoard):
        def _collect_learning_rate(self, logs):
            calls.append(dict(logs))
            return super()._collect_learning_rate(logs)

    pytest.importorskip("tensorflow")
    import tempfile

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    with tempfile.TemporaryDirectory() as folder:
        model.fit(np.ones((4, 1)), np.ones((4, 1)), epochs=2, verbose=0,
                  callbacks=[Watching(folder)])  # fmt: skip
    assert len(calls) == 2 and "loss" in calls[0]


def test_backup_and_restore_saves_through_the_method_our_subclass_overrides(tmp_path):
    bar = keras.callbacks.BackupAndRestore(str(tmp_path))
    assert callable(getattr(bar, "_save_model", None))
    bar._current_epoch, bar._last_batch_seen = 3, 0  # set by its own hooks during fit
    assert private.backup_position(bar) == {"epoch": 3, "batch": 0}
    assert private.backup_metadata_path(bar) == str(tmp_path / "training_metadata.json")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    saves = []

    class Watching(keras.callbacks.BackupAndRestore):
        def _save_model(self):
            saves.append(private.backup_position(self))
            super()._save_model()

    model.fit(np.ones((4, 1)), np.ones((4, 1)), epochs=2, verbose=0,
              callbacks=[Watching(str(tmp_path / "b"), delete_checkpoint=False)])  # fmt: skip
    assert saves == [{"epoch": 1, "batch": 0}, {"epoch": 2, "batch": 0}]
    assert json.loads((tmp_path / "b" / "training_metadata.json").read_text())["epoch"] == 2
    assert private.resumed_epoch(model) is None  # set only when a backup is loaded
