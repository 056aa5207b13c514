"""Exact everywhere: restarts on their step, the logged rate is the rate used, any Keras schedule."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import keras
import numpy as np
import pytest

from keras_lrkit import (
    Chain,
    Constant,
    CosineDecay,
    CosineRestarts,
    Cyclic,
    ExponentialDecay,
    InverseSqrtDecay,
    LearningRateLogger,
    LinearDecay,
    LRKitWarning,
    OneCycle,
    PolynomialDecay,
    Reduced,
    StepDecay,
    Warmup,
    plot_schedule,
)
from keras_lrkit.callbacks.lr_logger import learning_rate_at

from .helpers import BACKEND, compiled, probe

# --- 1. CosineRestarts restarts on its exact step -------------------------------------------


def exact_restarts(a0, period, m, d, floor, t):
    """SGDR in exact rational arithmetic, written here from the formula (not from the package)."""
    start, length, i = Fraction(0), Fraction(period), 0
    while start + length <= t:
        start, length, i = start + length, length * Fraction(m), i + 1
    done = float((Fraction(t) - start) / length)
    return floor + (a0 - floor) * d**i * 0.5 * (1 + math.cos(math.pi * done))


def restart_steps(period, m, limit):
    """The first whole step of each period below ``limit``, and the step before it."""
    start, length, steps = Fraction(0), Fraction(period), []
    while start + length < limit:
        start, length = start + length, length * Fraction(m)
        first = math.ceil(start)
        steps += [first - 1, first]
    return steps


def draws(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        whole = k % 2 == 0  # integer period and factor (torch's T_mult), or fractional ones
        period = int(rng.integers(1, 40)) if whole else float(rng.uniform(0.7, 40))
        m = int(rng.integers(2, 11)) if whole else float(rng.uniform(1.05, 4.0))
        d = float(rng.uniform(0.3, 1.0))
        a0 = float(rng.choice([0.1, 1.0, 3.0]))
        floor = 0.0 if k % 3 else a0 * float(rng.uniform(0.01, 0.3))
        out.append((a0, period, m, d, floor))
    return out


DRAWS = draws(300)
ISSUE_EXAMPLES = [  # issue 22, point 1: the exact rate at each, and where they were off
    ((0.1, 10, 1.8955281622882771, 0.8585545135247021, 0.01), 10),
    ((3.0, 3, 3, 1.0, 0.0), 120),
    ((1.0, 17, 10, 1.0, 0.0), 1_888_887),
]


def expected_and_steps(config, limit=10**7):
    steps = np.array(restart_steps(config[1], config[2], limit), dtype="int64")
    return steps, np.array([exact_restarts(*config, int(t)) for t in steps])


def make(config):
    a0, period, m, d, floor = config
    return CosineRestarts(a0, period, period_factor=m, peak_factor=d, min_learning_rate=floor)


def check(got, want, config):
    # float32 arithmetic inside a period; a restart a step late would be off by the whole height.
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6 * config[0], err_msg=str(config))


def test_cosine_restarts_restart_on_their_exact_step_in_arrays():
    for config in DRAWS:
        steps, want = expected_and_steps(config)
        check(keras.ops.convert_to_numpy(make(config)(steps)), want, config)


def test_the_issue_s_examples_one_step_at_a_time_and_as_keras_gives_them():
    for config, step in ISSUE_EXAMPLES:
        want = exact_restarts(*config, step)
        assert float(make(config)(step)) == pytest.approx(want, rel=2e-5)
        assert float(make(config)(np.arange(step + 8))[step]) == pytest.approx(want, rel=2e-5)
    # Keras's CosineDecayRestarts gives the first example's new peak too.
    keras_rate = keras.optimizers.schedules.CosineDecayRestarts(
        0.1, 10, t_mul=1.8955281622882771, m_mul=0.8585545135247021, alpha=0.1
    )(10)
    assert float(keras_rate) == pytest.approx(exact_restarts(*ISSUE_EXAMPLES[0][0], 10), rel=1e-5)



@pytest.mark.parametrize("how", ["one_step_at_a_time", "compiled"])
def test_cosine_restarts_restart_on_their_exact_step_one_at_a_time(how):
    for config in DRAWS[:24] + [c for c, _ in ISSUE_EXAMPLES]:
        schedule = make(config)
        call = compiled(schedule) if how == "compiled" else schedule
        steps, want = expected_and_steps(config)
        dtype = "int32" if BACKEND == "jax" else "int64"  # the optimizer's counter
        got = [float(call(keras.ops.convert_to_tensor(np.array(t, dtype)))) for t in steps]
        check(got, want, config)


def test_torch_s_warm_restarts_stepped_one_step_at_a_time():
    torch = pytest.importorskip("torch")
    for period, m in [(3, 3), (1, 3), (17, 2), (5, 4)]:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, period, T_mult=m,
                                                                     eta_min=0.001)  # fmt: skip
        rates = []
        for _ in range(3000):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        ours = make((0.1, period, m, 1.0, 0.001))(np.arange(3000))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), rates, rtol=2e-5, atol=2e-7)


# --- 2. the logger logs the rate the optimizer used, at every step, for every schedule -------

SCHEDULES = {
    "step": lambda: StepDecay(0.1, [3, 7]),
    "cosine": lambda: CosineDecay(0.1, 11, min_learning_rate=0.001),
    "linear": lambda: LinearDecay(0.1, 13),
    "inverse_sqrt": lambda: InverseSqrtDecay(0.1, timescale=3),
    "constant": lambda: Constant(0.05),
    "exponential": lambda: ExponentialDecay(0.1, 0.7, 3),
    "polynomial": lambda: PolynomialDecay(0.1, 12, power=2.0),
    "restarts_issue": lambda: CosineRestarts(0.1, 1, period_factor=3),
    "restarts_float": lambda: CosineRestarts(0.1, 2.5, period_factor=1.7, peak_factor=0.8),
    "one_cycle": lambda: OneCycle(0.1, 15),
    "cyclic": lambda: Cyclic(0.01, 0.1, 2.5),
    "warmup_chain": lambda: Warmup(Chain([Constant(0.1), LinearDecay(0.1, 8)], [4]), 3),
    "reduced": lambda: Reduced(CosineDecay(0.1, 15), [[5, 0.5]]),
    "keras_piecewise": lambda: keras.optimizers.schedules.PiecewiseConstantDecay(
        [4, 9], [0.1, 0.05, 0.01]),
}  # fmt: skip



class Moves(keras.callbacks.Callback):
    """The weight after every batch."""

    def on_train_begin(self, logs=None):
        self.weights = [0.0]

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append(float(keras.ops.convert_to_numpy(self.model.layers[0].kernel)[0, 0]))


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_the_logger_logs_the_rate_the_optimizer_used_at_every_step(name):
    model = probe(SCHEDULES[name]())
    logger, moves = LearningRateLogger(per_batch=True), Moves()
    x = np.ones((20, 1), "float32")
    history = model.fit(x, x, batch_size=4, epochs=9, verbose=0, shuffle=False,
                        callbacks=[moves, logger])  # fmt: skip
    used = -np.diff(moves.weights)  # the rate of each step, from the weight's move
    np.testing.assert_allclose(logger.batch_learning_rates, used, rtol=1e-4, atol=3e-7)
    np.testing.assert_allclose(history.history["learning_rate"], used[4::5], rtol=1e-4, atol=3e-7)


# --- 3. gradient accumulation ------------------------------------------------------------------


def test_under_gradient_accumulation_the_logger_logs_what_moved_the_weights():
    model = probe(StepDecay(0.1, [8]), gradient_accumulation_steps=2)
    logger, moves = LearningRateLogger(per_batch=True), Moves()
    x = np.ones((64, 1), "float32")
    history = model.fit(x, x, batch_size=4, epochs=2, verbose=0, shuffle=False,
                        callbacks=[moves, logger])  # fmt: skip
    moved = -np.diff(moves.weights)
    updates = moved[1::2]  # the weights move at every second batch, by that batch's rate
    assert np.allclose(moved[0::2], 0.0)
    logged = np.array(logger.batch_learning_rates)
    np.testing.assert_allclose(logged[1::2], updates, rtol=1e-5)
    # Epoch 0: 4 updates at 0.1 and 4 at 0.01 (Keras's schedule sees the batch counter).
    np.testing.assert_allclose(updates[:8], [0.1] * 4 + [0.01] * 4, rtol=1e-5)
    np.testing.assert_allclose(history.history["learning_rate"], [0.01, 0.01], rtol=1e-5)


# --- 4. any Keras schedule on every backend ------------------------------------------------------


def test_keras_s_own_schedules_work_wherever_keras_lrkit_evaluates_them():
    piecewise = keras.optimizers.schedules.PiecewiseConstantDecay([5, 10], [0.1, 0.01, 0.001])
    steps = np.arange(15)
    want = np.where(steps <= 5, 0.1, np.where(steps <= 10, 0.01, 0.001))  # Keras: step <= boundary
    optimizer = keras.optimizers.SGD(piecewise)
    np.testing.assert_allclose(learning_rate_at(optimizer, steps), want, rtol=1e-6)
    warm = keras.ops.convert_to_numpy(Warmup(piecewise, 3)(steps))
    np.testing.assert_allclose(warm[3:], want[:12], rtol=1e-6)  # its own clock after the ramp
    reduced = keras.ops.convert_to_numpy(Reduced(piecewise, [[4, 0.5]])(steps))
    np.testing.assert_allclose(reduced, want * np.where(steps >= 4, 0.5, 1.0), rtol=1e-6)
    figure = plot_schedule(piecewise, 15)
    (line,) = [a for a in figure.axes if a.lines][0].lines[:1]
    np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-6)


# --- 7. one "fit" schedule shared by fits of two sizes ---------------------------------------------


def test_a_shared_fit_schedule_takes_each_fit_s_number():
    schedule = StepDecay(0.1, [2], steps_per_epoch="fit")
    for samples, steps in [(24, 6), (12, 3), (24, 6)]:
        model = probe(schedule)
        x = np.ones((samples, 1), "float32")
        with warnings.catch_warnings():
            warnings.simplefilter("error", LRKitWarning)  # the advice it gave was the one taken
            history = model.fit(x, x, batch_size=4, epochs=3, verbose=0,
                                callbacks=[LearningRateLogger()])  # fmt: skip
        assert schedule.steps_per_epoch == steps
        np.testing.assert_allclose(history.history["learning_rate"], [0.1, 0.1, 0.01], rtol=1e-6)


def test_one_model_fit_again_with_another_batch_size_follows_the_new_epochs():
    schedule = StepDecay(0.1, [2], steps_per_epoch="fit")
    model = probe(schedule)
    x = np.ones((24, 1), "float32")
    model.fit(x, x, batch_size=4, epochs=1, verbose=0, callbacks=[LearningRateLogger()])
    logger, moves = LearningRateLogger(per_batch=True), Moves()
    model.fit(x, x, batch_size=8, epochs=3, verbose=0, initial_epoch=1, callbacks=[moves, logger])
    # 3 steps an epoch now, from step 6: epoch 2 begins at step 6 = 2 x 3, where the rate drops;
    # the step traced in the first fit (6 steps an epoch) was rebuilt: the weights moved so.
    np.testing.assert_allclose(logger.batch_learning_rates[:3], [0.01] * 3, rtol=1e-6)
    np.testing.assert_allclose(-np.diff([-0.6, *moves.weights[1:4]]), [0.01] * 3, rtol=1e-4)


def test_where_keras_s_float32_logarithm_restarts_off_the_step_ours_is_the_exact_one():
    keras_off = total = 0
    # Keras's schedule one step at a time, as its optimizer calls it: 70 ms a call on eager JAX,
    # so 12 of the draws there, all 40 elsewhere.
    for config in DRAWS[: 12 if BACKEND == "jax" else 40]:
        a0, period, m, d, floor = config
        steps, want = expected_and_steps(config, limit=10**6)
        theirs = keras.optimizers.schedules.CosineDecayRestarts(
            a0, period, t_mul=m, m_mul=d, alpha=floor / a0
        )
        keras_rates = np.array([float(keras.ops.convert_to_numpy(theirs(int(t)))) for t in steps])
        ours = keras.ops.convert_to_numpy(make(config)(steps))
        agree = np.isclose(ours, keras_rates, rtol=1e-3, atol=1e-4 * a0)
        keras_off += int((~agree).sum())
        total += len(steps)
        check(ours, want, config)  # everywhere, including where Keras is off
    assert keras_off <= 0.02 * total  # the same numbers as Keras but at Keras's rounding slips


# --- 6. argument errors name what the user passed ------------------------------------------------


@pytest.mark.parametrize(
    "make_it,name,shown",
    [
        (lambda: Cyclic(0.01, 0.1, 2e38), "half_period", "half_period=2e+38"),
        (lambda: OneCycle(0.1, 1), "total", "total=1"),
        (lambda: OneCycle(0.1, 1, three_phase=True), "total", "total=1"),
        (lambda: StepDecay(0.1, [3], steps_per_epoch=np.array([3, 4])), "steps_per_epoch",
         "steps_per_epoch=array([3, 4])"),
        (lambda: OneCycle(0.1, 10, shape=np.array(["cosine"])), "shape", "shape=array("),
        (lambda: Cyclic(0.01, 0.1, 3, mode=np.array([1, 2])), "mode", "mode=array([1, 2])"),
        (lambda: OneCycle(1e-3, 100, initial_div=1e38), "initial_div", "initial_div=1e+38"),
        (lambda: OneCycle(1.0, 100, initial_div=1e20, final_div=1e20), "final_div",
         "final_div=1e+20"),
    ],
)  # fmt: skip
def test_argument_errors_name_the_argument_and_the_value_passed(make_it, name, shown):
    with pytest.raises(ValueError, match=f"Argument `{name}`") as caught:
        make_it()
    assert shown in str(caught.value)


def test_one_cycle_takes_every_divisor_whose_rates_float32_holds():
    s = OneCycle(1.0, 100, initial_div=1, final_div=1e20)  # rates 1.0 down to 1e-20
    rates = keras.ops.convert_to_numpy(s(np.arange(101)))
    assert rates.max() == pytest.approx(1.0) and rates[-1] == pytest.approx(1e-20, rel=1e-5)
    assert OneCycle(0.1, 2, warmup_fraction=0.6)(1) is not None  # two steps: the least there is
