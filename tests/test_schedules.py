"""Schedules: values against closed forms and other libraries, properties, errors."""

from __future__ import annotations

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

RTOL = 1e-6  # float32 math against float64 references


def values(schedule, steps):
    """The schedule at each step, evaluated one step at a time."""
    return np.array([float(schedule(int(s))) for s in steps])


def vector(schedule, steps):
    """The schedule at all steps in one vectorized call."""
    return keras.ops.convert_to_numpy(schedule(np.asarray(steps, dtype="int64")))


# --- independent numpy references ------------------------------------------


def ref_step(a0, milestones, factor, steps, spe=1):
    epoch = np.floor(np.asarray(steps) / spe)
    k = np.array([sum(e >= m for m in milestones) for e in epoch])
    return a0 * factor**k


def ref_cosine(a0, total, floor, t):
    t = np.minimum(np.asarray(t, dtype=float), total)
    return floor + (a0 - floor) * 0.5 * (1 + np.cos(np.pi * t / total))


def ref_linear(a0, total, floor, t):
    t = np.minimum(np.asarray(t, dtype=float), total)
    return floor + (a0 - floor) * (1 - t / total)


def ref_inv_sqrt(a0, tau, t):
    return a0 * np.sqrt(tau / (np.asarray(t, dtype=float) + tau))


# --- closed forms at the named points ---------------------------------------


def test_step_decay_resnet_in_epochs():
    spe = 7
    s = StepDecay(0.1, [30, 60, 90], steps_per_epoch=spe)
    epochs = np.array([0, 29, 30, 31, 59, 60, 89, 90, 200])
    steps = epochs * spe
    steps = np.concatenate([steps, [30 * spe - 1, 60 * spe - 1, 90 * spe - 1]])
    expected = ref_step(0.1, [30, 60, 90], 0.1, steps, spe)
    np.testing.assert_allclose(values(s, steps), expected, rtol=RTOL)
    # The lecture's staircase, epoch by epoch.
    assert float(s(29 * spe + spe - 1)) == pytest.approx(0.1)  # last batch of 29
    assert float(s(30 * spe)) == pytest.approx(0.01)  # first batch of 30
    assert float(s(10**6)) == pytest.approx(1e-4)


def test_step_decay_in_steps_before_and_at_each_milestone():
    s = StepDecay(0.5, [10, 25], factor=0.5)
    steps = [0, 9, 10, 11, 24, 25, 1000]
    np.testing.assert_allclose(values(s, steps), ref_step(0.5, [10, 25], 0.5, steps), rtol=RTOL)


def test_step_decay_every_period_in_epochs():
    s = StepDecay(0.1, every=3, factor=0.5, steps_per_epoch=4)
    steps = np.arange(0, 60)
    expected = 0.1 * 0.5 ** np.floor(steps / 12)
    np.testing.assert_allclose(vector(s, steps), expected, rtol=RTOL)


def test_step_decay_every_switches_exactly_at_each_period():
    # Found by the property test on JAX: XLA turned step / 107 into step * (1 / 107),
    # and floor(107 / 107) came out 0, one step late.
    s = StepDecay(1.0, every=107, factor=0.5)
    steps = [0, 106, 107, 213, 214, 107 * 100 - 1, 107 * 100]  # 0.5**100 is exact in float32
    np.testing.assert_array_equal(vector(s, steps), 0.5 ** (np.array(steps) // 107))
    np.testing.assert_array_equal(values(s, steps), 0.5 ** (np.array(steps) // 107))


def test_step_decay_decrement_and_floor():
    s = StepDecay(0.1, every=10, decrement=0.03, min_learning_rate=0.02)
    steps = np.array([0, 9, 10, 20, 29, 30, 40, 500])
    expected = np.maximum(0.1 - 0.03 * np.floor(steps / 10), 0.02)
    np.testing.assert_allclose(values(s, steps), expected, rtol=1e-5)


def test_step_decay_factor_floor():
    s = StepDecay(1.0, every=1, factor=0.5, min_learning_rate=0.1)
    steps = np.arange(10)
    np.testing.assert_allclose(vector(s, steps), np.maximum(0.5**steps, 0.1), rtol=RTOL)


@pytest.mark.parametrize("spe", [None, 5])
def test_cosine_decay_closed_form(spe):
    total, floor = 40, 0.01
    s = CosineDecay(0.2, total, min_learning_rate=floor, steps_per_epoch=spe)
    unit = spe or 1
    t = np.array([0, 1, total / 2 - 0.2, total / 2, total - 1, total, total + 1, 10 * total])
    steps = np.round(t * unit).astype(int)
    np.testing.assert_allclose(
        values(s, steps), ref_cosine(0.2, total, floor, steps / unit), rtol=1e-5, atol=1e-8
    )
    # Smooth inside an epoch: in epoch units every step moves the rate.
    if spe:
        inside = vector(s, [1, 2, 3])
        assert inside[0] > inside[1] > inside[2]


@pytest.mark.parametrize("spe", [None, 3])
def test_linear_decay_closed_form(spe):
    total, floor = 20, 0.001
    s = LinearDecay(0.1, total, min_learning_rate=floor, steps_per_epoch=spe)
    unit = spe or 1
    steps = np.array([0, 1, 10 * unit - 1, 10 * unit, total * unit - 1, total * unit, 10**5])
    np.testing.assert_allclose(
        vector(s, steps), ref_linear(0.1, total, floor, steps / unit), rtol=1e-5, atol=1e-9
    )


@pytest.mark.parametrize("spe", [None, 4])
def test_inverse_sqrt_closed_form(spe):
    s = InverseSqrtDecay(0.3, timescale=50, steps_per_epoch=spe)
    unit = spe or 1
    steps = np.array([0, 1, 49, 50, 150 * unit, 10**6])
    np.testing.assert_allclose(vector(s, steps), ref_inv_sqrt(0.3, 50, steps / unit), rtol=1e-5)
    # Proportional to 1/sqrt(t) far out.
    far = vector(s, [10**6 * unit, 4 * 10**6 * unit])
    assert far[0] / far[1] == pytest.approx(2.0, rel=1e-3)


def test_constant():
    s = Constant(0.05)
    np.testing.assert_allclose(vector(s, [0, 1, 10**7]), [0.05] * 3, rtol=RTOL)


def test_warmup_ramp_and_own_clock_in_epochs():
    inner = CosineDecay(0.1, 10, steps_per_epoch=5)
    s = Warmup(inner, 2, initial_learning_rate=0.01, steps_per_epoch=5)
    w = 10  # warmup steps
    steps = np.array([0, 1, 5, 9, 10, 11, 35, 60, 1000])
    ramp = 0.01 + (0.1 - 0.01) * steps / w
    after = ref_cosine(0.1, 10, 0.0, (steps - w) / 5)
    expected = np.where(steps < w, ramp, after)
    np.testing.assert_allclose(values(s, steps), expected, rtol=1e-5, atol=1e-9)


def test_warmup_evaluates_the_wrapped_schedule_once_per_call():
    # The ramp's end value s(0) is a constant; evaluating s a second time inside
    # every training step would double the schedule's ops there.
    calls = []

    class Counting(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            calls.append(step)
            return keras.ops.cast(step, "float32") * 0.0 + 0.2

    s = Warmup(Counting(), 4)
    calls.clear()
    np.testing.assert_allclose(vector(s, [0, 2, 4, 9]), [0.0, 0.1, 0.2, 0.2], rtol=RTOL)
    assert len(calls) == 1


def test_chain_each_schedule_on_its_own_clock():
    s = Chain(
        [Constant(0.1), LinearDecay(0.1, 10), StepDecay(0.05, every=5, factor=0.5)],
        [3, 13],
    )
    steps = np.array([0, 2, 3, 8, 12, 13, 17, 18, 40])
    expected = np.select(
        [steps < 3, steps < 13],
        [np.full(steps.shape, 0.1), ref_linear(0.1, 10, 0.0, steps - 3)],
        0.05 * 0.5 ** np.floor((steps - 13) / 5),
    )
    np.testing.assert_allclose(vector(s, steps), expected, rtol=1e-5, atol=1e-9)


def test_chain_boundaries_in_epochs():
    s = Chain([Constant(1.0), Constant(0.5)], [2], steps_per_epoch=10)
    np.testing.assert_allclose(vector(s, [0, 19, 20, 21]), [1.0, 1.0, 0.5, 0.5])


# --- the same numbers as the established libraries ---------------------------
# Expected values were produced by torch 2.13.0 (torch.optim.lr_scheduler),
# keras 3.15.1 (keras.optimizers.schedules) and the lambdas of Hugging Face
# transformers 4.41 (transformers/optimization.py), with the settings named.


def test_matches_torch_steplr():
    # StepLR(SGD(lr=0.1), step_size=3, gamma=0.5), lr read before each step.
    torch_values = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125]
    s = StepDecay(0.1, every=3, factor=0.5)
    np.testing.assert_allclose(vector(s, range(10)), torch_values, rtol=RTOL)


def test_matches_torch_multisteplr():
    # MultiStepLR(SGD(lr=0.1), milestones=[2, 5], gamma=0.1).
    torch_values = [0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001]
    s = StepDecay(0.1, [2, 5])
    np.testing.assert_allclose(vector(s, range(8)), torch_values, rtol=RTOL)


def test_matches_torch_cosineannealinglr():
    # CosineAnnealingLR(SGD(lr=0.1), T_max=10, eta_min=0.01), steps 0..10.
    torch_values = [
        0.1, 0.09779754323328192, 0.09140576474687263, 0.08145033635316129,
        0.06890576474687264, 0.05500000000000001, 0.04109423525312737,
        0.028549663646838717, 0.01859423525312737, 0.012202456766718092, 0.01,
    ]  # fmt: skip
    s = CosineDecay(0.1, 10, min_learning_rate=0.01)
    np.testing.assert_allclose(vector(s, range(11)), torch_values, rtol=1e-6)


def test_matches_torch_linearlr():
    # LinearLR(SGD(lr=0.1), start_factor=1.0, end_factor=0.1, total_iters=10).
    torch_values = [
        0.1, 0.091, 0.082, 0.073, 0.064, 0.055, 0.046, 0.037, 0.028, 0.019,
        0.01, 0.01, 0.01,
    ]  # fmt: skip
    s = LinearDecay(0.1, 10, min_learning_rate=0.01)
    np.testing.assert_allclose(vector(s, range(13)), torch_values, rtol=1e-5)


def test_matches_keras_cosine_decay():
    # keras.optimizers.schedules.CosineDecay(0.1, 100, alpha=0.1) at 0, 25, ..., 150.
    keras_values = [0.1, 0.08681981265544891, 0.05499999597668648,
                    0.023180196061730385, 0.010000000707805157, 0.010000000707805157]  # fmt: skip
    s = CosineDecay(0.1, 100, min_learning_rate=0.01)
    np.testing.assert_allclose(vector(s, [0, 25, 50, 75, 100, 150]), keras_values, rtol=1e-6)


def test_matches_hugging_face_linear_with_warmup():
    # get_linear_schedule_with_warmup(lr=0.1, num_warmup_steps=4, num_training_steps=20)
    steps = [0, 2, 4, 12, 19, 20, 25]
    hf_values = [0.0, 0.05, 0.1, 0.05, 0.00625, 0.0, 0.0]
    s = Warmup(LinearDecay(0.1, 20 - 4), 4)
    np.testing.assert_allclose(vector(s, steps), hf_values, rtol=1e-6, atol=1e-9)


def test_matches_hugging_face_cosine_with_warmup():
    # get_cosine_schedule_with_warmup(lr=0.1, num_warmup_steps=4, num_training_steps=20)
    # (num_cycles=0.5), within the training steps (HF rises again past them).
    steps = [0, 1, 4, 8, 12, 16, 20]
    hf_values = [0.0, 0.025, 0.1, 0.08535533905932738, 0.05, 0.014644660940672627, 0.0]
    s = Warmup(CosineDecay(0.1, 20 - 4), 4)
    np.testing.assert_allclose(vector(s, steps), hf_values, rtol=1e-6, atol=1e-9)


def test_matches_hugging_face_inverse_sqrt():
    # get_inverse_sqrt_schedule(lr=0.1, num_warmup_steps=4) (timescale defaults to 4):
    # step/4 during warmup, then 1/sqrt((step + timescale - 4) / timescale).
    steps = [0, 1, 3, 4, 16, 100, 400]
    hf_values = [0.0, 0.025, 0.075, 0.1, 0.05, 0.02, 0.01]
    s = Warmup(InverseSqrtDecay(0.1, timescale=4), 4)
    np.testing.assert_allclose(vector(s, steps), hf_values, rtol=1e-6, atol=1e-9)


def test_step_decay_differs_from_keras_piecewise_by_one_step():
    # Keras's PiecewiseConstantDecay switches at step > boundary, ours at step >= milestone.
    ours = StepDecay(0.1, [5])
    keras_s = keras.optimizers.schedules.PiecewiseConstantDecay([5], [0.1, 0.01])
    assert float(ours(5)) == pytest.approx(0.01)
    assert float(keras_s(5)) == pytest.approx(0.1)
    assert float(keras_s(6)) == pytest.approx(float(ours(6)))


def test_works_with_keras_schedules_inside():
    keras_s = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    s = Warmup(keras_s, 5)
    expected = np.where(
        np.arange(20) < 5, 0.1 * np.arange(20) / 5, 0.1 * 0.5 ** ((np.arange(20) - 5) / 10)
    )
    np.testing.assert_allclose(vector(s, range(20)), expected, rtol=1e-5, atol=1e-9)


# --- properties over random valid arguments ----------------------------------

rates = st.floats(1e-5, 10.0, allow_nan=False)
durations = st.integers(1, 500)
spes = st.one_of(st.none(), st.integers(1, 20))


@st.composite
def schedules(draw):
    """(schedule, floor, ceiling, warmup_steps) for random valid arguments."""
    kind = draw(st.sampled_from(["step", "every", "cosine", "linear", "isqrt", "const", "warmup"]))
    a0 = draw(rates)
    spe = draw(spes)
    floor = draw(st.one_of(st.just(0.0), st.floats(1e-3, 1))) * a0
    if kind == "step":
        ms = sorted(set(draw(st.lists(st.integers(0, 300), min_size=1, max_size=5))))
        s = StepDecay(
            a0, ms, factor=draw(st.floats(0.01, 1.0)), min_learning_rate=floor, steps_per_epoch=spe
        )
    elif kind == "every":
        if draw(st.booleans()):
            s = StepDecay(
                a0,
                every=draw(durations),
                decrement=draw(st.one_of(st.just(0.0), st.floats(1e-3, 1))) * a0,
                min_learning_rate=floor,
                steps_per_epoch=spe,
            )
        else:
            s = StepDecay(
                a0,
                every=draw(durations),
                factor=draw(st.floats(0.01, 1.0)),
                min_learning_rate=floor,
                steps_per_epoch=spe,
            )
    elif kind == "cosine":
        s = CosineDecay(a0, draw(durations), min_learning_rate=floor, steps_per_epoch=spe)
    elif kind == "linear":
        s = LinearDecay(a0, draw(durations), min_learning_rate=floor, steps_per_epoch=spe)
    elif kind == "isqrt":
        s, floor = InverseSqrtDecay(a0, timescale=draw(durations), steps_per_epoch=spe), 0.0
    elif kind == "const":
        s, floor = Constant(a0, steps_per_epoch=spe), a0
    if kind != "warmup":
        return s, floor, a0, 0
    inner = CosineDecay(a0, draw(durations), min_learning_rate=floor)
    start = draw(st.one_of(st.just(0.0), st.floats(1e-3, 2))) * a0
    w = draw(durations)
    s = Warmup(inner, w, initial_learning_rate=start, steps_per_epoch=spe)
    # The ramp starts at `start`, which may lie below the inner schedule's floor.
    return s, min(floor, start), max(a0, start), w * (spe or 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), st.lists(st.integers(0, 10**5), min_size=1, max_size=20))
def test_properties(case, random_steps):
    schedule, floor, ceiling, warmup_steps = case
    steps = np.array(sorted(set(random_steps + [0, warmup_steps, warmup_steps + 1])))
    got = vector(schedule, steps)
    assert np.all(np.isfinite(got))
    tol = 1e-6 * ceiling + 1e-12
    assert np.all(got >= floor - tol) and np.all(got <= ceiling + tol)
    after = got[steps >= warmup_steps]
    assert np.all(np.diff(after) <= tol), "not non-increasing after warmup"
    # float32 rounding is relative to the largest operand (the initial rate), not to the result.
    np.testing.assert_allclose(got, values(schedule, steps), rtol=1e-6, atol=tol)


# --- bad arguments -----------------------------------------------------------

BAD = [
    ("initial_learning_rate", lambda: CosineDecay(-0.1, 10)),
    ("initial_learning_rate", lambda: LinearDecay(float("nan"), 10)),
    ("initial_learning_rate", lambda: StepDecay(float("inf"), [1])),
    ("initial_learning_rate", lambda: InverseSqrtDecay("0.1")),
    ("learning_rate", lambda: Constant(-1.0)),
    ("total", lambda: CosineDecay(0.1, 0)),
    ("total", lambda: LinearDecay(0.1, -5)),
    ("every", lambda: StepDecay(0.1, every=0)),
    ("timescale", lambda: InverseSqrtDecay(0.1, timescale=0)),
    ("warmup", lambda: Warmup(Constant(0.1), 0)),
    ("milestones", lambda: StepDecay(0.1, [-1, 5])),
    ("milestones", lambda: StepDecay(0.1, [5, 5])),
    ("milestones", lambda: StepDecay(0.1, [10, 5])),
    ("milestones", lambda: StepDecay(0.1, [])),
    ("factor", lambda: StepDecay(0.1, [5], factor=0.0)),
    ("factor", lambda: StepDecay(0.1, [5], factor=1.5)),
    ("decrement", lambda: StepDecay(0.1, [5], decrement=-0.01)),
    ("milestones", lambda: StepDecay(0.1, [5], every=5)),
    ("milestones", lambda: StepDecay(0.1)),
    ("min_learning_rate", lambda: CosineDecay(0.1, 10, min_learning_rate=0.2)),
    ("min_learning_rate", lambda: StepDecay(0.1, [1], min_learning_rate=-0.1)),
    ("steps_per_epoch", lambda: CosineDecay(0.1, 10, steps_per_epoch=0)),
    ("steps_per_epoch", lambda: LinearDecay(0.1, 10, steps_per_epoch=2.5)),
    ("steps_per_epoch", lambda: StepDecay(0.1, [1], steps_per_epoch=True)),
    ("boundaries", lambda: Chain([Constant(0.1), Constant(0.01)], [])),
    ("boundaries", lambda: Chain([Constant(0.1), Constant(0.01), Constant(0.001)], [5, 3])),
    ("schedules", lambda: Chain([], [])),
    ("schedules", lambda: Chain([0.1, Constant(0.01)], [3])),
    ("schedule", lambda: Warmup(0.1, 5)),
]


@pytest.mark.parametrize("name,make", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_bad_arguments_raise_value_error_naming_them(name, make):
    with pytest.raises(ValueError, match=f"`{name}`"):
        make()


def test_error_message_shows_the_value_received():
    with pytest.raises(ValueError, match=r"Received: total=0"):
        CosineDecay(0.1, 0)


def test_numpy_scalars_are_accepted():
    s = StepDecay(np.float32(0.1), [np.int64(3)], steps_per_epoch=np.int64(2))
    assert s.get_config()["steps_per_epoch"] == 2
    assert isinstance(s.get_config()["milestones"][0], int)
    assert math.isclose(float(s(6)), 0.01, rel_tol=1e-6)
