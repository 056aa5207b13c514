"""Schedules that count epochs against the epochs fit runs: the "fit" unit, and the warning."""

from __future__ import annotations

import json
import warnings

import keras
import numpy as np
import pytest

from keras_lrkit import (
    Chain,
    Constant,
    CosineDecay,
    EarlyStoppingWithBestRestore,
    HistoryPlotter,
    LearningRateLogger,
    LRKitWarning,
    StepDecay,
    Warmup,
)

from .helpers import tiny_model, tiny_regression_data

# 64 samples, validation_split=0.25: fit trains on 48, in 6 batches of 8, not 64 // 8 = 8.
X, Y = tiny_regression_data(64)


def fit(schedule, callbacks, epochs=5):
    model = tiny_model(optimizer=keras.optimizers.SGD(schedule))
    history = model.fit(X, Y, batch_size=8, epochs=epochs, validation_split=0.25, verbose=0,
                        callbacks=callbacks)  # fmt: skip
    return model, history


def test_a_wrong_steps_per_epoch_warns_once_naming_both_numbers(tmp_path):
    schedule = Warmup(StepDecay(0.1, [2, 4], steps_per_epoch=len(X) // 8), 1, steps_per_epoch=8)
    callbacks = [
        LearningRateLogger(),
        HistoryPlotter(tmp_path / "h.png"),
        EarlyStoppingWithBestRestore(),
    ]
    with pytest.warns(LRKitWarning) as caught:
        fit(schedule, callbacks, epochs=2)
    messages = [str(w.message) for w in caught if "steps_per_epoch=8" in str(w.message)]
    # Once for each schedule that counts 8 steps an epoch (the warmup and the decay), not once
    # for each of the three callbacks.
    assert len(messages) == 2
    assert all(
        "this fit runs 6 steps per epoch" in m and 'steps_per_epoch="fit"' in m for m in messages
    )
    assert {w.filename for w in caught if "steps_per_epoch=8" in str(w.message)} == {__file__}


def test_the_right_number_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", LRKitWarning)
        fit(StepDecay(0.1, [2], steps_per_epoch=6), [LearningRateLogger()], epochs=2)


def test_steps_per_epoch_fit_decays_at_fit_s_own_epochs(tmp_path):
    schedule = StepDecay(0.1, [2, 4], steps_per_epoch="fit")
    assert schedule.get_config()["steps_per_epoch"] == "fit"
    with warnings.catch_warnings():
        warnings.simplefilter("error", LRKitWarning)
        model, history = fit(schedule, [LearningRateLogger()])
    np.testing.assert_allclose(
        history.history["learning_rate"], [0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-6
    )
    assert schedule.steps_per_epoch == 6  # what this fit ran
    model.save(tmp_path / "m.keras")  # saved with the number, so a resumed run keeps its clock
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(schedule)))
    assert config["config"]["steps_per_epoch"] == 6
    loaded = keras.models.load_model(tmp_path / "m.keras")
    rate = float(keras.ops.convert_to_numpy(loaded.optimizer.learning_rate))
    assert rate == pytest.approx(float(schedule(30)))  # step 30 (5 epochs of 6): past both


def test_fit_units_inside_warmup_and_chain():
    inner = CosineDecay(0.1, 3, steps_per_epoch="fit")
    schedule = Chain(
        [Warmup(inner, 1, steps_per_epoch="fit"), Constant(0.001)], [4], steps_per_epoch="fit"
    )
    _, history = fit(schedule, [LearningRateLogger()], epochs=5)
    # Each epoch's last step s = 6 e + 5: warmup ramp over 6 steps, cosine over 18, constant from 24.
    last = 6 * np.arange(5) + 5
    expected = np.where(
        last < 6, 0.1 * last / 6,
        np.where(last < 24, 0.05 * (1 + np.cos(np.pi * np.minimum(last - 6, 18) / 18)), 0.001),
    )  # fmt: skip
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-5, atol=1e-9)
    assert (inner.steps_per_epoch, schedule.steps_per_epoch) == (6, 6)


def test_fit_units_without_a_keras_lrkit_callback_is_a_clear_error():
    with pytest.raises(ValueError, match=r"steps_per_epoch=.fit.\) learns its steps per epoch"):
        fit(StepDecay(0.1, [2], steps_per_epoch="fit"), [], epochs=1)


def test_the_value_at_step_zero_is_known_before_fit():
    # Warmup needs the wrapped schedule's first value when it is built.
    s = Warmup(StepDecay(0.1, [0, 3], steps_per_epoch="fit"), 2)
    assert s._ramp_end == pytest.approx(0.01)
