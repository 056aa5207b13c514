"""How far identical models' step times spread on this machine: case 1's noise floor, examined.

Builds ``--models`` identical ResNet-20s with the same float rate and times a
20-step fit of each in the benchmark's balanced order, ``--passes`` times in
one process. If the spread came from the models themselves, the same models
would be slow in every pass.

By default each fit is timed as case 1 times it, by ``harness.StepClock`` (the
steps only). ``--whole-fit`` times the whole call instead: on TensorFlow that
adds the tf.data iterator's teardown, which waits for its autotuning thread
and added 0 or 0.25-1 s at random to a 2 s fit here.

    python benchmarks/aa_spread.py                            # TensorFlow, 4 models, 2 passes
    python benchmarks/aa_spread.py --whole-fit                # with fit's setup and teardown
    TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/aa_spread.py    # without oneDNN
    python benchmarks/aa_spread.py --intra-op-threads 1 --inter-op-threads 1
"""

from __future__ import annotations

import argparse
import functools

import harness  # the same order and medians as case 1
import keras
import numpy as np
from case_fit import resnet


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=4)
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument("--inter-op-threads", type=int, default=None)
    p.add_argument("--intra-op-threads", type=int, default=None)
    p.add_argument("--whole-fit", action="store_true", help="time the whole fit call")
    args = p.parse_args()
    if harness.BACKEND == "tensorflow":
        import tensorflow as tf

        if args.inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
        if args.intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    steps, batch = 20, 32
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * batch, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=(steps * batch,))
    models = {}
    for i in range(args.models):
        keras.utils.set_random_seed(0)
        model = resnet(quick=False)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        models[f"model {i}"] = model

    def fit(model):
        seconds = harness.timed_fit(model, x, y, batch)  # the steps, as case 1 times them
        return None if args.whole_fit else seconds  # None: interleaved takes the wall time

    variants = {name: functools.partial(fit, m) for name, m in models.items()}
    for n in range(args.passes):
        medians = harness.interleaved(variants, args.repeats)
        steps_ms = ", ".join(f"{name} {1000 * s / steps:.1f}" for name, s in medians.items())
        print(f"pass {n + 1}, ms per step: {steps_ms}", flush=True)


if __name__ == "__main__":
    main()
