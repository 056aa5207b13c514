"""Find a learning rate with a range test, then check it: train at it, at 1/100 of it and at 100x it.

Runs keras_lrkit's learning-rate range test on the MNIST-1D ResNet (SGD with
momentum), writes the loss-against-rate plot with the suggestion marked, then
trains a fresh copy of the model for a few epochs at each of the three rates
and prints validation accuracy side by side (the test split stays unused: the
choice of a rate is model selection).

    python demos/find_lr.py                 # its time: the README's table of demos
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _args import argument_parser, check  # noqa: E402  (no Keras: bad arguments fail fast)


def fresh_model(shape, depth: int, seed: int, learning_rate: float):
    import keras
    from _common import build_resnet

    keras.utils.set_random_seed(seed)
    model = build_resnet(shape, depth=depth)
    model.compile(keras.optimizers.SGD(learning_rate, momentum=0.9),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])  # fmt: skip
    return model


def plain(value):
    """``value`` as JSON holds it: numbers as Python's, a number that is not one (NaN) as null."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value) if math.isfinite(float(value)) else None


def main(argv=None) -> dict:
    p = argument_parser(__doc__)
    p.add_argument("--depth", type=int, default=8, help="ResNet depth, 6n+2 (default 8)")
    p.add_argument("--epochs", type=int, default=5, help="epochs of each check run (default 5)")
    p.add_argument(
        "--num-steps", type=int, default=300, help="steps of the range test (default 300)"
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-samples", type=int, help="use only this many sequences (smoke tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=os.path.join("runs", "find_lr"), help="output folder")
    args = p.parse_args(argv)
    check(p, args, depth="depth", epochs=">=1", num_steps=">=5", batch_size=">=1",
          max_samples=">=20", seed=">=0", output="folder")  # fmt: skip
    from _common import load_data, print_table

    from keras_lrkit import find_learning_rate

    os.makedirs(args.output, exist_ok=True)
    data = load_data("mnist1d", max_samples=args.max_samples)
    (x, y), (x_val, y_val) = data["train"], data["val"]

    model = fresh_model(x.shape[1:], args.depth, args.seed, 0.01)
    result = find_learning_rate(model, x, y, batch_size=args.batch_size, min_lr=1e-5, max_lr=10.0,
                                num_steps=args.num_steps, verbose=0)  # fmt: skip
    result.plot(os.path.join(args.output, "lr_range_test.png"))
    stop = {
        "diverged": "it stopped where the loss diverged",
        "non_finite": "it stopped at a non-finite loss",
        "out_of_data": "it stopped when the data ran out",
        None: "it took every step",
    }[result.stop_reason]
    rules = {rule: result.suggest(rule) for rule in result.RULES}
    print(f"Range test over {len(result.losses)} steps ({stop}).")
    if result.suggestion is None:
        print("The loss never fell below where it started: nothing to read. Give the test more "
              "steps (--num-steps) or more data.")  # fmt: skip
        summary = {"suggestion": None, "rules": rules, "min_loss_lr": None,
                   "stop_reason": result.stop_reason, "steps": len(result.losses), "runs": {}}  # fmt: skip
        with open(os.path.join(args.output, "summary.json"), "w") as f:
            json.dump(plain(summary), f, indent=2, allow_nan=False)
        return summary
    print(f"Lowest smoothed loss at rate {result.min_loss_lr:.3g}. Each rule's rate: "
          + ", ".join(f"{rule} {rate:.3g}" for rule, rate in rules.items() if rate is not None)
          + f"; the suggestion ({result.rule}): {result.suggestion:.3g}")  # fmt: skip
    suggestion = result.suggestion

    rows, runs = [], {}
    for label, rate in [("suggestion / 100", suggestion / 100), ("suggestion", suggestion),
                        ("suggestion x 100", suggestion * 100)]:  # fmt: skip
        model = fresh_model(x.shape[1:], args.depth, args.seed, rate)
        h = model.fit(x, y, validation_data=(x_val, y_val), batch_size=args.batch_size,
                      epochs=args.epochs, verbose=0).history  # fmt: skip
        runs[label] = {"learning_rate": rate, "final_loss": h["loss"][-1],
                       "final_val_accuracy": h["val_accuracy"][-1]}  # fmt: skip
        rows.append([label, f"{rate:.3g}", f"{h['loss'][-1]:.4g}", f"{h['val_accuracy'][-1]:.4f}"])
    print()
    print_table(["rate", "value", f"train loss after {args.epochs} epochs", "val accuracy"], rows)
    summary = {"suggestion": suggestion, "rules": rules, "min_loss_lr": result.min_loss_lr,
               "stop_reason": result.stop_reason, "steps": len(result.losses), "runs": runs}  # fmt: skip
    with open(os.path.join(args.output, "summary.json"), "w") as f:
        json.dump(plain(summary), f, indent=2, allow_nan=False)
    print(f"Wrote {args.output}/lr_range_test.png, summary.json")
    return summary


if __name__ == "__main__":
    main()
