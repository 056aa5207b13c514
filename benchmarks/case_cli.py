"""Case 6: how soon the lrkit command answers, against `python -c pass` and `python -c "import keras"`.

Each command runs in a fresh process, as a user runs it, interleaved with the
others. ``--help`` and an argument error read no more than the arguments;
``lrkit schedule`` and ``lrkit plot`` run on Keras's NumPy backend. "The old
start" runs the same schedule command after importing keras_lrkit (and so
Keras on its default backend) first, as the command did before.

With ``LRKIT_WHEEL_VENV`` naming a virtual environment that holds the wheel
alone (no JAX: ``lrkit schedule`` runs on TensorFlow there), the case also
times ``lrkit schedule`` against ``python -c "import keras"`` in that
environment: the command pays for Keras's import and nothing more (target
1.1x), and counts the lines it writes to stderr (none).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import interleaved, row


def _lrkit() -> list[str]:
    script = Path(sys.executable).parent / "lrkit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "keras_lrkit_cli"]


def run(quick: bool, repeats: int) -> list:
    lrkit = _lrkit()
    with tempfile.TemporaryDirectory(prefix="lrkit-bench-") as scratch:
        tmp = Path(scratch)
        (tmp / "history.csv").write_text(
            "epoch,loss,val_loss,learning_rate\n"
            + "".join(
                f"{e},{1 / (e + 1)},{1.1 / (e + 1)},{0.1 * 0.1 ** (e // 30)}\n" for e in range(100)
            )
        )
        schedule = ["schedule", "cosine", "--epochs", "100", "-o", str(tmp / "s.png")]
        old_start = (
            "import sys, keras_lrkit, keras_lrkit_cli; "
            f"sys.exit(keras_lrkit_cli.main({schedule!r}))"
        )
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import keras'": [sys.executable, "-c", "import keras"],
            "lrkit --help": [*lrkit, "--help"],
            "lrkit, an argument error": [*lrkit, "schedule", "wobble"],
            "lrkit schedule cosine -o s.png": [*lrkit, *schedule],
            "the same, the old start": [sys.executable, "-c", old_start],
            "lrkit plot history.csv": [
                *lrkit,
                "plot",
                str(tmp / "history.csv"),
                "-o",
                str(tmp / "h.png"),
            ],
        }
        env = dict(os.environ)

        def call(command):
            return lambda: subprocess.run(command, env=env, capture_output=True, timeout=600)

        medians = interleaved({n: call(c) for n, c in commands.items()}, 3 if quick else repeats)
    python, keras_import = medians["python -c pass"], medians["python -c 'import keras'"]
    out = _wheel_only(quick, repeats) if os.environ.get("LRKIT_WHEEL_VENV") else []
    for name in ("lrkit --help", "lrkit, an argument error"):
        seconds = medians[name]
        out.append(row(6, f"{name}: seconds (x python -c pass, x import keras)", round(seconds, 3), "s",
                       "< 1 s", seconds < 1.0, vs_python=round(seconds / python, 2),
                       vs_import_keras=round(seconds / keras_import, 3)))  # fmt: skip
    for name in ("lrkit schedule cosine -o s.png", "lrkit plot history.csv"):
        seconds = medians[name]
        out.append(row(6, f"{name}: seconds", round(seconds, 3), "s",
                       vs_import_keras=round(seconds / keras_import, 3)))  # fmt: skip
    ratio = medians["lrkit schedule cosine -o s.png"] / medians["the same, the old start"]
    out.append(row(6, "lrkit schedule / the same after importing keras_lrkit first (the old start)",
                   round(ratio, 3), "x", "well under 1x", ratio <= 0.75,
                   old_start_s=round(medians["the same, the old start"], 3)))  # fmt: skip
    out.append(row(6, "python -c 'import keras' (the default backend): seconds", round(keras_import, 3), "s",
                   vs_python=round(keras_import / python, 1)))  # fmt: skip
    return out


def _wheel_only(quick: bool, repeats: int) -> list:
    """``lrkit schedule`` against ``import keras`` in a venv holding the wheel alone."""
    venv = Path(os.environ["LRKIT_WHEEL_VENV"])
    python, lrkit = venv / "bin" / "python", venv / "bin" / "lrkit"
    env = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")
    }
    with tempfile.TemporaryDirectory(prefix="lrkit-wheel-") as scratch:
        schedule = [str(lrkit), "schedule", "cosine", "--epochs", "100", "-o", f"{scratch}/s.png"]
        commands = {"import keras": [str(python), "-c", "import keras"], "lrkit schedule": schedule}

        def call(command):
            return lambda: subprocess.run(command, env=env, capture_output=True, timeout=600,
                                          cwd=scratch, check=True)  # fmt: skip

        # Best of the repeats, as a user's second run finds the files in the page cache.
        best = interleaved({n: call(c) for n, c in commands.items()}, 3 if quick else repeats,
                           statistic=min)  # fmt: skip
        stderr = subprocess.run(schedule, env=env, capture_output=True, text=True, cwd=scratch,
                                timeout=600).stderr  # fmt: skip
    ratio = best["lrkit schedule"] / best["import keras"]
    return [
        row(6, "wheel alone (TensorFlow): lrkit schedule / python -c 'import keras', best of runs",
            round(ratio, 3), "x", "<= 1.1x", ratio <= 1.1,
            schedule_s=round(best["lrkit schedule"], 3), import_keras_s=round(best["import keras"], 3)),
        row(6, "wheel alone (TensorFlow): lines lrkit schedule writes to stderr", len(stderr.splitlines()),
            "lines", "0", not stderr.strip()),
    ]  # fmt: skip
