"""Case 2: the best-weight snapshot and its restore against Keras's EarlyStopping.

Keras copies every weight to host memory (``get_weights``) and back; the
snapshot stays on the device. A plain copy of the same bytes is the limit.
"""

from __future__ import annotations

import keras
import numpy as np
from harness import BACKEND, device_name, interleaved, row, sync

import keras_lrkit as lrk


def big_model(quick):
    if quick:
        return keras.Sequential(
            [
                keras.Input((256,)),
                keras.layers.Dense(1024),
                keras.layers.Dense(1024),
                keras.layers.Dense(10),
            ]
        )
    return keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))


def weights_bytes(model):
    return sum(
        int(np.prod(v.shape)) * np.dtype(keras.backend.standardize_dtype(v.dtype)).itemsize
        for v in model.weights
    )


def plain_copy(model):
    """The limit: one copy of the same number of bytes, in one buffer on the same device."""
    n = weights_bytes(model) // 4
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        device = model.weights[0].value.devices().pop()
        buffer = jax.device_put(jnp.zeros((n,), "float32"), device)
        copy = jax.jit(jnp.copy)
        sync(copy(buffer))
        return lambda: sync(copy(buffer))
    if BACKEND == "torch":
        import torch

        src = torch.zeros(n, dtype=torch.float32, device=model.weights[0].value.device)
        dst = torch.empty_like(src)
        return lambda: (dst.copy_(src), sync())
    src = np.zeros(n, "float32")
    dst = np.empty_like(src)
    return lambda: np.copyto(dst, src)


def run(quick: bool, repeats: int) -> list:
    model = big_model(quick)
    mb = weights_bytes(model) / 1e6
    ours = lrk.EarlyStoppingWithBestRestore("val_loss", patience=10**6)
    ours.set_model(model)
    ours.on_train_begin()
    theirs = keras.callbacks.EarlyStopping("val_loss", patience=10**6, restore_best_weights=True)
    theirs.set_model(model)
    theirs.on_train_begin()
    epoch = {"ours": 0, "keras": 0}
    trained = model.get_weights()

    def weights_ready():
        """Wait until the model's weights are on the device (JAX's transfers are asynchronous)."""
        sync([v.value for v in model.weights])

    def backup_ready():
        sync(ours._snapshot._impl._backup)

    def improve(callback, key, ready=None):
        def run():
            callback.on_epoch_end(
                epoch[key], {"val_loss": 1.0 / (epoch[key] + 1)}
            )  # always an improvement
            epoch[key] += 1
            if ready is not None:
                ready()

        return run

    def restore_ours():
        ours.on_train_end()  # restores the best weights; the backup stays for the next call
        weights_ready()

    def restore_keras():
        model.set_weights(theirs.best_weights)
        weights_ready()

    def train():
        """Untimed: the weights a training run leaves, in arrays of their own (as fit's are)."""
        model.set_weights(trained)
        weights_ready()

    improve(ours, "ours", backup_ready)()  # the first capture and restore compile the copies
    restore_ours()
    improve(theirs, "keras", sync)()
    copy = plain_copy(model)
    # Captures repeat in a run while restores happen once at its end, so each is
    # timed in its own steady state: captures back to back, each restore after the
    # weights were replaced as training replaces them.
    snapshot = {
        "lrkit": improve(ours, "ours", backup_ready),
        "keras": improve(theirs, "keras", sync),
        "copy": copy,
    }
    settle = {}
    if BACKEND == "jax":
        # JAX returns before the device has copied: the host's share is what the
        # training loop waits for. Each call starts and ends with the device idle.
        snapshot["lrkit, host only"] = improve(ours, "ours")
        settle = dict.fromkeys(snapshot, backup_ready)
    phases = {
        "snapshot": interleaved(snapshot, repeats, setup=settle),
        "restore": interleaved(
            {"lrkit": restore_ours, "keras": restore_keras, "copy": copy},
            repeats,
            setup={"lrkit": train, "keras": train},
        ),
    }
    on_gpu = device_name() != "cpu"
    out = []
    for what, medians in phases.items():
        lrkit_s, keras_s, copy_s = medians["lrkit"], medians["keras"], medians["copy"]
        speedup = keras_s / lrkit_s
        vs_copy = lrkit_s / copy_s
        target = ">= 10x faster than Keras" if on_gpu else ">= 1x (no slower than Keras)"
        out.append(row(2, f"{what} speed-up over Keras ({mb:.0f} MB)", round(speedup, 2), "x", target,
                       speedup >= (10 if on_gpu else 1), lrkit_ms=round(1000 * lrkit_s, 3), keras_ms=round(1000 * keras_s, 3)))  # fmt: skip
        out.append(row(2, f"{what} time / plain copy ({mb:.0f} MB)", round(vs_copy, 2), "x",
                       "<= 5x the device copy" if on_gpu else None, (vs_copy <= 5) if on_gpu else None,
                       copy_ms=round(1000 * copy_s, 3)))  # fmt: skip
        if "lrkit, host only" in medians:
            host_s = medians["lrkit, host only"]
            out.append(row(2, f"{what}: host's share (returns before the device finishes)",
                           round(host_s / lrkit_s, 2), "x", host_ms=round(1000 * host_s, 3),
                           note="of the whole snapshot time; what the training loop waits for"))  # fmt: skip
    return out
