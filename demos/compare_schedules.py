"""Same model, same seed, one run per schedule: with SGD + momentum, and again with Adam.

Puts numbers on the lecture's advice that SGD with momentum does better with
a decaying rate, while Adam (or RMSProp) often does fine with a constant one.
Prints a table (best and final validation accuracy, the best epoch, wall
time) and writes one figure overlaying the validation curves and the rates.

    python demos/compare_schedules.py --output runs/compare_schedules
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import argument_parser, build_mlp, load_digits_split, print_table  # noqa: E402

from keras_lrkit import (  # noqa: E402
    Constant,
    CosineDecay,
    InverseSqrtDecay,
    LearningRateLogger,
    LinearDecay,
    StepDecay,
)
from keras_lrkit.plotting import new_figure  # noqa: E402

OPTIMIZERS = {
    "SGD+momentum": (keras.optimizers.SGD, 0.1, {"momentum": 0.9}),
    "Adam": (keras.optimizers.Adam, 1e-3, {}),
}


def schedules(initial: float, epochs: int, spe: int) -> dict:
    return {
        "constant": Constant(initial, steps_per_epoch=spe),
        "step": StepDecay(
            initial, sorted({max(1, epochs // 2), max(1, epochs * 3 // 4)}), steps_per_epoch=spe
        ),
        "cosine": CosineDecay(initial, epochs, steps_per_epoch=spe),
        "linear": LinearDecay(initial, epochs, steps_per_epoch=spe),
        "inverse sqrt": InverseSqrtDecay(
            initial, timescale=max(1, epochs // 10), steps_per_epoch=spe
        ),
    }


def main(argv=None) -> list:
    p = argument_parser(__doc__)
    p.add_argument("--epochs", type=int, default=40, help="epochs per run (default 40)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--train-samples", type=int, default=None, help="use only this many images (smoke tests)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--output", default=os.path.join("runs", "compare_schedules"), help="output folder"
    )
    args = p.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    (x_train, y_train), (x_val, y_val) = load_digits_split(
        args.seed, max_samples=args.train_samples
    )
    spe = int(np.ceil(len(x_train) / args.batch_size))

    results, curves = [], {}
    for opt_name, (make, initial, kwargs) in OPTIMIZERS.items():
        for name, schedule in schedules(initial, args.epochs, spe).items():
            keras.utils.set_random_seed(args.seed)  # same initial weights and batches for every run
            model = build_mlp(x_train.shape[1:], width=128, depth=2)
            model.compile(
                make(schedule, **kwargs), "sparse_categorical_crossentropy", metrics=["accuracy"]
            )
            start = time.perf_counter()
            h = model.fit(
                x_train, y_train, validation_data=(x_val, y_val), batch_size=args.batch_size,
                epochs=args.epochs, verbose=0, callbacks=[LearningRateLogger()],
            ).history  # fmt: skip
            seconds = time.perf_counter() - start
            best = int(np.argmax(h["val_accuracy"]))
            results.append(
                {"optimizer": opt_name, "schedule": name, "best_val_accuracy": h["val_accuracy"][best],
                 "final_val_accuracy": h["val_accuracy"][-1], "best_epoch": best, "seconds": round(seconds, 1)}
            )  # fmt: skip
            curves[(opt_name, name)] = (h["val_accuracy"], h["learning_rate"])
            print(
                f"{opt_name:>12} {name:<13} best {h['val_accuracy'][best]:.4f} (epoch {best}), final {h['val_accuracy'][-1]:.4f}"
            )

    print()
    print_table(
        ["optimizer", "schedule", "best val acc", "final val acc", "best epoch", "seconds"],
        [[r["optimizer"], r["schedule"], f"{r['best_val_accuracy']:.4f}", f"{r['final_val_accuracy']:.4f}",
          r["best_epoch"], r["seconds"]] for r in results],
    )  # fmt: skip
    for opt_name in OPTIMIZERS:
        rows = [r for r in results if r["optimizer"] == opt_name]
        constant = next(r for r in rows if r["schedule"] == "constant")["final_val_accuracy"]
        decayed = max(r["final_val_accuracy"] for r in rows if r["schedule"] != "constant")
        print(
            f"{opt_name}: best decaying schedule ends at {decayed:.4f}, the constant rate at {constant:.4f} ({decayed - constant:+.4f})."
        )

    figure = new_figure((12, 7))
    axes = figure.subplots(2, 2)
    for row, opt_name in enumerate(OPTIMIZERS):
        for (o, name), (acc, lr) in curves.items():
            if o == opt_name:
                axes[row, 0].plot(acc, label=name)
                axes[row, 1].plot(lr, label=name, drawstyle="steps-post")
        axes[row, 0].set_title(f"{opt_name}: validation accuracy")
        axes[row, 0].set_ylim(0.8, 1.0)
        axes[row, 1].set_title(f"{opt_name}: learning rate")
        for ax in axes[row]:
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(os.path.join(args.output, "compare_schedules.png"))
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"Wrote {args.output}/compare_schedules.png, results.json")
    return results


if __name__ == "__main__":
    main()
