"""Schedules inside Keras: serialization, `.keras` files, and `model.fit`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_lrkit
from keras_lrkit import (
    Chain,
    Constant,
    Cooldown,
    CosineDecay,
    CosineRestarts,
    Cyclic,
    ExponentialDecay,
    InverseSqrtDecay,
    LinearDecay,
    OneCycle,
    PolynomialDecay,
    StepDecay,
    Warmup,
    WarmupStableDecay,
)

from .helpers import BACKEND, tiny_model, tiny_regression_data

ALL_SCHEDULES = {
    "step": lambda: StepDecay(0.1, [3, 7], factor=0.5),
    "step_every_epochs": lambda: StepDecay(
        0.1, every=2, decrement=0.02, min_learning_rate=0.01, steps_per_epoch=3
    ),
    "cosine": lambda: CosineDecay(0.1, 12, min_learning_rate=0.001),
    "linear": lambda: LinearDecay(0.1, 4, steps_per_epoch=3),
    "inverse_sqrt": lambda: InverseSqrtDecay(0.1, timescale=5),
    "constant": lambda: Constant(0.05),
    "warmup": lambda: Warmup(InverseSqrtDecay(0.1, timescale=4), 4, initial_learning_rate=0.01),
    "chain": lambda: Chain([Constant(0.1), Warmup(CosineDecay(0.1, 6), 2)], [3]),
    "exponential": lambda: ExponentialDecay(0.1, 0.7, 2, staircase=True, min_learning_rate=0.01),
    "polynomial": lambda: PolynomialDecay(0.1, 5, power=0.5, steps_per_epoch=3),
    "restarts": lambda: CosineRestarts(0.1, 4, period_factor=2, peak_factor=0.5),
    "one_cycle": lambda: OneCycle(0.1, 5, steps_per_epoch=3, three_phase=True),
    "cyclic": lambda: Cyclic(0.001, 0.01, 3, mode="triangular2"),
    "wsd": lambda: WarmupStableDecay(0.1, 10, warmup=2, decay=3, min_learning_rate=0.001,
                                     steps_per_epoch=3),
    "wsd_open_ended": lambda: WarmupStableDecay(0.1, warmup=3, warmup_shape="cosine"),
    "cooldown": lambda: Cooldown(WarmupStableDecay(0.1, warmup=2), 6, start=5,
                                 min_learning_rate=0.01),
}
NEW = ["exponential", "polynomial", "restarts", "one_cycle", "cyclic"]
STEPS = np.array([0, 1, 2, 3, 4, 6, 7, 11, 12, 30])


def rates(schedule, steps=STEPS):
    return keras.ops.convert_to_numpy(schedule(steps))


def check_round_trip(schedule):
    """The config round trip and keras serialize/deserialize give the same schedule."""
    config = schedule.get_config()
    json.dumps(config)  # a config must be plain JSON
    clone = type(schedule).from_config(config)
    assert clone.get_config() == config
    np.testing.assert_array_equal(rates(clone), rates(schedule))
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert type(restored) is type(schedule)
    assert restored.get_config() == config
    np.testing.assert_array_equal(rates(restored), rates(schedule))
    generic = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    np.testing.assert_array_equal(rates(generic), rates(schedule))


@pytest.mark.parametrize("name", sorted(ALL_SCHEDULES))
def test_serialization_round_trip(name):
    check_round_trip(ALL_SCHEDULES[name]())


def test_get_config_is_exactly_the_constructor_arguments():
    s = StepDecay(0.1, (30, 60), factor=0.2, steps_per_epoch=10)
    assert s.get_config() == {
        "initial_learning_rate": 0.1,
        "milestones": [30, 60],
        "every": None,
        "factor": 0.2,
        "decrement": None,
        "min_learning_rate": 0.0,
        "steps_per_epoch": 10,
    }
    w = Warmup(Constant(0.1), 3)
    assert set(w.get_config()) == {"schedule", "warmup", "initial_learning_rate", "steps_per_epoch"}
    assert w.get_config()["schedule"]["registered_name"] == "keras_lrkit>Constant"


def test_every_public_schedule_is_registered():
    for name in [
        "StepDecay",
        "CosineDecay",
        "LinearDecay",
        "InverseSqrtDecay",
        "Constant",
        "Warmup",
        "Chain",
        "Reduced",
        "ExponentialDecay",
        "PolynomialDecay",
        "CosineRestarts",
        "OneCycle",
        "Cyclic",
        "WarmupStableDecay",
        "Cooldown",
    ]:
        cls = getattr(keras_lrkit, name)
        assert keras.saving.get_registered_name(cls) == f"keras_lrkit>{name}"
        assert keras.saving.get_registered_object(f"keras_lrkit>{name}") is cls


def linear_probe_model(schedule, jit_compile):
    """A model whose only weight w moves by exactly -lr per step.

    The loss is the prediction w * 1, so dloss/dw = 1 and plain SGD gives
    w_t = -sum(lr_0 .. lr_{t-1}): the rates the optimizer really used.
    """
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(schedule),
        loss=lambda y_true, y_pred: keras.ops.mean(y_pred),
        jit_compile=jit_compile,
    )
    return model


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("name", ["step_every_epochs", "warmup", "chain", "cosine", *NEW])
def test_rates_used_inside_fit(name, jit_compile):
    schedule = ALL_SCHEDULES[name]()
    model = linear_probe_model(schedule, jit_compile)
    x = np.ones((12, 1), "float32")
    model.fit(x, x, batch_size=4, epochs=5, shuffle=False, verbose=0)  # 3 steps an epoch
    steps = np.arange(15)
    expected = -np.sum(rates(schedule, steps).astype("float64"))
    w = float(keras.ops.convert_to_numpy(model.layers[0].kernel)[0, 0])
    assert w == pytest.approx(expected, rel=1e-5)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 15


LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    import keras_lrkit  # registers the schedules: no custom_objects needed
    model_path, data_path, out_path = sys.argv[1:]
    model = keras.models.load_model(model_path)
    opt = model.optimizer
    schedule = opt._learning_rate
    data = np.load(data_path)
    out = {
        "class": type(schedule).__name__,
        "iterations": int(keras.ops.convert_to_numpy(opt.iterations)),
        "current_rate": float(keras.ops.convert_to_numpy(opt.learning_rate)),
        "rates": keras.ops.convert_to_numpy(schedule(np.arange(40))).tolist(),
    }
    model.fit(data["x"], data["y"], batch_size=8, epochs=1, shuffle=False, verbose=0)
    out["iterations_after"] = int(keras.ops.convert_to_numpy(opt.iterations))
    out["weights_after"] = [w.tolist() for w in model.get_weights()]
    with open(out_path, "w") as f:
        json.dump(out, f)
    """
)


@pytest.mark.parametrize("name", ["step_every_epochs", "warmup", "chain", *NEW])
def test_keras_file_loads_in_fresh_process_and_training_continues(name, tmp_path):
    schedule = ALL_SCHEDULES[name]()
    x, y = tiny_regression_data(32)
    model = tiny_model(optimizer=keras.optimizers.SGD(schedule, momentum=0.9))
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)  # 8 steps
    path = tmp_path / "m.keras"
    model.save(path)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    # Continue here, then compare with the loaded copy continuing there.
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    env = dict(os.environ, KERAS_BACKEND=BACKEND)
    subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_SCRIPT,
            str(path),
            str(tmp_path / "data.npz"),
            str(tmp_path / "out.json"),
        ],
        check=True,
        env=env,
        timeout=240,
    )
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["class"] == type(schedule).__name__
    assert out["iterations"] == 8
    assert out["current_rate"] == pytest.approx(float(schedule(8)), rel=1e-7)
    np.testing.assert_array_equal(np.float32(out["rates"]), rates(schedule, np.arange(40)))
    assert out["iterations_after"] == 12
    for got, want in zip(out["weights_after"], model.get_weights()):
        np.testing.assert_allclose(np.float32(got), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["step_every_epochs", "warmup", "chain"])
def test_legacy_h5_file_keeps_the_schedule(name, tmp_path):
    schedule = ALL_SCHEDULES[name]()
    x, y = tiny_regression_data(32)
    # A loss object: Keras's h5 loader cannot rebuild the string "mse" (a Keras limitation).
    model = tiny_model(optimizer=keras.optimizers.SGD(schedule))
    model.compile(optimizer=model.optimizer, loss=keras.losses.MeanSquaredError())
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    path = tmp_path / "m.h5"
    model.save(path)
    loaded = keras.models.load_model(path)
    restored = loaded.optimizer._learning_rate
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    np.testing.assert_array_equal(rates(restored, np.arange(40)), rates(schedule, np.arange(40)))
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == 8  # the clock goes on


@pytest.mark.skipif(BACKEND != "tensorflow", reason="SavedModel is TensorFlow's format")
def test_tensorflow_savedmodel_of_a_model_trained_with_a_schedule(tmp_path):
    import tensorflow as tf

    x, y = tiny_regression_data(32)
    model = tiny_model(optimizer=keras.optimizers.SGD(ALL_SCHEDULES["warmup"]()))
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    expected = model.predict(x, verbose=0)
    model.export(tmp_path / "served", verbose=False)  # the inference artifact
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(served.serve(x).numpy(), expected, rtol=1e-6)
    tf.saved_model.save(model, str(tmp_path / "whole"))  # every tracked variable
    checkpoint = tf.train.load_checkpoint(str(tmp_path / "whole" / "variables" / "variables"))
    # The optimizer's step, which the schedule reads: 2 epochs of 4 steps.
    assert checkpoint.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 8
