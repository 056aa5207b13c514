"""Early stopping that keeps the best model: validation accuracy peaks, then turns down.

An oversized network trains on a small, partly mislabelled subset of the
digits, so it soon starts to memorize the noise and validation accuracy falls
after a peak. EarlyStoppingWithBestRestore watches val_accuracy, stops once
it has not improved for `--patience` epochs, and puts the best epoch's weights
back. The demo checks that the restored model scores exactly the best
recorded validation accuracy, and draws the curves with the best and stop
epochs marked.

    python demos/early_stopping.py --output runs/early_stopping
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import argument_parser, build_mlp, load_digits_split  # noqa: E402

from keras_lrkit import EarlyStoppingWithBestRestore, HistoryPlotter, LearningRateLogger  # noqa: E402


def main(argv=None) -> dict:
    p = argument_parser(__doc__)
    p.add_argument(
        "--train-samples", type=int, default=200, help="training images kept (default 200)"
    )
    p.add_argument(
        "--label-noise",
        type=float,
        default=0.3,
        help="fraction of training labels replaced at random (default 0.3)",
    )
    p.add_argument("--epochs", type=int, default=150, help="most epochs (default 150)")
    p.add_argument(
        "--patience",
        type=int,
        default=20,
        help="epochs without improvement before stopping (default 20)",
    )
    p.add_argument("--width", type=int, default=1024, help="hidden units per layer (default 1024)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=os.path.join("runs", "early_stopping"), help="output folder")
    p.add_argument("--verbose", type=int, default=0, choices=[0, 1, 2])
    args = p.parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    os.makedirs(args.output, exist_ok=True)

    (x_train, y_train), (x_val, y_val) = load_digits_split(args.seed)
    x_train, y_train = x_train[: args.train_samples], y_train[: args.train_samples].copy()
    rng = np.random.default_rng(args.seed)
    noisy = rng.random(len(y_train)) < args.label_noise
    y_train[noisy] = rng.integers(0, 10, noisy.sum())

    model = build_mlp(x_train.shape[1:], width=args.width, depth=2)
    model.compile(
        keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    stopper = EarlyStoppingWithBestRestore("val_accuracy", patience=args.patience, verbose=1)
    plotter = HistoryPlotter(
        os.path.join(args.output, "early_stopping.png"),
        csv_path=os.path.join(args.output, "history.csv"),
    )
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        batch_size=32,
        epochs=args.epochs,
        callbacks=[LearningRateLogger(), stopper, plotter],
        verbose=args.verbose,
    )
    val_acc = history.history["val_accuracy"]
    restored = model.evaluate(x_val, y_val, verbose=0, return_dict=True)["accuracy"]
    summary = {
        "best_epoch": stopper.best_epoch,
        "best_val_accuracy": stopper.best,
        "stopped_epoch": stopper.stopped_epoch,
        "stop_reason": stopper.stop_reason,
        "last_epoch_val_accuracy": val_acc[-1],
        "restored_val_accuracy": restored,
        "restored_equals_best": abs(restored - stopper.best) < 1e-6,
    }
    with open(os.path.join(args.output, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(
        f"validation accuracy peaked at {stopper.best:.4f} in epoch {stopper.best_epoch}; "
        f"training stopped after epoch {stopper.stopped_epoch} ({stopper.stop_reason}) at {val_acc[-1]:.4f}."
    )
    print(
        f"restored model: val accuracy {restored:.4f} (equals the best recorded: {summary['restored_equals_best']})"
    )
    print(f"Wrote {args.output}/early_stopping.png, history.csv, summary.json")
    if not summary["restored_equals_best"]:
        raise SystemExit("the restored model does not reproduce the best validation accuracy")
    return summary


if __name__ == "__main__":
    main()
