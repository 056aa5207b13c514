"""keras_lrkit's benchmarks: what the toolkit costs in the training loop, as ratios measured side by side.

Every figure is a ratio of two medians measured in this one process, the
variants interleaved (A, B, A, B, ...), at least 5 repeats each (harness.py).
Results go to benchmarks/results/<backend>-<device>.json, and
benchmarks/results/RESULTS.md is rebuilt from every JSON there (report.py).

    python benchmarks/run.py                 # all cases
    python benchmarks/run.py --quick         # small sizes: proves the suite runs (CI)
    KERAS_BACKEND=jax python benchmarks/run.py --cases 1 2 5

Cases, one module each:
 1. case_fit.py: per-step cost of each schedule inside model.fit (MLP and
    ResNet), against a constant float rate and against Keras's own schedules;
 2. case_snapshot.py: best-weight snapshot and restore against
    keras.callbacks.EarlyStopping's get_weights / set_weights, with a plain copy
    of the same bytes as the limit;
 3. case_plotter.py: HistoryPlotter: how long the training thread is held per
    epoch, a frame against a full redraw and livelossplot's, a whole fit with
    it against without, and the final frame fit waits for;
 4. case_vectorized.py: vectorized evaluation of 1,000,000 steps against a
    Python loop over a Keras schedule;
 5. case_memory.py: extra peak memory of the snapshot against the weights' own size;
 6. case_cli.py: how soon the lrkit command answers, against python -c pass and import keras;
 7. case_reduce.py: epochs that end with a plateau reduction against epochs that do not;
 8. case_range_test.py: not a timing: each range-test rule's suggested rate, trained, against
    the best of a grid of rates, on eleven small setups (the table of docs/guides/range-test.md).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the case modules, run from anywhere

from harness import HERE, environment  # noqa: E402
from report import report, write_markdown  # noqa: E402

CASES = {
    1: "case_fit",
    2: "case_snapshot",
    3: "case_plotter",
    4: "case_vectorized",
    5: "case_memory",
    6: "case_cli",
    7: "case_reduce",
    8: "case_range_test",
}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="small sizes and few repeats: proves the suite runs"
    )
    p.add_argument("--cases", type=int, nargs="+", default=sorted(CASES), choices=sorted(CASES))
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="repeats per variant (default 5 quick, 11 full; at least 5)",
    )
    p.add_argument(
        "--output", default=str(HERE / "results"), help="folder for the JSON and RESULTS.md"
    )
    args = p.parse_args(argv)
    repeats = max(5, args.repeats or (5 if args.quick else 11))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    env = environment()
    label = f"{env['backend']}-{env['device'].lower().replace(' ', '_')}{'-quick' if args.quick else ''}"
    data = {
        "environment": env,
        "quick": args.quick,
        "repeats": repeats,
        "cases": args.cases,
        "rows": [],
    }
    previous = output / f"{label}.json"
    if previous.exists() and not args.quick:  # a re-run of some cases keeps the others' rows
        old = json.loads(previous.read_text())
        data["rows"] = [r for r in old["rows"] if r["case"] not in args.cases]
        data["cases"] = sorted(set(old.get("cases", [])) | set(args.cases))
        data["notes"] = old.get("notes", [])
    rows = data["rows"]
    for case in args.cases:
        started, first = time.perf_counter(), len(rows)
        rows += importlib.import_module(CASES[case]).run(args.quick, repeats)
        print(f"case {case} done in {time.perf_counter() - started:.0f} s", flush=True)
        for r in rows[first:]:
            r["repeats"] = 1 if case == 5 else repeats  # case 5 measures one peak
        report(rows[first:])
        rows.sort(key=lambda r: r["case"])
        # Written after every case, so a run cut short keeps what it measured.
        (output / f"{label}.json").write_text(json.dumps(data, indent=2))
        md = write_markdown(output)
    print(f"wrote {output / (label + '.json')} and {md}")
    return data


if __name__ == "__main__":
    main()
