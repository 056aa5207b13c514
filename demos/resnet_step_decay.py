"""ResNet's step-decay recipe on MNIST-1D: SGD + momentum, 0.1 divided by 10 at epochs 30, 60 and 90.

He et al. (2016) train their ResNets with SGD, momentum 0.9, weight decay 1e-4,
batch 128 and a learning rate of 0.1 divided by 10 at set points (every 30
epochs on ImageNet, as torchvision does). This demo runs that recipe through
``StepDecay(0.1, [30, 60, 90], steps_per_epoch="fit")`` on a ResNet for 1-D
sequences (``--depth``, default 14) and MNIST-1D (Greydanus & Kobak), generated
offline: 4,000 training sequences (a tenth held out for validation) and 1,000
test sequences, reported once, at the end, against the paper's table. As the
paper does on CIFAR-10, it augments the training data (``--shift``: each
sequence moves by up to 3 positions); without that, the network fits the
training set by epoch 25 and the milestones have nothing left to change. It runs
``--seeds`` times (default 3) and prints, for each milestone, the training loss
and the validation error in the 3 epochs before and after it: the drop the
lecture promises, as numbers.

Writes into the output folder: step_decay.png (the staircase, with the
milestones marked, beside the loss and error curves averaged over the seeds),
summary.json, and for each seed seed<N>/history.csv, seed<N>/history.png (live
while the seed trains, then redrawn as step_decay.png is, for that seed alone)
and seed<N>/model.keras.

    python demos/resnet_step_decay.py                              # its time: the README's table of demos
    python demos/resnet_step_decay.py --epochs 10 --milestones 3 6 9 --seeds 1
    python demos/resnet_step_decay.py --dataset cifar10 --data-dir ~/data --depth 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _args import add_run_options, argument_parser, check  # noqa: E402  (no Keras: bad arguments fail fast)

# The paper's augmentation on CIFAR-10 (4-pixel shifts, horizontal flips). On MNIST-1D,
# without it a ResNet-14 fits the 3,600 training sequences by epoch 25 (the training
# loss is the weight-decay term alone) and the milestones have nothing left to change;
# with 3-position shifts the first milestone cuts the validation error about fourfold.
DEFAULT_SHIFT = {"mnist1d": 3, "cifar10": 4, "digits": 0}


def parse_args(argv=None):
    p = argument_parser(__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["mnist1d", "digits", "cifar10"], default="mnist1d",
                   help="mnist1d: generated offline (default); digits: scikit-learn's 8x8 digits; "
                   "cifar10: from Keras's cache or --data-dir, never downloaded")  # fmt: skip
    p.add_argument("--data-dir", help="cifar10: the folder holding cifar-10-python.tar.gz")
    p.add_argument("--epochs", type=int, default=100, help="epochs to train (default 100)")
    p.add_argument("--milestones", type=int, nargs="+", default=[30, 60, 90],
                   help="epochs at which the rate is divided by 10 (default 30 60 90)")  # fmt: skip
    p.add_argument("--learning-rate", type=float, default=0.1, help="initial rate (default 0.1)")
    p.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    p.add_argument("--depth", type=int, default=14, help="ResNet depth, 6n+2 (default 14)")
    p.add_argument("--width", type=int, default=16, help="filters in the first stage (default 16)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="as the paper's (default 1e-4)")
    p.add_argument("--shift", type=int,
                   help="augmentation: move each training sample by up to this many positions "
                   "(default: 3 on mnist1d, 4 with flips on cifar10, 0 on digits; 0 turns it off)")  # fmt: skip
    add_run_options(p, "resnet_step_decay")
    args = p.parse_args(argv)
    check(p, args, epochs=">=1", batch_size=">=1", seeds=">=1", seed=">=0", depth="depth",
          width=">=1", shift=">=0", max_samples=">=20", learning_rate="rate",
          weight_decay=">=0", output="folder")  # fmt: skip
    if sorted(set(args.milestones)) != args.milestones or min(args.milestones) < 1:
        p.error(f"--milestones must be increasing epochs >= 1, got {args.milestones}")
    return args


def phase_table(histories: list[dict], milestones: list[int], epochs: int) -> list[dict]:
    """For each milestone: the rate before and after, and the mean (over seeds) training loss and
    validation error in the 3 epochs before it and the 3 from it."""
    table = []
    for m in (m for m in milestones if m < epochs):
        before = list(range(max(0, m - 3), m))
        after = list(range(m, min(epochs, m + 3)))

        def mean(key, epochs_, error=False):
            values = [(1 - h[key][e]) if error else h[key][e] for h in histories for e in epochs_]
            return float(np.mean(values))

        table.append({
            "milestone": m,
            "rate_before": float(histories[0]["learning_rate"][m - 1]),
            "rate_after": float(histories[0]["learning_rate"][m]),
            "train_loss_before": mean("loss", before),
            "train_loss_after": mean("loss", after),
            "val_error_before": mean("val_accuracy", before, error=True),
            "val_error_after": mean("val_accuracy", after, error=True),
        })  # fmt: skip
    return table


def figure(histories: list[dict], milestones: list[int], best_epoch: int, path: str, title: str):
    """The staircase with its milestones, and the loss and error curves that follow it (their
    mean over the histories given): the loss and the error on log axes, where a drop from 3% to
    1% error is as tall as one from 30% to 10%."""
    from keras_lrkit import plot_history

    mean = {
        key: list(np.mean([h[key] for h in histories], axis=0))
        for key in ("loss", "val_loss", "learning_rate")
    }
    mean["error"] = list(1 - np.mean([h["accuracy"] for h in histories], axis=0))
    mean["val_error"] = list(1 - np.mean([h["val_accuracy"] for h in histories], axis=0))
    fig = plot_history(mean, metrics=["loss", "error"], best_epoch=best_epoch,
                       monitor="val_error", title=title)  # fmt: skip
    for ax in fig.axes:
        if ax.get_title() != "learning rate":
            curves = [line for line in ax.get_lines() if line.get_transform() == ax.transData]
            values = np.concatenate([line.get_ydata() for line in curves])
            values = values[np.isfinite(values) & (values > 0)]
            ax.set_yscale("log")
            ax.set_ylim(values.min() / 1.5, values.max() * 1.5)
        for m in milestones:
            ax.axvline(m, color="gray", linewidth=0.8, alpha=0.5)
    fig.text(0.99, 0.01, f"gray: the milestones, {', '.join(map(str, milestones))}",
             ha="right", va="bottom", fontsize="small", color="gray")  # fmt: skip
    fig.savefig(path)
    return fig


def seeds_text(n: int) -> str:
    return f"{n} seed" + ("s" if n != 1 else "")


def main(argv=None) -> dict:
    args = parse_args(argv)
    import keras
    from _common import PAPER_TABLE, build_resnet, load_data, marked_best_epoch, print_table

    from keras_lrkit import HistoryPlotter, LearningRateLogger, StepDecay

    data = load_data(args.dataset, max_samples=args.max_samples, data_dir=args.data_dir)
    (x, y), (x_val, y_val), (x_test, y_test) = data["train"], data["val"], data["test"]
    os.makedirs(args.output, exist_ok=True)
    seeds = list(range(args.seed, args.seed + args.seeds))
    shift = DEFAULT_SHIFT[args.dataset] if args.shift is None else args.shift
    print(f"ResNet-{args.depth} on {args.dataset}: {len(x)} training / {len(x_val)} validation / "
          f"{len(x_test)} test samples; SGD + momentum 0.9, weight decay {args.weight_decay}, batch "
          f"{args.batch_size}; rate {args.learning_rate} / 10 at epochs {args.milestones}; "
          f"{args.epochs} epochs; seeds {seeds}; augmentation: "
          f"{f'shifts of up to {shift}' + (' and flips' if args.dataset == 'cifar10' else '') if shift else 'none'}")  # fmt: skip
    histories, test_accuracies, started = [], [], time.perf_counter()
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        model = build_resnet(x.shape[1:], depth=args.depth, width=args.width,
                             weight_decay=args.weight_decay, shift=shift,
                             flip=args.dataset == "cifar10" and shift > 0)  # fmt: skip
        schedule = StepDecay(args.learning_rate, args.milestones, steps_per_epoch="fit")
        model.compile(keras.optimizers.SGD(schedule, momentum=0.9),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])  # fmt: skip
        folder = os.path.join(args.output, f"seed{seed}")
        plotter = HistoryPlotter(os.path.join(folder, "history.png"), every=5,
                                 csv_path=os.path.join(folder, "history.csv"),
                                 monitor="val_accuracy")  # fmt: skip
        history = model.fit(x, y, validation_data=(x_val, y_val), batch_size=args.batch_size,
                            epochs=args.epochs, verbose=args.verbose,
                            callbacks=[LearningRateLogger(), plotter])  # fmt: skip
        test_accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])  # once, at the end
        model.save(os.path.join(folder, "model.keras"))
        histories.append(history.history)
        test_accuracies.append(test_accuracy)
        h = history.history
        print(f"  seed {seed}: test accuracy {test_accuracy:.4f} (validation {h['val_accuracy'][-1]:.4f}, "
              f"training loss {h['loss'][-1]:.4f} at the end)")  # fmt: skip
    seconds = time.perf_counter() - started

    table = phase_table(histories, args.milestones, args.epochs)
    print("\nAt each milestone, the 3 epochs before against the 3 from it (mean over the seeds):")
    print_table(
        ["milestone", "rate", "train loss before", "after", "val error before", "after"],
        [[r["milestone"], f"{r['rate_before']:.0e} -> {r['rate_after']:.0e}",
          f"{r['train_loss_before']:.4f}", f"{r['train_loss_after']:.4f}",
          f"{r['val_error_before']:.4f}", f"{r['val_error_after']:.4f}"] for r in table],
    )  # fmt: skip
    mean_val = np.mean([h["val_accuracy"] for h in histories], axis=0)
    best_epoch = int(np.argmax(mean_val))
    accuracy = float(np.mean(test_accuracies))
    spread = float(np.std(test_accuracies, ddof=1)) if len(test_accuracies) > 1 else 0.0
    print(f"\nTest accuracy on {args.dataset}: {accuracy:.4f} (mean of {seeds_text(len(seeds))}; "
          f"sd {spread:.4f}, {min(test_accuracies):.4f} to {max(test_accuracies):.4f})")  # fmt: skip
    if args.dataset == "mnist1d":
        print("The paper's table (test accuracy on MNIST-1D):")
        print_table(["model", "test accuracy"],
                    [*[[k, f"{v:.2f}"] for k, v in PAPER_TABLE.items()],
                     [f"this ResNet-{args.depth}, step decay", f"{accuracy:.4f}"]])  # fmt: skip
    marked = marked_best_epoch(figure(histories, args.milestones, best_epoch,
                    os.path.join(args.output, "step_decay.png"),
                    f"ResNet-{args.depth} step decay, mean of {seeds_text(len(seeds))}"))  # fmt: skip
    for seed, h in zip(seeds, histories):  # each seed's figure, drawn as the mean's
        figure([h], args.milestones, int(np.argmax(h["val_accuracy"])),
               os.path.join(args.output, f"seed{seed}", "history.png"),
               f"ResNet-{args.depth} step decay, seed {seed}")  # fmt: skip
    summary = {
        "dataset": args.dataset,
        "depth": args.depth,
        "epochs": args.epochs,
        "milestones": args.milestones,
        "shift": shift,
        "seeds": seeds,
        "test_accuracy": accuracy,
        "test_accuracies": test_accuracies,
        "test_accuracy_sd": spread,
        "paper_table": PAPER_TABLE if args.dataset == "mnist1d" else None,
        "phases": table,
        "best_epoch": best_epoch,
        "marked_best_epoch": marked,  # the epoch step_decay.png marks: the same
        "best_val_accuracy": float(mean_val[best_epoch]),
        "seconds": round(seconds, 1),
    }
    with open(os.path.join(args.output, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"\nMean validation accuracy peaks at epoch {best_epoch} ({mean_val[best_epoch]:.4f}); "
          f"{seconds:.0f} s. Wrote {args.output}: step_decay.png, summary.json, seed*/")  # fmt: skip
    return summary


if __name__ == "__main__":
    main()
