"""The ``lrkit`` command: draw a schedule, plot a training history, run a demo.

    lrkit schedule step --initial 0.1 --milestones 30 60 90 --epochs 100 -o step.png
    lrkit schedule cosine --initial 0.1 --epochs 100 --warmup 5 -o cosine.png
    lrkit plot history.csv -o history.png
    lrkit demo resnet --epochs 10

It parses arguments and calls keras_lrkit's public API, nothing more. Bad
arguments exit with status 2 and one line saying what is wrong.

Why a package of its own, beside ``keras_lrkit``: importing ``keras_lrkit``
imports Keras (its classes must be registered for ``load_model`` the moment
the package is imported), and Keras imports its backend, TensorFlow by
default: 4 to 10 seconds. Here the arguments are read and checked first, so
``--help`` and every argument error answer at once; then ``schedule`` and
``plot``, which train nothing, run on Keras's NumPy backend, the lightest,
which gives the same numbers (``tests/test_cli.py`` compares them), where
SciPy and JAX are installed (that backend borrows from them); elsewhere on
the default backend. ``demo`` trains on the backend you chose. The demos ship inside this package (the
checkout's ``demos/`` folder), so ``lrkit demo`` works from an installed wheel.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import re
import runpy
import sys
from pathlib import Path

DEMOS = {
    "resnet": "resnet_step_decay.py",
    "gallery": "schedule_gallery.py",
    "early-stopping": "early_stopping.py",
    "compare": "compare_schedules.py",
    "find-lr": "find_lr.py",
    "anytime": "anytime.py",
}
# The options of one kind or a few, and the argument of each kind's class they set. An option
# left out is not passed: the class's own default applies (the help quotes it, and
# tests/test_cli.py checks the quotes against the classes); an option that does not apply to
# the kind drawn is refused, not ignored.
CLASSES = {
    "step": "StepDecay",
    "cosine": "CosineDecay",
    "linear": "LinearDecay",
    "inverse-sqrt": "InverseSqrtDecay",
    "constant": "Constant",
    "exponential": "ExponentialDecay",
    "polynomial": "PolynomialDecay",
    "restarts": "CosineRestarts",
    "one-cycle": "OneCycle",
    "cyclic": "Cyclic",
}
SCHEDULES = tuple(CLASSES)  # the kinds `lrkit schedule` draws
_FLOORED = ("step", "cosine", "linear", "exponential", "polynomial", "restarts")
OPTIONS = {
    "milestones": {"step": "milestones"},
    "every": {"step": "every", "exponential": "every"},
    "factor": {"step": "factor"},
    "min_lr": dict.fromkeys(_FLOORED, "min_learning_rate"),
    "rate": {"exponential": "rate"},
    "staircase": {"exponential": "staircase"},
    "power": {"polynomial": "power"},
    "period": {"restarts": "period"},
    "period_factor": {"restarts": "period_factor"},
    "peak_factor": {"restarts": "peak_factor"},
    "warmup_fraction": {"one-cycle": "warmup_fraction"},
    "initial_div": {"one-cycle": "initial_div"},
    "final_div": {"one-cycle": "final_div"},
    "shape": {"one-cycle": "shape"},
    "three_phase": {"one-cycle": "three_phase"},
    "base": {"cyclic": "base_learning_rate"},
    "half_period": {"cyclic": "half_period"},
    "mode": {"cyclic": "mode"},
    "gamma": {"cyclic": "gamma"},
    "timescale": {"inverse-sqrt": "timescale"},
}
MAX_EPOCHS = 1_000_000
MAX_POINTS = 2_000_000  # epochs x steps per epoch drawn


class UsageError(Exception):
    """Bad input from the command line: exit status 2, one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _finite(text: str) -> float:
    """A float that is a number: argparse's float() takes 'nan' and 'inf' too."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _version() -> str:
    """keras_lrkit's version, read from its _version.py without importing it (and Keras)."""
    spec = importlib.util.find_spec("keras_lrkit")
    folder = Path(list(spec.submodule_search_locations)[0]) if spec else None
    try:
        text = (folder / "_version.py").read_text()
        return re.search(r"__version__\s*=\s*[\"']([^\"']+)", text).group(1)
    except (OSError, AttributeError, TypeError):
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lrkit", description="keras_lrkit: learning-rate schedules, training plots and demos."
    )
    parser.add_argument("--version", action="version", version=f"lrkit (keras_lrkit) {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser(
        "schedule", help="draw a schedule's curve and print its rate at chosen epochs"
    )
    s.add_argument("kind", choices=SCHEDULES, help="which schedule")
    s.add_argument(
        "--initial",
        type=_finite,
        default=0.1,
        help="initial learning rate; one-cycle and cyclic: the peak (default 0.1)",
    )
    s.add_argument("--epochs", type=int, default=100, help="length in epochs (default 100)")
    s.add_argument(
        "--milestones",
        type=int,
        nargs="+",
        help="step: epochs at which to decay (default 30%%, 60%%, 90%% of --epochs)",
    )
    s.add_argument(
        "--every",
        type=_finite,
        help="step: decay every this many epochs instead of milestones; "
        "exponential: epochs per multiplication by --rate (default 1)",
    )
    s.add_argument(
        "--factor",
        type=_finite,
        help="step: multiplier at each milestone (default 0.1)",
    )
    s.add_argument(
        "--min-lr",
        type=_finite,
        help="cosine, linear, step, exponential, polynomial, restarts: the floor (default 0)",
    )
    s.add_argument("--rate", type=_finite, help="exponential: the multiplier (default 0.9)")
    s.add_argument(
        "--staircase",
        action="store_true",
        default=None,
        help="exponential: change once per --every (default: smoothly)",
    )
    s.add_argument("--power", type=_finite, help="polynomial: the power (default 1)")
    s.add_argument(
        "--period", type=_finite, help="restarts: the first period in epochs (default epochs / 10)"
    )
    s.add_argument(
        "--period-factor",
        type=_finite,
        help="restarts: each period this many times the last (default 1)",
    )
    s.add_argument(
        "--peak-factor",
        type=_finite,
        help="restarts: each restart this fraction of the last's height (default 1)",
    )
    s.add_argument(
        "--warmup-fraction",
        type=_finite,
        help="one-cycle: the share of the cycle spent rising (default 0.3)",
    )
    s.add_argument(
        "--initial-div",
        type=_finite,
        help="one-cycle: it starts at the peak / this (default 25)",
    )
    s.add_argument(
        "--final-div",
        type=_finite,
        help="one-cycle: it ends at its start / this (default 1e4)",
    )
    s.add_argument(
        "--shape",
        choices=("cosine", "linear"),
        help="one-cycle: each phase's curve (default cosine)",
    )
    s.add_argument(
        "--three-phase",
        action="store_true",
        default=None,
        help="one-cycle: back down to the start first (default: two phases)",
    )
    s.add_argument("--base", type=_finite, help="cyclic: the bottom rate (default --initial / 10)")
    s.add_argument(
        "--half-period",
        type=_finite,
        help="cyclic: epochs from bottom to top (default epochs / 10)",
    )
    s.add_argument(
        "--mode",
        choices=("triangular", "triangular2", "exp_range"),
        help="cyclic: how the cycles shrink (default triangular)",
    )
    s.add_argument(
        "--gamma", type=_finite, help="cyclic exp_range: the decay per epoch (default 1)"
    )
    s.add_argument(
        "--timescale", type=_finite, help="inverse-sqrt: tau in epochs (default epochs / 20)"
    )
    s.add_argument(
        "--warmup",
        type=_finite,
        default=0,
        help="epochs of linear warmup in front (default 0: none)",
    )
    s.add_argument(
        "--steps-per-epoch", type=int, default=20, help="points drawn per epoch (default 20)"
    )
    s.add_argument(
        "--at", type=_finite, nargs="+", help="epochs at which to print the rate (default: a few)"
    )
    s.add_argument("-o", "--output", help="PNG to write (default: <kind>.png)")

    p = sub.add_parser("plot", help="draw a CSVLogger or HistoryPlotter CSV")
    p.add_argument("csv", help="the history CSV")
    p.add_argument("-o", "--output", help="PNG to write (default: the CSV's name with .png)")
    p.add_argument("--metrics", nargs="+", help="metrics to draw (default: all)")
    p.add_argument("--title", help="figure title")
    p.add_argument(
        "--monitor",
        help="the column whose best epoch is marked, as your early stopping watched it "
        "(default val_loss, else the first metric); the legend names it",
    )
    p.add_argument(
        "--mode",
        choices=("auto", "min", "max"),
        default="auto",
        help="whether --monitor's best is its lowest or its highest (default auto: by the name)",
    )

    d = sub.add_parser("demo", help=f"run a demo: {', '.join(DEMOS)}")
    d.add_argument("name", choices=sorted(DEMOS), help="which demo")
    d.add_argument(
        "args", nargs=argparse.REMAINDER, help="arguments for the demo (see lrkit demo NAME --help)"
    )
    return parser


def _check_schedule_arguments(args: argparse.Namespace) -> None:
    """What can be checked before Keras is imported: ranges and sizes."""
    spe, epochs, warmup = args.steps_per_epoch, args.epochs, args.warmup
    if not 1 <= epochs <= MAX_EPOCHS:
        raise UsageError(f"--epochs must be from 1 to {MAX_EPOCHS}, got {epochs}")
    if spe < 1:
        raise UsageError(f"--steps-per-epoch must be >= 1, got {spe}")
    if epochs * spe > MAX_POINTS:
        raise UsageError(
            f"--epochs {epochs} x --steps-per-epoch {spe} is {epochs * spe} points to draw; "
            f"at most {MAX_POINTS}: lower --steps-per-epoch"
        )
    if args.milestones and (min(args.milestones) < 0 or max(args.milestones) * spe >= 2**63):
        raise UsageError(
            f"--milestones takes epochs >= 0 whose step the optimizer's int64 counter holds "
            f"(below 2**63 / --steps-per-epoch {spe} = {2**63 / spe:.4g}), got "
            f"{max(args.milestones) if min(args.milestones) >= 0 else min(args.milestones)}"
        )
    if args.at is not None and min(args.at) < 0:
        raise UsageError(f"--at takes epochs >= 0, got {min(args.at):g}")
    if args.at is not None and max(args.at) * spe >= 2**63:
        raise UsageError(
            f"--at takes epochs whose step the optimizer's int64 counter holds "
            f"(below 2**63 / --steps-per-epoch {spe} = {2**63 / spe:.4g}), got {max(args.at):g}"
        )
    if not 0 <= warmup < epochs:
        raise UsageError(f"--warmup must be >= 0 and below --epochs={epochs}, got {warmup:g}")
    for option, kinds in OPTIONS.items():
        if getattr(args, option) is not None and args.kind not in kinds:
            flag = "--" + option.replace("_", "-")
            raise UsageError(
                f"{flag} does not apply to {args.kind}: it sets "
                + ", ".join(f"{CLASSES[kind]}'s {name}" for kind, name in kinds.items())
            )


def _check_output_folder(output: str | None) -> None:
    """An output whose folder is missing or not writable, refused before Keras loads."""
    if output is None:
        return
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {output}: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {output}: {folder} is not writable")


def _build_schedule(args: argparse.Namespace):
    import keras_lrkit

    spe, epochs, warmup, kind = args.steps_per_epoch, args.epochs, args.warmup, args.kind
    length = epochs - warmup  # the decay fills what the warmup leaves
    # The options given, under their class's names; the class's defaults fill in the rest.
    given = {
        kinds[kind]: getattr(args, option)
        for option, kinds in OPTIONS.items()
        if kind in kinds and getattr(args, option) is not None
    }
    # The command's own choices where a class has no default: they depend on --epochs.
    if kind == "step" and "every" not in given:
        given.setdefault("milestones", [int(epochs * f) for f in (0.3, 0.6, 0.9)])
    elif kind == "inverse-sqrt":
        given.setdefault("timescale", max(epochs / 20, 1))
    elif kind == "exponential":
        given.setdefault("rate", 0.9)
    elif kind == "restarts":
        given.setdefault("period", max(length / 10, 1))
    elif kind == "cyclic":
        given.setdefault("base_learning_rate", args.initial / 10)
        given.setdefault("half_period", max(length / 10, 1))
    cls = getattr(keras_lrkit, CLASSES[kind])
    if kind == "cyclic":
        inner = cls(max_learning_rate=args.initial, **given, steps_per_epoch=spe)
    elif kind in ("cosine", "linear", "polynomial", "one-cycle"):
        inner = cls(args.initial, length, **given, steps_per_epoch=spe)
    else:
        inner = cls(args.initial, **given, steps_per_epoch=spe)
    return keras_lrkit.Warmup(inner, warmup, steps_per_epoch=spe) if warmup else inner


def _schedule(args: argparse.Namespace) -> int:
    import numpy as np

    from keras_lrkit import plot_schedule

    _milestones_past_the_end(args)
    schedule = _build_schedule(args)
    spe = args.steps_per_epoch
    title = f"{args.kind}" + (f" with {args.warmup:g} epochs of warmup" if args.warmup else "")
    figure = plot_schedule(schedule, args.epochs * spe, title=title)
    output = args.output or f"{args.kind}.png"
    _save(figure, output)
    at = args.at or sorted({0, *(args.milestones or []), args.epochs // 2, args.epochs - 1})
    rates = np.asarray(schedule(np.round(np.asarray(at) * spe).astype("int64")), dtype=float)
    print(f"{schedule!r}")
    for epoch, rate in zip(at, rates):
        print(f"epoch {epoch:g}: {rate:.6g}")
    print(f"wrote {output}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from keras_lrkit import plot_history

    figure = plot_history(
        args.csv, metrics=args.metrics, title=args.title, monitor=args.monitor, mode=args.mode
    )
    output = args.output or str(Path(args.csv).with_suffix(".png"))
    _save(figure, output)
    print(f"wrote {output}")
    return 0


def _save(figure, output: str) -> None:
    from keras_lrkit._io import atomic_write

    try:
        atomic_write(
            output, lambda tmp: figure.savefig(tmp, format=Path(output).suffix.lstrip(".") or "png")
        )
    except OSError as error:
        raise UsageError(f"cannot write {output}: {error.strerror}") from None
    except ValueError as error:  # e.g. a format matplotlib does not know
        raise UsageError(f"cannot write {output}: {error}") from None


def demos_folder() -> Path:
    """Where the demos are: inside this package when installed, ``demos/`` in a checkout."""
    try:
        spec = importlib.util.find_spec(f"{__name__}.demos")
    except ImportError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parent.parent / "demos"


# The packages a demo's data needs beyond keras_lrkit's own: the "demos" extra.
_DATASET_PACKAGES = {"mnist1d": "mnist1d", "digits": "sklearn"}


def _check_demo_packages(args: argparse.Namespace) -> None:
    """A demo's data package that is not installed: one line naming it and the install, before Keras."""
    if args.name == "gallery":
        return  # draws schedules: no data
    dataset = "mnist1d"
    for i, arg in enumerate(args.args):
        if arg == "--dataset" and i + 1 < len(args.args):
            dataset = args.args[i + 1]
        elif arg.startswith("--dataset="):
            dataset = arg.split("=", 1)[1]
    package = _DATASET_PACKAGES.get(dataset)
    if package is not None and importlib.util.find_spec(package) is None:
        raise UsageError(
            f"demo {args.name} trains on {dataset}, which needs the package "
            f"{'scikit-learn' if package == 'sklearn' else package}: "
            f'pip install "keras_lrkit[demos]"'
        )


def _demo(args: argparse.Namespace) -> int:
    path = demos_folder() / DEMOS[args.name]
    if not path.is_file():
        raise UsageError(f"demo {args.name!r} is missing: {path} is not there")
    _check_demo_packages(args)
    # The demo reads its own arguments, and names itself in its messages as run here.
    os.environ["LRKIT_DEMO"] = f"lrkit demo {args.name}"
    sys.argv = [str(path), *args.args]
    sys.path.insert(0, str(path.parent))
    runpy.run_path(str(path), run_name="__main__")
    return 0


def _milestones_past_the_end(args: argparse.Namespace) -> None:
    late = [m for m in args.milestones or [] if m >= args.epochs]
    if args.kind == "step" and late:
        print(
            f"lrkit: warning: milestones {', '.join(map(str, late))} are at or past "
            f"--epochs {args.epochs}: they never apply in the drawn range",
            file=sys.stderr,
        )


def _numpy_backend_available() -> bool:
    """Keras's NumPy backend borrows from SciPy and JAX: without them, the default backend serves."""
    return all(importlib.util.find_spec(name) is not None for name in ("scipy", "jax"))


@contextlib.contextmanager
def _native_logging_silenced(silence: bool):
    """Native code's writes to stderr go nowhere; Python's (warnings, errors) still go out.

    TensorFlow 2.21 logs from C++ at import and at its first op (``cudart_stub``,
    ``cuInit``, oneDNN) whatever ``TF_CPP_MIN_LOG_LEVEL`` says. While this runs,
    file descriptor 2 points at the null device and ``sys.stderr`` at a copy of the
    real one, so only what Python prints reaches the terminal.
    """
    if not silence:
        yield
        return
    sys.stderr.flush()
    real = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    saved = sys.stderr
    os.dup2(null, 2)
    sys.stderr = open(real, "w", closefd=False, encoding=saved.encoding, errors=saved.errors)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = saved
        os.dup2(real, 2)
        os.close(real)
        os.close(null)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lrkit`` console script."""
    try:
        args = _parser().parse_args(argv)
        # TensorFlow's C++ start-up logging (CUDA probes on a machine without a GPU) is not
        # the command's output; a TF_CPP_MIN_LOG_LEVEL of the user's own wins.
        asked_for_logs = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") in ("0", "1", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if args.command == "demo":
            return _demo(args)  # a demo's own errors keep their traceback

        if args.command == "schedule":
            _check_schedule_arguments(args)
        elif not os.path.isfile(args.csv):
            raise UsageError(f"no such file: {args.csv}")
        _check_output_folder(args.output)
        # Nothing to train: the NumPy backend gives the same numbers, and starts fastest.
        if _numpy_backend_available():
            os.environ["KERAS_BACKEND"] = "numpy"
        try:
            with _native_logging_silenced(not asked_for_logs):
                return {"schedule": _schedule, "plot": _plot}[args.command](args)
        except ValueError as error:  # bad values: the schedules and the CSV reader say which
            raise UsageError(str(error)) from None
    except UsageError as error:
        print(f"lrkit: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
