"""The lrkit command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

import keras_lrkit_cli as cli

from .helpers import BACKEND

SCRIPT = Path(sys.executable).parent / "lrkit"


def lrkit(*args, cwd=None):
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "keras_lrkit_cli"]
    env = dict(os.environ, KERAS_BACKEND=BACKEND, MPLBACKEND="Agg")
    return subprocess.run(
        command + [str(a) for a in args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def last_line(text):
    return text.strip().splitlines()[-1]


def test_schedule_step_writes_curve_and_prints_rates(tmp_path):
    out = tmp_path / "step.png"
    r = lrkit(
        "schedule", "step", "--initial", 0.1, "--milestones", 30, 60, 90, "--epochs", 100, "-o", out
    )
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(": ") for line in r.stdout.splitlines() if line.startswith("epoch "))
    expected = {
        "epoch 0": 0.1,
        "epoch 30": 0.01,
        "epoch 60": 0.001,
        "epoch 90": 0.0001,
        "epoch 99": 0.0001,
    }
    for key, value in expected.items():
        assert float(lines[key]) == pytest.approx(value, rel=1e-5)
    assert matplotlib.image.imread(out).shape[0] > 100


@pytest.mark.parametrize("kind", ["cosine", "linear", "inverse-sqrt", "constant"])
def test_every_schedule_and_warmup(tmp_path, kind):
    r = lrkit(
        "schedule",
        kind,
        "--epochs",
        20,
        "--warmup",
        2,
        "--at",
        0,
        1,
        2,
        19,
        "-o",
        tmp_path / "s.png",
    )
    assert r.returncode == 0, r.stderr
    rates = [
        float(line.split(": ")[1]) for line in r.stdout.splitlines() if line.startswith("epoch ")
    ]
    assert rates[0] == 0.0  # the warmup starts at 0
    assert rates[1] == pytest.approx(0.05, rel=1e-5)  # half-way up the 2-epoch ramp to 0.1
    assert rates[2] == pytest.approx(0.1, rel=1e-5)  # the decay starts on its own clock
    assert (tmp_path / "s.png").exists()


def test_plot_history_csv(tmp_path):
    csv_path = tmp_path / "history.csv"
    csv_path.write_text(
        "epoch,loss,val_loss,learning_rate\n0,1.0,1.2,0.1\n1,0.5,0.9,0.1\n2,0.4,1.0,0.01\n"
    )
    r = lrkit("plot", csv_path, "-o", tmp_path / "h.png")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "h.png").stat().st_size > 5000


def test_demo_by_name(tmp_path):
    r = lrkit("demo", "gallery", "-o", tmp_path / "g.png", "--epochs", 10)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g.png").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["schedule", "wobble"], "invalid choice: 'wobble'"),
        (["schedule", "cosine", "--epochs", 0], "--epochs must be from 1 to 1000000, got 0"),
        (["schedule", "cosine", "--initial", -1], "Argument `initial_learning_rate`"),
        (
            ["schedule", "step", "--milestones", 5, 3],
            "Argument `milestones` must be strictly increasing",
        ),
        (["schedule", "linear", "--epochs", "ten"], "invalid int value: 'ten'"),
        (["demo", "nope"], "invalid choice: 'nope'"),
        ([], "the following arguments are required: command"),
        (["schedule", "step", "--milestones", 99999999999999999999], "int64 counter holds"),
        (["schedule", "cosine", "--at", 1e20], "int64 counter holds"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message):
    r = lrkit(*args)
    assert r.returncode == 2
    line = last_line(r.stderr)
    assert line.startswith("lrkit: error:") and message in line


def test_missing_and_malformed_csv_name_file_and_line(tmp_path):
    r = lrkit("plot", tmp_path / "missing.csv")
    assert (
        r.returncode == 2
        and "no such file" in last_line(r.stderr)
        and "missing.csv" in last_line(r.stderr)
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("epoch,loss\n0,1.0\n1,not-a-number\n")
    r = lrkit("plot", bad)
    assert r.returncode == 2
    assert "bad.csv, line 3" in last_line(r.stderr) and "not-a-number" in last_line(r.stderr)


@pytest.mark.parametrize(
    "args,message",
    [
        (["schedule", "cosine", "--epochs", 10**12], "--epochs must be from 1 to 1000000"),
        (["schedule", "cosine", "--epochs", 10**5, "--steps-per-epoch", 10**4], "points to draw"),
        (["schedule", "cosine", "--at", "nan", "inf"], "not a finite number: 'nan'"),
        (["schedule", "cosine", "--at", -3], "--at takes epochs >= 0"),
        (["schedule", "cosine", "--initial", "inf"], "not a finite number: 'inf'"),
        (["schedule", "step", "--factor", "nan"], "not a finite number: 'nan'"),
    ],
)
def test_out_of_range_numbers_exit_2_with_one_line(args, message):
    r = lrkit(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert last_line(r.stderr).startswith("lrkit: error:") and message in last_line(r.stderr)


def test_hostile_csv_files_exit_2_naming_the_file(tmp_path):
    long_field = tmp_path / "long.csv"
    long_field.write_text("epoch,loss\n0," + "1" * 200_000 + "\n")
    header_only = tmp_path / "header.csv"
    header_only.write_text("epoch,loss,val_loss\n")
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    for path, message in [
        (long_field, "long.csv, line 2: field larger than field limit"),
        (header_only, "header.csv: a header row (epoch,loss,val_loss) but no rows"),
        (binary, "image.csv: not a UTF-8 text CSV file"),
    ]:
        r = lrkit("plot", path, "-o", tmp_path / "out.png")
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert message in last_line(r.stderr)
    assert not (tmp_path / "out.png").exists()


def test_outputs_that_are_not_regular_files(tmp_path):
    csv_path = tmp_path / "h.csv"
    csv_path.write_text("epoch,loss\n0,1.0\n1,0.5\n")
    r = lrkit("plot", csv_path, "-o", "/dev/null")  # written through, the device stays
    assert r.returncode == 0, r.stderr
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    if os.path.exists("/dev/full"):
        r = lrkit("schedule", "cosine", "-o", "/dev/full")
        assert r.returncode == 2
        assert (
            last_line(r.stderr) == "lrkit: error: cannot write /dev/full: No space left on device"
        )
        assert not os.path.isfile("/dev/full")
    r = lrkit("schedule", "cosine", "-o", tmp_path / "nonexistent" / "x.png")
    assert r.returncode == 2 and ".lrkit-" not in r.stderr
    assert f"cannot write {tmp_path / 'nonexistent' / 'x.png'}" in last_line(r.stderr)


def test_plot_a_csv_logger_file_with_na(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(  # as Keras's CSVLogger writes it with validation_freq=2
        "epoch,loss,mae,val_loss,val_mae\n0,1.4,1.1,NA,NA\n1,1.3,1.0,1.1,0.9\n2,1.2,1.0,NA,NA\n"
    )
    r = lrkit("plot", path, "-o", tmp_path / "log.png")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "log.png").stat().st_size > 5000


# --- a command that answers at once --------------------------------------------------


def imports_after(*args):
    """The heavy modules that ``lrkit ARGS`` imported, run in-process in a fresh interpreter."""
    code = (
        "import sys, contextlib, io, keras_lrkit_cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    try:\n"
        f"        keras_lrkit_cli.main({list(map(str, args))!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch', 'keras_lrkit') if m in sys.modules))\n"
        "print(__import__('os').environ.get('KERAS_BACKEND'))\n"
    )
    env = dict(os.environ, KERAS_BACKEND=BACKEND)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300, check=True).stdout.split("\n")  # fmt: skip
    return out[-3], out[-2]


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["schedule", "wobble"],
        ["schedule", "cosine", "--epochs", 0],
        [],
        ["schedule", "cosine", "-o", "/nonexistent/x.png"],
        ["schedule", "step", "--rate", 0.5],
        ["plot", __file__, "-o", "/nonexistent/x.png"],
    ],
)
def test_help_and_argument_errors_import_no_keras(args):
    loaded, _ = imports_after(*args)
    assert loaded == "[]"


# Keras's NumPy backend imports JAX (and SciPy): without them the command uses the default backend.
needs_numpy_backend = pytest.mark.skipif(
    not cli._numpy_backend_available(),
    reason='Keras\'s NumPy backend needs JAX and SciPy (pip install "keras_lrkit[jax]")',
)


@needs_numpy_backend
def test_schedule_runs_on_the_numpy_backend(tmp_path):
    loaded, backend = imports_after("schedule", "cosine", "--epochs", 5, "-o", tmp_path / "c.png")
    assert "tensorflow" not in loaded and "torch" not in loaded and backend == "numpy"


NUMBERS = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras_lrkit as k
    schedules = {
        "step": k.StepDecay(0.1, [3, 7], steps_per_epoch=5),
        "every": k.StepDecay(0.1, every=4, decrement=0.02, min_learning_rate=0.01),
        "cosine": k.CosineDecay(0.1, 37, min_learning_rate=0.003),
        "linear": k.LinearDecay(0.1, 29, steps_per_epoch=3),
        "inverse_sqrt": k.InverseSqrtDecay(0.1, timescale=7),
        "constant": k.Constant(0.05),
        "warmup": k.Warmup(k.CosineDecay(0.1, 20), 5, initial_learning_rate=0.01),
        "chain": k.Chain([k.Constant(0.1), k.LinearDecay(0.1, 10)], [6]),
        "reduced": k.Reduced(k.CosineDecay(0.1, 40), [[5, 0.5], [9, 0.1]], min_learning_rate=0.004),
        "exponential": k.ExponentialDecay(0.1, 0.8, 3, staircase=True),
        "polynomial": k.PolynomialDecay(0.1, 50, power=0.5),
        "restarts": k.CosineRestarts(0.1, 7, period_factor=2, peak_factor=0.6),
        "one_cycle": k.OneCycle(0.1, 100, three_phase=True),
        "cyclic": k.Cyclic(0.001, 0.01, 6, mode="exp_range", gamma=0.99),
    }
    steps = np.arange(120)
    print(json.dumps({n: np.asarray(s(steps), dtype=float).tolist() for n, s in schedules.items()}))
    """
)


@needs_numpy_backend
def test_the_numpy_backend_gives_the_same_numbers():
    values = {}
    for backend in ("numpy", BACKEND):
        env = dict(os.environ, KERAS_BACKEND=backend)
        out = subprocess.run([sys.executable, "-c", NUMBERS], capture_output=True, text=True,
                             env=env, timeout=300, check=True).stdout  # fmt: skip
        values[backend] = json.loads(out.strip().splitlines()[-1])
    for name, rates in values["numpy"].items():
        # To float32 rounding: XLA (JAX) divides by multiplying with a reciprocal, and where a
        # decay nears its floor (a0 - a0 * t / T) that rounding is one of the peak's ulps, not
        # of the small result's, so the absolute tolerance is two float32 ulps of the peak.
        atol = 2 * np.finfo(np.float32).eps * max(rates)
        np.testing.assert_allclose(rates, values[BACKEND][name], rtol=1e-6, atol=atol, err_msg=name)


def test_milestones_past_the_end_warn_and_still_draw(tmp_path):
    r = lrkit(
        "schedule", "step", "--epochs", 100, "--milestones", 30, 120, 150, "-o", tmp_path / "s.png"
    )
    assert r.returncode == 0, r.stderr
    assert "lrkit: warning: milestones 120, 150 are at or past --epochs 100" in r.stderr
    assert (tmp_path / "s.png").exists()


def test_a_demo_s_argument_error_is_one_line_naming_the_demo():
    r = lrkit("demo", "resnet", "--epoch", 0)
    assert r.returncode == 2
    lines = [
        line
        for line in r.stderr.strip().splitlines()
        if not line.startswith(("WARNING", "I0", "W0", "E0"))
    ]
    assert len(lines) == 1 and lines[0].startswith("lrkit demo resnet: error:"), r.stderr


def test_version_answers_without_keras():
    r = lrkit("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"lrkit (keras_lrkit) {keras_lrkit_version()}"


def keras_lrkit_version():
    import keras_lrkit

    return keras_lrkit.__version__


CSVS = {
    "duplicated": ("epoch,loss,loss\n0,1,2\n1,0.5,1\n", "line 1: column 'loss' is named twice"),
    "na_epoch": ("epoch,loss\nNA,1\n1,0.5\n", "line 2: column 'epoch' holds 'NA'"),
    "huge": ("epoch,loss\n0,1e308\n1,-1e308\n", "line 2: column 'loss' holds 1e308"),
}


@pytest.mark.parametrize("case", sorted(CSVS))
def test_csvs_that_cannot_be_drawn_name_file_line_and_column(tmp_path, case):
    text, message = CSVS[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(text)
    r = lrkit("plot", path, "-o", tmp_path / "out.png")
    assert r.returncode == 2 and message in last_line(r.stderr) and str(path) in last_line(r.stderr)


def test_a_byte_order_mark_is_not_part_of_the_epoch_column(tmp_path):
    from keras_lrkit.plotting import read_history_csv

    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffepoch,loss\n3,1\n4,0.5\n".encode())
    assert read_history_csv(path) == {"epoch": [3.0, 4.0], "loss": [1.0, 0.5]}


def test_a_demo_without_its_data_package_is_one_line_before_keras(tmp_path):
    # A Python that cannot find mnist1d (as a wheel installed without the "demos" extra).
    hide = (
        "import sys\n"
        "sys.modules['mnist1d'] = None  # importlib.util.find_spec('mnist1d') is None now\n"
        "import keras_lrkit_cli\n"
        "code = keras_lrkit_cli.main(['demo', 'early-stopping', '--output', sys.argv[1]])\n"
        "print('keras' in sys.modules)\n"
        "sys.exit(code)\n"
    )
    r = subprocess.run([sys.executable, "-c", hide, str(tmp_path / "out")], capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "lrkit: error: demo early-stopping trains on mnist1d, which needs the package mnist1d: "
        'pip install "keras_lrkit[demos]"'
    ]
    assert r.stdout.strip() == "False" and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, flag, owner",
    [
        (["schedule", "step", "--rate", 0.5], "--rate", "ExponentialDecay's rate"),
        (["schedule", "cosine", "--milestones", 3], "--milestones", "StepDecay's milestones"),
        (["schedule", "constant", "--min-lr", 0.01], "--min-lr", "CosineDecay's min_learning_rate"),
        (["schedule", "linear", "--three-phase"], "--three-phase", "OneCycle's three_phase"),
        (["schedule", "one-cycle", "--mode", "triangular2"], "--mode", "Cyclic's mode"),
    ],
)
def test_an_option_that_does_not_apply_is_refused_not_ignored(args, flag, owner):
    r = lrkit(*args)
    line = last_line(r.stderr)
    assert r.returncode == 2 and f"{flag} does not apply to {args[1]}" in line and owner in line


def test_the_help_quotes_each_class_s_own_default():
    import inspect
    import re

    import keras_lrkit

    schedule = next(
        action.choices["schedule"]
        for action in cli._parser()._actions
        if isinstance(action, cli.argparse._SubParsersAction)
    )
    helps = {a.dest: a.help for a in schedule._actions}
    quoted = 0
    for option, kinds in cli.OPTIONS.items():
        assert schedule.get_default(option) is None  # left out: not passed, the class decides
        for kind, name in kinds.items():
            parameter = inspect.signature(getattr(keras_lrkit, cli.CLASSES[kind])).parameters[name]
            default = parameter.default
            if default is inspect.Parameter.empty or default is None or isinstance(default, bool):
                continue  # the command's own choice (it depends on --epochs), or a flag
            said = re.search(r"\(default ([^)]+)\)", helps[option]).group(1)
            if "epochs" in said or "--" in said:
                continue  # the command's own choice, from --epochs or --initial: said so
            number = re.fullmatch(r"[-+0-9.e]+", said)
            assert (float(said) == default) if number else (said == default), (option, kind)
            quoted += 1
    assert quoted >= 12


def test_plot_marks_the_best_of_the_monitor_given_and_names_it(tmp_path, monkeypatch):
    # In this process (the figure is inspected, not its PNG); the environment is restored after.
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", BACKEND))
    csv_path = tmp_path / "history.csv"
    csv_path.write_text("epoch,loss,val_loss,val_accuracy\n0,1.0,1.2,0.5\n1,0.5,0.9,0.6\n"
                        "2,0.4,1.0,0.7\n3,0.3,1.1,0.65\n")  # fmt: skip
    drawn = {}
    monkeypatch.setattr(cli, "_save", lambda figure, output: drawn.setdefault(output, figure))

    def best_mark(*args):
        drawn.clear()
        assert cli.main(["plot", str(csv_path), *args]) == 0
        (figure,) = drawn.values()
        return [ln.get_label() for ln in figure.axes[0].get_lines()
                if ln.get_visible() and ln.get_label().startswith("best")]  # fmt: skip

    assert best_mark() == ["best epoch 1 (lowest val_loss)"]
    assert best_mark("--monitor", "val_accuracy") == ["best epoch 2 (highest val_accuracy)"]
    assert best_mark("--monitor", "val_loss", "--mode", "max") == [
        "best epoch 0 (highest val_loss)"
    ]
    r = lrkit("plot", csv_path, "--monitor", "val_acc", "-o", tmp_path / "h.png")
    line = last_line(r.stderr)
    assert (
        r.returncode == 2 and "`monitor`" in line and "'val_acc'" in line and "val_accuracy" in line
    )


@pytest.mark.parametrize("jax", ["as installed", "hidden"])
def test_schedule_keeps_tensorflow_s_logging_out_of_its_output(tmp_path, jax):
    # Without JAX (a wheel alone) the command runs on TensorFlow, whose C++ logging (2.21)
    # ignores TF_CPP_MIN_LOG_LEVEL; stderr holds the command's own lines only.
    hide = (
        "u.find_spec = lambda n, *a: None if n == 'jax' else find(n, *a)" if jax == "hidden" else ""
    )
    script = textwrap.dedent(f"""
        import importlib.util as u, sys
        find = u.find_spec
        {hide}
        import keras_lrkit_cli
        sys.exit(keras_lrkit_cli.main(sys.argv[1:]))
    """)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-c", script, "schedule", "step", "--milestones", "30", "300"]
    run = subprocess.run([*command,
                          "-o", tmp_path / "s.png"], capture_output=True, text=True, env=env,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0 and "wrote" in run.stdout
    # Only the command's own warning, from Python.
    assert run.stderr.splitlines() == [
        "lrkit: warning: milestones 300 are at or past --epochs 100: they never apply in the "
        "drawn range"
    ]
