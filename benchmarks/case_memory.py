"""Case 5: the snapshot's extra peak memory against the weights' own size, in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from harness import BACKEND, HERE, row

MEMORY_PROBE = r"""
import json, os, sys
sys.path.insert(0, sys.argv[2])
import keras, numpy as np
import keras_lrkit as lrk
from case_snapshot import big_model, weights_bytes
from harness import BACKEND

def peak():
    if BACKEND == "jax":
        import jax
        stats = jax.devices()[0].memory_stats()
        if stats:
            return stats["peak_bytes_in_use"]
    if BACKEND == "torch":
        import torch
        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated()
    # On the host: the memory held now (VmRSS). The peak (VmHWM) would be set by
    # building the model, which briefly takes more than a backup does.
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS"))

model = big_model(sys.argv[1] == "quick")
keras.ops.convert_to_numpy(model.weights[0])
before = peak()
stop = lrk.EarlyStoppingWithBestRestore("val_loss", patience=100)
stop.set_model(model)
stop.on_train_begin()
after = []
for epoch in range(5):
    stop.on_epoch_end(epoch, {"val_loss": 1.0 / (epoch + 1)})
    after.append(peak())
print(json.dumps({"weights": weights_bytes(model), "before": before, "after": after}))
"""


def run(quick: bool, repeats: int) -> list:
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, "quick" if quick else "full", str(HERE)],
        capture_output=True, text=True, check=True, env=dict(os.environ, KERAS_BACKEND=BACKEND),
    )  # fmt: skip
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    extra = (probe["after"][-1] - probe["before"]) / probe["weights"]
    growth = (probe["after"][-1] - probe["after"][0]) / probe["weights"]
    return [
        row(
            5,
            "extra peak memory of the snapshot / weights' size",
            round(extra, 3),
            "x",
            "~1x",
            extra <= 1.25,
            weights_mb=round(probe["weights"] / 1e6, 1),
        ),  # fmt: skip
        row(
            5,
            "growth over 4 more improvements / weights' size",
            round(growth, 3),
            "x",
            "0 (no copy per improvement)",
            growth <= 0.1,
        ),
    ]
