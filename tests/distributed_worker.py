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
    Chain,
    Constant,
    CosineDecay,
    EarlyStoppingWithBestRestore,
    HistoryPlotter,
    InverseSqrtDecay,
    LearningRateLogger,
    LinearDecay,
    ReduceOnPlateau,
    StepDecay,
    Warmup,
)

# Scripted validation values: improves until epoch 2, then worse: stops after epoch 4 (patience 2).
VAL = [1.0, 0.8, 0.7, 0.75, 0.9, 0.95]
# A second scripted value for ReduceOnPlateau (patience 1): reductions after epochs 1 and 2.
PLATEAU = [1.0, 1.0, 1.0, 0.5, 0.4, 0.3]
EPOCHS = len(VAL)
GLOBAL_BATCH = 16


class Script(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        logs["val_score"] = VAL[epoch]
        logs["val_plateau"] = PLATEAU[epoch]


class RecordWeights(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.by_epoch = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch] = [np.array(w, copy=True) for w in self.model.get_weights()]


def data():
    """128 samples: 8 steps of the global batch of 16 per epoch."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1)) + 0.1 * rng.normal(size=(128, 1))).astype("float32")
    return x, y


STEPS = 128 // GLOBAL_BATCH  # steps per epoch


def schedules():
    """Every keras_lrkit schedule, in epoch units, and a float rate (multi-worker runs use the first)."""
    return {
        "warmup_step": Warmup(
            StepDecay(0.05, [2, 4], steps_per_epoch=STEPS), 1, steps_per_epoch=STEPS
        ),
        "step_every": StepDecay(0.05, every=2, decrement=0.01, steps_per_epoch=STEPS),
        "cosine": CosineDecay(0.05, 5, min_learning_rate=0.001, steps_per_epoch=STEPS),
        "linear": LinearDecay(0.05, 5, steps_per_epoch=STEPS),
        "inverse_sqrt": InverseSqrtDecay(0.05, timescale=1, steps_per_epoch=STEPS),
        "constant": Constant(0.02),
        "chain": Chain(
            [Constant(0.05), CosineDecay(0.05, 3, steps_per_epoch=STEPS)],
            [2],
            steps_per_epoch=STEPS,
        ),
        "float": 0.02,
    }


def build(schedule):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)]
    )
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
    """(a function giving the scope to build a model in, the number of replicas)."""
    if MODE in ("mirrored", "multi_worker"):
        import tensorflow as tf

        if MODE == "mirrored":
            strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        else:
            strategy = _MultiWorkerMirroredStrategy()
        return strategy.scope, strategy.num_replicas_in_sync
    if MODE == "jax_data_parallel":
        devices = keras.distribution.list_devices("cpu")
        assert len(devices) == 2, devices
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext, len(devices)
    return contextlib.nullcontext, 1


def train(schedule, scope, output):
    with scope():
        model = build(schedule)
    logger = LearningRateLogger(per_batch=True)
    stop = EarlyStoppingWithBestRestore(
        "val_score", mode="min", patience=2, checkpoint_path=os.path.join(output, "best.weights.h5")
    )
    plotter = HistoryPlotter(
        os.path.join(output, "history.png"), csv_path=os.path.join(output, "history.csv")
    )
    reduce = ReduceOnPlateau("val_plateau", mode="min", factor=0.5, patience=1)
    record = RecordWeights()
    x, y = data()
    history = model.fit(
        x, y, batch_size=GLOBAL_BATCH, epochs=EPOCHS, shuffle=False, verbose=0,
        callbacks=[logger, Script(), stop, reduce, plotter, record],
    )  # fmt: skip
    best = record.by_epoch[stop.best_epoch]
    return {
        "learning_rate": history.history["learning_rate"],
        "batch_learning_rates": logger.batch_learning_rates,
        "stopped_epoch": stop.stopped_epoch,
        "best_epoch": stop.best_epoch,
        "stop_reason": stop.stop_reason,
        "reductions": [list(r) for r in reduce.reductions],
        "epochs_run": len(history.epoch),
        "weights": [w.tolist() for w in model.get_weights()],
        "restored_equals_best": all(
            np.array_equal(a, b) for a, b in zip(model.get_weights(), best)
        ),
        "files": sorted(os.listdir(output)),
    }


def main():
    scope, replicas = distribution()
    runs = {}
    names = list(schedules())[:1] if MODE == "multi_worker" else list(schedules())
    for name in names:
        output = os.path.join(OUTPUT, name)
        os.makedirs(output, exist_ok=True)
        runs[name] = train(schedules()[name], scope, output)
    with open(RESULT, "w") as f:
        json.dump({"mode": MODE, "replicas": replicas, "runs": runs}, f)


if __name__ == "__main__":
    main()
