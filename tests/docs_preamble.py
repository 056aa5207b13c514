"""What the documentation's examples take as given, small enough for the tests.

The guides write ``make_model()`` for "your model" and ``x_train``, ``y_train``,
``x_val``, ``y_val`` (and ``x``, ``y``) for "your data"; these definitions run
before a page's examples in tests/test_docs.py, so that every example runs as
written. A page that defines a name itself overrides it.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_lrkit import StepDecay  # noqa: E402

_rng = np.random.default_rng(0)
x_train = _rng.normal(size=(512, 8)).astype("float32")
y_train = (x_train[:, 0] > 0).astype("int32") + 2 * (x_train[:, 1] > 0).astype("int32")
x_val, y_val = x_train[:128], y_train[:128]
x, y = x_train, y_train


def make_model() -> keras.Model:
    """An uncompiled classifier of the data above (4 classes)."""
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(4, activation="softmax")])  # fmt: skip


schedule = StepDecay(0.1, [30, 60, 90], steps_per_epoch="fit")
model = make_model()
model.compile(keras.optimizers.SGD(schedule, momentum=0.9), "sparse_categorical_crossentropy",
              metrics=["accuracy"])  # fmt: skip
