"""The lecture's learning-rate decays side by side: step, cosine, linear, inverse sqrt, constant, and a warmup.

Every curve starts from the same initial rate and runs for the same number of
epochs, with epochs on the x axis, like the slides of the classic lecture on
training neural networks. Writes one PNG.

    python demos/schedule_gallery.py -o gallery.png
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import argument_parser  # noqa: E402  (and the Agg backend)

from keras_lrkit import (  # noqa: E402
    Constant,
    CosineDecay,
    InverseSqrtDecay,
    LinearDecay,
    StepDecay,
    Warmup,
    plot_schedule,
)
from keras_lrkit.plotting import new_figure  # noqa: E402


def gallery(initial: float, epochs: int, steps_per_epoch: int) -> dict:
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
    schedules = gallery(args.initial, args.epochs, args.steps_per_epoch)
    figure = new_figure((12, 6.5))
    axes = figure.subplots(2, 3).ravel()
    for ax, (name, schedule) in zip(axes, schedules.items()):
        plot_schedule(
            schedule, args.epochs * args.steps_per_epoch, ax=ax, title=name, log_scale=False
        )
        ax.set_ylim(-0.05 * args.initial, 1.05 * args.initial)
    figure.suptitle(f"Learning-rate schedules: initial rate {args.initial}, {args.epochs} epochs")
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    figure.savefig(args.output)
    print(f"Wrote {args.output}")
    for name, schedule in schedules.items():
        at = [0, args.epochs // 4, args.epochs // 2, args.epochs - 1]
        rates = ", ".join(f"epoch {e}: {float(schedule(e * args.steps_per_epoch)):.4g}" for e in at)
        print(f"  {name:<40} {rates}")
    return args.output


if __name__ == "__main__":
    main()
