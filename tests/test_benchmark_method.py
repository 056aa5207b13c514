"""The benchmark's method (benchmarks/harness.py and the cases): order of variants, scoring.

Timings are never asserted; these check the arithmetic that turns timings into
the results table.
"""

import collections
import importlib.util
import sys
import time
import types
from pathlib import Path

import keras
import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def run():
    """The harness and case 1's scoring, as the benchmark imports them."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        harness = importlib.import_module("harness")
        case_fit = importlib.import_module("case_fit")
    finally:
        sys.path.remove(str(BENCHMARKS))
    return types.SimpleNamespace(
        balanced_orders=harness.balanced_orders,
        interleaved=harness.interleaved,
        StepClock=harness.StepClock,
        case_1_met=case_fit.case_1_met,
        graph_ops=case_fit.graph_ops,
    )


@pytest.mark.parametrize("n", range(2, 13))
def test_balanced_orders_are_a_williams_design(run, n):
    orders = run.balanced_orders(n)
    assert all(sorted(order) == list(range(n)) for order in orders)
    follows = collections.Counter((a, b) for order in orders for a, b in zip(order, order[1:]))
    # every ordered pair of different variants is adjacent, and equally often
    assert set(follows) == {(a, b) for a in range(n) for b in range(n) if a != b}
    assert len(set(follows.values())) == 1
    assert len(set(collections.Counter(order[0] for order in orders).values())) == 1


def test_interleaved_runs_every_variant_repeats_times_in_balanced_orders(run):
    calls = []
    variants = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    medians = run.interleaved(variants, repeats=6, setup={"b": lambda: calls.append("setup b")})
    assert set(medians) == {"a", "b", "c"}
    timed = [c for c in calls if c != "setup b"]
    assert collections.Counter(timed) == {"a": 6, "b": 6, "c": 6}
    assert all(calls[i + 1] == "b" for i, c in enumerate(calls) if c == "setup b")
    rounds = [timed[i : i + 3] for i in range(0, 18, 3)]
    assert rounds == [[("abc")[i] for i in order] for order in run.balanced_orders(3)]


@pytest.mark.parametrize(
    "ratio, keras_ratio, met",
    [
        (1.01, None, True),  # no Keras equivalent: the float rate alone
        (1.03, None, False),
        (1.01, 1.00, True),  # within 2% of both
        (1.01, 0.95, False),  # near the float rate, but slower than Keras's own
        (1.30, 1.30, False),  # as slow as Keras's own is still 1.3x the float rate
    ],
)
def test_case_1_needs_both_targets(run, ratio, keras_ratio, met):
    assert run.case_1_met(ratio, keras_ratio) is met


def test_interleaved_takes_a_variants_own_clock_when_it_returns_seconds(run):
    own = iter([3.0, 1.0, 2.0])  # seconds by a clock of the variant's own
    medians = run.interleaved(
        {
            "own clock": lambda: next(own),
            "int": lambda: 7,  # not a clock: timed by the wall
            "array": lambda: [7.0],  # nor is anything else a variant returns
        },
        repeats=3,
    )
    assert medians["own clock"] == 2.0
    assert 0 <= medians["int"] < 1 and 0 <= medians["array"] < 1


def test_graph_ops_counts_what_a_schedule_adds_to_a_graph(run):
    tf = pytest.importorskip("tensorflow")
    # Cast, Mul, Sqrt: three ops; the constant 2.0 and the step's placeholder are not counted
    assert run.graph_ops(lambda step: tf.sqrt(tf.cast(step, "float32") * 2.0)) == 3


def test_step_clock_leaves_out_fits_setup_and_teardown(run):
    class SlowEnds(keras.callbacks.Callback):
        """0.25 s in on_train_begin and in on_train_end."""

        def on_train_begin(self, logs=None):
            time.sleep(0.25)

        def on_train_end(self, logs=None):
            time.sleep(0.25)

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    clock = run.StepClock()
    started = time.perf_counter()
    # Slow hooks on both sides of the clock: a clock that started at on_train_begin or
    # stopped at on_train_end would take in at least one of the four sleeps.
    model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=2, verbose=0,
              callbacks=[SlowEnds(), clock, SlowEnds()])  # fmt: skip
    wall = time.perf_counter() - started
    assert clock.seconds > 0
    assert wall - clock.seconds >= 1.0
