"""Schedules at their edges: compiled rounding, huge steps, negative steps, float32's range, nesting."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_lrkit import (
    Chain,
    Constant,
    CosineDecay,
    InverseSqrtDecay,
    LinearDecay,
    StepDecay,
    Warmup,
)
from keras_lrkit.schedules._base import Schedule

from .helpers import BACKEND

F32 = np.float32
# The widest step the optimizer's counter holds here: int64, or int32 on JAX without x64.
if BACKEND == "jax":
    import jax

    COUNTER_MAX = np.iinfo("int64" if jax.config.jax_enable_x64 else "int32").max
else:
    COUNTER_MAX = np.iinfo("int64").max


def compiled(schedule):
    """The schedule as the training step runs it: XLA on TensorFlow and JAX, eager on torch."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda step: schedule(step), jit_compile=True, autograph=False)
    if BACKEND == "jax":
        return jax.jit(lambda step: schedule(step))
    return schedule


def evaluate(fn, steps):
    return keras.ops.convert_to_numpy(fn(np.asarray(steps, dtype="int64"))).astype("float64")


# --- floors and peaks, compiled or not (XLA divides by multiplying with a reciprocal) ---


def test_linear_decay_never_below_its_floor_under_xla():
    # Compiled, 10 * (1 / 10) rounds above 1: before the fix, -1.49e-9 past the end,
    # and 0.0009999985 with a floor of 1e-3.
    steps = np.arange(0, 40)
    for floor in (0.0, 1e-3):
        got = evaluate(compiled(LinearDecay(0.1, 10, min_learning_rate=floor)), steps)
        assert got.min() >= F32(floor), got.min()
        assert got.max() <= F32(0.1)
        np.testing.assert_array_equal(got[steps >= 10], F32(floor))


@st.composite
def bounded_schedules(draw):
    """(schedule, floor, peak) over every schedule, with a0 and durations that do not divide evenly."""
    a0 = draw(st.floats(1e-4, 10.0))
    floor = draw(st.one_of(st.just(0.0), st.floats(1e-3, 0.9))) * a0
    total = draw(st.one_of(st.integers(1, 300), st.floats(0.1, 300.0)))
    spe = draw(st.one_of(st.none(), st.integers(1, 13)))
    kind = draw(st.sampled_from(["step", "every", "cosine", "linear", "isqrt", "const", "warmup"]))
    if kind == "step":
        return StepDecay(a0, [total], min_learning_rate=floor, steps_per_epoch=spe), floor, a0
    if kind == "every":
        s = StepDecay(
            a0, every=total, decrement=a0 / 7, min_learning_rate=floor, steps_per_epoch=spe
        )
        return s, floor, a0
    if kind == "cosine":
        return CosineDecay(a0, total, min_learning_rate=floor, steps_per_epoch=spe), floor, a0
    if kind == "linear":
        return LinearDecay(a0, total, min_learning_rate=floor, steps_per_epoch=spe), floor, a0
    if kind == "isqrt":
        return InverseSqrtDecay(a0, timescale=total, steps_per_epoch=spe), 0.0, a0
    if kind == "const":
        return Constant(a0), a0, a0
    start = draw(st.one_of(st.just(0.0), st.floats(1e-3, 2))) * a0
    inner = LinearDecay(a0, total, min_learning_rate=floor)
    return (
        Warmup(inner, total, initial_learning_rate=start, steps_per_epoch=spe),
        min(floor, start),
        max(a0, start),
    )


STEPS = np.unique(
    np.concatenate([np.arange(0, 400), np.arange(400, 40000, 97), [10**6, 2**24 + 1, 2**31 - 1]])
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bounded_schedules())
def test_compiled_rates_stay_within_floor_and_peak(case):
    schedule, floor, peak = case
    got = evaluate(compiled(schedule), STEPS)
    assert np.all(np.isfinite(got))
    assert got.min() >= F32(floor), (schedule, got.min())
    assert got.max() <= F32(peak), (schedule, got.max())


# --- huge steps: switches land on their exact step -----------------------------


def rate(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(np.int64(step))))


@pytest.mark.parametrize("milestone", [16_777_217, 2_147_483_000])
def test_step_decay_switches_exactly_at_large_milestones(milestone):
    # float32 holds every integer only up to 2**24: 16777216 and 16777217 are the same float.
    s = StepDecay(0.1, [milestone])
    for fn in (s, compiled(s)):
        before = evaluate(fn, [milestone - 50, milestone - 1])
        at = evaluate(fn, [milestone, milestone + 1])
        np.testing.assert_array_equal(before, F32(0.1))
        np.testing.assert_array_equal(at, F32(0.1) * F32(0.1))


def test_step_decay_milestones_in_epochs_at_large_steps():
    spe = 1000
    s = StepDecay(1.0, [2_000_001], factor=0.5, steps_per_epoch=spe)  # step 2,000,001,000
    got = evaluate(s, [2_000_001_000 - 1, 2_000_001_000])
    np.testing.assert_array_equal(got, [1.0, 0.5])


def test_step_decay_every_period_at_large_steps():
    s = StepDecay(1.0, every=16_777_217, factor=0.5)
    got = evaluate(compiled(s), [16_777_216, 16_777_217, 2 * 16_777_217 - 1, 2 * 16_777_217])
    np.testing.assert_array_equal(got, [1.0, 0.5, 0.5, 0.25])


def test_chain_and_warmup_boundaries_at_large_steps():
    b = 2_147_483_000
    chain = Chain([Constant(0.3), Constant(0.2)], [b])
    np.testing.assert_array_equal(evaluate(compiled(chain), [b - 1, b]), F32([0.3, 0.2]))
    warm = Warmup(StepDecay(0.1, [1]), b)  # the decay's clock starts at b: it decays at b + 1
    got = evaluate(compiled(warm), [b - 1, b, b + 1])
    assert got[0] == pytest.approx(0.1 * (b - 1) / b, rel=1e-6)
    np.testing.assert_array_equal(got[1:], F32([0.1, 0.1 * F32(0.1)]))


def test_smooth_schedule_after_a_large_boundary_keeps_its_own_clock_exact():
    # The time since a whole boundary is counted in integers: 50 steps into a
    # 100-step cosine is the cosine's midpoint, not float32's rounding of 2**31 + 50.
    b = 2_147_483_000
    chain = Chain([Constant(0.1), CosineDecay(0.1, 100)], [b])
    steps = np.array([b, b + 25, b + 50, b + 99, b + 100])
    expected = 0.05 * (1 + np.cos(np.pi * np.minimum(steps - b, 100) / 100))
    # float32 rounding is relative to the rate's scale (0.1), not to the small rates near the end.
    np.testing.assert_allclose(evaluate(compiled(chain), steps), expected, rtol=2e-7, atol=1e-8)


@pytest.mark.skipif(COUNTER_MAX < 2**62, reason="JAX without x64 counts steps in int32")
def test_step_decay_exact_at_int64_steps():
    s = StepDecay(0.1, [2**53 + 1, 2**62])
    got = evaluate(s, [2**53, 2**53 + 1, 2**62 - 1, 2**62, COUNTER_MAX])
    np.testing.assert_allclose(got, [0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)


@pytest.mark.skipif(COUNTER_MAX < 2**62, reason="JAX without x64 counts steps in int32")
def test_smooth_schedules_within_float32_rounding_at_int64_steps():
    step = 2**40 + 12345
    s = InverseSqrtDecay(0.1, timescale=1000)
    assert rate(s, step) == pytest.approx(0.1 * math.sqrt(1000 / (step + 1000)), rel=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_at_a_large_iteration_count_uses_the_exact_rates(jit_compile):
    # A probe whose weight moves by exactly -lr per step, resumed at step 16,777,214.
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    model.compile(
        keras.optimizers.SGD(StepDecay(1.0, [16_777_217], factor=0.5)),
        loss=lambda y_true, y_pred: keras.ops.mean(y_pred),
        jit_compile=jit_compile,
    )
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(16_777_214)
    x = np.ones((5, 1), "float32")
    model.fit(x, x, batch_size=1, epochs=1, shuffle=False, verbose=0)
    # Steps 16,777,214..16,777,216 at 1.0, then 16,777,217 and 16,777,218 at 0.5.
    w = float(keras.ops.convert_to_numpy(model.layers[0].kernel)[0, 0])
    assert w == -(3 * 1.0 + 2 * 0.5)


# --- negative steps read as step 0 ----------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        Warmup(Constant(0.1), 10),
        StepDecay(0.1, every=7),
        CosineDecay(0.1, 10),
        LinearDecay(0.1, 10),
        InverseSqrtDecay(0.1, timescale=3),
        Chain([Constant(0.1), Constant(0.2)], [5]),
    ],
    ids=lambda s: type(s).__name__,
)
def test_a_negative_step_is_step_zero(schedule):
    np.testing.assert_array_equal(evaluate(schedule, [-100, -1]), evaluate(schedule, [0, 0]))


# --- arguments float32 cannot hold --------------------------------------------------

BAD = [
    ("initial_learning_rate", lambda: StepDecay(10**400, [1])),
    ("initial_learning_rate", lambda: CosineDecay(1e39, 10)),
    ("learning_rate", lambda: Constant(1e39)),
    ("learning_rate", lambda: Constant(1e-45)),
    ("total", lambda: CosineDecay(0.1, 1e-40)),
    ("total", lambda: LinearDecay(0.1, 1e39)),
    ("total", lambda: LinearDecay(0.1, 10**400)),
    ("timescale", lambda: InverseSqrtDecay(0.1, timescale=1e-46)),
    ("every", lambda: StepDecay(0.1, every=1e-46)),
    ("every", lambda: StepDecay(0.1, every=1e38, steps_per_epoch=10)),
    ("warmup", lambda: Warmup(Constant(0.1), 1e-40)),
    ("warmup", lambda: Warmup(Constant(0.1), 3e38, steps_per_epoch=100)),
    ("factor", lambda: StepDecay(0.1, [1], factor=1e-300)),
    ("min_learning_rate", lambda: CosineDecay(0.1, 10, min_learning_rate=1e-300)),
    ("milestones", lambda: StepDecay(0.1, [10**400])),
    ("steps_per_epoch", lambda: StepDecay(0.1, [1], steps_per_epoch=2**40)),
    ("schedules", lambda: Chain(Constant(0.1), [])),
    ("schedules", lambda: Chain("abc", [])),
    ("boundaries", lambda: Chain([Constant(0.1)], None)),
]


@pytest.mark.parametrize("name,make", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_values_outside_float32_raise_value_error_naming_them(name, make):
    with pytest.raises(ValueError, match=f"`{name}`"):
        make()


def test_extremes_float32_holds_give_finite_rates():
    for s in (
        Constant(3e38),
        CosineDecay(3e38, 2e-38),
        LinearDecay(3e38, 2e-38, min_learning_rate=1e-30),
        InverseSqrtDecay(3e38, timescale=2e-38),
        StepDecay(3e38, every=2e-38),
        Warmup(Constant(3e38), 2e-38, initial_learning_rate=3e38),
    ):
        got = evaluate(s, [0, 1, 2**20])
        assert np.all(np.isfinite(got)), s


# --- nesting: linear to build and load, refused past MAX_DEPTH ----------------------


def nested_config(depth, chains=True):
    config = keras.optimizers.schedules.serialize(Constant(0.1))
    for i in range(depth - 1):
        inner = {"schedule": config, "warmup": 1 + i, "initial_learning_rate": 0.0}
        config = {
            "module": None,
            "class_name": "Warmup",
            "config": {**inner, "steps_per_epoch": None},
            "registered_name": "keras_lrkit>Warmup",
        }
        # Alternate with chains, whose start is found through their first piece.
        if chains and i % 2:
            config = {
                "module": None,
                "class_name": "Chain",
                "config": {"schedules": [config], "boundaries": [], "steps_per_epoch": None},
                "registered_name": "keras_lrkit>Chain",
            }
    return config


def test_loading_nested_schedules_evaluates_each_schedule_a_bounded_number_of_times(monkeypatch):
    # Building used to evaluate every inner schedule at step 0 at each level: quadratic
    # in the depth (27.5 s for 300 levels). Count the evaluations instead of timing them.
    calls = []
    real_call = Schedule.__call__

    def counting(self, step):
        calls.append(type(self).__name__)
        return real_call(self, step)

    monkeypatch.setattr(Schedule, "__call__", counting)
    counts = {}
    for depth in (4, 16):
        calls.clear()
        schedule = keras.optimizers.schedules.deserialize(nested_config(depth))
        assert schedule._depth >= depth
        counts[depth] = len(calls)
    assert counts[16] <= counts[4] + 1, counts  # constant: only the innermost is evaluated


def test_deeper_than_max_depth_is_refused():
    # As read from a hostile .keras file.
    config = json.loads(json.dumps(nested_config(300, chains=False)))
    with pytest.raises(ValueError, match=r"at most 32 schedules deep"):
        keras.optimizers.schedules.deserialize(config)
