"""The schedules beyond the lecture: exponential, polynomial, warm restarts, one-cycle, cyclical."""

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
    CosineRestarts,
    Cyclic,
    ExponentialDecay,
    LinearDecay,
    OneCycle,
    PolynomialDecay,
    StepDecay,
    Warmup,
)


def vector(schedule, steps):
    return keras.ops.convert_to_numpy(schedule(np.asarray(steps, dtype="int64"))).astype(float)


def values(schedule, steps):
    return np.array([float(schedule(int(s))) for s in steps])


# --- independent numpy closed forms, at the named points ---------------------------


def ref_restarts(a0, period, m, d, floor, t):
    t = np.asarray(t, dtype=float)
    if m == 1:
        i = np.floor(t / period)
        start = i * period
    else:
        i = np.floor(np.log(1 + t * (m - 1) / period) / np.log(m))
        start = period * (m**i - 1) / (m - 1)
    length = period * m**i
    peak = floor + (a0 - floor) * d**i
    return floor + (peak - floor) * 0.5 * (1 + np.cos(np.pi * (t - start) / length))


def ref_onecycle(peak, n, w=0.3, div=25.0, final=1e4, cosine=True, three=False, steps=()):
    low = peak / div
    end = low / final
    if three:
        phases = [
            (0, w * n - 1, low, peak),
            (w * n - 1, 2 * w * n - 2, peak, low),
            (2 * w * n - 2, n - 1, low, end),
        ]
    else:
        phases = [(0, w * n - 1, low, peak), (w * n - 1, n - 1, peak, end)]
    out = []
    for s in np.minimum(np.asarray(steps, dtype=float), n - 1):
        s0, s1, a, b = next(p for p in phases if s <= p[1])
        pct = (s - s0) / (s1 - s0)
        out.append(b + (a - b) / 2 * (np.cos(np.pi * pct) + 1) if cosine else a + (b - a) * pct)
    return np.array(out)


def ref_cyclic(base, top, half, mode="triangular", gamma=1.0, t=()):
    t = np.asarray(t, dtype=float)
    cycle = np.floor(1 + t / (2 * half))
    x = 1 + t / (2 * half) - cycle
    tri = np.where(x <= 0.5, 2 * x, 2 * (1 - x))
    scale = {"triangular": 1.0, "triangular2": 0.5 ** (cycle - 1), "exp_range": gamma**t}[mode]
    return base + (top - base) * tri * scale


@pytest.mark.parametrize("spe", [None, 4])
def test_exponential_decay_closed_form(spe):
    unit = spe or 1
    steps = np.array([0, 1, 9 * unit, 10 * unit - 1, 10 * unit, 25 * unit, 400 * unit])
    t = steps / unit
    smooth = ExponentialDecay(0.2, 0.5, 10, min_learning_rate=1e-4, steps_per_epoch=spe)
    np.testing.assert_allclose(
        vector(smooth, steps), np.maximum(0.2 * 0.5 ** (t / 10), 1e-4), rtol=2e-6
    )
    stair = ExponentialDecay(0.2, 0.5, 10, staircase=True, steps_per_epoch=spe)
    np.testing.assert_allclose(vector(stair, steps), 0.2 * 0.5 ** np.floor(t / 10), rtol=1e-6)


@pytest.mark.parametrize("spe", [None, 3])
@pytest.mark.parametrize("power", [0.5, 1.0, 2.0, 3.5])
def test_polynomial_decay_closed_form(spe, power):
    unit = spe or 1
    steps = np.array(
        [0, 1, 10 * unit - 1, 10 * unit, 19 * unit, 20 * unit - 1, 20 * unit, 21 * unit, 10**5]
    )
    t = np.minimum(steps / unit, 20)
    s = PolynomialDecay(0.1, 20, power=power, min_learning_rate=0.002, steps_per_epoch=spe)
    expected = 0.002 + 0.098 * (1 - t / 20) ** power
    np.testing.assert_allclose(vector(s, steps), expected, rtol=2e-6, atol=1e-9)
    assert np.all(vector(s, [20 * unit, 30 * unit, 10**6]) == np.float32(0.002))  # held, no NaN


def test_linear_decay_is_polynomial_decay_of_power_1_written_once():
    assert issubclass(LinearDecay, PolynomialDecay)
    steps = np.arange(0, 30)
    np.testing.assert_array_equal(
        vector(LinearDecay(0.1, 20, min_learning_rate=0.01), steps),
        vector(PolynomialDecay(0.1, 20, min_learning_rate=0.01), steps),
    )
    assert "power" not in LinearDecay(0.1, 20).get_config()


@pytest.mark.parametrize("spe", [None, 5])
@pytest.mark.parametrize("m,d", [(1.0, 1.0), (2.0, 0.5), (3.0, 0.8)])
def test_cosine_restarts_closed_form_around_every_restart(spe, m, d):
    unit = spe or 1
    period = 4
    starts = [period * (m**i - 1) / (m - 1) if m > 1 else period * i for i in range(4)]
    t = sorted(
        {0.0, *[x for s in starts for x in (s - 1 / unit, s, s + 1 / unit) if x >= 0], 2.0, 500.0}
    )
    steps = np.round(np.array(t) * unit).astype(int)
    s = CosineRestarts(
        0.1, period, period_factor=m, peak_factor=d, min_learning_rate=0.001, steps_per_epoch=spe
    )
    expected = ref_restarts(0.1, period, m, d, 0.001, steps / unit)
    np.testing.assert_allclose(vector(s, steps), expected, rtol=2e-5, atol=1e-8)
    np.testing.assert_allclose(values(s, steps), expected, rtol=2e-5, atol=1e-8)


@pytest.mark.parametrize("shape", ["cosine", "linear"])
@pytest.mark.parametrize("three", [False, True])
def test_one_cycle_closed_form_at_every_phase_boundary(shape, three):
    n, w = 40, 0.25
    ends = [w * n - 1, 2 * w * n - 2, n - 1] if three else [w * n - 1, n - 1]
    steps = sorted({0, *[int(e) + k for e in ends for k in (-1, 0, 1)], 20, 1000})
    s = OneCycle(0.2, n, warmup_fraction=w, shape=shape, three_phase=three)
    expected = ref_onecycle(0.2, n, w=w, cosine=shape == "cosine", three=three, steps=steps)
    np.testing.assert_allclose(vector(s, steps), expected, rtol=2e-6, atol=1e-9)


def test_one_cycle_in_epochs_is_the_same_cycle_in_steps():
    steps = np.arange(0, 60)
    np.testing.assert_array_equal(
        vector(OneCycle(0.1, 10, steps_per_epoch=5), steps), vector(OneCycle(0.1, 50), steps)
    )


@pytest.mark.parametrize("spe", [None, 2])
@pytest.mark.parametrize(
    "mode,gamma", [("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.95)]
)
def test_cyclic_closed_form(spe, mode, gamma):
    unit = spe or 1
    steps = np.array(
        [
            0,
            1,
            4 * unit - 1,
            4 * unit,
            4 * unit + 1,
            8 * unit - 1,
            8 * unit,
            12 * unit,
            31 * unit,
            1000,
        ]
    )
    s = Cyclic(0.001, 0.01, 4, mode=mode, gamma=gamma, steps_per_epoch=spe)
    expected = ref_cyclic(0.001, 0.01, 4, mode, gamma, steps / unit)
    np.testing.assert_allclose(vector(s, steps), expected, rtol=2e-6, atol=1e-10)


# --- number for number with torch and Keras -------------------------------------------
# Expected values: torch 2.13.0 (torch.optim.lr_scheduler, the rate read before each
# optimizer step, SGD(lr=0.1, momentum=0.9)) and keras 3.15.1
# (keras.optimizers.schedules, called at each step), with the settings named.

# fmt: off
# OneCycleLR(max_lr=0.1, total_steps=20, cycle_momentum=False)
ONECYCLE_COS = [0.0040000000000000036, 0.013167184270002533, 0.037167184270002526, 0.06683281572999747, 0.09083281572999748, 0.1, 0.09874640062350874, 0.09504846320134738, 0.089091617757105, 0.0811745653949763, 0.07169430017913009, 0.06112620219362893, 0.0500002, 0.03887419780637107, 0.028306099820869922, 0.0188258346050237, 0.010908782242895003, 0.004951936798652629, 0.0012539993764912555, 4e-07]
# OneCycleLR(max_lr=0.1, total_steps=20, anneal_strategy="linear", cycle_momentum=False)
ONECYCLE_LIN = [0.004, 0.023200000000000002, 0.04240000000000001, 0.0616, 0.08080000000000001, 0.1, 0.09285717142857143, 0.08571434285714286, 0.0785715142857143, 0.07142868571428572, 0.06428585714285714, 0.05714302857142858, 0.0500002, 0.042857371428571434, 0.03571454285714286, 0.028571714285714284, 0.02142888571428571, 0.014286057142857148, 0.007143228571428573, 3.999999999976245e-07]
# OneCycleLR(max_lr=0.1, total_steps=20, three_phase=True, pct_start=0.25, div_factor=10, final_div_factor=100, cycle_momentum=False)
ONECYCLE_3 = [0.009999999999999995, 0.023180194846605356, 0.055, 0.08681980515339464, 0.1, 0.08681980515339464, 0.05500000000000001, 0.023180194846605363, 0.01, 0.009799490219391763, 0.009214204987514346, 0.008291560633029162, 0.007106304314359339, 0.005754458449452763, 0.004345541550547239, 0.002993695685640663, 0.0018084393669708396, 0.0008857950124856526, 0.0003005097806082386, 0.0001]
# OneCycleLR(max_lr=0.1, epochs=5, steps_per_epoch=4, pct_start=0.4, cycle_momentum=False)
ONECYCLE_EPOCHS = [0.0040000000000000036, 0.008753494340683884, 0.022072489510780793, 0.04131899517009691, 0.0626810048299031, 0.08192751048921922, 0.09524650565931612, 0.1, 0.09829629812928815, 0.09330129698414119, 0.08535539763797113, 0.0750001, 0.06294110049131701, 0.0500002, 0.03705929950868298, 0.025000300000000013, 0.014645002362028864, 0.006699103015858823, 0.0017041018707118479, 4e-07]
# CyclicLR(base_lr=0.001, max_lr=0.01, step_size_up=4, mode="triangular", cycle_momentum=False)
CYCLIC_TRIANGULAR = [0.001, 0.0032500000000000003, 0.0055000000000000005, 0.007750000000000001, 0.010000000000000002, 0.007750000000000001, 0.0055000000000000005, 0.0032500000000000003, 0.001, 0.0032500000000000003, 0.0055000000000000005, 0.007750000000000001, 0.010000000000000002, 0.007750000000000001, 0.0055000000000000005, 0.0032500000000000003, 0.001, 0.0032500000000000003, 0.0055000000000000005, 0.007750000000000001, 0.010000000000000002, 0.007750000000000001, 0.0055000000000000005, 0.0032500000000000003, 0.001, 0.0032500000000000003]
# CyclicLR(base_lr=0.001, max_lr=0.01, step_size_up=4, mode="triangular2", cycle_momentum=False)
CYCLIC_TRIANGULAR2 = [0.001, 0.0032500000000000003, 0.0055000000000000005, 0.007750000000000001, 0.010000000000000002, 0.007750000000000001, 0.0055000000000000005, 0.0032500000000000003, 0.001, 0.002125, 0.0032500000000000003, 0.004375, 0.0055000000000000005, 0.004375, 0.0032500000000000003, 0.002125, 0.001, 0.0015625, 0.002125, 0.0026875000000000002, 0.0032500000000000003, 0.0026875000000000002, 0.002125, 0.0015625, 0.001, 0.00128125]
# CyclicLR(base_lr=0.001, max_lr=0.01, step_size_up=4, mode="exp_range", gamma=0.9, cycle_momentum=False)
CYCLIC_EXP_RANGE = [0.001, 0.0030250000000000003, 0.004645000000000001, 0.0059207500000000015, 0.006904900000000001, 0.004985807500000001, 0.0033914845000000003, 0.002076168025, 0.001, 0.0018716961002500003, 0.0025690529804500003, 0.0031182215236075007, 0.0035418658283290013, 0.002715759434122076, 0.002029455660473246, 0.0014632550472129604, 0.001, 0.001375236588242498, 0.0016754258588364964, 0.0019118249094292703, 0.0020941898913151243, 0.001738578176637709, 0.0014431469059826255, 0.0011994161076921814, 0.001, 0.001161527047230667]
# CosineAnnealingWarmRestarts(T_0=5, T_mult=1, eta_min=0.001)
RESTARTS_1 = [0.1, 0.0905463412215599, 0.0657963412215599, 0.03520365877844011, 0.010453658778440109, 0.1, 0.0905463412215599, 0.0657963412215599, 0.03520365877844011, 0.010453658778440109, 0.1, 0.0905463412215599, 0.0657963412215599, 0.03520365877844011, 0.010453658778440109, 0.1, 0.0905463412215599, 0.0657963412215599, 0.03520365877844011, 0.010453658778440109, 0.1]
# CosineAnnealingWarmRestarts(T_0=5, T_mult=2, eta_min=0.001)
RESTARTS_2 = [0.1, 0.0905463412215599, 0.0657963412215599, 0.03520365877844011, 0.010453658778440109, 0.1, 0.09757729755661011, 0.0905463412215599, 0.07959536998847742, 0.0657963412215599, 0.0505, 0.03520365877844011, 0.021404630011522586, 0.010453658778440109, 0.0034227024433899004, 0.1, 0.09939057285945932, 0.09757729755661011, 0.09460482294732421, 0.0905463412215599, 0.0855017856687341, 0.07959536998847742, 0.07297252973710756, 0.0657963412215599, 0.05824350601949144, 0.0505, 0.04275649398050859, 0.03520365877844011, 0.02802747026289244, 0.021404630011522586, 0.0154982143312659, 0.010453658778440109, 0.0063951770526757944, 0.0034227024433899004, 0.001609427140540686, 0.1]
# ExponentialLR(gamma=0.8), stepped once an epoch: epochs 0..10
EXPONENTIAL_LR = [0.1, 0.08000000000000002, 0.06400000000000002, 0.051200000000000016, 0.04096000000000002, 0.03276800000000001, 0.026214400000000013, 0.02097152000000001, 0.016777216000000008, 0.013421772800000007, 0.010737418240000006]
# PolynomialLR(total_iters=10, power=2.0)
POLYNOMIAL_2 = [0.1, 0.08100000000000002, 0.06400000000000002, 0.048999999999999995, 0.036000000000000004, 0.025000000000000005, 0.016000000000000007, 0.009000000000000008, 0.004, 0.001, 0.0, 0.0, 0.0, 0.0, 0.0]
# PolynomialLR(total_iters=10, power=0.5)
POLYNOMIAL_HALF = [0.1, 0.09486832980505139, 0.08944271909999159, 0.08366600265340755, 0.07745966692414834, 0.07071067811865475, 0.06324555320336758, 0.05477225575051661, 0.04472135954999579, 0.03162277660168379, 0.0, 0.0, 0.0, 0.0, 0.0]
# keras ExponentialDecay(0.1, decay_steps=5, decay_rate=0.5)
KERAS_EXPONENTIAL = [0.10000000149011612, 0.08705505728721619, 0.07578583061695099, 0.06597539782524109, 0.057434916496276855, 0.05000000074505806, 0.04352752864360809, 0.03789291903376579, 0.032987698912620544, 0.028717458248138428, 0.02500000037252903, 0.021763764321804047, 0.018946457654237747, 0.01649385131895542, 0.014358729124069214, 0.012500000186264515, 0.010881882160902023, 0.009473228827118874, 0.00824692565947771, 0.007179364562034607, 0.0062500000931322575]
# keras ExponentialDecay(0.1, decay_steps=5, decay_rate=0.5, staircase=True)
KERAS_EXPONENTIAL_STAIR = [0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.05000000074505806, 0.05000000074505806, 0.05000000074505806, 0.05000000074505806, 0.05000000074505806, 0.02500000037252903, 0.02500000037252903, 0.02500000037252903, 0.02500000037252903, 0.02500000037252903, 0.012500000186264515, 0.012500000186264515, 0.012500000186264515, 0.012500000186264515, 0.012500000186264515, 0.0062500000931322575]
# keras PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.01, power=2.0)
KERAS_POLYNOMIAL = [0.10000000149011612, 0.08289999514818192, 0.06760000437498093, 0.054099999368190765, 0.04240000247955322, 0.032499998807907104, 0.024399999529123306, 0.01810000091791153, 0.013599999248981476, 0.010900000110268593, 0.009999999776482582, 0.009999999776482582, 0.009999999776482582, 0.009999999776482582, 0.009999999776482582]
# keras CosineDecayRestarts(0.1, first_decay_steps=5, t_mul=2.0, m_mul=0.5, alpha=0.1)
KERAS_RESTARTS = [0.10000000149011612, 0.09140576422214508, 0.06890576332807541, 0.04109422490000725, 0.01859423518180847, 0.055000003427267075, 0.05389877036213875, 0.05070288106799126, 0.04572516679763794, 0.03945288434624672, 0.032499998807907104, 0.02554711513221264, 0.01927482895553112, 0.01429712027311325, 0.011101230047643185, 0.032499998807907104, 0.03236149251461029, 0.03194938600063324, 0.031273823231458664, 0.030351439490914345, 0.029204953461885452, 0.027862584218382835, 0.026357391849160194, 0.024726441130042076, 0.023009885102510452, 0.021250000223517418, 0.019490113481879234, 0.01777355745434761, 0.01614260859787464, 0.014637413434684277, 0.013295048847794533, 0.012148560956120491, 0.011226176284253597, 0.010550614446401596, 0.010138506069779396, 0.021250000223517418, 0.021232660859823227, 0.02118074707686901, 0.021094581112265587, 0.020974693819880486]
# Hugging Face transformers 5.24.0: get_polynomial_decay_schedule_with_warmup(SGD(lr=0.1),
# num_warmup_steps=4, num_training_steps=20, lr_end=0.001, power=2.0), steps 0..24
HF_POLYNOMIAL = [0.0, 0.025, 0.05, 0.07500000000000001, 0.1, 0.08801171875000001, 0.076796875, 0.06635546875000001, 0.0566875, 0.047792968750000005, 0.039671875, 0.03232421875, 0.025750000000000002, 0.01994921875, 0.014921875000000001, 0.01066796875, 0.0071874999999999994, 0.00448046875, 0.002546875, 0.00138671875, 0.001, 0.001, 0.001, 0.001, 0.001]
# optax 0.2.8: warmup_cosine_decay_schedule(0.0, 0.1, warmup_steps=4, decay_steps=20, end_value=0.001)
OPTAX_WARMUP_COSINE = [0.0, 0.02499999850988388, 0.05000000074505806, 0.07500000298023224, 0.10000000149011612, 0.09904887527227402, 0.09623203426599503, 0.09165774285793304, 0.0855017900466919, 0.07800071686506271, 0.06944283097982407, 0.06015697121620178, 0.05050000175833702, 0.04084303230047226, 0.03155716881155968, 0.022999268025159836, 0.015498215332627296, 0.009342252276837826, 0.004767959006130695, 0.001951127196662128, 0.0010000000474974513, 0.0010000000474974513, 0.0010000000474974513, 0.0010000000474974513, 0.0010000000474974513]
# optax 0.2.8: join_schedules([constant_schedule(0.05), exponential_decay(0.1, 5, 0.5)], [6])
OPTAX_JOIN = [0.05000000074505806, 0.05000000074505806, 0.05000000074505806, 0.05000000074505806, 0.05000000074505806, 0.05000000074505806, 0.10000000149011612, 0.08705505728721619, 0.07578583061695099, 0.06597539037466049, 0.057434916496276855, 0.05000000074505806, 0.043527524918317795, 0.037892915308475494, 0.032987695187330246, 0.028717461973428726, 0.02500000037252903, 0.021763762459158897, 0.018946455791592598, 0.016493849456310272]
# keras 3.15.1: PiecewiseConstantDecay([5], [0.1, 0.01]), steps 0..9
KERAS_PIECEWISE = [0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.009999999776482582, 0.009999999776482582, 0.009999999776482582, 0.009999999776482582]
# torch 2.13.0: SequentialLR(SGD(lr=0.1), [ExponentialLR(gamma=0.9), StepLR(step_size=2, gamma=0.5)], milestones=[5])
TORCH_SEQUENTIAL = [0.1, 0.09000000000000001, 0.08100000000000002, 0.07290000000000002, 0.06561000000000002, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125]
# fmt: on


CROSS_CHECKS = {
    "torch OneCycleLR": (lambda: OneCycle(0.1, 20), ONECYCLE_COS),
    "torch OneCycleLR linear": (lambda: OneCycle(0.1, 20, shape="linear"), ONECYCLE_LIN),
    "torch OneCycleLR three_phase": (
        lambda: OneCycle(0.1, 20, three_phase=True, warmup_fraction=0.25, initial_div=10, final_div=100),
        ONECYCLE_3,
    ),
    "torch OneCycleLR epochs": (lambda: OneCycle(0.1, 5, warmup_fraction=0.4, steps_per_epoch=4), ONECYCLE_EPOCHS),
    "torch CyclicLR triangular": (lambda: Cyclic(0.001, 0.01, 4), CYCLIC_TRIANGULAR),
    "torch CyclicLR triangular2": (lambda: Cyclic(0.001, 0.01, 4, mode="triangular2"), CYCLIC_TRIANGULAR2),
    "torch CyclicLR exp_range": (lambda: Cyclic(0.001, 0.01, 4, mode="exp_range", gamma=0.9), CYCLIC_EXP_RANGE),
    "torch CosineAnnealingWarmRestarts T_mult 1": (
        lambda: CosineRestarts(0.1, 5, min_learning_rate=0.001), RESTARTS_1),
    "torch CosineAnnealingWarmRestarts T_mult 2": (
        lambda: CosineRestarts(0.1, 5, period_factor=2, min_learning_rate=0.001), RESTARTS_2),
    "torch PolynomialLR power 2": (lambda: PolynomialDecay(0.1, 10, power=2.0), POLYNOMIAL_2),
    "torch PolynomialLR power 0.5": (lambda: PolynomialDecay(0.1, 10, power=0.5), POLYNOMIAL_HALF),
    "keras ExponentialDecay": (lambda: ExponentialDecay(0.1, 0.5, 5), KERAS_EXPONENTIAL),
    "keras ExponentialDecay staircase": (
        lambda: ExponentialDecay(0.1, 0.5, 5, staircase=True), KERAS_EXPONENTIAL_STAIR),
    "keras PolynomialDecay": (
        lambda: PolynomialDecay(0.1, 10, power=2.0, min_learning_rate=0.01), KERAS_POLYNOMIAL),
    "keras CosineDecayRestarts": (
        lambda: CosineRestarts(0.1, 5, period_factor=2, peak_factor=0.5, min_learning_rate=0.01),
        KERAS_RESTARTS,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CROSS_CHECKS))
def test_same_numbers_as_torch_and_keras(name):
    make, expected = CROSS_CHECKS[name]
    # float32 against float64: rounding relative to the largest rate, not the smallest.
    np.testing.assert_allclose(vector(make(), range(len(expected))), expected, rtol=2e-6, atol=1e-8)


def test_torch_exponential_lr_stepped_each_epoch():
    s = ExponentialDecay(0.1, 0.8, staircase=True, steps_per_epoch=3)
    got = vector(s, np.arange(33))
    np.testing.assert_allclose(got[::3], EXPONENTIAL_LR, rtol=1e-6)
    np.testing.assert_array_equal(got[1::3], got[::3])  # constant within an epoch


def test_composable_inside_warmup_and_chain():
    cycle = OneCycle(0.1, 20)
    chained = Chain([Constant(0.05), cycle, CosineRestarts(0.01, 5)], [3, 23])
    steps = np.arange(40)
    expected = np.select(
        [steps < 3, steps < 23],
        [np.full(40, 0.05), vector(cycle, np.clip(steps - 3, 0, None))],
        ref_restarts(0.01, 5, 1, 1, 0.0, np.clip(steps - 23, 0, None)),
    )
    np.testing.assert_allclose(vector(chained, steps), expected, rtol=2e-6, atol=1e-9)
    warm = Warmup(Cyclic(0.001, 0.01, 4), 6)
    np.testing.assert_allclose(vector(warm, [0, 3, 6, 10]), [0.0, 0.0005, 0.001, 0.01], rtol=1e-6)


# --- properties over random valid arguments ---------------------------------------------


@st.composite
def more_schedules(draw):
    """(schedule, floor, peak) for random valid arguments of the new schedules."""
    kind = draw(st.sampled_from(["exponential", "polynomial", "restarts", "onecycle", "cyclic"]))
    a0 = draw(st.floats(1e-4, 10.0))
    spe = draw(st.one_of(st.none(), st.integers(1, 9)))
    floor = draw(st.one_of(st.just(0.0), st.floats(1e-3, 0.9))) * a0
    if kind == "exponential":
        s = ExponentialDecay(
            a0,
            draw(st.floats(0.05, 1.0)),
            draw(st.integers(1, 50)),
            staircase=draw(st.booleans()),
            min_learning_rate=floor,
            steps_per_epoch=spe,
        )
        return s, floor, a0
    if kind == "polynomial":
        s = PolynomialDecay(
            a0,
            draw(st.floats(0.5, 300)),
            power=draw(st.floats(0.1, 5.0)),
            min_learning_rate=floor,
            steps_per_epoch=spe,
        )
        return s, floor, a0
    if kind == "restarts":
        s = CosineRestarts(
            a0,
            draw(st.floats(0.5, 100)),
            period_factor=draw(st.sampled_from([1.0, 1.5, 2.0, 3.0])),
            peak_factor=draw(st.floats(0.1, 1.0)),
            min_learning_rate=floor,
            steps_per_epoch=spe,
        )
        return s, floor, a0
    if kind == "onecycle":
        total = draw(st.integers(20, 400))
        three = draw(st.booleans())
        s = OneCycle(
            a0,
            total,
            warmup_fraction=draw(st.floats(0.1, 0.45)),
            initial_div=draw(st.floats(1.0, 100.0)),
            final_div=draw(st.floats(1.0, 1e4)),
            shape=draw(st.sampled_from(["cosine", "linear"])),
            three_phase=three,
        )
        low = a0 / s.initial_div
        return s, low / s.final_div, a0
    base = floor
    s = Cyclic(
        base,
        a0,
        draw(st.floats(0.5, 50)),
        mode=draw(st.sampled_from(["triangular", "triangular2", "exp_range"])),
        gamma=draw(st.floats(0.5, 1.0)),
        steps_per_epoch=spe,
    )
    return s, base, a0  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(more_schedules(), st.lists(st.integers(0, 10**5), min_size=1, max_size=12))
def test_properties(case, random_steps):
    schedule, floor, peak = case
    steps = np.array(sorted(set(random_steps + [0, 1, 2])))
    got = vector(schedule, steps)
    assert np.all(np.isfinite(got))
    assert got.min() >= np.float32(floor) and got.max() <= np.float32(peak)
    np.testing.assert_allclose(got, values(schedule, steps), rtol=1e-6, atol=1e-7 * peak)
    clone = type(schedule).from_config(schedule.get_config())
    np.testing.assert_array_equal(vector(clone, steps), got)


# --- bad arguments ---------------------------------------------------------------------

BAD = [
    ("rate", lambda: ExponentialDecay(0.1, 0.0)),
    ("rate", lambda: ExponentialDecay(0.1, 1.5)),
    ("every", lambda: ExponentialDecay(0.1, 0.5, 0)),
    ("staircase", lambda: ExponentialDecay(0.1, 0.5, staircase="yes")),
    ("min_learning_rate", lambda: ExponentialDecay(0.1, 0.5, min_learning_rate=0.2)),
    ("power", lambda: PolynomialDecay(0.1, 10, power=0)),
    ("power", lambda: PolynomialDecay(0.1, 10, power=-1.0)),
    ("power", lambda: PolynomialDecay(0.1, 10, power=math.nan)),
    ("total", lambda: PolynomialDecay(0.1, 0)),
    ("period", lambda: CosineRestarts(0.1, 0)),
    ("period_factor", lambda: CosineRestarts(0.1, 5, period_factor=0.5)),
    ("peak_factor", lambda: CosineRestarts(0.1, 5, peak_factor=0.0)),
    ("peak_factor", lambda: CosineRestarts(0.1, 5, peak_factor=1.5)),
    ("min_learning_rate", lambda: CosineRestarts(0.1, 5, min_learning_rate=0.5)),
    ("max_learning_rate", lambda: OneCycle(-0.1, 100)),
    ("total", lambda: OneCycle(0.1, 0)),
    ("total", lambda: OneCycle(0.1, 2.5)),
    ("warmup_fraction", lambda: OneCycle(0.1, 100, warmup_fraction=0.0)),
    ("warmup_fraction", lambda: OneCycle(0.1, 100, warmup_fraction=1.0)),
    ("warmup_fraction", lambda: OneCycle(0.1, 100, warmup_fraction=0.6, three_phase=True)),
    ("warmup_fraction", lambda: OneCycle(0.1, 3, warmup_fraction=0.3)),
    ("initial_div", lambda: OneCycle(0.1, 100, initial_div=0)),
    ("final_div", lambda: OneCycle(0.1, 100, final_div=-1.0)),
    ("shape", lambda: OneCycle(0.1, 100, shape="cos")),
    ("three_phase", lambda: OneCycle(0.1, 100, three_phase=1)),
    ("max_learning_rate", lambda: Cyclic(0.01, 0.001, 4)),
    ("half_period", lambda: Cyclic(0.001, 0.01, 0)),
    ("mode", lambda: Cyclic(0.001, 0.01, 4, mode="sine")),
    ("gamma", lambda: Cyclic(0.001, 0.01, 4, mode="exp_range", gamma=1.5)),
    ("gamma", lambda: Cyclic(0.001, 0.01, 4, gamma=0.0)),
]


@pytest.mark.parametrize("name,make", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_bad_arguments_raise_value_error_naming_them(name, make):
    with pytest.raises(ValueError, match=f"`{name}`"):
        make()


def test_the_readme_s_translations_of_hugging_face_optax_and_keras_recipes():
    checks = [
        (
            Warmup(PolynomialDecay(0.1, 20 - 4, power=2.0, min_learning_rate=0.001), 4),
            HF_POLYNOMIAL,
        ),
        (Warmup(CosineDecay(0.1, 20 - 4, min_learning_rate=0.001), 4), OPTAX_WARMUP_COSINE),
        (Chain([Constant(0.05), ExponentialDecay(0.1, 0.5, 5)], [6]), OPTAX_JOIN),
        (Chain([Constant(0.1), Constant(0.01)], [5 + 1]), KERAS_PIECEWISE),
        (
            Chain([ExponentialDecay(0.1, 0.9), StepDecay(0.1, every=2, factor=0.5)], [5]),
            TORCH_SEQUENTIAL,
        ),
    ]
    for schedule, expected in checks:
        np.testing.assert_allclose(
            vector(schedule, range(len(expected))), expected, rtol=2e-6, atol=1e-9
        )
