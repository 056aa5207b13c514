"""Find a learning rate with a range test, then check it: train at it, at 1/100 of it and at 100x it.

Runs keras_lrkit's learning-rate range test on the digits ResNet (SGD with
momentum), writes the loss-against-rate plot with the suggestion marked,
then trains a fresh copy of the model for a few epochs at each of the three
rates and prints the results side by side.

    python demos/find_lr.py --output runs/find_lr
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
from _common import argument_parser, build_resnet, load_digits_split, print_table  # noqa: E402

from keras_lrkit import find_learning_rate  # noqa: E402


def fresh_model(shape, depth, seed, learning_rate):
    keras.utils.set_random_seed(seed)
    model = build_resnet(shape, depth=depth)
    model.compile(
        keras.optimizers.SGD(learning_rate, momentum=0.9),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main(argv=None) -> dict:
    p = argument_parser(__doc__)
    p.add_argument("--depth", type=int, default=8, help="ResNet depth, 6n+2 (default 8)")
    p.add_argument("--epochs", type=int, default=5, help="epochs of each check run (default 5)")
    p.add_argument(
        "--num-steps", type=int, default=100, help="steps of the range test (default 100)"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--max-samples", type=int, default=None, help="use only this many images (smoke tests)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=os.path.join("runs", "find_lr"), help="output folder")
    args = p.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    (x_train, y_train), (x_val, y_val) = load_digits_split(args.seed, max_samples=args.max_samples)

    model = fresh_model(x_train.shape[1:], args.depth, args.seed, 0.01)
    result = find_learning_rate(
        model,
        x_train,
        y_train,
        batch_size=args.batch_size,
        min_lr=1e-5,
        max_lr=10.0,
        num_steps=args.num_steps,
        verbose=1,
    )
    result.plot(os.path.join(args.output, "lr_range_test.png"))
    suggestion = result.suggestion
    print(
        f"\nsuggested learning rate: {suggestion:.3g} (lowest smoothed loss at {result.min_loss_lr:.3g}; stop: {result.stop_reason})"
    )

    rows, runs = [], {}
    for label, rate in [
        ("suggestion / 100", suggestion / 100),
        ("suggestion", suggestion),
        ("suggestion x 100", suggestion * 100),
    ]:
        model = fresh_model(x_train.shape[1:], args.depth, args.seed, rate)
        h = model.fit(
            x_train,
            y_train,
            validation_data=(x_val, y_val),
            batch_size=args.batch_size,
            epochs=args.epochs,
            verbose=0,
        ).history
        runs[label] = {
            "learning_rate": rate,
            "final_loss": h["loss"][-1],
            "final_val_accuracy": h["val_accuracy"][-1],
        }
        rows.append([label, f"{rate:.3g}", f"{h['loss'][-1]:.4g}", f"{h['val_accuracy'][-1]:.4f}"])
    print()
    print_table(["rate", "value", f"train loss after {args.epochs} epochs", "val accuracy"], rows)
    summary = {
        "suggestion": suggestion,
        "min_loss_lr": result.min_loss_lr,
        "stop_reason": result.stop_reason,
        "runs": runs,
    }
    with open(os.path.join(args.output, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, default=float)
    print(f"Wrote {args.output}/lr_range_test.png, summary.json")
    return summary


if __name__ == "__main__":
    main()
