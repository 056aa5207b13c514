"""Scale out: tf.distribute strategies, multi-worker training, Keras's DataParallel on JAX.

Each run happens in a fresh process (tests/distributed_worker.py), because the
device layout must be set before TensorFlow or JAX starts. Every run must
match the single-device run on the same data: the learning rate at every
step, the early-stopping decision and the restored weights.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .helpers import BACKEND

WORKER = Path(__file__).resolve().parent / "distributed_worker.py"
ROOT = WORKER.parent.parent


def env_for(backend, **extra):
    env = dict(os.environ, KERAS_BACKEND=backend, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def run_worker(mode, tmp_path, backend, name=None, **extra_env):
    name = name or mode
    out, result = tmp_path / f"{name}_out", tmp_path / f"{name}.json"
    subprocess.run(
        [sys.executable, str(WORKER), mode, str(out), str(result)],
        check=True, env=env_for(backend, **extra_env), timeout=300, capture_output=True,
    )  # fmt: skip
    return json.loads(result.read_text())


def assert_same_training(result, single):
    assert result["replicas"] == 2
    # Every schedule and a float rate.
    assert set(result["runs"]) == set(single["runs"]) and len(single["runs"]) == 8
    for name, run in result["runs"].items():
        assert_same_run(run, single["runs"][name])
        assert run["files"] == ["best.weights.h5", "history.csv", "history.png"], name


def assert_same_run(run, single):
    np.testing.assert_allclose(
        run["batch_learning_rates"], single["batch_learning_rates"], rtol=1e-7
    )
    np.testing.assert_allclose(run["learning_rate"], single["learning_rate"], rtol=1e-7)
    for key in ("stopped_epoch", "best_epoch", "stop_reason", "epochs_run"):
        assert run[key] == single[key], key
    # ReduceOnPlateau: the same reductions at the same epochs, every replica at the same rate.
    assert [e for e, _ in run["reductions"]] == [e for e, _ in single["reductions"]] == [1, 2]
    np.testing.assert_allclose(
        [r for _, r in run["reductions"]], [r for _, r in single["reductions"]], rtol=1e-7
    )
    assert (single["stopped_epoch"], single["best_epoch"]) == (4, 2)  # the scripted decision
    for got, want in zip(run["weights"], single["weights"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert run["restored_equals_best"] and single["restored_equals_best"]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute is TensorFlow-only")
def test_mirrored_strategy_matches_single_device(tmp_path):
    single = run_worker("single", tmp_path, "tensorflow")
    mirrored = run_worker("mirrored", tmp_path, "tensorflow")
    assert_same_training(mirrored, single)


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute is TensorFlow-only")
def test_multi_worker_mirrored_strategy_two_workers(tmp_path):
    single = run_worker("single", tmp_path, "tensorflow")
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    processes = []
    try:
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            out, result = tmp_path / f"worker{index}_out", tmp_path / f"worker{index}.json"
            processes.append(
                subprocess.Popen(
                    [sys.executable, str(WORKER), "multi_worker", str(out), str(result)],
                    env=env_for("tensorflow", TF_CONFIG=tf_config),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )  # fmt: skip
            )
        deadline = time.monotonic() + 300
        for p in processes:
            _, stderr = p.communicate(timeout=max(1, deadline - time.monotonic()))
            assert p.returncode == 0, stderr.decode()[-3000:]
    finally:
        for p in processes:  # however the test ends, no worker outlives it
            if p.poll() is None:
                p.kill()
                p.wait()
    chief, other = (json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2))
    assert chief["replicas"] == other["replicas"] == 2
    (name,) = chief["runs"]  # the first schedule only: each multi-worker fit starts a cluster
    expected = single["runs"][name]
    runs = [chief["runs"][name], other["runs"][name]]
    for run in runs:
        assert (
            (run["stopped_epoch"], run["best_epoch"])
            == (expected["stopped_epoch"], expected["best_epoch"])
            == (4, 2)
        )
        np.testing.assert_allclose(run["learning_rate"], expected["learning_rate"], rtol=1e-7)
        assert run["restored_equals_best"]
    for a, b in zip(runs[0]["weights"], runs[1]["weights"]):
        np.testing.assert_array_equal(a, b)  # every worker ends with the same restored weights
    assert runs[0]["files"] == ["best.weights.h5", "history.csv", "history.png"]
    assert runs[1]["files"] == []  # only the chief writes, and no worker leaves a temporary file


@pytest.mark.skipif(BACKEND != "jax", reason="runs in the suite's JAX pass (KERAS_BACKEND=jax)")
def test_jax_data_parallel_matches_single_device(tmp_path):
    single = run_worker("single", tmp_path, "jax")
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    parallel = run_worker("jax_data_parallel", tmp_path, "jax", **flags)
    assert_same_training(parallel, single)
