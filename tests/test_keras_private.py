"""Every private Keras API keras_lrkit uses (keras_lrkit/_keras_private.py), checked against this Keras.

If a Keras release renames or changes one, the test of that one fails here,
loudly, instead of a callback misbehaving quietly somewhere else.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_lrkit import StepDecay
from keras_lrkit import _keras_private as private
from keras_lrkit.callbacks import _resume  # noqa: F401  (installs the BackupAndRestore hook)


def test_the_optimizer_holds_its_schedule_or_variable_in_learning_rate_object():
    schedule = StepDecay(0.1, [3])
    assert private.learning_rate_object(keras.optimizers.SGD(schedule)) is schedule
    rate = private.learning_rate_object(keras.optimizers.SGD(0.25))
    assert isinstance(rate, keras.Variable)
    assert float(keras.ops.convert_to_numpy(rate)) == 0.25


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


def test_tensorboard_has_the_method_that_logs_its_rate():
    assert callable(getattr(keras.callbacks.TensorBoard, "_collect_learning_rate", None))
    assert private.correct_tensorboard_learning_rate(lambda model: None)


def test_backup_and_restore_is_hooked_and_exposes_its_position(tmp_path):
    from keras.callbacks import BackupAndRestore

    assert getattr(BackupAndRestore._save_model, "_lrkit_hooked", False)
    bar = BackupAndRestore(str(tmp_path))
    bar._current_epoch, bar._last_batch_seen = 3, 0  # set by its own hooks during fit
    assert private.backup_position(bar) == {"epoch": 3, "batch": 0}
    assert private.backup_metadata_path(bar) == str(tmp_path / "training_metadata.json")
