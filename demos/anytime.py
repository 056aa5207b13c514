"""Anytime training on MNIST-1D: warmup-stable-decay against cosine, and cooldowns branched from one run.

A cosine decay needs the run's length in advance; warmup-stable-decay (WSD)
trains at a constant rate and cools down over the last 20% of the steps, so
one constant-rate run can be cooled down at any checkpoint (Hägele et al.,
NeurIPS 2024). This demo trains the ResNet of the step-decay demo (SGD +
momentum 0.9, weight decay 1e-4, batch 128, rate 0.1, no warmup) on MNIST-1D
for ``--seeds`` seeds (default 3) and asks, with paired 95% intervals over
the seeds (the same seed gives both arms the same initial weights and data
order):

1. WSD with a ``1-sqrt`` cooldown against cosine, at each budget of
   ``--budgets`` (default 5, 10 and 20 epochs). The WSD runs are branched: one
   constant-rate run, saved at 80% of each budget, and a cooldown trained from
   each checkpoint (``WarmupStableDecay(0.1, total=B, decay=0.2 B)`` from the
   saved step, which is what a WSD run of that budget trains); each cosine run
   trains for its budget alone. The compute each way: epochs spent for the
   three models.
2. The ``1-sqrt`` cooldown against a linear one, at the largest budget.
3. ``CooldownOnPlateau`` on an open-ended constant-rate run (``--patience``,
   ``--cooldown-epochs``, at most ``--max-epochs``): where it stopped, and its
   test accuracy against the fixed-budget runs.

Test accuracy is measured once per model, at the end of its training, on the
1,000 test sequences. Writes into the output folder: anytime.png (the rates,
the validation curves of one seed, the test accuracies with their intervals),
summary.json (every model's numbers, the intervals and the verdicts), and the
constant-rate runs' checkpoints, seed<N>/constant-<epoch>.keras.

    python demos/anytime.py                                  # its time: the README's table of demos
    python demos/anytime.py --budgets 2 4 --seeds 2 --max-samples 600 --max-epochs 6   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _args import add_run_options, argument_parser, check  # noqa: E402  (no Keras: bad arguments fail fast)

SHAPES = ("1-sqrt", "linear")


def parse_args(argv=None) -> argparse.Namespace:
    p = argument_parser(__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budgets", type=int, nargs="+", default=[5, 10, 20],
                   help="the training budgets compared, in epochs (default 5 10 20)")  # fmt: skip
    p.add_argument("--cooldown", type=float, default=0.2,
                   help="the share of a budget spent cooling down (default 0.2, the paper's)")  # fmt: skip
    p.add_argument("--learning-rate", type=float, default=0.1, help="the stable rate and cosine's "
                   "initial rate (default 0.1, the step-decay demo's)")  # fmt: skip
    p.add_argument("--patience", type=int, default=3,
                   help="CooldownOnPlateau: epochs without a lower val_loss (default 3)")  # fmt: skip
    p.add_argument("--cooldown-epochs", type=int,
                   help="CooldownOnPlateau's cooldown length (default: the cooldown of the "
                   "middle budget)")  # fmt: skip
    p.add_argument("--max-epochs", type=int,
                   help="the open-ended run stops here at the latest (default: twice the largest "
                   "budget)")  # fmt: skip
    p.add_argument("--depth", type=int, default=14, help="ResNet depth, 6n+2 (default 14)")
    p.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    add_run_options(p, "anytime")
    args = p.parse_args(argv)
    check(p, args, batch_size=">=1", seeds=">=1", seed=">=0", patience=">=1", depth="depth",
          learning_rate="rate", max_samples=">=20", cooldown_epochs=">=1", output="folder")  # fmt: skip
    if not 0 < args.cooldown < 1:
        p.error(f"--cooldown must be in (0, 1), got {args.cooldown}")
    if sorted(set(args.budgets)) != args.budgets or args.budgets[0] < 2:
        p.error(f"--budgets must be increasing epochs >= 2, got {args.budgets}")
    branches = [branch_epoch(b, args.cooldown) for b in args.budgets]
    if any(not 1 <= e < b for e, b in zip(branches, args.budgets)):
        p.error(f"--cooldown {args.cooldown} leaves no constant-rate epoch or no cooldown epoch "
                f"in one of --budgets {args.budgets}")  # fmt: skip
    if args.cooldown_epochs is None:
        middle = args.budgets[len(args.budgets) // 2]
        args.cooldown_epochs = middle - branch_epoch(middle, args.cooldown)
    if args.max_epochs is None:
        args.max_epochs = 2 * args.budgets[-1]
    if args.max_epochs <= args.cooldown_epochs:
        p.error(f"--max-epochs must exceed --cooldown-epochs {args.cooldown_epochs}, "
                f"got {args.max_epochs}")  # fmt: skip
    return args


def branch_epoch(budget: int, cooldown: float) -> int:
    """The epoch a budget's cooldown starts: the budget less its cooldown, rounded to an epoch."""
    return budget - max(1, round(cooldown * budget))


def paired(a, b, confidence: float = 0.95) -> dict:
    """The mean of a - b over the seeds, its Student-t interval, and what the interval says."""
    import numpy as np
    from scipy import stats

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean = float(d.mean())
    if len(d) < 2:
        return {"mean": mean, "low": None, "high": None, "verdict": "one seed: no interval"}
    half = float(stats.t.ppf((1 + confidence) / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    low, high = mean - half, mean + half
    if half == 0 and mean != 0:  # equal differences: a zero-width interval measures nothing
        verdict = "the same difference in every seed: no spread to judge by"
    else:
        verdict = "better" if low > 0 else "worse" if high < 0 else "no difference shown"
    return {"mean": mean, "low": low, "high": high, "verdict": verdict}


def main(argv=None) -> dict:
    args = parse_args(argv)

    import keras
    import numpy as np
    from _common import build_resnet, load_data, mean_interval, print_table
    from matplotlib.figure import Figure

    from keras_lrkit import (
        CooldownOnPlateau,
        CosineDecay,
        LearningRateLogger,
        WarmupStableDecay,
    )

    data = load_data("mnist1d", max_samples=args.max_samples)
    (x, y), (x_val, y_val), (x_test, y_test) = data["train"], data["val"], data["test"]
    steps = math.ceil(len(x) / args.batch_size)
    os.makedirs(args.output, exist_ok=True)
    seeds = list(range(args.seed, args.seed + args.seeds))
    budgets, lr = args.budgets, args.learning_rate
    branches = {b: branch_epoch(b, args.cooldown) for b in budgets}
    print(f"ResNet-{args.depth} on MNIST-1D: {len(x)} training / {len(x_val)} validation / "
          f"{len(x_test)} test sequences, {steps} steps an epoch; SGD + momentum 0.9, weight decay "
          f"1e-4, batch {args.batch_size}, rate {lr}; budgets {budgets} epochs, cooldowns over the "
          f"last {args.cooldown:.0%}; seeds {seeds}")  # fmt: skip

    def compiled(schedule, seed):
        keras.utils.set_random_seed(seed)
        model = build_resnet(x.shape[1:], depth=args.depth, shift=3)
        model.compile(keras.optimizers.SGD(schedule, momentum=0.9),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])  # fmt: skip
        return model

    def fit(model, epochs, initial_epoch=0, callbacks=()):
        history = model.fit(x, y, validation_data=(x_val, y_val), batch_size=args.batch_size,
                            epochs=epochs, initial_epoch=initial_epoch, verbose=args.verbose,
                            callbacks=[LearningRateLogger(), *callbacks])  # fmt: skip
        return history.history

    def tested(model) -> dict:
        loss, accuracy = model.evaluate(x_test, y_test, verbose=0)[:2]
        return {"test_accuracy": float(accuracy), "test_loss": float(loss)}

    class SaveAt(keras.callbacks.Callback):
        """Saves the model (weights, optimizer state, step counter) after the given epochs."""

        def __init__(self, folder, epochs):
            super().__init__()
            self.folder, self.epochs, self.paths = folder, set(epochs), {}

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 in self.epochs:
                path = os.path.join(self.folder, f"constant-{epoch + 1}.keras")
                self.model.save(path)
                self.paths[epoch + 1] = path

    runs: dict[int, dict] = {}
    started = time.perf_counter()
    for seed in seeds:
        folder = os.path.join(args.output, f"seed{seed}")
        os.makedirs(folder, exist_ok=True)
        run: dict = {"cosine": {}, "wsd": {}, "linear": {}}
        # One constant-rate run (WSD without a decay: open-ended), saved at every branch point.
        saver = SaveAt(folder, branches.values())
        model = compiled(WarmupStableDecay(lr, steps_per_epoch="fit"), seed)
        run["constant"] = {"history": fit(model, max(branches.values()), callbacks=[saver])}
        # Each budget's cooldown, branched from its checkpoint: the WSD run of that budget.
        cooldowns = [(b, "1-sqrt") for b in budgets] + [(budgets[-1], "linear")]
        for budget, shape in cooldowns:
            model = keras.models.load_model(saver.paths[branches[budget]])
            model.optimizer.learning_rate = WarmupStableDecay(
                lr, budget, decay=budget - branches[budget], decay_shape=shape,
                steps_per_epoch="fit")  # fmt: skip
            history = fit(model, budget, initial_epoch=branches[budget])
            run["wsd" if shape == "1-sqrt" else "linear"][budget] = {
                "history": history, **tested(model)}  # fmt: skip
        # Cosine, from scratch for each budget: half a period from the rate to 0.
        for budget in budgets:
            model = compiled(CosineDecay(lr, budget, steps_per_epoch="fit"), seed)
            run["cosine"][budget] = {"history": fit(model, budget), **tested(model)}
        # Open-ended: constant until val_loss stops improving, then a 1-sqrt cooldown, then stop.
        model = compiled(WarmupStableDecay(lr, steps_per_epoch="fit"), seed)
        plateau = CooldownOnPlateau("val_loss", patience=args.patience,
                                    length=args.cooldown_epochs)  # fmt: skip
        every_step = LearningRateLogger(per_batch=True)  # the rate of every step, for the figure
        history = fit(model, args.max_epochs, callbacks=[plateau, every_step])
        run["plateau"] = {"history": history, "epochs": len(history["loss"]),
                          "cooldown_epoch": plateau.cooldown_epoch,
                          "rates": every_step.batch_learning_rates, **tested(model)}  # fmt: skip
        runs[seed] = run
        print(f"  seed {seed}: WSD {[round(run['wsd'][b]['test_accuracy'], 4) for b in budgets]}, "
              f"cosine {[round(run['cosine'][b]['test_accuracy'], 4) for b in budgets]}, "
              f"plateau run stopped after {run['plateau']['epochs']} epochs at "
              f"{run['plateau']['test_accuracy']:.4f} ({time.perf_counter() - started:.0f} s)")  # fmt: skip
    seconds = time.perf_counter() - started

    def accuracies(kind, budget=None):
        return [runs[s][kind][budget]["test_accuracy"] if budget else runs[s][kind]["test_accuracy"]
                for s in seeds]  # fmt: skip

    def interval(values):
        mean, low, high = mean_interval(values)
        return {"mean": mean, "low": low, "high": high, "values": values}

    table = []
    for budget in budgets:
        wsd, cosine = accuracies("wsd", budget), accuracies("cosine", budget)
        table.append({"budget": budget, "branch_epoch": branches[budget],
                      "wsd": interval(wsd), "cosine": interval(cosine),
                      "wsd_minus_cosine": paired(wsd, cosine)})  # fmt: skip
    top = budgets[-1]
    shapes = paired(accuracies("wsd", top), accuracies("linear", top))
    plateau_epochs = [runs[s]["plateau"]["epochs"] for s in seeds]
    compute = {"branched": max(branches.values()) + sum(b - branches[b] for b in budgets),
               "separate": sum(budgets)}  # fmt: skip

    def cell(i):
        return f"{i['mean']:.4f} [{i['low']:.4f}, {i['high']:.4f}]"

    def diff(d):
        if d["low"] is None:
            return f"{d['mean']:+.4f}"
        return f"{d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] {d['verdict']}"

    print(
        f"\nTest accuracy, mean of {len(seeds)} seeds [95% interval]; WSD - cosine paired by seed:"
    )
    print_table(["budget", "WSD (1-sqrt cooldown)", "cosine", "WSD - cosine"],
                [[f"{r['budget']} epochs", cell(r["wsd"]), cell(r["cosine"]),
                  diff(r["wsd_minus_cosine"])] for r in table])  # fmt: skip
    print(f"\nCooldown shape at {top} epochs: 1-sqrt {cell(interval(accuracies('wsd', top)))}, "
          f"linear {cell(interval(accuracies('linear', top)))}; 1-sqrt - linear {diff(shapes)}")  # fmt: skip
    print(f"Compute for the {len(budgets)} models: {compute['branched']} epochs branched from one "
          f"constant-rate run, {compute['separate']} epochs as separate cosine runs "
          f"({compute['branched'] / compute['separate']:.0%}).")  # fmt: skip
    plateau = interval(accuracies("plateau"))
    print(f"CooldownOnPlateau (patience {args.patience}, a {args.cooldown_epochs}-epoch cooldown): "
          f"stopped after {plateau_epochs} epochs, test accuracy {cell(plateau)}.")  # fmt: skip

    path = os.path.join(args.output, "anytime.png")
    schedules = {"constant": WarmupStableDecay(lr, steps_per_epoch=steps),
                 **{("wsd", b): WarmupStableDecay(lr, b, decay=b - branches[b],
                                                  steps_per_epoch=steps) for b in budgets},
                 **{("cosine", b): CosineDecay(lr, b, steps_per_epoch=steps) for b in budgets}}  # fmt: skip
    draw(Figure, np, runs[seeds[0]], table, plateau, plateau_epochs, budgets, branches, seeds[0],
         schedules, steps, path)  # fmt: skip
    summary = {
        "depth": args.depth, "learning_rate": lr, "batch_size": args.batch_size,
        "steps_per_epoch": steps, "budgets": budgets, "cooldown": args.cooldown,
        "branch_epochs": [branches[b] for b in budgets], "seeds": seeds,
        "table": table,
        "shape": {"budget": top, "one_minus_sqrt": interval(accuracies("wsd", top)),
                  "linear": interval(accuracies("linear", top)), "difference": shapes},
        "compute_epochs": compute,
        "plateau": {"patience": args.patience, "cooldown_epochs": args.cooldown_epochs,
                    "max_epochs": args.max_epochs, "epochs": plateau_epochs,
                    "cooldown_epoch": [runs[s]["plateau"]["cooldown_epoch"] for s in seeds],
                    "test_accuracy": plateau},
        "seconds": round(seconds, 1),
    }  # fmt: skip
    with open(os.path.join(args.output, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, allow_nan=False)
    print(f"\n{seconds:.0f} s. Wrote {args.output}: anytime.png, summary.json, seed*/")
    return summary


def draw(Figure, np, run, table, plateau, plateau_epochs, budgets, branches, seed, schedules,
         steps, path) -> None:  # fmt: skip
    """Three panels: the rate at every step and one seed's validation error, then every budget's
    test accuracy with its interval."""
    fig = Figure(figsize=(15, 4.6), layout="constrained")
    rates, curves, bars = fig.subplots(1, 3)
    colors = {b: f"C{i}" for i, b in enumerate(budgets)}

    def rate_curve(schedule, first_epoch, last_epoch):
        at = np.arange(first_epoch * steps, last_epoch * steps)
        return at / steps, np.asarray(schedule(at), dtype=float)

    def epochs_of(history, start=0):
        return np.arange(start, start + len(history["loss"])) + 1  # epoch e ends at e + 1

    top = max(branches.values())
    rates.plot(*rate_curve(schedules["constant"], 0, top), color="black", label="constant rate")
    constant = run["constant"]["history"]
    curves.plot(epochs_of(constant), 1 - np.asarray(constant["val_accuracy"]), color="black",
                label="constant rate")  # fmt: skip
    for b in budgets:
        rates.plot(*rate_curve(schedules[("wsd", b)], branches[b], b), color=colors[b],
                   label=f"WSD {b}, branched at {branches[b]}")  # fmt: skip
        rates.plot(*rate_curve(schedules[("cosine", b)], 0, b), color=colors[b], linestyle=":",
                   label=f"cosine {b}")  # fmt: skip
        wsd, cosine = run["wsd"][b]["history"], run["cosine"][b]["history"]
        curves.plot(epochs_of(wsd, branches[b]), 1 - np.asarray(wsd["val_accuracy"]),
                    color=colors[b], marker=".")  # fmt: skip
        curves.plot(epochs_of(cosine), 1 - np.asarray(cosine["val_accuracy"]), color=colors[b],
                    linestyle=":")  # fmt: skip
    p = run["plateau"]
    rates.plot(np.arange(len(p["rates"])) / steps, p["rates"], color="gray", linestyle="--",
               label="CooldownOnPlateau")  # fmt: skip
    curves.plot(epochs_of(p["history"]), 1 - np.asarray(p["history"]["val_accuracy"]),
                color="gray", linestyle="--")  # fmt: skip
    right = max(budgets[-1], p["epochs"]) + 0.5
    for axis in (rates, curves):
        axis.set_xlabel("epoch")
        axis.set_xlim(-0.5, right)
        axis.grid(alpha=0.3)
    rates.set_title(f"learning rate at every step (seed {seed})")
    curves.set_title(f"validation error, log scale (seed {seed})")
    curves.set_yscale("log")
    rates.legend(fontsize="small")

    x = np.arange(len(budgets))
    for offset, key, label in ((-0.15, "wsd", "WSD (1-sqrt cooldown)"), (0.15, "cosine", "cosine")):
        means = np.array([r[key]["mean"] for r in table])
        errors = np.array([[r[key]["mean"] - r[key]["low"], r[key]["high"] - r[key]["mean"]]
                           for r in table]).T  # fmt: skip
        bars.errorbar(x + offset, means, yerr=errors, fmt="o", capsize=4, label=label)
    bars.axhline(plateau["mean"], color="gray", linestyle="--",
                 label=f"CooldownOnPlateau ({min(plateau_epochs)}-{max(plateau_epochs)} epochs)")  # fmt: skip
    bars.set_xticks(x, [f"{b} epochs" for b in budgets])
    bars.set_xlim(-0.6, len(budgets) - 0.4)
    bars.set_ylim(top=1.0)
    bars.grid(alpha=0.3, axis="y")
    bars.set_title(f"test accuracy, mean and 95% interval, {len(table[0]['wsd']['values'])} seeds")
    bars.legend(fontsize="small", loc="lower right")
    fig.savefig(path)


if __name__ == "__main__":
    main()
