"""ResNet's step-decay recipe: SGD + momentum, 0.1 divided by 10 at epochs 30, 60 and 90.

He et al. (2016) train their CIFAR ResNets with SGD, momentum 0.9, weight decay
1e-4, batch 128 and a learning rate of 0.1 divided by 10 twice (at 32k and 48k
iterations); the ImageNet recipe, and torchvision's, divide every 30 epochs.
This demo runs that recipe through ``StepDecay(0.1, [30, 60, 90],
steps_per_epoch=...)`` on scikit-learn's bundled digits (no download), or on
CIFAR-10 with ``--dataset cifar10``.

Writes into the output folder: history.csv, history.png (the learning-rate
staircase beside the loss and accuracy curves), summary.json and model.keras.

    python demos/resnet_step_decay.py                 # about 2 minutes on 2 CPU cores
    python demos/resnet_step_decay.py --epochs 10 --milestones 3 6 9
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import argument_parser, build_resnet, load_cifar10, load_digits_split, print_table  # noqa: E402

from keras_lrkit import (  # noqa: E402
    EarlyStoppingWithBestRestore,
    HistoryPlotter,
    LearningRateLogger,
    StepDecay,
)


def parse_args(argv=None):
    p = argument_parser(__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--dataset",
        choices=["digits", "cifar10"],
        default="digits",
        help="digits: bundled with scikit-learn, no download (default); cifar10: keras.datasets, needs internet once",
    )
    p.add_argument("--epochs", type=int, default=100, help="epochs to train (default 100)")
    p.add_argument(
        "--milestones",
        type=int,
        nargs="+",
        default=[30, 60, 90],
        help="epochs at which the rate is divided by 10 (default 30 60 90)",
    )
    p.add_argument(
        "--learning-rate", type=float, default=0.1, help="initial learning rate (default 0.1)"
    )
    p.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    p.add_argument(
        "--depth",
        type=int,
        default=20,
        help="ResNet depth, 6n+2: 8, 14, 20 (default), 32, 44, 56, 110",
    )
    p.add_argument(
        "--weight-decay",
        type=float,
        default=1e-4,
        help="L2 weight decay as in the paper (default 1e-4)",
    )
    p.add_argument(
        "--early-stopping",
        action="store_true",
        help="add EarlyStoppingWithBestRestore on val_accuracy (the ResNet recipe has none)",
    )
    p.add_argument(
        "--patience", type=int, default=10, help="patience for --early-stopping (default 10)"
    )
    p.add_argument(
        "--max-samples", type=int, default=None, help="use only this many images (smoke tests)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--output",
        default=os.path.join("runs", "resnet_step_decay"),
        help="output folder (default runs/resnet_step_decay)",
    )
    p.add_argument(
        "--verbose",
        type=int,
        default=2,
        choices=[0, 1, 2],
        help="Keras fit verbosity (default 2: a line per epoch)",
    )
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {args.batch_size}")
    return args


def phases(milestones, epochs):
    """[(first_epoch, last_epoch)] of each constant-rate phase within the run."""
    edges = [0] + [m for m in milestones if 0 < m < epochs] + [epochs]
    return [(a, b - 1) for a, b in zip(edges, edges[1:]) if b > a]


def main(argv=None) -> dict:
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    os.makedirs(args.output, exist_ok=True)
    if args.dataset == "digits":
        (x_train, y_train), (x_val, y_val) = load_digits_split(
            args.seed, max_samples=args.max_samples
        )
    else:
        (x_train, y_train), (x_val, y_val) = load_cifar10()
        if args.max_samples:
            x_train, y_train = x_train[: args.max_samples], y_train[: args.max_samples]
            x_val, y_val = x_val[: args.max_samples // 5 + 1], y_val[: args.max_samples // 5 + 1]
    steps_per_epoch = int(np.ceil(len(x_train) / args.batch_size))
    schedule = StepDecay(
        args.learning_rate, args.milestones, factor=0.1, steps_per_epoch=steps_per_epoch
    )
    model = build_resnet(
        x_train.shape[1:], classes=10, depth=args.depth, weight_decay=args.weight_decay
    )
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    callbacks = [LearningRateLogger()]
    stopper = None
    if args.early_stopping:
        stopper = EarlyStoppingWithBestRestore("val_accuracy", patience=args.patience, verbose=1)
        callbacks.append(stopper)
    plotter = HistoryPlotter(
        os.path.join(args.output, "history.png"),
        csv_path=os.path.join(args.output, "history.csv"),
        every=5,
    )
    callbacks.append(plotter)
    print(
        f"ResNet-{args.depth} on {args.dataset}: {len(x_train)} training / {len(x_val)} validation images, "
        f"{steps_per_epoch} steps per epoch, lr {args.learning_rate} / 10 at epochs {args.milestones}"
    )
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        batch_size=args.batch_size,
        epochs=args.epochs,
        callbacks=callbacks,
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - start
    model.save(os.path.join(args.output, "model.keras"))

    h = history.history
    table = []
    for first, last in phases(args.milestones, len(h["loss"])):
        table.append(
            [f"{first}-{last}", f"{h['learning_rate'][last]:.0e}", f"{h['val_accuracy'][last]:.4f}"]
        )
    print()
    print_table(["epochs", "learning rate", "val accuracy at end"], table)
    best_epoch = int(np.argmax(h["val_accuracy"]))
    summary = {
        "dataset": args.dataset,
        "depth": args.depth,
        "epochs_run": len(h["loss"]),
        "milestones": args.milestones,
        "steps_per_epoch": steps_per_epoch,
        "final_val_accuracy": float(h["val_accuracy"][-1]),
        "best_val_accuracy": float(h["val_accuracy"][best_epoch]),
        "best_epoch": best_epoch,
        "phases": [
            {"epochs": row[0], "learning_rate": float(row[1]), "val_accuracy_at_end": float(row[2])}
            for row in table
        ],
        "early_stopping": None
        if stopper is None
        else {
            "best_epoch": stopper.best_epoch,
            "stopped_epoch": stopper.stopped_epoch,
            "stop_reason": stopper.stop_reason,
        },
        "seconds": round(seconds, 1),
    }
    with open(os.path.join(args.output, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(
        f"\nfinal val accuracy {summary['final_val_accuracy']:.4f}, best {summary['best_val_accuracy']:.4f} "
        f"at epoch {best_epoch}; {seconds:.0f} s. Wrote {args.output}/history.csv, history.png, summary.json, model.keras"
    )
    return summary


if __name__ == "__main__":
    main()
