"""LearningRateLogger: the rate the optimizer used, in History and CSVLogger."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

import keras_lrkit
from keras_lrkit import CosineDecay, LearningRateLogger, StepDecay

from .helpers import BACKEND, tiny_model, tiny_regression_data


def fit(optimizer, epochs, callbacks, n=32, batch_size=8):
    x, y = tiny_regression_data(n)
    model = tiny_model(optimizer=optimizer)
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=callbacks)


def test_step_decay_across_its_milestones():
    spe = 4  # 32 samples, batch 8
    logger = LearningRateLogger()
    history = fit(keras.optimizers.SGD(StepDecay(0.1, [2, 4], steps_per_epoch=spe)), 6, [logger])
    np.testing.assert_allclose(
        history.history["learning_rate"], [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6
    )


def test_value_is_the_schedule_at_each_epochs_last_step():
    spe, total = 4, 20
    history = fit(keras.optimizers.Adam(CosineDecay(0.01, total)), 5, [LearningRateLogger()])
    last_steps = np.arange(1, 6) * spe - 1
    expected = 0.01 * 0.5 * (1 + np.cos(np.pi * last_steps / total))
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-5)
    assert all(isinstance(v, float) for v in history.history["learning_rate"])


def test_float_rate():
    history = fit(keras.optimizers.SGD(0.05), 2, [LearningRateLogger()])
    np.testing.assert_allclose(history.history["learning_rate"], [0.05, 0.05], rtol=1e-6)


def test_float_rate_changed_by_another_callback():
    # Keras's LearningRateScheduler assigns the float rate's variable each epoch.
    halve = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch)
    history = fit(keras.optimizers.SGD(0.1), 3, [halve, LearningRateLogger()])
    np.testing.assert_allclose(history.history["learning_rate"], [0.1, 0.05, 0.025], rtol=1e-6)


def test_loss_scale_optimizer_reports_the_inner_rate():
    spe = 4
    inner = keras.optimizers.SGD(StepDecay(0.1, [1], steps_per_epoch=spe))
    optimizer = keras.optimizers.LossScaleOptimizer(inner)
    history = fit(optimizer, 2, [LearningRateLogger()])
    np.testing.assert_allclose(history.history["learning_rate"], [0.1, 0.01], rtol=1e-6)
    history = fit(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.05)), 1, [LearningRateLogger()]
    )
    np.testing.assert_allclose(history.history["learning_rate"], [0.05], rtol=1e-6)


def test_per_batch_keeps_every_batch():
    total = 12  # 3 epochs of 4 steps
    logger = LearningRateLogger(per_batch=True)
    fit(keras.optimizers.SGD(CosineDecay(0.1, total, min_learning_rate=0.01)), 3, [logger])
    steps = np.arange(12)
    expected = 0.01 + 0.09 * 0.5 * (1 + np.cos(np.pi * steps / total))
    np.testing.assert_allclose(logger.batch_learning_rates, expected, rtol=1e-5)


def test_csv_logger_after_it_records_the_rate(tmp_path):
    path = tmp_path / "log.csv"
    schedule = StepDecay(0.1, [1], steps_per_epoch=4)
    fit(
        keras.optimizers.SGD(schedule),
        3,
        [LearningRateLogger(), keras.callbacks.CSVLogger(str(path))],
    )
    with open(path) as f:
        rows = list(csv.DictReader(f))
    np.testing.assert_allclose(
        [float(r["learning_rate"]) for r in rows], [0.1, 0.01, 0.01], rtol=1e-6
    )


def test_bad_argument():
    with pytest.raises(ValueError, match="`per_batch`"):
        LearningRateLogger(per_batch="yes")


def tensorboard_scalars(log_dir, tag):
    """{step: value} of one scalar, read back from TensorBoard's event files."""
    import glob

    import tensorflow as tf

    values = {}
    for path in sorted(glob.glob(str(log_dir / "train" / "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


@pytest.mark.parametrize("order", ["logger_first", "tensorboard_first", "no_logger"])
def test_keras_lrkit_tensorboard_records_the_rate_each_epoch_used(tmp_path, order):
    pytest.importorskip("tensorflow")  # Keras's TensorBoard writes through tf.summary
    logger = LearningRateLogger()
    board = keras_lrkit.TensorBoard(str(tmp_path))
    csv_log = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    callbacks = {
        "logger_first": [logger, board, csv_log],
        "tensorboard_first": [board, logger, csv_log],
        "no_logger": [board, logger],  # TensorBoard first: it reads the optimizer itself
    }[order]
    optimizer = keras.optimizers.SGD(StepDecay(0.1, [2, 4], steps_per_epoch=4))
    history = fit(optimizer, 6, callbacks)
    expected = [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]  # the rate of each epoch's batches
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-6)
    board_rates = tensorboard_scalars(tmp_path, "epoch_learning_rate")
    np.testing.assert_allclose([board_rates[e] for e in range(6)], expected, rtol=1e-6)
    if order != "no_logger":
        with open(tmp_path / "log.csv") as f:
            rows = list(csv.DictReader(f))
        np.testing.assert_allclose([float(r["learning_rate"]) for r in rows], expected, rtol=1e-6)


def test_keras_s_own_tensorboard_is_left_as_keras_made_it_even_beside_a_logger(tmp_path):
    pytest.importorskip("tensorflow")
    board = keras.callbacks.TensorBoard(str(tmp_path))
    fit(keras.optimizers.SGD(StepDecay(0.1, [2], steps_per_epoch=4)), 3,
        [LearningRateLogger(), board])  # fmt: skip
    # Keras's own reading: the optimizer's rate after the epoch, the next step's.
    rates = tensorboard_scalars(tmp_path, "epoch_learning_rate")
    np.testing.assert_allclose([rates[e] for e in range(3)], [0.1, 0.01, 0.01], rtol=1e-6)


@pytest.mark.skipif(BACKEND == "torch", reason="Keras runs one step per execution on PyTorch")
def test_per_batch_with_steps_per_execution_never_reads_past_the_epoch():
    # 4 batches an epoch run 3 at a time: Keras reports batches 2 and 5, the second
    # execution running one batch only (step 3 of the epoch, not step 5).
    x, y = tiny_regression_data(32)
    model = tiny_model(optimizer=keras.optimizers.SGD(StepDecay(0.1, [1, 2], steps_per_epoch=4)))
    model.compile(model.optimizer, "mse", steps_per_execution=3)
    logger = LearningRateLogger(per_batch=True)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[logger])
    # Each execution's last step: 2 and 3 in epoch 0, 6 and 7, then 10 and 11.
    expected_steps = np.array([2, 3, 6, 7, 10, 11])
    expected = 0.1 * 0.1 ** ((expected_steps >= 4).astype(int) + (expected_steps >= 8))
    np.testing.assert_allclose(logger.batch_learning_rates, expected, rtol=1e-6)
    np.testing.assert_allclose(history.history["learning_rate"], expected[1::2], rtol=1e-6)
