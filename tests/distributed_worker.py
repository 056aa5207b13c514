"""Trains one small model with every keras_lrkit callback and reports what happened, as JSON.

Run by tests/test_distribute.py in fresh processes, since device layouts
(logical CPUs, XLA host devices, TF_CONFIG) must be set before TensorFlow or
JAX starts:

    python tests/distributed_worker.py MODE OUTPUT_DIR RESULT_JSON

MODE is "single" (one device), "mirrored" (tf.distribute.MirroredStrategy
over 2 logical CPUs), "multi_worker" (MultiWorkerMirroredStrategy; TF_CONFIG
set by the caller) or "jax_data_parallel" (keras.distribution.DataParallel
over 2 XLA host devices; XLA_FLAGS set by the caller).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODE, OUTPUT, RESULT = sys.argv[1], sys.argv[2], sys.argv[3]

if MODE == "mirrored":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_lrkit import (  # noqa: E402
    EarlyStoppingWithBestRestore,
    HistoryPlotter,
    LearningRateLogger,
    StepDecay,
    Warmup,
)

# Scripted validation values: improves until epoch 2, then worse: stops after epoch 4 (patience 2).
VAL = [1.0, 0.8, 0.7, 0.75, 0.9, 0.95]
EPOCHS = len(VAL)
GLOBAL_BATCH = 16


class Script(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        logs["val_score"] = VAL[epoch]


class RecordWeights(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.by_epoch = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch] = [np.array(w, copy=True) for w in self.model.get_weights()]


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1)) + 0.1 * rng.normal(size=(128, 1))).astype("float32")
    return x, y


def build():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)]
    )
    steps = len(data()[0]) // GLOBAL_BATCH
    schedule = Warmup(StepDecay(0.05, [2, 4], steps_per_epoch=steps), 1, steps_per_epoch=steps)
    model.compile(keras.optimizers.SGD(schedule, momentum=0.9), "mse")
    return model


def _MultiWorkerMirroredStrategy():
    """MultiWorkerMirroredStrategy whose reduce() takes a nest, as Keras 3's fit needs.

    Keras 3 reduces a whole (x, y) batch in one ``strategy.reduce`` call when it
    first builds the model, and asks for ``axis=0`` on per-replica scalars; the
    collective strategy only reduces single values along existing axes
    (keras-team/keras#20585). Reducing leaf by leaf, scalars across replicas
    only, is the operation Keras means.
    """
    import tensorflow as tf

    class Strategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            def one(v):
                local = self.experimental_local_results(v)[0]
                # Keras asks for axis=0 on per-replica scalars (its metrics): the mean across replicas.
                return super(Strategy, self).reduce(
                    reduce_op, v, None if len(local.shape) == 0 else axis
                )

            return tf.nest.map_structure(one, value)

    return Strategy()


def distribution():
    """(the scope to build the model in, the number of replicas)."""
    if MODE in ("mirrored", "multi_worker"):
        import tensorflow as tf

        if MODE == "mirrored":
            strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        else:
            strategy = _MultiWorkerMirroredStrategy()
        return strategy.scope(), strategy.num_replicas_in_sync
    if MODE == "jax_data_parallel":
        devices = keras.distribution.list_devices("cpu")
        assert len(devices) == 2, devices
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext(), len(devices)
    return contextlib.nullcontext(), 1


def main():
    os.makedirs(OUTPUT, exist_ok=True)
    x, y = data()
    scope, replicas = distribution()
    with scope:
        model = build()
    logger = LearningRateLogger(per_batch=True)
    stop = EarlyStoppingWithBestRestore(
        "val_score", mode="min", patience=2, checkpoint_path=os.path.join(OUTPUT, "best.weights.h5")
    )
    plotter = HistoryPlotter(
        os.path.join(OUTPUT, "history.png"), csv_path=os.path.join(OUTPUT, "history.csv")
    )
    record = RecordWeights()
    history = model.fit(
        x, y, batch_size=GLOBAL_BATCH, epochs=EPOCHS, shuffle=False, verbose=0,
        callbacks=[logger, Script(), stop, plotter, record],
    )  # fmt: skip
    best = record.by_epoch[stop.best_epoch]
    restored_equals_best = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), best))
    result = {
        "mode": MODE,
        "replicas": replicas,
        "learning_rate": history.history["learning_rate"],
        "batch_learning_rates": logger.batch_learning_rates,
        "stopped_epoch": stop.stopped_epoch,
        "best_epoch": stop.best_epoch,
        "stop_reason": stop.stop_reason,
        "epochs_run": len(history.epoch),
        "weights": [w.tolist() for w in model.get_weights()],
        "restored_equals_best": restored_equals_best,
        "files": sorted(os.listdir(OUTPUT)),
    }
    with open(RESULT, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
