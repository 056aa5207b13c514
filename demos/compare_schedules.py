"""Does SGD + momentum want a decaying rate, and Adam not? Five schedules, two optimizers, several seeds, on MNIST-1D.

The lecture's advice: SGD with momentum does better with a decaying rate,
while Adam (or RMSProp) often does fine with a constant one. This demo puts
numbers on it. A small CNN (three strided convolutions with batch
normalization, weight decay 5e-4, training sequences shifted by up to 3
positions) trains on MNIST-1D with SGD + momentum (rate 0.1) and with Adam
(1e-3), each under a constant rate, a step decay (/10 at half and three
quarters of the run), a cosine, a linear decay and an inverse square root,
``--seeds`` times (default 5, the same seeds in every cell). Each run keeps the
weights of its best validation epoch; test accuracy is measured once, at the
end, for those weights ("best") and for the last ones ("final"), beside the
training loss at the end (the lecture's reason for a decay: under a constant
rate the loss stays at the level its gradient noise allows). The table
gives the mean and a 95% interval over the seeds; the verdict compares each
decay with the constant rate, seed by seed, and says which differences are
larger than their interval and which are not.

The advice needs that noise. With ``--shift 0 --weight-decay 0`` the CNN
memorizes the 3,600 training sequences within the 30 epochs whatever the
schedule, the constant rate gets there fastest, and no decay beats it.

Writes compare_schedules.png (mean validation curves, and the rate at the
first step of each epoch) and results.json into the output folder.

    python demos/compare_schedules.py                 # its time: the README's table of demos
    python demos/compare_schedules.py --epochs 10 --seeds 2
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _args import argument_parser, check  # noqa: E402  (no Keras: bad arguments fail fast)

OPTIMIZERS = {"SGD+momentum": 0.1, "Adam": 1e-3}  # and their rates
DECAYS = ["step", "cosine", "linear", "inverse sqrt"]


def optimizer_of(name: str, schedule):
    import keras

    if name == "Adam":
        return keras.optimizers.Adam(schedule)
    return keras.optimizers.SGD(schedule, momentum=0.9)


def schedules(initial: float, epochs: int) -> dict:
    from keras_lrkit import Constant, CosineDecay, InverseSqrtDecay, LinearDecay, StepDecay

    fit = "fit"  # epochs of the steps fit runs
    return {
        "constant": Constant(initial),
        "step": StepDecay(
            initial, sorted({max(1, epochs // 2), max(2, epochs * 3 // 4)}), steps_per_epoch=fit
        ),  # fmt: skip
        "cosine": CosineDecay(initial, epochs, steps_per_epoch=fit),
        "linear": LinearDecay(initial, epochs, steps_per_epoch=fit),
        "inverse sqrt": InverseSqrtDecay(
            initial, timescale=max(1, epochs / 10), steps_per_epoch=fit
        ),
    }


def cnn(input_shape, shift: int = 0, weight_decay: float = 0.0, classes: int = 10):
    import keras
    from _common import augment

    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = augment(inputs, shift)
    l2 = (
        keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    )  # torch SGD's coupled decay
    for filters in (32, 64, 64):
        x = layers.Conv1D(
            filters, 5, strides=2, padding="same", use_bias=False, kernel_regularizer=l2
        )(x)
        x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
    outputs = layers.Dense(classes, activation="softmax", kernel_regularizer=l2)(
        layers.Flatten()(x)
    )
    return keras.Model(inputs, outputs)


def run(optimizer: str, name: str, seed: int, data: dict, args) -> dict:
    import keras

    from keras_lrkit import EarlyStoppingWithBestRestore

    class TestAtTheEnd(keras.callbacks.Callback):
        """Test accuracy of the last weights, before early stopping puts the best ones back."""

        def __init__(self, x, y):
            super().__init__()
            self.x, self.y, self.accuracy = x, y, None

        def on_train_end(self, logs=None):
            self.accuracy = float(self.model.evaluate(self.x, self.y, verbose=0)[1])

    epochs, batch_size = args.epochs, args.batch_size
    (x, y), (x_val, y_val), (x_test, y_test) = data["train"], data["val"], data["test"]
    keras.utils.set_random_seed(seed)  # the same weights and batches in every cell
    schedule = schedules(OPTIMIZERS[optimizer], epochs)[name]
    model = cnn(x.shape[1:], args.shift, args.weight_decay)
    model.compile(optimizer_of(optimizer, schedule), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])  # fmt: skip
    final = TestAtTheEnd(x_test, y_test)
    best = EarlyStoppingWithBestRestore(
        "val_accuracy", patience=epochs
    )  # keeps the best, never stops
    started = time.perf_counter()
    h = model.fit(x, y, validation_data=(x_val, y_val), batch_size=batch_size, epochs=epochs,
                  verbose=0, callbacks=[final, best]).history  # fmt: skip
    seconds = time.perf_counter() - started
    steps = np.arange(epochs) * schedule.steps_per_epoch if schedule.steps_per_epoch else None
    rates = keras.ops.convert_to_numpy(
        schedule(steps if steps is not None else np.zeros(epochs, "int64"))
    )
    return {
        "optimizer": optimizer,
        "schedule": name,
        "seed": seed,
        "best_test_accuracy": float(model.evaluate(x_test, y_test, verbose=0)[1]),
        "final_test_accuracy": final.accuracy,
        "best_epoch": best.best_epoch,
        "final_train_loss": float(h["loss"][-1]),
        "val_accuracy": [float(v) for v in h["val_accuracy"]],
        "rates": [
            float(r) for r in np.broadcast_to(rates, (epochs,))
        ],  # at each epoch's first step
        "seconds": round(seconds, 2),
    }


def verdict(runs: list[dict], seeds: list[int]) -> list[str]:
    """Each decay against the constant rate, paired by seed: which differences exceed their interval."""
    from _common import mean_interval

    lines = []
    for optimizer in OPTIMIZERS:
        final = {
            (r["schedule"], r["seed"]): r["final_test_accuracy"]
            for r in runs
            if r["optimizer"] == optimizer
        }
        better, worse, noise = [], [], []
        for name in DECAYS:
            diffs = [final[(name, s)] - final[("constant", s)] for s in seeds]
            mean, low, high = mean_interval(diffs)
            if len(seeds) > 1 and low > 0:
                where, group = "better beyond the noise (the interval excludes 0)", better
            elif len(seeds) > 1 and high < 0:
                where, group = "worse beyond the noise (the interval excludes 0)", worse
            else:
                where, group = "within the noise (the interval holds 0)", noise
            group.append(name)
            lines.append(f"{optimizer}: {name} - constant = {100 * mean:+.2f} points of final test "
                         f"accuracy, 95% interval {100 * low:+.2f} to {100 * high:+.2f}: {where}")  # fmt: skip
        if len(seeds) < 2:
            lines.append(f"{optimizer}: one seed gives no interval, so no verdict.")
            continue
        parts = [f"better than the constant rate: {', '.join(better) or 'none'}"]
        if worse:
            parts.append(f"worse: {', '.join(worse)}")
        if noise:
            parts.append(f"no different beyond the noise: {', '.join(noise)}")
        lines.append(f"{optimizer}: {'; '.join(parts)}.")
    return lines


def figure(runs: list[dict], path: str) -> None:
    from keras_lrkit.plotting import new_figure

    fig = new_figure((12, 7))
    axes = fig.subplots(2, 2)
    for row, optimizer in enumerate(OPTIMIZERS):
        for name in ["constant", *DECAYS]:
            cell = [r for r in runs if r["optimizer"] == optimizer and r["schedule"] == name]
            curve = np.mean([r["val_accuracy"] for r in cell], axis=0)
            axes[row, 0].plot(curve, label=name)
            axes[row, 1].plot(cell[0]["rates"], label=name, drawstyle="steps-post")
        axes[row, 0].set_title(f"{optimizer}: validation accuracy (mean of {len(cell)} seeds)")
        axes[row, 0].set_ylabel("validation accuracy")
        axes[row, 0].set_ylim(0.6, 1.0)
        axes[row, 1].set_title(f"{optimizer}: the rate at each epoch's first step")
        axes[row, 1].set_ylabel("learning rate")
        for ax in axes[row]:
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)


def main(argv=None) -> dict:
    p = argument_parser(__doc__)
    p.add_argument("--epochs", type=int, default=30, help="epochs per run (default 30)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per cell (default 5)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--shift", type=int, default=3,
                   help="augmentation: move each training sequence by up to this many positions "
                   "(default 3; 0 turns it off)")  # fmt: skip
    p.add_argument("--weight-decay", type=float, default=5e-4,
                   help="L2 penalty weight_decay/2*||w||^2 on every kernel (default 5e-4; 0 turns it off)")  # fmt: skip
    p.add_argument("--max-samples", type=int, help="use only this many sequences (smoke tests)")
    p.add_argument(
        "--output", default=os.path.join("runs", "compare_schedules"), help="output folder"
    )
    args = p.parse_args(argv)
    check(p, args, epochs=">=2", seeds=">=1", batch_size=">=1", shift=">=0",
          weight_decay=">=0", max_samples=">=20", output="folder")  # fmt: skip
    from _common import load_data, mean_interval, print_table

    os.makedirs(args.output, exist_ok=True)
    data = load_data("mnist1d", max_samples=args.max_samples)
    seeds = list(range(args.seeds))
    print(f"A small CNN on MNIST-1D, {args.epochs} epochs, seeds {seeds}, shifts of up to "
          f"{args.shift}, weight decay {args.weight_decay}: "
          f"{len(OPTIMIZERS) * 5 * len(seeds)} runs")  # fmt: skip
    runs, started = [], time.perf_counter()
    for optimizer in OPTIMIZERS:
        for name in ["constant", *DECAYS]:
            for seed in seeds:
                runs.append(run(optimizer, name, seed, data, args))
            cell = runs[-len(seeds) :]
            print(f"  {optimizer:>12} {name:<12} final test accuracy "
                  f"{np.mean([r['final_test_accuracy'] for r in cell]):.4f}")  # fmt: skip
    seconds = time.perf_counter() - started

    cells, rows = [], []
    for optimizer in OPTIMIZERS:
        for name in ["constant", *DECAYS]:
            cell = [r for r in runs if r["optimizer"] == optimizer and r["schedule"] == name]
            best = mean_interval([r["best_test_accuracy"] for r in cell])
            final = mean_interval([r["final_test_accuracy"] for r in cell])
            cells.append({"optimizer": optimizer, "schedule": name, "best_test_accuracy": best,
                          "final_test_accuracy": final,
                          "mean_best_epoch": float(np.mean([r["best_epoch"] for r in cell])),
                          "mean_final_train_loss": float(np.mean([r["final_train_loss"] for r in cell]))})  # fmt: skip
            rows.append([optimizer, name, *(f"{m:.4f} [{lo:.4f}, {hi:.4f}]" for m, lo, hi in (best, final)),
                         f"{np.mean([r['best_epoch'] for r in cell]):.1f}",
                         f"{np.mean([r['final_train_loss'] for r in cell]):.4f}",
                         f"{np.mean([r['seconds'] for r in cell]):.1f}"])  # fmt: skip
    print(f"\nTest accuracy, mean [95% interval] over {len(seeds)} seed{'s' * (len(seeds) != 1)}:")
    headers = ["optimizer", "schedule", "best (by validation)", "final", "best epoch"]
    print_table([*headers, "train loss", "s/run"], rows)
    lines = verdict(runs, seeds)
    print("\nVerdict, from these numbers (the lecture: SGD + momentum wants a decaying rate, Adam does "
          "fine with a constant one):")  # fmt: skip
    for line in lines:
        print(f"  {line}")
    figure(runs, os.path.join(args.output, "compare_schedules.png"))
    results = {"epochs": args.epochs, "seeds": seeds, "shift": args.shift,
               "weight_decay": args.weight_decay, "cells": cells, "verdict": lines,
               "runs": runs, "seconds": round(seconds, 1)}  # fmt: skip
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"\n{seconds:.0f} s. Wrote {args.output}/compare_schedules.png, results.json")
    return results


if __name__ == "__main__":
    main()
