"""The on-device weight backup behind EarlyStoppingWithBestRestore."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_lrkit.callbacks._snapshot import WeightSnapshot

from .helpers import BACKEND, batchnorm_model


def read(model):
    return [keras.ops.convert_to_numpy(w).copy() for w in model.weights]


def perturb(model, seed):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype(keras.backend.standardize_dtype(w.dtype)))


def assert_same_bits(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_restore_gives_back_the_last_capture_bit_for_bit():
    model = batchnorm_model(features=3, outputs=2)
    snapshot = WeightSnapshot(model.weights)
    with pytest.raises(RuntimeError, match="before any capture"):
        snapshot.restore()
    perturb(model, 0)
    snapshot.capture()
    first = read(model)
    perturb(model, 1)
    snapshot.capture()  # overwrites the backup
    second = read(model)
    perturb(model, 2)
    snapshot.restore()
    assert_same_bits(read(model), second)
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))


def test_capture_after_a_restore_does_not_alias_the_model():
    # After a restore the model may hold the backup's own arrays (JAX); training
    # then replaces or donates them, and the next capture must still be a copy.
    model = batchnorm_model(features=3, outputs=2)
    snapshot = WeightSnapshot(model.weights)
    perturb(model, 0)
    snapshot.capture()
    snapshot.restore()
    perturb(model, 1)  # "training" after the restore
    snapshot.capture()
    best = read(model)
    perturb(model, 2)
    assert not np.array_equal(read(model)[0], best[0])
    snapshot.restore()
    assert_same_bits(read(model), best)  # the backup did not move with the model
    perturb(model, 3)
    snapshot.restore()  # a second restore of the same capture
    assert_same_bits(read(model), best)


@pytest.mark.skipif(BACKEND != "jax", reason="JAX-only: buffer donation")
def test_jax_capture_writes_into_the_same_buffers():
    # One backup however often the best changes: the second capture donates the
    # first one's buffers and writes in place, so the device addresses stay.
    model = batchnorm_model(features=3, outputs=2)
    snapshot = WeightSnapshot(model.weights)
    perturb(model, 0)
    snapshot.capture()
    backup = snapshot._impl._backup
    addresses = [b.unsafe_buffer_pointer() for b in backup]
    perturb(model, 1)
    snapshot.capture()
    assert all(b.is_deleted() for b in backup)  # donated, not kept alongside
    assert [b.unsafe_buffer_pointer() for b in snapshot._impl._backup] == addresses
