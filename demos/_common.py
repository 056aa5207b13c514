"""What the demos share: the embedded digits data and the models. Public API only."""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors in one line (``lrkit demo resnet: error: ...``), not the usage block."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def argument_parser(doc: str, **kwargs) -> argparse.ArgumentParser:
    """The demo's parser: its docstring's first paragraph as the description.

    Run by ``lrkit demo NAME``, the demo goes by that name in its messages
    (the command sets ``LRKIT_DEMO``); run as a script, by its file's name.
    """
    prog = os.environ.get("LRKIT_DEMO") or None
    return _OneLineParser(prog=prog, description=doc.split("\n\n")[0], **kwargs)


def load_digits_split(
    seed: int = 0, validation_fraction: float = 0.2, max_samples: int | None = None
):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download), split for validation.

    Returns ``(x_train, y_train), (x_val, y_val)`` with images as float32
    ``(n, 8, 8, 1)`` in [0, 1] and integer labels 0-9.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(x))
    if max_samples is not None:
        order = order[:max_samples]
    x, y = x[order], y[order]
    n_val = max(1, int(round(len(x) * validation_fraction)))
    return (x[n_val:], y[n_val:]), (x[:n_val], y[:n_val])


def load_cifar10():
    """CIFAR-10 through keras.datasets (downloads on first use)."""
    (x_train, y_train), (x_val, y_val) = keras.datasets.cifar10.load_data()
    return (
        (x_train.astype("float32") / 255.0, y_train.ravel().astype("int32")),
        (x_val.astype("float32") / 255.0, y_val.ravel().astype("int32")),
    )


def _conv(filters: int, stride: int, weight_decay: float) -> keras.layers.Layer:
    return keras.layers.Conv2D(
        filters,
        3,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=keras.regularizers.L2(weight_decay / 2) if weight_decay else None,
    )


def _basic_block(x, filters: int, stride: int, weight_decay: float):
    """Two 3x3 convolutions with an identity shortcut (He et al. 2016, option A)."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        # Option A: subsample, then pad the new channels with zeros. No parameters.
        shortcut = keras.layers.MaxPooling2D(pool_size=1, strides=stride)(x)
        zeros = keras.layers.Rescaling(0.0)(shortcut)
        shortcut = keras.layers.Concatenate()([shortcut] + [zeros] * (filters // x.shape[-1] - 1))
    y = _conv(filters, stride, weight_decay)(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU()(y)
    y = _conv(filters, 1, weight_decay)(y)
    y = keras.layers.BatchNormalization()(y)
    return keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))


def build_resnet(
    input_shape, classes: int = 10, depth: int = 20, weight_decay: float = 1e-4
) -> keras.Model:
    """The CIFAR ResNet of He et al. (2016), section 4.2: depth 6n + 2.

    A 3x3 convolution with 16 filters, then three stages of n basic blocks with
    16, 32 and 64 filters (the feature map halves between stages), global
    average pooling and a softmax layer. ``weight_decay`` is the coefficient of
    the paper's (and torch SGD's) coupled decay: an L2 penalty of
    ``weight_decay / 2 * ||w||^2`` on every kernel.
    """
    if (depth - 2) % 6 != 0 or depth < 8:
        raise ValueError(
            f"Argument `depth` must be 6n + 2 (8, 14, 20, 32, 44, 56, 110). Received: depth={depth}"
        )
    blocks = (depth - 2) // 6
    inputs = keras.Input(input_shape)
    x = _conv(16, 1, weight_decay)(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, filters, stride, weight_decay)
    x = keras.layers.GlobalAveragePooling2D()(x)
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    outputs = keras.layers.Dense(classes, activation="softmax", kernel_regularizer=regularizer)(x)
    return keras.Model(inputs, outputs, name=f"resnet{depth}")


def build_mlp(input_shape, classes: int = 10, width: int = 256, depth: int = 2) -> keras.Model:
    layers = [keras.Input(input_shape), keras.layers.Flatten()]
    layers += [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    layers.append(keras.layers.Dense(classes, activation="softmax"))
    return keras.Sequential(layers)


def print_table(headers, rows) -> None:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for i, row in enumerate(cells):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
