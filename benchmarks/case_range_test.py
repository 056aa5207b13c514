"""Case 8: does the range test's suggestion train? Each rule's rate against a grid of rates.

For each of eleven small setups (CNN, MLP, GRU and a 1-D ResNet; SGD with
momentum 0.9 and Adam; with and without BatchNorm; MNIST-1D and
scikit-learn's digits) a fresh model runs ``find_learning_rate`` with its
defaults (1e-7 to 10, 300 steps; batch 64), then trains for 5 epochs at each
rule's suggestion and at every rate of a log grid (four per decade, 10^-3.5 to
10^0.75). Every accuracy is the final validation accuracy averaged over two
seeds (initial weights and batch order; the same two for every rate). The
score of a rule on a setup is its accuracy over the grid's best; a diverged
run (a non-finite loss, or chance accuracy) scores what it reached. The default rule must reach
0.9x on every setup where it suggests a rate.

It also measures how far the smoothed loss strays from the raw losses it
smooths, in pixels of ``result.plot()``'s figure: the largest median of
(raw - smoothed) over 9 consecutive steps before training broke, against the
same for fastai's moving average (beta 0.98), which trails the loss, and for
noise alone around an exact curve.

    python benchmarks/run.py --cases 8          # the full table (about 40 min on 2 cores)
"""

from __future__ import annotations

import math

import numpy as np
from harness import row

import keras_lrkit as lrk

RULES = lrk.LRFinderResult.RULES
DEFAULT_RULE = RULES[0]

EPOCHS, BATCH, SEEDS = 5, 64, (0, 1)
GRID = [10.0**e for e in np.arange(-3.5, 0.76, 0.25)]
SETUPS = {
    # name: (data, model, BatchNorm, optimizer)
    "CNN, MNIST-1D, SGD": ("mnist1d", "cnn", False, "sgd"),
    "CNN, MNIST-1D, Adam": ("mnist1d", "cnn", False, "adam"),
    "MLP, MNIST-1D, SGD": ("mnist1d", "mlp", False, "sgd"),
    "MLP, MNIST-1D, Adam": ("mnist1d", "mlp", False, "adam"),
    "MLP+BN, MNIST-1D, SGD": ("mnist1d", "mlp", True, "sgd"),
    "ResNet-8 (BN), MNIST-1D, SGD": ("mnist1d", "resnet", True, "sgd"),
    "GRU, MNIST-1D, Adam": ("mnist1d", "gru", False, "adam"),
    "CNN+BN, digits, SGD": ("digits", "cnn", True, "sgd"),
    "CNN, digits, Adam": ("digits", "cnn", False, "adam"),
    "MLP, digits, SGD": ("digits", "mlp", False, "sgd"),
    "MLP+BN, digits, Adam": ("digits", "mlp", True, "adam"),
}


def load(name: str, max_samples: int | None = None) -> dict:
    """{"train", "val"}: MNIST-1D (generated offline) or the digits, as (n, length, 1) sequences."""
    if name == "mnist1d":
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.seed = 42
        data = make_dataset(args)
        x, y = data["x"].astype("float32")[..., None], data["y"].astype("int32")
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        order = np.random.default_rng(0).permutation(len(digits.target))
        x = (digits.images[order] / 16.0).astype("float32").reshape(-1, 64, 1)
        y = digits.target[order].astype("int32")
    if max_samples:
        x, y = x[:max_samples], y[:max_samples]
    n_val = len(x) // 5
    return {"train": (x[n_val:], y[n_val:]), "val": (x[:n_val], y[:n_val])}


def build(kind: str, batch_norm: bool, shape: tuple):
    import keras

    layers = keras.layers
    if kind == "resnet":
        return _resnet8(shape)
    stack = [keras.Input(shape)]
    if kind == "gru":
        stack.append(layers.GRU(64))
    for _ in range(2 if kind in ("cnn", "mlp") else 0):
        if kind == "cnn":
            stack.append(layers.Conv1D(32, 5, strides=2, padding="same", use_bias=not batch_norm))
        else:
            stack += [layers.Flatten()] if len(stack) == 1 else []
            stack.append(layers.Dense(128, use_bias=not batch_norm))
        stack += [layers.BatchNormalization()] if batch_norm else []
        stack.append(layers.ReLU())
    stack += [layers.Flatten()] if kind == "cnn" else []
    stack.append(layers.Dense(10, activation="softmax"))
    return keras.Sequential(stack)


def _resnet8(shape):
    """He et al.'s CIFAR ResNet, 1-D, depth 8 (one basic block of 16, 32, 64 channels)."""
    import keras

    layers = keras.layers

    def conv_bn(x, filters, stride):
        x = layers.Conv1D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        return layers.BatchNormalization(momentum=0.9)(x)

    inputs = keras.Input(shape)
    x = layers.ReLU()(conv_bn(inputs, 16, 1))
    for filters, stride in [(16, 1), (32, 2), (64, 2)]:
        y = conv_bn(layers.ReLU()(conv_bn(x, filters, stride)), filters, 1)
        shortcut = x if stride == 1 else conv_bn(x, filters, stride)
        x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def fresh(setup: str, data: dict, rate: float, seed: int = 0):
    import keras

    _, kind, batch_norm, optimizer = SETUPS[setup]
    keras.utils.set_random_seed(seed)
    model = build(kind, batch_norm, data["train"][0].shape[1:])
    opt = (
        keras.optimizers.SGD(rate, momentum=0.9)
        if optimizer == "sgd"
        else keras.optimizers.Adam(rate)
    )
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def accuracy(setup: str, data: dict, rate: float, epochs: int = EPOCHS, seeds=SEEDS) -> float:
    """Final validation accuracy after ``epochs`` at ``rate``, the mean over ``seeds`` (each seed
    its own initial weights and batch order, the same for every rate)."""
    (x, y), (x_val, y_val) = data["train"], data["val"]
    values = []
    for seed in seeds:
        model = fresh(setup, data, rate, seed)
        history = model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0,
                            validation_data=(x_val, y_val))  # fmt: skip
        value = history.history["val_accuracy"][-1]
        values.append(float(value) if np.isfinite(value) else 0.0)
    return float(np.mean(values))


def strays(result) -> tuple[float, float, float]:
    """How far the smoothed loss strays from the losses, in pixels of result.plot()'s figure.

    The largest median of (loss - smoothed loss) over 9 consecutive steps before training
    broke (a median, so that one bad batch, which the curve rightly ignores, does not
    count): for keras_lrkit's curve, for fastai's moving average (beta 0.98,
    bias-corrected), and for noise alone: the largest such median that the batch losses'
    own scatter gives around a curve that is exactly right (sigma from step-to-step
    differences; the mean over 2,000 draws).
    """
    figure = result.plot()
    ax = figure.axes[0]
    low, high = ax.get_ylim()
    per_unit = ax.get_window_extent().height / (high - low)
    usable = result.read_steps
    if usable is None:  # the loss never fell: no curve to compare
        return math.nan, math.nan, math.nan
    raw = result.losses[: usable[1]]
    average, moving = 0.0, []
    for i, loss in enumerate(raw):
        average = 0.98 * average + 0.02 * loss
        moving.append(average / (1 - 0.98 ** (i + 1)))

    def worst(gaps):
        if len(gaps) < 9:
            return 0.0
        medians = np.median(np.lib.stride_tricks.sliding_window_view(gaps, 9), axis=-1)
        return float(np.max(np.abs(medians)) * per_unit)

    sigma = 1.4826 * np.median(np.abs(np.diff(raw))) / np.sqrt(2)
    draws = np.random.default_rng(0).normal(0, sigma, (2000, len(raw)))
    noise = float(np.mean([worst(d) for d in draws]))
    smoothed = result.smoothed_losses[: len(raw)]
    return worst(raw - smoothed), worst(raw - np.asarray(moving)), noise


def measure(setup: str, data: dict, grid=GRID, epochs: int = EPOCHS, num_steps: int = 300,
            seeds=SEEDS) -> dict:  # fmt: skip
    """One setup's line of the table."""
    x, y = data["train"]
    result = lrk.find_learning_rate(fresh(setup, data, 0.01), x, y, batch_size=BATCH,
                                    num_steps=num_steps, verbose=0)  # fmt: skip
    scores = {rate: accuracy(setup, data, rate, epochs, seeds) for rate in grid}
    best_rate = max(scores, key=scores.get)
    rules = {}
    for rule in RULES:
        rate = result.suggest(rule)
        rules[rule] = (rate, None if rate is None else accuracy(setup, data, rate, epochs, seeds))
    ours, moving, noise = strays(result)
    return {"grid": scores, "best_rate": best_rate, "best": scores[best_rate], "rules": rules,
            "stray_px": ours, "moving_average_stray_px": moving, "noise_px": noise}  # fmt: skip


def run(quick: bool, repeats: int) -> list:
    setups = list(SETUPS)[:2] if quick else list(SETUPS)
    grid, epochs = (GRID[::6], 1) if quick else (GRID, EPOCHS)
    cache: dict = {}
    rows = []
    for setup in setups:
        name = SETUPS[setup][0]
        if name not in cache:
            cache[name] = load(name, max_samples=600 if quick else None)
        line = measure(setup, cache[name], grid, epochs, num_steps=30 if quick else 300,
                       seeds=SEEDS[:1] if quick else SEEDS)  # fmt: skip
        for rule, (rate, acc) in line["rules"].items():
            score = None if acc is None else round(acc / line["best"], 3)
            rows.append(row(8, f"{setup}: {rule}", score, "x grid best",
                            target=">= 0.9" if rule == DEFAULT_RULE else None,
                            met=None if rule != DEFAULT_RULE or score is None else score >= 0.9,
                            rate=rate, accuracy=acc, grid_best=line["best"],
                            grid_best_rate=line["best_rate"]))  # fmt: skip
        rows.append(row(8, f"{setup}: smoothed - raw, largest 9-step median", round(line["stray_px"], 1),
                        "px", moving_average_px=round(line["moving_average_stray_px"], 1),
                        noise_px=round(line["noise_px"], 1)))  # fmt: skip
    return rows
