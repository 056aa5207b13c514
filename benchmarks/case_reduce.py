"""Case 7: what a plateau reduction costs: epochs that reduce the rate at their end, against epochs that do not.

A 7-layer MLP trains with ``ReduceOnPlateau`` on a cosine schedule (and on a
float rate). In one variant the scripted ``val_x`` never improves, so every
epoch ends with a reduction (patience 1); in the other it improves every
epoch, so none does. The time is the whole fit of several epochs of one
model, after a warm-up fit (the train step traced, the schedule wrapped in
``Reduced``), the two variants interleaved. A reduction is an assignment to what the step
reads, so the target is <= 1.05x; rebuilding the train step at every
reduction (keras_lrkit before issue 21) measured 4.3x on TensorFlow, 9.2x with
``jit_compile=True`` and 28x on JAX.
"""

from __future__ import annotations

import keras
import numpy as np
from harness import BACKEND, interleaved, row

import keras_lrkit as lrk


class _Script(keras.callbacks.Callback):
    def __init__(self, improving: bool) -> None:
        super().__init__()
        self.improving = improving

    def on_epoch_end(self, epoch, logs=None):
        logs["val_x"] = 1.0 / (epoch + 1) if self.improving else 1.0


def _model(rate, jit_compile):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((32,))] + [keras.layers.Dense(64, activation="relu") for _ in range(6)]
    model = keras.Sequential([*layers, keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(rate), "mse", jit_compile=jit_compile)
    return model


def run(quick: bool, repeats: int) -> list:
    n, epochs = (256, 4) if quick else (8192, 6)  # 256 steps an epoch: still a small one
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 32)).astype("float32")
    y = rng.normal(size=(n, 1)).astype("float32")
    # TensorFlow: both; JAX: its compiled step (without jit_compile Keras runs JAX op by op);
    # PyTorch: its eager step.
    modes = {"tensorflow": [False, True], "jax": [True]}.get(BACKEND, [False])
    out = []
    for jit_compile in modes:
        for rate_name, make_rate in [("cosine", lambda: lrk.CosineDecay(0.01, 10**6)),
                                     ("float", lambda: 0.01)]:  # fmt: skip
            # One model for both variants: two models of the same code differ by up to ~10%
            # on a 2-core CPU (benchmarks/aa_spread.py), more than the 5% this asks to see.
            model = _model(make_rate(), jit_compile)

            def fit(improving, model=model):
                reduce = lrk.ReduceOnPlateau("val_x", factor=0.999, patience=1, mode="min")
                model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=False,
                          callbacks=[_Script(improving), reduce])  # fmt: skip

            fit(True)  # warm-up: the step traced, the schedule wrapped once
            fits = {
                "no reduction": lambda: fit(True),
                "a reduction every epoch": lambda: fit(False),
            }
            t = interleaved(fits, repeats)
            ratio = t["a reduction every epoch"] / t["no reduction"]
            name = f"{rate_name} rate{', jit_compile' if jit_compile else ''}: epochs that reduce vs not"
            per_reduction = (t["a reduction every epoch"] - t["no reduction"]) / epochs
            out.append(row(7, name, round(ratio, 3), "x", "<= 1.05x", ratio <= 1.05,
                           seconds_per_epoch=round(t["no reduction"] / epochs, 4),
                           ms_per_reduction=round(1000 * per_reduction, 2)))  # fmt: skip
    return out
