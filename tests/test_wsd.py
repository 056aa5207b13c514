"""WarmupStableDecay: Hugging Face's get_wsd_schedule, number for number; open-ended; every check."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_lrkit import WarmupStableDecay

from .helpers import BACKEND, compiled

# transformers 5.25.0: get_wsd_schedule(SGD(lr=0.1), num_warmup_steps=4, num_decay_steps=6,
# num_training_steps=20, warmup_type=..., decay_type=..., min_lr_ratio=...), steps 0..21.
# fmt: off
HF = {
    ("linear", "1-sqrt", 0.0): [0.0, 0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.059175171, 0.0422649731, 0.0292893219, 0.0183503419, 0.00871290708, 0.0, 0.0],
    ("cosine", "linear", 0.1): [0.01, 0.0231801948, 0.055, 0.0868198052, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.085, 0.07, 0.055, 0.04, 0.025, 0.01, 0.01],
    ("1-sqrt", "cosine", 0.05): [0.005, 0.0177275866, 0.0328248558, 0.0525, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.0936362067, 0.07625, 0.0525, 0.02875, 0.0113637933, 0.005, 0.005],
}
# fmt: on


def wsd(lr, total, warmup, decay, ws, ds, ratio, **kwargs):
    return WarmupStableDecay(lr, total, warmup=warmup, decay=decay, warmup_shape=ws,
                             decay_shape=ds, min_learning_rate=ratio * lr, **kwargs)  # fmt: skip



@pytest.mark.parametrize("shapes", sorted(HF))
def test_hugging_face_s_numbers_step_by_step_vectorized_and_compiled(shapes):
    ws, ds, ratio = shapes
    schedule = wsd(0.1, 20, 4, 6, ws, ds, ratio)
    expected = HF[shapes]
    steps = np.arange(len(expected))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(schedule(steps)), expected, rtol=2e-6,
                               atol=1e-8)  # fmt: skip
    call = compiled(schedule)
    dtype = "int32" if BACKEND == "jax" else "int64"
    one_by_one = [float(call(keras.ops.convert_to_tensor(np.array(t, dtype)))) for t in steps]
    np.testing.assert_allclose(one_by_one, expected, rtol=2e-6, atol=1e-8)


def hugging_face(lr, total, warmup, decay, ws, ds, ratio, steps):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = transformers.get_wsd_schedule(opt, num_warmup_steps=warmup, num_decay_steps=decay,
                                          num_training_steps=total, warmup_type=ws,
                                          decay_type=ds, min_lr_ratio=ratio)  # fmt: skip
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_random_configurations_against_transformers_itself():
    rng = np.random.default_rng(0)
    shapes = ["linear", "cosine", "1-sqrt"]
    for k in range(60):
        total = int(rng.integers(5, 400))
        warmup = int(rng.integers(0, total // 3 + 1))
        decay = int(rng.integers(0, total - warmup + 1))
        ws, ds = shapes[k % 3], shapes[(k // 3) % 3]
        ratio = 0.0 if k % 2 else float(rng.uniform(0.01, 0.5))
        lr = float(rng.choice([1e-3, 0.1, 3.0]))
        expected = hugging_face(lr, total, warmup, decay, ws, ds, ratio, total + 3)
        ours = wsd(lr, total, warmup, decay, ws, ds, ratio)(np.arange(total + 3))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), expected, rtol=1e-5,
                                   atol=1e-7 * lr, err_msg=str((total, warmup, decay, ws, ds)))  # fmt: skip


def test_open_ended_stays_stable_after_the_warmup():
    s = WarmupStableDecay(0.3, warmup=10, warmup_shape="1-sqrt", min_learning_rate=0.01)
    steps = np.array([0, 5, 9, 10, 11, 10**6, 2**31 - 1])  # the largest step of every counter
    p = np.minimum(steps / 10, 1)
    expected = np.where(steps < 10, 0.01 + 0.29 * (1 - np.sqrt(1 - p)), 0.3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(s(steps)), expected, rtol=2e-6)


def test_epochs_count_epochs_of_the_given_steps():
    in_epochs = WarmupStableDecay(0.1, 10, warmup=2, decay=4, steps_per_epoch=7)
    in_steps = WarmupStableDecay(0.1, 70, warmup=14, decay=28)
    steps = np.arange(75)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(in_epochs(steps)),
                               keras.ops.convert_to_numpy(in_steps(steps)), rtol=1e-6)  # fmt: skip


def test_a_keras_file_trains_on_with_the_same_schedule(tmp_path):
    schedule = WarmupStableDecay(0.1, 30, warmup=5, decay=10, decay_shape="cosine")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(schedule), "mse")
    model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=2, epochs=6, verbose=0)  # 24 steps
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    rate = float(keras.ops.convert_to_numpy(loaded.optimizer.learning_rate))  # step 24
    p = (24 - 20) / 10
    assert rate == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * p)), rel=1e-5)


@pytest.mark.parametrize(
    "name,make",
    [
        ("learning_rate", lambda: WarmupStableDecay(-0.1)),
        ("total", lambda: WarmupStableDecay(0.1, 0)),
        ("warmup", lambda: WarmupStableDecay(0.1, warmup=-1)),
        ("decay", lambda: WarmupStableDecay(0.1, decay=5)),  # a decay needs a total
        ("decay", lambda: WarmupStableDecay(0.1, 10, warmup=6, decay=5)),
        ("warmup_shape", lambda: WarmupStableDecay(0.1, warmup_shape="sqrt")),
        ("decay_shape", lambda: WarmupStableDecay(0.1, decay_shape=np.array(["linear"]))),
        ("min_learning_rate", lambda: WarmupStableDecay(0.1, min_learning_rate=0.2)),
        ("steps_per_epoch", lambda: WarmupStableDecay(0.1, steps_per_epoch=0)),
    ],
)
def test_bad_arguments_name_the_argument(name, make):
    with pytest.raises(ValueError, match=f"Argument `{name}`"):
        make()
