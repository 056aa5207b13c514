"""The results: one JSON per backend and device, and RESULTS.md rebuilt from all of them."""

from __future__ import annotations

import json
from pathlib import Path


def write_markdown(results_dir: Path) -> Path:
    lines = [
        "# keras_lrkit benchmark results",
        "",
        "Written by `python benchmarks/run.py`; every figure is a ratio (or time) measured side by side in one process, the median of interleaved repeats. A missed target is shown as missed.",
        "",
    ]
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        env = data["environment"]
        versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        lines += [f"## {env['backend']} on {env['device']} ({env['machine']}){' — quick mode' if data['quick'] else ''}", "",
                  f"{env['date']}; {versions}; {repeats_per_case(data)}.", "",
                  "| case | measure | value | target | met |", "|---|---|---|---|---|"]  # fmt: skip
        for r in data["rows"]:
            met = "" if r["met"] is None else ("yes" if r["met"] else "**missed**")
            lines.append(
                f"| {r['case']} | {r['name']} | {r['value']} {r['unit']} | {r['target'] or ''} | {met} |"
            )
        lines.append("")
        lines += [f"- {note}" for note in data.get("notes", [])]
        lines.append("")
    out = results_dir / "RESULTS.md"
    out.write_text("\n".join(lines))
    return out


def repeats_per_case(data: dict) -> str:
    """'11 repeats', or 'repeats: 11 (cases 1, 2, 4), 21 (case 3)' after re-runs that differ."""
    cases: dict[int, set] = {}
    for r in data["rows"]:
        if r["case"] != 5:
            cases.setdefault(r["repeats"], set()).add(r["case"])
    if len(cases) <= 1:
        return f"{next(iter(cases), data['repeats'])} repeats"
    parts = [
        f"{n} (case{'s' if len(c) > 1 else ''} {', '.join(map(str, sorted(c)))})"
        for n, c in sorted(cases.items())
    ]
    return "repeats: " + ", ".join(parts)


def report(rows: list) -> None:
    for r in rows:
        met = "" if r["met"] is None else ("met" if r["met"] else "MISSED")
        target = f"(target {r['target']})" if r["target"] else ""
        print(f"[{r['case']}] {r['name']}: {r['value']} {r['unit']} {target} {met}", flush=True)
