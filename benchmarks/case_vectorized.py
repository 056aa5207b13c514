"""Case 4: a million steps of each schedule in one vectorized call, against a Python loop."""

from __future__ import annotations

import keras
import numpy as np
from case_fit import schedule_variants
from harness import interleaved, row, sync


def run(quick: bool, repeats: int) -> list:
    n = 100_000 if quick else 1_000_000
    steps = np.arange(n, dtype="int64")
    out = []
    loop_schedule = keras.optimizers.schedules.CosineDecay(0.1, n)
    loop_n = 200 if quick else 2000
    loop = (
        interleaved({"loop": lambda: [float(loop_schedule(s)) for s in range(loop_n)]}, 5)["loop"]
        / loop_n
        * n
    )
    for name, schedule in schedule_variants(n).items():
        if name.startswith(("keras", "constant float")):
            continue
        t = interleaved(
            {name: lambda s=schedule: sync(keras.ops.convert_to_numpy(s(steps)))}, repeats
        )[name]
        ratio = loop / t
        out.append(row(4, f"{name}: {n:,} steps in one call", round(1000 * t, 2), "ms", "<= 100 ms and >= 100x a Python loop",
                       t <= 0.1 and ratio >= 100, speedup_over_loop=round(ratio, 1)))  # fmt: skip
    out[-1]["note"] = (
        f"the loop (keras CosineDecay called step by step) was timed over {loop_n} steps and scaled to {n:,}"
    )
    return out
