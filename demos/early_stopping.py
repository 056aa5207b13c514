"""Early stopping that keeps the best model: validation accuracy peaks, then turns down.

A small CNN trains on MNIST-1D whose training labels are 40% wrong (replaced
at random): it first learns the signal, and validation accuracy climbs; then it
memorizes the wrong labels, and validation accuracy turns down.
EarlyStoppingWithBestRestore watches val_accuracy, stops once it has not
improved for ``--patience`` epochs, and puts the best epoch's weights back. The
demo checks that the restored model scores exactly the best validation
accuracy recorded, reports test accuracy once, and draws the curves with the
best and stop epochs marked.

    python demos/early_stopping.py                 # its time: the README's table of demos
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _args import argument_parser, check  # noqa: E402  (no Keras: bad arguments fail fast)


def main(argv=None) -> dict:
    p = argument_parser(__doc__)
    p.add_argument("--label-noise", type=float, default=0.4,
                   help="the share of training labels replaced at random (default 0.4)")  # fmt: skip
    p.add_argument("--epochs", type=int, default=60, help="the most epochs (default 60)")
    p.add_argument(
        "--patience", type=int, default=10, help="epochs without improvement (default 10)"
    )
    p.add_argument("--max-samples", type=int, help="use only this many sequences (smoke tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=os.path.join("runs", "early_stopping"), help="output folder")
    p.add_argument("--verbose", type=int, default=0, choices=[0, 1, 2])
    args = p.parse_args(argv)
    check(p, args, label_noise="fraction", epochs=">=1", patience=">=1", max_samples=">=20",
          seed=">=0", output="folder")  # fmt: skip
    import keras
    from _common import load_data, marked_best_epoch
    from compare_schedules import cnn

    from keras_lrkit import EarlyStoppingWithBestRestore, HistoryPlotter, LearningRateLogger

    keras.utils.set_random_seed(args.seed)
    os.makedirs(args.output, exist_ok=True)
    data = load_data("mnist1d", max_samples=args.max_samples)
    (x, y), (x_val, y_val), (x_test, y_test) = data["train"], data["val"], data["test"]
    y = y.copy()
    rng = np.random.default_rng(args.seed)
    wrong = rng.random(len(y)) < args.label_noise
    y[wrong] = rng.integers(0, 10, wrong.sum())

    model = cnn(x.shape[1:])
    model.compile(
        keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    stopper = EarlyStoppingWithBestRestore("val_accuracy", patience=args.patience, verbose=1)
    plotter = HistoryPlotter(os.path.join(args.output, "early_stopping.png"),
                             csv_path=os.path.join(args.output, "history.csv"))  # fmt: skip
    history = model.fit(x, y, validation_data=(x_val, y_val), batch_size=32, epochs=args.epochs,
                        callbacks=[LearningRateLogger(), stopper, plotter], verbose=args.verbose)  # fmt: skip
    val_accuracy = history.history["val_accuracy"]
    restored = float(model.evaluate(x_val, y_val, verbose=0, return_dict=True)["accuracy"])
    best_marked = marked_best_epoch(plotter.figure)  # the epoch the figure marks
    summary = {
        "label_noise": args.label_noise,
        "best_epoch": stopper.best_epoch,
        "best_val_accuracy": stopper.best,
        "stopped_epoch": stopper.stopped_epoch,
        "stop_reason": stopper.stop_reason,
        "last_epoch_val_accuracy": val_accuracy[-1],
        "restored_val_accuracy": restored,
        "restored_equals_best": restored == stopper.best,
        "marked_best_epoch": best_marked,
        "test_accuracy": float(model.evaluate(x_test, y_test, verbose=0)[1]),  # once, at the end
    }
    with open(os.path.join(args.output, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"Validation accuracy peaked at {stopper.best:.4f} in epoch {stopper.best_epoch}, then fell "
          f"to {val_accuracy[-1]:.4f} by epoch {len(val_accuracy) - 1}, where training stopped "
          f"({stopper.stop_reason}).")  # fmt: skip
    print(f"Restored model: validation accuracy {restored:.4f}, exactly the best recorded: "
          f"{summary['restored_equals_best']}. Test accuracy {summary['test_accuracy']:.4f}.")  # fmt: skip
    print(f"Wrote {args.output}/early_stopping.png, history.csv, summary.json")
    if not summary["restored_equals_best"]:
        raise SystemExit("the restored model does not reproduce the best validation accuracy")
    return summary


if __name__ == "__main__":
    main()
