"""ReduceOnPlateau: Keras's rule, for any rate: floats, keras_lrkit's schedules and Keras's."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_lrkit import (
    Chain,
    Constant,
    CosineDecay,
    InverseSqrtDecay,
    LearningRateLogger,
    LinearDecay,
    Reduced,
    ReduceOnPlateau,
    StepDecay,
    Warmup,
)

from .helpers import BACKEND, Inject, probe, tiny_model, tiny_regression_data, weight

STEPS = 3  # per epoch: 12 samples in batches of 4




# --- the rule, against Keras's own ReduceLROnPlateau on a float rate ---------------

RULE_CASES = {
    "patience_2": ([1.0, 0.9, 0.95, 0.96, 0.97, 0.8, 0.85, 0.86], {"patience": 2}),
    "patience_0": ([1.0, 1.1, 1.2, 0.5, 0.6], {"patience": 0}),
    "cooldown": ([1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6], {"patience": 1, "cooldown": 2}),
    "min_delta": ([1.0, 0.99, 0.98, 0.5, 0.49], {"patience": 1, "min_delta": 0.05}),
    "floor": ([1.0] * 8, {"patience": 1, "factor": 0.5, "min_learning_rate": 0.02}),
    "nan_is_no_improvement": ([1.0, math.nan, math.nan, 0.5], {"patience": 2}),
    "max_mode": ([0.5, 0.6, 0.55, 0.56, 0.7], {"patience": 2, "mode": "max"}),
    # Exact ties at min_delta: 0.3 + 0.1 == 0.4 is no improvement for Keras (value + delta < best).
    "tie_min": ([0.4, 0.3, 0.2, 0.1], {"patience": 1, "min_delta": 0.1}),
    "tie_max": ([0.1, 0.2, 0.3, 0.4], {"patience": 1, "min_delta": 0.1, "mode": "max"}),
}


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_same_reductions_as_keras_reduce_lr_on_plateau(case):
    values, kwargs = RULE_CASES[case]
    kwargs = {"mode": "min", **kwargs}
    keras_kwargs = dict(kwargs)
    if "min_learning_rate" in keras_kwargs:
        keras_kwargs["min_lr"] = keras_kwargs.pop("min_learning_rate")
    moves = {}
    for name, callback in [
        ("keras", keras.callbacks.ReduceLROnPlateau("val_x", **{"factor": 0.1, **keras_kwargs})),
        ("ours", ReduceOnPlateau("val_x", **{"factor": 0.1, **kwargs})),
    ]:
        model = probe(0.1)
        weights = []
        keep = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda e, logs, w=weights, m=model: w.append(weight(m))
        )
        x = np.ones((12, 1), "float32")
        model.fit(x, x, batch_size=4, epochs=len(values), verbose=0, shuffle=False,
                  callbacks=[Inject("val_x", values), keep, callback])  # fmt: skip
        # The rate each epoch's three steps used, read back from the weight's moves, and the
        # rate the optimizer holds at the end (a reduction after the last epoch included).
        moves[name] = (
            -np.diff([0.0, *weights]) / STEPS,
            float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        )
    np.testing.assert_allclose(moves["ours"][0], moves["keras"][0], rtol=1e-5)
    assert moves["ours"][1] == pytest.approx(moves["keras"][1], rel=1e-6)
    assert len(set(np.round(moves["keras"][0], 8))) > 1 or case == "floor"  # a reduction happened


# --- any schedule: the rate used at every step is the schedule times the reductions -----

# Scripted: reductions after epochs 1, 2 and 4 (patience 1), effective from the next step.
PLATEAU = [1.0, 2.0, 3.0, 0.5, 0.6, 0.7]
REDUCED_FROM = [2 * STEPS, 3 * STEPS, 5 * STEPS]
TOTAL = len(PLATEAU) * STEPS


def ref_cosine(a0, total, t):
    return a0 * 0.5 * (1 + np.cos(np.pi * np.minimum(t, total) / total))


SCHEDULES = {
    # name: (schedule, its value at steps t, computed here with numpy or by Keras itself)
    "step": (
        lambda: StepDecay(0.1, [4, 10]),
        lambda t: 0.1 * 0.1 ** ((t >= 4).astype(int) + (t >= 10)),
    ),
    "cosine": (lambda: CosineDecay(0.1, 12), lambda t: ref_cosine(0.1, 12, t)),
    "linear": (lambda: LinearDecay(0.1, 24), lambda t: 0.1 * (1 - np.minimum(t, 24) / 24)),
    "inverse_sqrt": (
        lambda: InverseSqrtDecay(0.1, timescale=4),
        lambda t: 0.1 * np.sqrt(4 / (t + 4)),
    ),
    "constant": (lambda: Constant(0.05), lambda t: np.full_like(t, 0.05, dtype=float)),
    "warmup": (lambda: Warmup(Constant(0.1), 3), lambda t: np.where(t < 3, 0.1 * t / 3, 0.1)),
    "chain": (
        lambda: Chain([Constant(0.1), Constant(0.02)], [7]),
        lambda t: np.where(t < 7, 0.1, 0.02),
    ),
    "keras_exponential": (
        lambda: keras.optimizers.schedules.ExponentialDecay(0.1, 5, 0.5),
        lambda t: 0.1 * 0.5 ** (t / 5),
    ),
    "keras_cosine": (
        lambda: keras.optimizers.schedules.CosineDecay(0.1, 12, alpha=0.1),
        lambda t: 0.1 * (0.9 * 0.5 * (1 + np.cos(np.pi * np.minimum(t, 12) / 12)) + 0.1),
    ),
    "float": (lambda: 0.1, lambda t: np.full_like(t, 0.1, dtype=float)),
}


def expected_rates(values, factor=0.5, floor=0.0):
    t = np.arange(TOTAL)
    scale = factor ** sum((t >= s).astype(int) for s in REDUCED_FROM)
    return np.maximum(values(t) * scale, np.minimum(values(t), floor))


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_the_rate_used_at_every_step(name, jit_compile):
    make, values = SCHEDULES[name]
    model = probe(make(), jit_compile)
    reduce = ReduceOnPlateau("val_x", factor=0.5, patience=1, mode="min")
    logger = LearningRateLogger(per_batch=True)
    x = np.ones((12, 1), "float32")
    model.fit(x, x, batch_size=4, epochs=len(PLATEAU), verbose=0, shuffle=False,
              callbacks=[Inject("val_x", PLATEAU), logger, reduce])  # fmt: skip
    expected = expected_rates(values)
    np.testing.assert_allclose(logger.batch_learning_rates, expected, rtol=1e-5, atol=1e-9)
    # The weight moved by exactly -lr per step: the rates the optimizer really used.
    assert weight(model) == pytest.approx(-expected.sum(), rel=1e-5)
    # After epochs 1, 2, 4 and 5 (the last one for the next fit), while the next step's rate
    # is above the floor of 0: a cosine already at 0 by then is not reduced.
    reduced = [epoch for epoch, _ in reduce.reductions]
    assert reduced[:2] == [1, 2] and set(reduced) <= {1, 2, 4, 5}


@pytest.mark.parametrize("order", ["logger_first", "reducer_first"])
def test_the_logger_records_the_rate_each_epoch_used_in_any_order(order):
    for rate in (0.1, CosineDecay(0.1, 12)):
        model = probe(rate)
        reduce = ReduceOnPlateau("val_x", factor=0.5, patience=1, mode="min")
        logger = LearningRateLogger()
        callbacks = [logger, reduce] if order == "logger_first" else [reduce, logger]
        x = np.ones((12, 1), "float32")
        history = model.fit(x, x, batch_size=4, epochs=len(PLATEAU), verbose=0, shuffle=False,
                            callbacks=[Inject("val_x", PLATEAU), *callbacks])  # fmt: skip
        values = SCHEDULES["float" if rate == 0.1 else "cosine"][1]
        last_steps = np.arange(1, len(PLATEAU) + 1) * STEPS - 1
        np.testing.assert_allclose(
            history.history["learning_rate"], expected_rates(values)[last_steps], rtol=1e-5
        )


def test_the_floor_holds_the_reductions_not_the_schedule():
    # A cosine to 0 still reaches 0; the reductions never take it below the floor before.
    make, values = SCHEDULES["cosine"]
    model = probe(make())
    reduce = ReduceOnPlateau("val_x", factor=0.5, patience=1, mode="min", min_learning_rate=0.03)
    logger = LearningRateLogger(per_batch=True)
    x = np.ones((12, 1), "float32")
    model.fit(x, x, batch_size=4, epochs=len(PLATEAU), verbose=0, shuffle=False,
              callbacks=[Inject("val_x", PLATEAU), logger, reduce])  # fmt: skip
    expected = expected_rates(values, floor=0.03)
    np.testing.assert_allclose(logger.batch_learning_rates, expected, rtol=1e-5, atol=1e-9)
    assert expected[-1] < 0.03 and np.all(
        expected >= np.minimum(values(np.arange(TOTAL)), 0.03) - 1e-9
    )


LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    import keras_lrkit
    model = keras.models.load_model(sys.argv[1], compile=True)
    schedule = model.optimizer._learning_rate
    rates = keras.ops.convert_to_numpy(schedule(np.arange(30))).tolist()
    x = np.ones((12, 1), "float32")
    before = float(keras.ops.convert_to_numpy(model.layers[0].kernel)[0, 0])
    model.fit(x, x, batch_size=4, epochs=1, shuffle=False, verbose=0)
    after = float(keras.ops.convert_to_numpy(model.layers[0].kernel)[0, 0])
    with open(sys.argv[2], "w") as f:
        json.dump({"class": type(schedule).__name__, "reductions": schedule.reductions,
                   "rates": rates, "moved": after - before}, f)
    """
)


def test_a_keras_file_saved_after_two_reductions_trains_on_at_the_reduced_rate(tmp_path):
    model = probe(CosineDecay(0.1, 30))
    model.compile(model.optimizer, loss=keras.losses.MeanAbsoluteError())
    x = np.ones((12, 1), "float32")
    reduce = ReduceOnPlateau("val_x", factor=0.5, patience=1, mode="min")
    model.fit(x, x, batch_size=4, epochs=3, verbose=0, shuffle=False,
              callbacks=[Inject("val_x", [1.0, 2.0, 3.0]), reduce])  # fmt: skip
    assert [e for e, _ in reduce.reductions] == [1, 2]
    model.save(tmp_path / "m.keras")
    env = dict(os.environ, KERAS_BACKEND=BACKEND)
    subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(tmp_path / "m.keras"), str(tmp_path / "o.json")],
                   check=True, env=env, timeout=240)  # fmt: skip
    out = json.loads((tmp_path / "o.json").read_text())
    assert out["class"] == "Reduced" and out["reductions"] == [[6, 0.5], [9, 0.5]]
    t = np.arange(30)
    expected = ref_cosine(0.1, 30, t) * 0.5 ** ((t >= 6).astype(int) + (t >= 9))
    np.testing.assert_allclose(out["rates"], expected, rtol=1e-5, atol=1e-9)
    # Steps 9, 10 and 11, in the loaded model: MAE's gradient is -1 below the target.
    assert out["moved"] == pytest.approx(expected[9:12].sum(), rel=1e-5)


def test_reduced_serializes_and_checks_its_arguments():
    s = Reduced(CosineDecay(0.1, 10), [[3, 0.5], [5, 0.1]], min_learning_rate=0.001)
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(s))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(clone(np.arange(12))),
        keras.ops.convert_to_numpy(s(np.arange(12))),
    )
    for bad in ([[3, 1.5]], [[5, 0.5], [3, 0.5]], [[-1, 0.5]], [3, 0.5], "x"):
        with pytest.raises(ValueError, match="`reductions`"):
            Reduced(Constant(0.1), bad)


@pytest.mark.parametrize("floor", [0.0, 0.05])
def test_a_warmup_ramps_to_the_rate_reduced_starts_at(floor):
    # A reduction at step 0 with a floor above the reduced rate: Reduced starts at
    # max(0.1 * 0.1, min(0.1, floor)), and the ramp in front of it must end there.
    start = max(0.1 * 0.1, min(0.1, floor))
    s = Warmup(Reduced(Constant(0.1), [[0, 0.1]], min_learning_rate=floor), 4)
    rates = keras.ops.convert_to_numpy(s(np.arange(7)))
    np.testing.assert_allclose(rates, [0, start / 4, start / 2, 3 * start / 4, start, start, start],
                               rtol=1e-6)  # fmt: skip


BAD = [
    ("factor", {"factor": 1.0}),
    ("factor", {"factor": 0.0}),
    ("factor", {"factor": math.nan}),
    ("min_delta", {"min_delta": -1e-4}),
    ("patience", {"patience": -1}),
    ("cooldown", {"cooldown": 1.5}),
    ("min_learning_rate", {"min_learning_rate": -0.1}),
    ("mode", {"mode": "down"}),
    ("monitor", {"monitor": ""}),
    ("strict", {"strict": "yes"}),
]


@pytest.mark.parametrize("name,kwargs", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_bad_arguments(name, kwargs):
    with pytest.raises(ValueError, match=f"`{name}`"):
        ReduceOnPlateau(**kwargs)


def test_a_missing_key_follows_the_shared_rule():
    x, y = tiny_regression_data(32)
    with pytest.raises(ValueError, match=r"`val_mea`.*Available keys"):
        tiny_model().fit(x, y, epochs=2, validation_split=0.25, verbose=0,
                         callbacks=[ReduceOnPlateau("val_mea")])  # fmt: skip


# --- issue 21: a reduction is an assignment; reducers compound; callables refused --------


def two_reducers_fit(rate, kinds):
    """A fit with two reducers that both reduce after epoch 1; the optimizer's next rate after it."""
    model = probe(rate)
    make = {
        "keras": lambda: keras.callbacks.ReduceLROnPlateau("val_x", factor=0.5, patience=1,
                                                           mode="min"),
        "ours": lambda: ReduceOnPlateau("val_x", factor=0.5, patience=1, mode="min"),
    }  # fmt: skip
    x = np.ones((12, 1), "float32")
    model.fit(x, x, batch_size=4, epochs=2, verbose=0, shuffle=False,
              callbacks=[Inject("val_x", [1.0, 1.0]), *(make[k]() for k in kinds)])  # fmt: skip
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def test_two_reducers_compound_as_keras_s_do():
    keras_two = two_reducers_fit(0.1, ["keras", "keras"])
    assert keras_two == pytest.approx(0.025)  # Keras's own: 0.1 * 0.5 * 0.5
    assert two_reducers_fit(0.1, ["ours", "ours"]) == pytest.approx(keras_two)
    assert two_reducers_fit(0.1, ["ours", "keras"]) == pytest.approx(keras_two)
    # On a schedule (Keras's reducer cannot change one): the same product, from the next step.
    assert two_reducers_fit(Constant(0.1), ["ours", "ours"]) == pytest.approx(0.025)


def test_a_callable_rate_is_refused_when_fit_begins():
    model = probe(lambda: 0.1)
    x = np.ones((12, 1), "float32")
    with pytest.raises(ValueError, match="learning_rate=<function"):
        model.fit(x, x, epochs=1, verbose=0, callbacks=[ReduceOnPlateau("loss", patience=1)])
    assert weight(model) == 0.0  # refused before any step


class CountingSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A constant rate that counts the times a train step was traced with it (symbolic steps)."""

    def __init__(self):
        self.traces = 0

    def __call__(self, step):
        if BACKEND == "tensorflow":
            import tensorflow as tf

            self.traces += not tf.executing_eagerly()
        elif BACKEND == "jax":
            import jax

            self.traces += isinstance(keras.ops.convert_to_tensor(step), jax.core.Tracer)
        return keras.ops.cast(0.1, "float32") + 0.0 * keras.ops.cast(step, "float32")

    def get_config(self):
        return {}


@pytest.mark.skipif(BACKEND == "torch", reason="PyTorch runs the step eagerly: nothing to retrace")
@pytest.mark.parametrize("jit_compile", [False, True])
def test_a_reduction_never_retraces_the_train_step(jit_compile):
    traces = {}
    for name, values in [("none", [1.0] + [0.9 - 0.1 * e for e in range(5)]),
                         ("every_epoch", [1.0] * 6)]:  # fmt: skip
        schedule = CountingSchedule()
        model = probe(schedule, jit_compile)
        reduce = ReduceOnPlateau("val_x", factor=0.5, patience=1, mode="min")
        x = np.ones((12, 1), "float32")
        model.fit(x, x, batch_size=4, epochs=6, verbose=0, shuffle=False,
                  callbacks=[Inject("val_x", values), reduce])  # fmt: skip
        traces[name] = schedule.traces
        if name == "every_epoch":
            assert len(reduce.reductions) == 5
            # epochs 0 and 1 at 0.1, then halved after each epoch from epoch 1 on
            assert weight(model) == pytest.approx(-0.1 * STEPS * (1 + sum(0.5**k for k in range(5))))
    assert traces["every_epoch"] == traces["none"]
    if BACKEND == "tensorflow" or jit_compile:  # JAX without jit_compile runs the step eagerly
        assert traces["none"] >= 1
