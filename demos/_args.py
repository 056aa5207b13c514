"""The demos' command lines, checked before Keras loads: nothing here imports it."""

from __future__ import annotations

import argparse
import math
import os

os.environ.setdefault("MPLBACKEND", "Agg")  # the demos write files; they never open a window
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors in one line (``lrkit demo resnet: error: ...``), not the usage block."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def argument_parser(doc: str, **kwargs) -> argparse.ArgumentParser:
    """The demo's parser: its docstring's first paragraph as the description.

    Run by ``lrkit demo NAME``, the demo goes by that name in its messages
    (the command sets ``LRKIT_DEMO``); run as a script, by its file's name.
    """
    prog = os.environ.get("LRKIT_DEMO") or None
    return _OneLineParser(prog=prog, description=doc.split("\n\n")[0], **kwargs)


def check(parser: argparse.ArgumentParser, args: argparse.Namespace, **rules: str) -> None:
    """Refuse, in one line naming the option and the value, what a demo cannot run with.

    ``rules`` maps an attribute of ``args`` to a rule: ``">=N"`` (a finite
    number at least N), ``"rate"`` (a finite number > 0), ``"fraction"`` (in
    [0, 1)), ``"depth"`` (6n + 2, at least 8), ``"folder"`` or ``"file"`` (an
    output path that can be created: no part of it is a file, the nearest
    existing folder is writable). An attribute left at None is not checked.
    """
    for name, rule in rules.items():
        value = getattr(args, name)
        if value is None:
            continue
        option = "--" + name.replace("_", "-")
        if rule.startswith(">="):
            if not (math.isfinite(value) and value >= int(rule[2:])):
                parser.error(f"{option} must be {rule[:2]} {rule[2:]}, got {value}")
        elif rule == "rate":
            if not (math.isfinite(value) and value > 0):
                parser.error(f"{option} must be a number > 0, got {value}")
        elif rule == "fraction":
            if not 0 <= value < 1:
                parser.error(f"{option} must be in [0, 1), got {value}")
        elif rule == "depth":
            if value < 8 or (value - 2) % 6:
                parser.error(f"{option} must be 6n + 2 (8, 14, 20, 32, ...), got {value}")
        elif rule in ("folder", "file"):
            problem = _unwritable(value if rule == "folder" else os.path.dirname(value) or ".")
            if problem:
                parser.error(f"{option} {value!r}: {problem}")
        else:
            raise ValueError(f"unknown rule {rule!r}")


def _unwritable(folder: str) -> str | None:
    """Why ``folder`` cannot be created or written into, or None when it can."""
    path = os.path.abspath(folder)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        return f"{path} is a file, not a folder"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable"
    return None


def add_run_options(parser: argparse.ArgumentParser, name: str, seeds: int = 3) -> None:
    """The options of a demo that trains over seeds: --seeds, --seed, --max-samples, --output,
    --verbose (checked by ``check``)."""
    parser.add_argument(
        "--seeds", type=int, default=seeds, help=f"how many seeds (default {seeds})"
    )
    parser.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--max-samples", type=int,
                        help="use only this many training sequences (smoke tests)")  # fmt: skip
    parser.add_argument("--output", default=os.path.join("runs", name),
                        help=f"output folder (default runs/{name})")  # fmt: skip
    parser.add_argument("--verbose", type=int, default=0, choices=[0, 1, 2],
                        help="Keras fit verbosity (default 0)")  # fmt: skip
