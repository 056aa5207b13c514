"""What the demos share: the data (MNIST-1D by default), the models, tables. Public API only."""

from __future__ import annotations

import os

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _args import argument_parser  # noqa: E402, F401  (the demos' parser, and the Agg backend)


def load_mnist1d(seed: int = 42):
    """MNIST-1D (Greydanus 2020), generated offline: ``(x, y), (x_test, y_test)``.

    ``mnist1d.data.make_dataset`` builds the data set from its templates (the
    paper's settings: 4,000 training and 1,000 test sequences of length 40, 10
    classes) in about a second, never downloading. The same seed gives the same
    bytes. Sequences come as float32 ``(n, 40, 1)``, labels as int32.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)
    x, x_test = (data[k].astype("float32")[..., None] for k in ("x", "x_test"))
    y, y_test = (data[k].astype("int32") for k in ("y", "y_test"))
    return (x, y), (x_test, y_test)


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


def load_cifar10(data_dir: str | None = None):
    """CIFAR-10 from its python-version archive: ``(x, y), (x_test, y_test)``.

    Read from ``data_dir`` (the ``cifar-10-python.tar.gz`` archive, or the
    ``cifar-10-batches-py`` folder it unpacks to) or, by default, from Keras's
    dataset cache (``~/.keras/datasets``), where ``keras.datasets.cifar10``
    leaves it; nothing is downloaded. Images as float32 ``(n, 32, 32, 3)`` in
    [0, 1], labels as int32.
    """
    import pickle
    import tarfile

    roots = (
        [data_dir] if data_dir else [os.path.join(os.path.expanduser("~"), ".keras", "datasets")]
    )
    folder = archive = None
    for root in roots:
        for name in (
            "cifar-10-batches-py",
            os.path.join("cifar-10-batches-py", "cifar-10-batches-py"),
        ):
            if os.path.isdir(os.path.join(root, name)):
                folder = os.path.join(root, name)
        for name in ("cifar-10-python.tar.gz", "cifar-10-batches-py.tar.gz"):
            if folder is None and os.path.isfile(os.path.join(root, name)):
                archive = os.path.join(root, name)
    if folder is None and archive is None:
        raise FileNotFoundError(
            f"CIFAR-10 is not in {roots[0]}: give --data-dir the folder holding "
            "cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) or "
            "cifar-10-batches-py/"
        )

    def batches(names):
        if folder is not None:
            for name in names:
                with open(os.path.join(folder, name), "rb") as f:
                    yield pickle.load(f, encoding="bytes")
        else:
            with tarfile.open(archive) as tar:
                members = {os.path.basename(m.name): m for m in tar.getmembers()}
                for name in names:
                    yield pickle.load(tar.extractfile(members[name]), encoding="bytes")

    def load(names):
        xs, ys = [], []
        for batch in batches(names):
            xs.append(np.asarray(batch[b"data"], dtype="uint8").reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[b"labels"], dtype="int32"))
        x = np.concatenate(xs).transpose(0, 2, 3, 1).astype("float32") / 255.0
        return x, np.concatenate(ys)

    return load([f"data_batch_{i}" for i in range(1, 6)]), load(["test_batch"])


def load_data(
    dataset: str = "mnist1d",
    *,
    validation_fraction: float = 0.1,
    max_samples: int | None = None,
    data_dir: str | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train", "val", "test"}: (x, y) splits of a data set; the validation split comes from training.

    The test split is set aside for the one report at the end; early stopping
    and model choice see the validation split only. The splits are the same
    for every seed of a demo (the data's own seed, 42 for MNIST-1D), so seeds
    vary the training alone.
    """
    if dataset == "mnist1d":
        (x, y), (x_test, y_test) = load_mnist1d()
    elif dataset == "digits":
        (x, y), (x_test, y_test) = load_digits_split(validation_fraction=0.2)
    elif dataset == "cifar10":
        (x, y), (x_test, y_test) = load_cifar10(data_dir)
    else:
        raise ValueError(f"unknown dataset {dataset!r}")
    if max_samples is not None:  # smoke tests: the first images, in every split
        x, y = x[:max_samples], y[:max_samples]
        x_test, y_test = x_test[: max_samples // 4 + 1], y_test[: max_samples // 4 + 1]
    n_val = max(1, int(round(len(x) * validation_fraction)))
    return {
        "train": (x[n_val:], y[n_val:]),
        "val": (x[:n_val], y[:n_val]),
        "test": (x_test, y_test),
    }


# Test accuracy on MNIST-1D as published: Greydanus & Kobak, "Scaling down deep learning
# with MNIST-1D" (ICML 2024; arXiv 2011.14439, 2020), table 1 (and the mnist1d README).
PAPER_TABLE = {
    "logistic regression": 0.32,
    "MLP": 0.68,
    "CNN": 0.94,
    "GRU": 0.91,
    "human expert": 0.96,
}


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its Student-t interval (the mean alone for one value)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    from scipy import stats

    half = (
        stats.t.ppf((1 + confidence) / 2, len(values) - 1)
        * values.std(ddof=1)
        / np.sqrt(len(values))
    )
    return mean, mean - half, mean + half


def _conv(rank: int, filters: int, stride: int, weight_decay: float) -> keras.layers.Layer:
    conv = keras.layers.Conv1D if rank == 1 else keras.layers.Conv2D
    return conv(
        filters,
        3,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=keras.regularizers.L2(weight_decay / 2) if weight_decay else None,
    )


def _batch_norm() -> keras.layers.Layer:
    # PyTorch's momentum (0.1 there is 0.9 here), which the ResNet recipe was tuned with.
    # Keras's default, 0.99, averages the statistics over about 100 steps: an epoch of
    # MNIST-1D or the digits is 25 steps, so for the first epochs the moving statistics
    # still describe the untrained network, and validation accuracy sat at chance (0.106,
    # val_loss 110) while training accuracy climbed.
    return keras.layers.BatchNormalization(momentum=0.9)


def _basic_block(x, rank: int, filters: int, stride: int, weight_decay: float):
    """Two 3-wide convolutions with an identity shortcut (He et al. 2016, option A)."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        # Option A: subsample, then pad the new channels with zeros. No parameters.
        pool = keras.layers.MaxPooling1D if rank == 1 else keras.layers.MaxPooling2D
        shortcut = pool(pool_size=1, strides=stride)(x)
        zeros = keras.layers.Rescaling(0.0)(shortcut)
        shortcut = keras.layers.Concatenate()([shortcut] + [zeros] * (filters // x.shape[-1] - 1))
    y = _conv(rank, filters, stride, weight_decay)(x)
    y = keras.layers.ReLU()(_batch_norm()(y))
    y = _conv(rank, filters, 1, weight_decay)(y)
    y = _batch_norm()(y)
    return keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))


def augment(x, shift: int, flip: bool = False):
    """Training-only augmentation on the symbolic input ``x``: random whole shifts of up to
    ``shift`` positions (a sequence repeats its edge, an image pads with zeros), and random
    horizontal flips of images. ``x`` itself where there is nothing to do. Keras's own layers,
    so a saved model loads without this module."""
    if len(x.shape) == 3:  # (length, channels): translate it as a one-pixel-wide image
        if not shift:
            return x
        length, channels = x.shape[1:]
        x = keras.layers.Reshape((length, 1, channels))(x)
        x = keras.layers.RandomTranslation((-shift / length, shift / length), 0.0,
                                           fill_mode="nearest", interpolation="nearest")(x)  # fmt: skip
        return keras.layers.Reshape((length, channels))(x)
    height, width = x.shape[1:3]
    if shift:
        x = keras.layers.RandomTranslation((-shift / height, shift / height),
                                           (-shift / width, shift / width),
                                           fill_mode="constant", interpolation="nearest")(x)  # fmt: skip
    return keras.layers.RandomFlip("horizontal")(x) if flip else x


def build_resnet(
    input_shape,
    classes: int = 10,
    depth: int = 20,
    weight_decay: float = 1e-4,
    width: int = 16,
    shift: int = 0,
    flip: bool = False,
) -> keras.Model:
    """The CIFAR ResNet of He et al. (2016), section 4.2, for images or for 1-D sequences.

    Depth 6n + 2: a 3-wide convolution with ``width`` filters, then three
    stages of n basic blocks (two convolutions, batch normalization, an
    identity shortcut) with ``width``, 2x and 4x filters, the map halving
    between stages, global average pooling and a softmax layer. An input of
    shape (length, channels) gets 1-D convolutions, (height, width, channels)
    2-D ones. ``weight_decay`` is the paper's (and torch SGD's) coupled decay:
    an L2 penalty of ``weight_decay / 2 * ||w||^2`` on every kernel.

    ``shift`` > 0 adds the paper's augmentation (``augment``), active in
    training only: each sample moves by a random whole number of positions in
    [-shift, shift] along every spatial axis (images pad with zeros, as the
    paper's 4-pixel padding and crop), and ``flip`` adds a random horizontal
    flip (for CIFAR-10, not for digits).
    """
    if (depth - 2) % 6 != 0 or depth < 8:
        raise ValueError(
            f"Argument `depth` must be 6n + 2 (8, 14, 20, 32, 44, 56, 110). Received: depth={depth}"
        )
    rank = len(input_shape) - 1
    blocks = (depth - 2) // 6
    inputs = keras.Input(input_shape)
    x = augment(inputs, shift, flip)
    x = _conv(rank, width, 1, weight_decay)(x)
    x = keras.layers.ReLU()(_batch_norm()(x))
    for stage, filters in enumerate((width, 2 * width, 4 * width)):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, rank, filters, stride, weight_decay)
    pooling = (
        keras.layers.GlobalAveragePooling1D if rank == 1 else keras.layers.GlobalAveragePooling2D
    )
    x = pooling()(x)
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    outputs = keras.layers.Dense(classes, activation="softmax", kernel_regularizer=regularizer)(x)
    return keras.Model(inputs, outputs, name=f"resnet{depth}")


def build_mlp(input_shape, classes: int = 10, width: int = 256, depth: int = 2) -> keras.Model:
    layers = [keras.Input(input_shape), keras.layers.Flatten()]
    layers += [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    layers.append(keras.layers.Dense(classes, activation="softmax"))
    return keras.Sequential(layers)


def marked_best_epoch(figure) -> int | None:
    """The epoch a keras_lrkit figure marks as the best ("best epoch N (lowest val_loss)" on its
    first panel)."""
    for line in figure.axes[0].get_lines():
        label = line.get_label()
        if label.startswith("best epoch ") and line.get_visible():
            return int(label.split()[2])
    return None


def print_table(headers, rows) -> None:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for i, row in enumerate(cells):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
