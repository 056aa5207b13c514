"""keras_lrkit's benchmarks: what the toolkit costs in the training loop, as ratios measured side by side.

Every figure is a ratio of two medians measured in this one process, the
variants interleaved (A, B, A, B, ...), at least 5 repeats each. Results go to
benchmarks/results/<backend>-<device>.json, and benchmarks/results/RESULTS.md
is rebuilt from every JSON there.

    python benchmarks/run.py                 # all cases
    python benchmarks/run.py --quick         # small sizes: proves the suite runs (CI)
    KERAS_BACKEND=jax python benchmarks/run.py --cases 1 2 5

Cases:
 1. per-step cost of each schedule inside model.fit (MLP and ResNet), against a
    constant float rate and against Keras's own schedules;
 2. best-weight snapshot and restore against keras.callbacks.EarlyStopping's
    get_weights / set_weights, with a plain copy of the same bytes as the limit;
 3. HistoryPlotter: how long the training thread is held per epoch, and a whole
    fit's wall time with it against without;
 4. vectorized evaluation of 1,000,000 steps against a Python loop over a Keras schedule;
 5. extra peak memory of the snapshot against the weights' own size.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lrkit as lrk  # noqa: E402

HERE = Path(__file__).resolve().parent
BACKEND = keras.backend.backend()


# --- measuring ------------------------------------------------------------------


def interleaved(variants: dict, repeats: int, setup: dict | None = None) -> dict:
    """Median seconds of each zero-argument callable, run interleaved in a balanced order.

    Round r runs the variants in row r of a Williams design (see ``balanced_orders``):
    across the rounds every variant comes first as often as any other and follows
    every other one equally often, so neither a slot in the round nor what ran just
    before (a warm or a trashed cache, a pending free) favours one variant. A plain
    rotation (A B C, B C A, ...) always puts B after A.
    ``setup[name]``, when given, runs untimed right before each call of ``name``.
    A variant that returns a float is timed by it (seconds from a clock of its
    own, such as ``StepClock``) instead of by the wall time of the whole call.
    """
    times = {name: [] for name in variants}
    names = list(variants)
    setup = setup or {}
    orders = balanced_orders(len(names))
    for r in range(repeats):
        for name in (names[i] for i in orders[r % len(orders)]):
            run = variants[name]
            if name in setup:
                setup[name]()
            gc.collect()
            start = time.perf_counter()
            result = run()
            wall = time.perf_counter() - start
            times[name].append(result if isinstance(result, float) else wall)
    return {name: statistics.median(t) for name, t in times.items()}


def balanced_orders(n: int) -> list[list[int]]:
    """A Williams design: orders of 0..n-1 in which each i comes right after each j != i equally often.

    The first order is 0, 1, n-1, 2, n-2, ...; the others add 1, 2, ... (mod n).
    For odd n the reversed orders are appended (2n orders); for even n, n suffice.

    >>> balanced_orders(4)
    [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
    """
    first = [0]
    for k in range(1, n):
        first.append((k + 1) // 2 if k % 2 else n - k // 2)
    orders = [[(i + shift) % n for i in first] for shift in range(n)]
    return orders + [order[::-1] for order in orders] if n % 2 else orders


def sync(value=None):
    """Wait for the device (JAX dispatches asynchronously)."""
    if BACKEND == "jax":
        import jax

        jax.block_until_ready(value if value is not None else jax.numpy.zeros(()))
    elif BACKEND == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    return value


def row(case, name, value, unit, target=None, met=None, **extra):
    return {
        "case": case,
        "name": name,
        "value": value,
        "unit": unit,
        "target": target,
        "met": met,
        **extra,
    }


# --- case 1: schedules inside model.fit ----------------------------------------------


def schedule_variants(steps: int) -> dict:
    k = keras.optimizers.schedules
    return {
        "constant float": 0.01,
        # An A/A control: a second model with the same float rate. Its ratio is the
        # noise floor of this machine; a schedule's ratio within it is no cost at all.
        "constant float, second model (A/A control)": 0.01,
        "StepDecay": lrk.StepDecay(0.01, [steps // 3, 2 * steps // 3]),
        "CosineDecay": lrk.CosineDecay(0.01, steps),
        "LinearDecay": lrk.LinearDecay(0.01, steps),
        "InverseSqrtDecay": lrk.InverseSqrtDecay(0.01, timescale=100),
        "Constant": lrk.Constant(0.01),
        "Warmup(CosineDecay)": lrk.Warmup(lrk.CosineDecay(0.01, steps), 100),
        "keras PiecewiseConstantDecay": k.PiecewiseConstantDecay(
            [steps // 3, 2 * steps // 3], [0.01, 0.001, 0.0001]
        ),
        "keras CosineDecay": k.CosineDecay(0.01, steps),
        "keras PolynomialDecay": k.PolynomialDecay(0.01, steps, 0.0),
    }


KERAS_EQUIVALENT = {
    "StepDecay": "keras PiecewiseConstantDecay",
    "CosineDecay": "keras CosineDecay",
    "LinearDecay": "keras PolynomialDecay",
}


def is_lrkit(name: str) -> bool:
    """Whether a variant of ``schedule_variants`` is a keras_lrkit schedule (not Keras's, not a float)."""
    return not name.startswith(("keras", "constant float"))


def case_1_met(ratio: float, keras_ratio: float | None) -> bool:
    """Both targets: at most 1.02x the float rate, and no slower than Keras's equivalent (within 2%)."""
    return ratio <= 1.02 and (keras_ratio is None or ratio <= 1.02 * keras_ratio)


def mlp():
    return keras.Sequential(
        [keras.Input((32,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    )


def resnet(quick):
    sys.path.insert(0, str(HERE.parent / "demos"))
    from _common import build_resnet

    return build_resnet((32, 32, 3), depth=8 if quick else 20)


class StepClock(keras.callbacks.Callback):
    """Seconds from the start of an epoch's first batch to its end: the steps, not fit's setup or teardown.

    Fit's teardown varies on its own: on TensorFlow, destroying the tf.data
    iterator waits for its autotuning thread, which took 0 ms or 0.25-1 s at
    random after ``on_train_end`` here (gone with ``autotune.enabled = False``):
    a whole second on a 2-second fit. Only batch *begin* hooks are used, so
    Keras keeps dispatching batch ends asynchronously as it does without this
    callback; ``on_epoch_end`` comes after the last step's results are fetched.
    """

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def timed_fit(model, x, y, batch: int) -> float:
    """One epoch of ``model.fit``; the seconds its steps took (``StepClock``)."""
    clock = StepClock()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    return clock.seconds


def case_fit(quick: bool, repeats: int) -> list:
    out = []
    on_cpu = device_name() == "cpu"
    for model_name, make, shape, steps, batch in [
        ("MLP", mlp, (32,), 50 if quick else 300, 32),
        (
            "ResNet",
            lambda: resnet(quick),
            (32, 32, 3),
            3 if quick else 20 if on_cpu else 100,
            32 if quick or on_cpu else 128,
        ),
    ]:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(steps * batch, *shape)).astype("float32")
        y = rng.integers(0, 10, size=(steps * batch,))
        models = {}
        for name, rate in schedule_variants(10_000).items():
            keras.utils.set_random_seed(0)
            model = make()
            model.compile(
                keras.optimizers.SGD(rate, momentum=0.9),
                keras.losses.SparseCategoricalCrossentropy(from_logits=model_name == "MLP"),
            )
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # compile outside the timing
            models[name] = model

        fits = {n: functools.partial(timed_fit, m, x, y, batch) for n, m in models.items()}
        medians = interleaved(fits, repeats)
        base = medians["constant float"]
        for name, seconds in medians.items():
            ratio = seconds / base
            lrkit_schedule = is_lrkit(name)
            met = None
            if lrkit_schedule:
                keras_name = KERAS_EQUIVALENT.get(name)
                met = case_1_met(ratio, medians[keras_name] / base if keras_name else None)
            out.append(
                row(
                    1,
                    f"{model_name}: {name} / constant float",
                    round(ratio, 4),
                    "x",
                    "<= 1.02x constant, <= Keras equivalent" if lrkit_schedule else None,
                    met,
                    step_ms=round(1000 * seconds / steps, 4),
                )  # fmt: skip
            )
    if BACKEND == "tensorflow":
        out += schedule_op_rows()
    return out


def graph_ops(schedule) -> int:
    """Operations ``schedule(step)`` adds to a TensorFlow graph (constants and placeholders aside).

    TensorFlow on the CPU runs ``fit`` without XLA, op by op and without fusing
    them, so every op a schedule adds costs executor time in every step. The count is exact
    where timings on 2 CPU cores cannot resolve 2%.
    """
    import tensorflow as tf

    function = tf.function(lambda step: schedule(step), autograph=False)
    graph = function.get_concrete_function(tf.TensorSpec((), tf.int64)).graph
    ignored = {"Placeholder", "Const", "Identity", "NoOp"}
    return sum(op.type not in ignored for op in graph.get_operations())


def schedule_op_rows() -> list:
    variants = schedule_variants(10_000)
    out = []
    for name, schedule in variants.items():
        if not is_lrkit(name):
            continue
        ops, keras_name = graph_ops(schedule), KERAS_EQUIVALENT.get(name)
        target = met = None
        if keras_name:
            keras_ops = graph_ops(variants[keras_name])
            target, met = f"<= {keras_name} ({keras_ops} ops)", ops <= keras_ops
        out.append(row(1, f"{name}: graph ops per step (TensorFlow)", ops, "ops", target, met))
    return out


# --- case 2: snapshot and restore ------------------------------------------------


def big_model(quick):
    if quick:
        return keras.Sequential(
            [
                keras.Input((256,)),
                keras.layers.Dense(1024),
                keras.layers.Dense(1024),
                keras.layers.Dense(10),
            ]
        )
    return keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))


def weights_bytes(model):
    return sum(
        int(np.prod(v.shape)) * np.dtype(keras.backend.standardize_dtype(v.dtype)).itemsize
        for v in model.weights
    )


def plain_copy(model):
    """The limit: one copy of the same number of bytes, in one buffer on the same device."""
    n = weights_bytes(model) // 4
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        device = model.weights[0].value.devices().pop()
        buffer = jax.device_put(jnp.zeros((n,), "float32"), device)
        copy = jax.jit(jnp.copy)
        sync(copy(buffer))
        return lambda: sync(copy(buffer))
    if BACKEND == "torch":
        import torch

        src = torch.zeros(n, dtype=torch.float32, device=model.weights[0].value.device)
        dst = torch.empty_like(src)
        return lambda: (dst.copy_(src), sync())
    src = np.zeros(n, "float32")
    dst = np.empty_like(src)
    return lambda: np.copyto(dst, src)


def case_snapshot(quick: bool, repeats: int) -> list:
    model = big_model(quick)
    mb = weights_bytes(model) / 1e6
    ours = lrk.EarlyStoppingWithBestRestore("val_loss", patience=10**6)
    ours.set_model(model)
    ours.on_train_begin()
    theirs = keras.callbacks.EarlyStopping("val_loss", patience=10**6, restore_best_weights=True)
    theirs.set_model(model)
    theirs.on_train_begin()
    epoch = {"ours": 0, "keras": 0}
    trained = model.get_weights()

    def weights_ready():
        """Wait until the model's weights are on the device (JAX's transfers are asynchronous)."""
        sync([v.value for v in model.weights])

    def backup_ready():
        sync(ours._snapshot._impl._backup)

    def improve(callback, key, ready=None):
        def run():
            callback.on_epoch_end(
                epoch[key], {"val_loss": 1.0 / (epoch[key] + 1)}
            )  # always an improvement
            epoch[key] += 1
            if ready is not None:
                ready()

        return run

    def restore_ours():
        ours.on_train_end()  # restores the best weights; the backup stays for the next call
        weights_ready()

    def restore_keras():
        model.set_weights(theirs.best_weights)
        weights_ready()

    def train():
        """Untimed: the weights a training run leaves, in arrays of their own (as fit's are)."""
        model.set_weights(trained)
        weights_ready()

    improve(ours, "ours", backup_ready)()  # the first capture and restore compile the copies
    restore_ours()
    improve(theirs, "keras", sync)()
    copy = plain_copy(model)
    # Captures repeat in a run while restores happen once at its end, so each is
    # timed in its own steady state: captures back to back, each restore after the
    # weights were replaced as training replaces them.
    snapshot = {
        "lrkit": improve(ours, "ours", backup_ready),
        "keras": improve(theirs, "keras", sync),
        "copy": copy,
    }
    settle = {}
    if BACKEND == "jax":
        # JAX returns before the device has copied: the host's share is what the
        # training loop waits for. Each call starts and ends with the device idle.
        snapshot["lrkit, host only"] = improve(ours, "ours")
        settle = dict.fromkeys(snapshot, backup_ready)
    phases = {
        "snapshot": interleaved(snapshot, repeats, setup=settle),
        "restore": interleaved(
            {"lrkit": restore_ours, "keras": restore_keras, "copy": copy},
            repeats,
            setup={"lrkit": train, "keras": train},
        ),
    }
    on_gpu = device_name() != "cpu"
    out = []
    for what, medians in phases.items():
        lrkit_s, keras_s, copy_s = medians["lrkit"], medians["keras"], medians["copy"]
        speedup = keras_s / lrkit_s
        vs_copy = lrkit_s / copy_s
        target = ">= 10x faster than Keras" if on_gpu else ">= 1x (no slower than Keras)"
        out.append(row(2, f"{what} speed-up over Keras ({mb:.0f} MB)", round(speedup, 2), "x", target,
                       speedup >= (10 if on_gpu else 1), lrkit_ms=round(1000 * lrkit_s, 3), keras_ms=round(1000 * keras_s, 3)))  # fmt: skip
        out.append(row(2, f"{what} time / plain copy ({mb:.0f} MB)", round(vs_copy, 2), "x",
                       "<= 5x the device copy" if on_gpu else None, (vs_copy <= 5) if on_gpu else None,
                       copy_ms=round(1000 * copy_s, 3)))  # fmt: skip
        if "lrkit, host only" in medians:
            host_s = medians["lrkit, host only"]
            out.append(row(2, f"{what}: host's share (returns before the device finishes)",
                           round(host_s / lrkit_s, 2), "x", host_ms=round(1000 * host_s, 3),
                           note="of the whole snapshot time; what the training loop waits for"))  # fmt: skip
    return out


# --- case 3: the plotter ---------------------------------------------------------------


class _Stub:
    """Just enough of a model for the plotter's on_epoch_end."""

    def __init__(self):
        self.optimizer = keras.optimizers.SGD(0.01)
        self.stop_training = False


def case_plotter(quick: bool, repeats: int, tmp: Path) -> list:
    out = []
    epochs = 20 if quick else 200
    held = {}
    for background in (True, False):
        plotter = lrk.HistoryPlotter(tmp / f"bg{background}.png", background=background)
        plotter.set_model(_Stub())
        plotter.on_train_begin()
        times = []
        for epoch in range(epochs):
            logs = {
                "loss": 1 / (epoch + 1),
                "val_loss": 1.1 / (epoch + 1),
                "accuracy": 0.5,
                "val_accuracy": 0.4,
                "learning_rate": 0.01,
            }
            start = time.perf_counter()
            plotter.on_epoch_end(epoch, logs)
            times.append(time.perf_counter() - start)
        plotter.on_train_end()
        plotter.wait()
        held[background] = statistics.median(times)
    out.append(
        row(
            3,
            "training thread held per epoch, background drawing",
            round(1000 * held[True], 3),
            "ms",
            "<= 2 ms",
            held[True] <= 0.002,
        )
    )
    out.append(row(3, "training thread held per epoch, drawing in the training thread", round(1000 * held[False], 3), "ms",
                   note="what livelossplot-style plotting costs"))  # fmt: skip

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.01), "mse")
    model.fit(x, y, epochs=1, verbose=0)
    fit_epochs = 20 if quick else 200

    plotters = []

    def fit(callbacks, wait=False):
        def run():
            model.fit(x, y, batch_size=32, epochs=fit_epochs, verbose=0,
                      validation_data=(x, y), callbacks=callbacks())  # fmt: skip
            if wait:
                plotters[-1].wait()

        return run

    def plotter():
        plotters.append(lrk.HistoryPlotter(tmp / "fit.png"))
        return plotters[-1]

    def finish_drawing():
        """Untimed: the last figure of the previous fit, so no fit draws alongside another."""
        for p in plotters:
            p.wait()

    class Empty(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    # The hooks' hold inside a real fit, where (on JAX) each epoch's rate is a fresh
    # device array: timed around on_epoch_end, one fit, untimed as a whole.
    inside = lrk.HistoryPlotter(tmp / "inside.png")
    hook, hook_times = inside.on_epoch_end, []

    def timed_hook(epoch, logs=None):
        start = time.perf_counter()
        hook(epoch, logs)
        hook_times.append(time.perf_counter() - start)

    inside.on_epoch_end = timed_hook
    model.fit(x, y, batch_size=32, epochs=fit_epochs, verbose=0, validation_data=(x, y),
              callbacks=[inside])  # fmt: skip
    inside.wait()
    held_in_fit = statistics.median(hook_times)
    out.append(row(3, "training thread held per epoch inside model.fit", round(1000 * held_in_fit, 3),
                   "ms", "<= 2 ms", held_in_fit <= 0.002))  # fmt: skip

    variants = {
        "without": fit(lambda: []),
        "an empty callback": fit(lambda: [Empty()]),
        "with HistoryPlotter": fit(lambda: [plotter()]),
        "with HistoryPlotter, then waiting for the last figure": fit(lambda: [plotter()], True),
    }
    medians = interleaved(
        variants,
        max(3, repeats // 2) if quick else repeats,
        setup=dict.fromkeys(variants, finish_drawing),
    )
    without = medians["without"]
    for label, name, target in (
        ("fit wall time with / without HistoryPlotter", "with HistoryPlotter", "<= 1.05x"),
        ("fit, then plotter.wait(), / fit without HistoryPlotter",
         "with HistoryPlotter, then waiting for the last figure", None),
        ("fit with an empty callback / without (Keras's own cost of a callback)",
         "an empty callback", None),
    ):  # fmt: skip
        ratio = medians[name] / without
        out.append(
            row(
                3,
                f"{label} ({fit_epochs} epochs)",
                round(ratio, 4),
                "x",
                target,
                (ratio <= 1.05) if target else None,
                without_s=round(without, 2),
                with_s=round(medians[name], 2),
            )  # fmt: skip
        )
    return out


# --- case 4: vectorized evaluation ---------------------------------------------------


def case_vectorized(quick: bool, repeats: int) -> list:
    n = 100_000 if quick else 1_000_000
    steps = np.arange(n, dtype="int64")
    out = []
    loop_schedule = keras.optimizers.schedules.CosineDecay(0.1, n)
    loop_n = 200 if quick else 2000
    loop = (
        interleaved({"loop": lambda: [float(loop_schedule(s)) for s in range(loop_n)]}, 5)["loop"]
        / loop_n
        * n
    )
    for name, schedule in schedule_variants(n).items():
        if name.startswith(("keras", "constant float")):
            continue
        t = interleaved(
            {name: lambda s=schedule: sync(keras.ops.convert_to_numpy(s(steps)))}, repeats
        )[name]
        ratio = loop / t
        out.append(row(4, f"{name}: {n:,} steps in one call", round(1000 * t, 2), "ms", "<= 100 ms and >= 100x a Python loop",
                       t <= 0.1 and ratio >= 100, speedup_over_loop=round(ratio, 1)))  # fmt: skip
    out[-1]["note"] = (
        f"the loop (keras CosineDecay called step by step) was timed over {loop_n} steps and scaled to {n:,}"
    )
    return out


# --- case 5: memory --------------------------------------------------------------------

MEMORY_PROBE = r"""
import json, os, sys
sys.path.insert(0, sys.argv[2])
import keras, numpy as np
import keras_lrkit as lrk
from run import big_model, weights_bytes, BACKEND

def peak():
    if BACKEND == "jax":
        import jax
        stats = jax.devices()[0].memory_stats()
        if stats:
            return stats["peak_bytes_in_use"]
    if BACKEND == "torch":
        import torch
        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated()
    # On the host: the memory held now (VmRSS). The peak (VmHWM) would be set by
    # building the model, which briefly takes more than a backup does.
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS"))

model = big_model(sys.argv[1] == "quick")
keras.ops.convert_to_numpy(model.weights[0])
before = peak()
stop = lrk.EarlyStoppingWithBestRestore("val_loss", patience=100)
stop.set_model(model)
stop.on_train_begin()
after = []
for epoch in range(5):
    stop.on_epoch_end(epoch, {"val_loss": 1.0 / (epoch + 1)})
    after.append(peak())
print(json.dumps({"weights": weights_bytes(model), "before": before, "after": after}))
"""


def case_memory(quick: bool) -> list:
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, "quick" if quick else "full", str(HERE)],
        capture_output=True, text=True, check=True, env=dict(os.environ, KERAS_BACKEND=BACKEND),
    )  # fmt: skip
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    extra = (probe["after"][-1] - probe["before"]) / probe["weights"]
    growth = (probe["after"][-1] - probe["after"][0]) / probe["weights"]
    return [
        row(
            5,
            "extra peak memory of the snapshot / weights' size",
            round(extra, 3),
            "x",
            "~1x",
            extra <= 1.25,
            weights_mb=round(probe["weights"] / 1e6, 1),
        ),  # fmt: skip
        row(
            5,
            "growth over 4 more improvements / weights' size",
            round(growth, 3),
            "x",
            "0 (no copy per improvement)",
            growth <= 0.1,
        ),
    ]


# --- report ------------------------------------------------------------------------------


def device_name() -> str:
    if BACKEND == "jax":
        import jax

        d = jax.devices()[0]
        return "cpu" if d.platform == "cpu" else d.device_kind
    if BACKEND == "torch":
        import torch

        return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return gpus[0].name if gpus else "cpu"


def environment() -> dict:
    versions = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "numpy": np.__version__,
        "keras_lrkit": lrk.__version__,
    }
    for name in ("tensorflow", "jax", "torch"):
        if name in sys.modules:
            versions[name] = sys.modules[name].__version__
    return {
        "backend": BACKEND,
        "device": device_name(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "versions": versions,
        "date": time.strftime("%Y-%m-%d"),
    }


def write_markdown(results_dir: Path) -> Path:
    lines = [
        "# keras_lrkit benchmark results",
        "",
        "Written by `python benchmarks/run.py`; every figure is a ratio (or time) measured side by side in one process, the median of interleaved repeats. A missed target is shown as missed.",
        "",
    ]
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        env = data["environment"]
        versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        lines += [f"## {env['backend']} on {env['device']} ({env['machine']}){' — quick mode' if data['quick'] else ''}", "",
                  f"{env['date']}; {versions}; {repeats_per_case(data)}.", "",
                  "| case | measure | value | target | met |", "|---|---|---|---|---|"]  # fmt: skip
        for r in data["rows"]:
            met = "" if r["met"] is None else ("yes" if r["met"] else "**missed**")
            lines.append(
                f"| {r['case']} | {r['name']} | {r['value']} {r['unit']} | {r['target'] or ''} | {met} |"
            )
        lines.append("")
        lines += [f"- {note}" for note in data.get("notes", [])]
        lines.append("")
    out = results_dir / "RESULTS.md"
    out.write_text("\n".join(lines))
    return out


def repeats_per_case(data: dict) -> str:
    """'11 repeats', or 'repeats: 11 (cases 1, 2, 4), 21 (case 3)' after re-runs that differ."""
    cases: dict[int, set] = {}
    for r in data["rows"]:
        if r["case"] != 5:
            cases.setdefault(r["repeats"], set()).add(r["case"])
    if len(cases) <= 1:
        return f"{next(iter(cases), data['repeats'])} repeats"
    parts = [
        f"{n} (case{'s' if len(c) > 1 else ''} {', '.join(map(str, sorted(c)))})"
        for n, c in sorted(cases.items())
    ]
    return "repeats: " + ", ".join(parts)


def report(rows: list) -> None:
    for r in rows:
        met = "" if r["met"] is None else ("met" if r["met"] else "MISSED")
        target = f"(target {r['target']})" if r["target"] else ""
        print(f"[{r['case']}] {r['name']}: {r['value']} {r['unit']} {target} {met}", flush=True)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="small sizes and few repeats: proves the suite runs"
    )
    p.add_argument("--cases", type=int, nargs="+", default=[1, 2, 3, 4, 5], choices=[1, 2, 3, 4, 5])
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="repeats per variant (default 5 quick, 11 full; at least 5)",
    )
    p.add_argument(
        "--output", default=str(HERE / "results"), help="folder for the JSON and RESULTS.md"
    )
    args = p.parse_args(argv)
    repeats = max(5, args.repeats or (5 if args.quick else 11))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix="lrkit-bench-")  # the plotter's figures
    tmp = Path(scratch.name)
    env = environment()
    label = f"{env['backend']}-{env['device'].lower().replace(' ', '_')}{'-quick' if args.quick else ''}"
    data = {
        "environment": env,
        "quick": args.quick,
        "repeats": repeats,
        "cases": args.cases,
        "rows": [],
    }
    previous = output / f"{label}.json"
    if (
        previous.exists() and not args.quick
    ):  # a re-run of some cases keeps the others' rows and notes
        old = json.loads(previous.read_text())
        data["rows"] = [r for r in old["rows"] if r["case"] not in args.cases]
        data["cases"] = sorted(set(old.get("cases", [])) | set(args.cases))
        data["notes"] = old.get("notes", [])
    rows = data["rows"]
    for case in args.cases:
        started, first = time.perf_counter(), len(rows)
        if case == 1:
            rows += case_fit(args.quick, repeats)
        elif case == 2:
            rows += case_snapshot(args.quick, repeats)
        elif case == 3:
            rows += case_plotter(args.quick, repeats, tmp)
        elif case == 4:
            rows += case_vectorized(args.quick, repeats)
        elif case == 5:
            rows += case_memory(args.quick)
        print(f"case {case} done in {time.perf_counter() - started:.0f} s", flush=True)
        for r in rows[first:]:
            r["repeats"] = 1 if case == 5 else repeats  # case 5 measures one peak
        report(rows[first:])
        rows.sort(key=lambda r: r["case"])
        # Written after every case, so a run cut short keeps what it measured.
        (output / f"{label}.json").write_text(json.dumps(data, indent=2))
        md = write_markdown(output)
    scratch.cleanup()
    print(f"wrote {output / (label + '.json')} and {md}")
    return data


if __name__ == "__main__":
    main()
