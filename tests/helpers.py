"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()


def requires_tensorflow(reason: str):
    """Skip under the JAX and PyTorch backends, saying why."""
    return pytest.mark.skipif(BACKEND != "tensorflow", reason=f"TensorFlow-only: {reason}")


def tiny_regression_data(n: int = 64, features: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    w = rng.normal(size=(features, 1)).astype("float32")
    y = (x @ w + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def tiny_model(features: int = 4, optimizer=None, **compile_kwargs):
    model = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.01), loss="mse", **compile_kwargs)
    return model


def batchnorm_model(features: int = 4, outputs: int = 1):
    """Dense, BatchNormalization, Dense: trainable weights and non-trainable statistics."""
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(outputs),
        ]
    )


class Inject(keras.callbacks.Callback):
    """Overwrite logs[key] with a scripted value each epoch (placed before the callback under test)."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


def probe(rate, jit_compile=False, **optimizer_kwargs):
    """A model whose only weight moves by exactly -lr per update (the loss is the prediction)."""
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    model.compile(keras.optimizers.SGD(rate, **optimizer_kwargs),
                  loss=lambda y_true, y_pred: keras.ops.mean(y_pred), jit_compile=jit_compile)  # fmt: skip
    return model


def weight(model):
    """The probe's one weight: minus the sum of the rates its updates used."""
    return float(keras.ops.convert_to_numpy(model.layers[0].kernel)[0, 0])


def compiled(schedule):
    """``schedule`` as a compiled train step calls it: tf.function(jit_compile=True), jax.jit, or eager torch."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(schedule, jit_compile=True)
    if BACKEND == "jax":
        import jax

        return jax.jit(schedule)
    return schedule  # PyTorch: eager, as its train step
