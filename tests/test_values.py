"""to_float: the cheap scalar read that the callbacks use at every epoch's end."""

import math
import warnings

import keras
import numpy as np
import pytest

from keras_lrkit._keras_private import stored_array
from keras_lrkit._values import to_float


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: 0.1, 0.1),
        (lambda: 3, 3.0),
        (lambda: np.float32(0.1), float(np.float32(0.1))),
        (lambda: np.array(2.5, "float64"), 2.5),
        (lambda: keras.ops.convert_to_tensor(0.1, "float32"), float(np.float32(0.1))),
        (lambda: keras.ops.convert_to_tensor(7, "int32"), 7.0),
        (lambda: keras.Variable(0.1, dtype="float32"), float(np.float32(0.1))),
        (lambda: keras.Variable(12, dtype="int32", trainable=False), 12.0),
        (lambda: keras.Variable(0.1, dtype="float16"), float(np.float16(0.1))),
    ],
)
def test_to_float_matches_numpy(make, expected):
    value = to_float(make())
    assert type(value) is float
    assert value == expected


def test_trainable_variable_reads_without_warning():
    # torch warns when float() meets a tensor that requires grad
    variable = keras.Variable(0.5, trainable=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert to_float(variable) == 0.5


def test_variable_after_assign_reads_new_value():
    variable = keras.Variable(0.5)
    variable.assign(0.125)
    assert to_float(variable) == 0.125
    assert float(keras.ops.convert_to_numpy(stored_array(variable))) == 0.125


@pytest.mark.parametrize("value", [np.zeros(3), keras.ops.ones((2, 2)), "loss", None])
def test_non_scalars_raise_as_float_does(value):
    with pytest.raises((TypeError, ValueError)):
        to_float(value)


def test_plotter_keeps_non_numeric_logs_as_nan():
    from keras_lrkit.callbacks.history_plotter import _as_float

    assert math.isnan(_as_float("a", "n/a")) and math.isnan(_as_float("b", np.zeros(3)))
    assert _as_float("c", np.float32(0.5)) == 0.5
    assert _as_float("f1_score", np.array([0.25])) == 0.25  # one number, logged as an array
