"""Case 1: what each schedule costs per step inside ``model.fit``.

Each schedule against a constant float rate and against Keras's own
equivalent, on an MLP and a ResNet; on TensorFlow also the graph ops a schedule
adds to every step (an exact count where 2 CPU cores cannot time 2%).
"""

from __future__ import annotations

import functools
import sys

import keras
import numpy as np
from harness import BACKEND, HERE, device_name, interleaved, row, timed_fit

import keras_lrkit as lrk


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
        "ExponentialDecay": lrk.ExponentialDecay(0.01, 0.5, steps // 4),
        "PolynomialDecay": lrk.PolynomialDecay(0.01, steps, power=2.0),
        "CosineRestarts": lrk.CosineRestarts(0.01, steps // 7, period_factor=2.0),
        "OneCycle": lrk.OneCycle(0.01, steps),
        "Cyclic": lrk.Cyclic(0.001, 0.01, steps // 10),
        "keras PiecewiseConstantDecay": k.PiecewiseConstantDecay(
            [steps // 3, 2 * steps // 3], [0.01, 0.001, 0.0001]
        ),
        "keras CosineDecay": k.CosineDecay(0.01, steps),
        "keras PolynomialDecay": k.PolynomialDecay(0.01, steps, 0.0),
        "keras ExponentialDecay": k.ExponentialDecay(0.01, steps // 4, 0.5),
        "keras PolynomialDecay power 2": k.PolynomialDecay(0.01, steps, 0.0, power=2.0),
        "keras CosineDecayRestarts": k.CosineDecayRestarts(0.01, steps // 7),
    }


KERAS_EQUIVALENT = {
    "StepDecay": "keras PiecewiseConstantDecay",
    "CosineDecay": "keras CosineDecay",
    "LinearDecay": "keras PolynomialDecay",
    "ExponentialDecay": "keras ExponentialDecay",
    "PolynomialDecay": "keras PolynomialDecay power 2",
    "CosineRestarts": "keras CosineDecayRestarts",
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


def run(quick: bool, repeats: int) -> list:
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
