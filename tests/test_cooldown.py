"""CooldownOnPlateau: a stable rate until the run stops improving, then a cooldown and the stop."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_lrkit import (
    BackupAndRestore,
    Constant,
    Cooldown,
    CooldownOnPlateau,
    LearningRateLogger,
    WarmupStableDecay,
)

from .helpers import Inject, probe, weight

STEPS = 3  # per epoch: 12 samples in batches of 4
# Improves until epoch 2, then flat: with patience 2 the plateau is reached at epoch 4.
VALUES = [1.0, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]




def run(rate, extra=(), epochs=12, **kwargs):
    model = probe(rate)
    cool = CooldownOnPlateau("val_x", patience=2, length=3, mode="min", **kwargs)
    logger = LearningRateLogger(per_batch=True)
    x = np.ones((12, 1), "float32")
    history = model.fit(x, x, batch_size=4, epochs=epochs, verbose=0, shuffle=False,
                        callbacks=[Inject("val_x", VALUES), *extra, logger, cool])  # fmt: skip
    return model, cool, logger, history


def one_minus_sqrt(p):
    return 1 - np.sqrt(p)


def test_a_schedule_cools_down_step_by_step_from_the_epoch_after_the_plateau_then_stops():
    floor = 0.001
    model, cool, logger, history = run(WarmupStableDecay(0.1), min_learning_rate=floor)
    assert cool.cooldown_epoch == 5 and cool.stopped_epoch == 7 and history.epoch == list(range(8))
    t = np.arange(8 * STEPS)
    start, length = 5 * STEPS, 3 * STEPS
    p = np.clip((t - start) / length, 0, 1)
    expected = np.where(t < start, 0.1, floor + (0.1 - floor) * one_minus_sqrt(p))
    np.testing.assert_allclose(logger.batch_learning_rates, expected, rtol=1e-5)
    assert weight(model) == pytest.approx(-expected.sum(), rel=1e-5)  # the rates the steps used


def test_a_keras_file_saved_after_the_cooldown_loads_at_the_cooled_rate(tmp_path):
    model, cool, *_ = run(WarmupStableDecay(0.1), min_learning_rate=0.001)
    model.save(tmp_path / "cooled.keras")
    loaded = keras.models.load_model(tmp_path / "cooled.keras", compile=True,
                                     custom_objects={"<lambda>": lambda y, p: keras.ops.mean(p)},
                                     safe_mode=False)  # fmt: skip
    rate = loaded.optimizer._learning_rate
    assert isinstance(rate, Cooldown) and (rate.start, rate.length) == (15, 9)
    assert float(keras.ops.convert_to_numpy(loaded.optimizer.learning_rate)) == pytest.approx(0.001)


def test_a_float_rate_falls_once_an_epoch():
    model, cool, logger, history = run(0.1)
    expected = [0.1] * 5 + [0.1 * (1 - math.sqrt((k + 0.5) / 3)) for k in range(3)]
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-5)
    assert cool.stopped_epoch == 7


class Ask(keras.callbacks.Callback):
    def __init__(self, at, act):
        super().__init__()
        self.at, self.act = at, act

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            self.act()


@pytest.mark.parametrize("how", ["method", "file"])
def test_the_user_starts_the_cooldown_from_outside(tmp_path, how):
    trigger = tmp_path / "COOLDOWN"
    holder = {}
    act = (lambda: holder["cool"].start_cooldown()) if how == "method" else trigger.touch
    model = probe(Constant(0.1))
    cool = holder["cool"] = CooldownOnPlateau("val_x", patience=50, length=2, shape="linear",
                                              mode="min", trigger_file=trigger)  # fmt: skip
    x = np.ones((12, 1), "float32")
    history = model.fit(x, x, batch_size=4, epochs=20, verbose=0, shuffle=False,
                        callbacks=[Inject("val_x", [1.0 - 0.01 * e for e in range(20)]),
                                   Ask(1, act), cool])  # fmt: skip
    assert cool.cooldown_epoch == 2 and history.epoch == [0, 1, 2, 3]


def test_resumed_is_uninterrupted(tmp_path):
    straight_model, straight, logger, _ = run(WarmupStableDecay(0.1))

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 6:
                raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        run(WarmupStableDecay(0.1), extra=[BackupAndRestore(tmp_path / "b"), Crash()])
    model, cool, resumed_logger, history = run(WarmupStableDecay(0.1),
                                               extra=[BackupAndRestore(tmp_path / "b")])  # fmt: skip
    assert history.epoch == [6, 7]
    assert (cool.cooldown_epoch, cool.stopped_epoch, cool.best, cool.best_epoch) == (
        straight.cooldown_epoch, straight.stopped_epoch, straight.best, straight.best_epoch)
    assert weight(model) == weight(straight_model)  # bit for bit


@pytest.mark.parametrize(
    "name,make",
    [
        ("length", lambda: CooldownOnPlateau(length=0)),
        ("shape", lambda: CooldownOnPlateau(shape="sqrt")),
        ("min_learning_rate", lambda: CooldownOnPlateau(min_learning_rate=-1)),
        ("trigger_file", lambda: CooldownOnPlateau(trigger_file=3)),
        ("patience", lambda: CooldownOnPlateau(patience=-1)),
        ("length", lambda: Cooldown(Constant(0.1), 0)),
        ("start", lambda: Cooldown(Constant(0.1), 5, start=-1)),
    ],
)
def test_bad_arguments_name_the_argument(name, make):
    with pytest.raises(ValueError, match=f"Argument `{name}`"):
        make()


def test_a_callable_rate_is_refused_when_fit_begins():
    model = probe(lambda: 0.1)
    x = np.ones((12, 1), "float32")
    with pytest.raises(ValueError, match="learning_rate=<function"):
        model.fit(x, x, epochs=1, verbose=0, callbacks=[CooldownOnPlateau("loss")])
