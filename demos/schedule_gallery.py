"""The learning-rate schedules side by side: the lecture's decays, then the shapes beyond it.

The first figure holds the decays of the classic lecture on training neural
networks (step, cosine, linear, inverse sqrt, constant, and a warmup), the
second the schedules users bring from torch, Keras and fastai (exponential,
polynomial, cosine with warm restarts, one-cycle, cyclical). Every curve starts
from the same rate and runs for the same number of epochs, with epochs on the
x axis. Writes two PNGs: the one named by -o, and the same name with _more.

    python demos/schedule_gallery.py -o gallery.png    # gallery.png and gallery_more.png
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _args import argument_parser, check  # noqa: E402  (no Keras: bad arguments fail fast)


def gallery(initial: float, epochs: int, steps_per_epoch: int) -> dict:
    from keras_lrkit import Constant, CosineDecay, InverseSqrtDecay, LinearDecay, StepDecay, Warmup

    spe = steps_per_epoch
    warmup = max(1, epochs // 20)
    return {
        "step: / 10 at 30%, 60%, 90% (ResNet)": StepDecay(
            initial, [int(epochs * f) for f in (0.3, 0.6, 0.9)], steps_per_epoch=spe
        ),
        "cosine": CosineDecay(initial, epochs, steps_per_epoch=spe),
        "linear": LinearDecay(initial, epochs, steps_per_epoch=spe),
        "inverse sqrt": InverseSqrtDecay(
            initial, timescale=max(1, epochs // 20), steps_per_epoch=spe
        ),
        "constant": Constant(initial, steps_per_epoch=spe),
        f"linear warmup ({warmup} epochs) + cosine": Warmup(
            CosineDecay(initial, epochs - warmup, steps_per_epoch=spe), warmup, steps_per_epoch=spe
        ),
    }


def beyond_the_lecture(initial: float, epochs: int, steps_per_epoch: int) -> dict:
    from keras_lrkit import CosineRestarts, Cyclic, ExponentialDecay, OneCycle, PolynomialDecay

    spe = steps_per_epoch
    return {
        "exponential: x 0.95 an epoch (Keras, torch ExponentialLR)": ExponentialDecay(
            initial, 0.95, steps_per_epoch=spe
        ),
        "polynomial, power 2 (Keras, torch PolynomialLR)": PolynomialDecay(
            initial, epochs, power=2.0, steps_per_epoch=spe
        ),
        "cosine, warm restarts (SGDR): periods x 2, peaks x 0.7": CosineRestarts(
            initial, max(1, epochs // 15), period_factor=2.0, peak_factor=0.7, steps_per_epoch=spe
        ),
        "one-cycle (fastai, torch OneCycleLR)": OneCycle(initial, epochs, steps_per_epoch=spe),
        "cyclic, triangular2 (torch CyclicLR)": Cyclic(
            initial / 10, initial, max(1, epochs // 10), mode="triangular2", steps_per_epoch=spe
        ),
    }


def draw(schedules: dict, title: str, args, path: str):
    from keras_lrkit import plot_schedule
    from keras_lrkit.plotting import new_figure

    rows = (len(schedules) + 2) // 3
    figure = new_figure((12, 3.25 * rows))
    axes = figure.subplots(rows, 3).ravel()
    for ax, (name, schedule) in zip(axes, schedules.items()):
        # A log axis where the rate spends its time decades down (a staircase, an exponential
        # decay), so each drop shows; a linear one where it only passes through them.
        plot_schedule(schedule, args.epochs * args.steps_per_epoch, ax=ax, title=name)
        ax.title.set_fontsize("small")
        if ax.get_yscale() == "linear":
            ax.set_ylim(-0.05 * args.initial, 1.05 * args.initial)
    for ax in axes[len(schedules) :]:
        ax.set_visible(False)
    figure.suptitle(title)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path)
    print(f"Wrote {path}")
    for name, schedule in schedules.items():
        at = [0, args.epochs // 4, args.epochs // 2, args.epochs - 1]
        rates = ", ".join(f"epoch {e}: {float(schedule(e * args.steps_per_epoch)):.4g}" for e in at)
        print(f"  {name:<58} {rates}")
    return figure


def main(argv=None) -> str:
    p = argument_parser(__doc__)
    p.add_argument(
        "-o", "--output", default=os.path.join("runs", "schedule_gallery.png"), help="PNG to write"
    )
    p.add_argument("--initial", type=float, default=0.1, help="initial learning rate (default 0.1)")
    p.add_argument("--epochs", type=int, default=100, help="length in epochs (default 100)")
    p.add_argument(
        "--steps-per-epoch", type=int, default=20, help="resolution of the curves (default 20)"
    )
    args = p.parse_args(argv)
    check(p, args, initial="rate", epochs=">=4", steps_per_epoch=">=1", output="file")
    base, ext = os.path.splitext(args.output)
    draw(
        gallery(args.initial, args.epochs, args.steps_per_epoch),
        f"The lecture's schedules: initial rate {args.initial}, {args.epochs} epochs",
        args,
        args.output,
    )
    draw(
        beyond_the_lecture(args.initial, args.epochs, args.steps_per_epoch),
        f"Beyond the lecture: peak rate {args.initial}, {args.epochs} epochs",
        args,
        f"{base}_more{ext}",
    )
    return args.output


if __name__ == "__main__":
    main()
