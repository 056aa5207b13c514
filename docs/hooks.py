"""MkDocs hooks: a reference page for every public name, and each schedule's figure drawn at build time.

Every name in ``keras_lrkit.__all__`` gets ``reference/<name>.md``: its
signature and docstring (formula, arguments, a runnable example) rendered by
mkdocstrings from the code. A schedule's page also shows its curve, drawn by
``plot_schedule`` from the expression printed under it while the site is built,
so the figure can never disagree with the code. ``reference/index.md`` lists
every name with the first line of its docstring.
"""

from __future__ import annotations

import inspect
import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# What each schedule's figure draws: (the expression, evaluated with keras_lrkit's names, epochs).
FIGURES = {
    "StepDecay": ("StepDecay(0.1, [30, 60, 90], steps_per_epoch=10)", 100),
    "CosineDecay": ("CosineDecay(0.1, 100, steps_per_epoch=10)", 100),
    "LinearDecay": ("LinearDecay(0.1, 100, steps_per_epoch=10)", 100),
    "InverseSqrtDecay": ("InverseSqrtDecay(0.1, timescale=5, steps_per_epoch=10)", 100),
    "Constant": ("Constant(0.1, steps_per_epoch=10)", 100),
    "Warmup": ("Warmup(CosineDecay(0.1, 95, steps_per_epoch=10), 5, steps_per_epoch=10)", 100),
    "Chain": (
        "Chain([Constant(0.1, steps_per_epoch=10), LinearDecay(0.1, 50, steps_per_epoch=10)],"
        " [50], steps_per_epoch=10)",
        100,
    ),
    "ExponentialDecay": ("ExponentialDecay(0.1, 0.95, steps_per_epoch=10)", 100),
    "PolynomialDecay": ("PolynomialDecay(0.1, 100, power=2.0, steps_per_epoch=10)", 100),
    "CosineRestarts": (
        "CosineRestarts(0.1, 10, period_factor=2.0, peak_factor=0.7, steps_per_epoch=10)",
        150,
    ),
    "OneCycle": ("OneCycle(0.1, 100, steps_per_epoch=10)", 100),
    "Cyclic": ("Cyclic(0.01, 0.1, 10, mode='triangular2', steps_per_epoch=10)", 100),
    "WarmupStableDecay": (
        "WarmupStableDecay(0.1, 100, warmup=5, decay=20, steps_per_epoch=10)",
        100,
    ),
    "Cooldown": (
        "Cooldown(WarmupStableDecay(0.1, warmup=5, steps_per_epoch=10), 200, start=600)",
        100,
    ),
    "Reduced": (
        "Reduced(CosineDecay(0.1, 100, steps_per_epoch=10), [(300, 0.5), (600, 0.5)])",
        100,
    ),
}


def public_names() -> list[str]:
    import keras_lrkit

    return list(keras_lrkit.__all__)


def reference_page(name: str) -> str:
    """The Markdown of one name's page."""
    lines = [f"::: keras_lrkit.{name}", ""]
    if name in FIGURES:
        expression, epochs = FIGURES[name]
        lines += [
            "## The curve",
            "",
            f"![{name}]({name}.png)",
            "",
            f"`{expression}` over {epochs * 10} steps (10 an epoch), drawn by `plot_schedule`"
            " from the code when this site was built.",
            "",
        ]
    return "\n".join(lines)


def reference_index() -> str:
    import keras_lrkit

    lines = ["# Reference", "", "Every public name of `keras_lrkit`, one page each.", "",
             "| name | what it is |", "|---|---|"]  # fmt: skip
    for name in public_names():
        doc = inspect.getdoc(getattr(keras_lrkit, name)) or ""
        lines.append(f"| [`{name}`]({name}.md) | {doc.splitlines()[0] if doc else ''} |")
    return "\n".join(lines) + "\n"


def figure_png(name: str) -> bytes:
    import keras_lrkit
    from keras_lrkit.plotting import figure_png as png

    expression, epochs = FIGURES[name]
    schedule = eval(expression, {n: getattr(keras_lrkit, n) for n in keras_lrkit.__all__})
    figure = keras_lrkit.plot_schedule(schedule, epochs * 10, title=expression.split("(")[0])
    return png(figure)


def on_config(config):
    for section in config.nav:
        if isinstance(section, dict) and "Reference" in section:
            section["Reference"] = [{"Overview": "reference/index.md"}] + [
                {name: f"reference/{name}.md"} for name in public_names()
            ]
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    files.append(File.generated(config, "reference/index.md", content=reference_index()))
    for name in public_names():
        files.append(File.generated(config, f"reference/{name}.md", content=reference_page(name)))
        if name in FIGURES:
            files.append(File.generated(config, f"reference/{name}.png", content=figure_png(name)))
    return files


TABLE_MARKER = "<!-- the table of benchmark case 8, written here by docs/hooks.py from its results -->"


RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "benchmarks", "results", "tensorflow-cpu.json")  # fmt: skip


def range_test_table(results_path: str = RESULTS) -> str:
    """Benchmark case 8's rows as a Markdown table: each rule's rate and its score per setup."""
    import json

    with open(results_path) as f:
        rows = [r for r in json.load(f)["rows"] if r["case"] == 8]
    if not rows:
        raise ValueError(f"{results_path} holds no rows of case 8: run benchmarks/run.py --cases 8")
    setups: dict = {}
    for r in rows:
        setup, what = r["name"].rsplit(": ", 1) if "smoothed" not in r["name"] else (
            r["name"].split(": smoothed")[0], "strays")  # fmt: skip
        setups.setdefault(setup, {})[what] = r
    rules = [name for name in next(iter(setups.values())) if name != "strays"]

    def cell(r):
        if r["rate"] is None:
            return "no suggestion"
        return f"{r['rate']:.2g}: **{r['value']:.2f}x**" if r.get("target") else (
            f"{r['rate']:.2g}: {r['value']:.2f}x")  # fmt: skip

    head = ["setup"] + [f"`{rule}`" for rule in rules] + ["grid's best",
                                                        "strays, px: curve / moving average / noise"]
    # strays: keras_lrkit's curve / fastai's moving average / noise alone around an exact curve
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for setup, found in setups.items():
        first = found[rules[0]]
        strays = found["strays"]
        lines.append("| " + " | ".join(
            [setup] + [cell(found[rule]) for rule in rules]
            + [f"{first['grid_best_rate']:.2g}: {first['grid_best']:.1%}",
               "-" if strays["value"] is None or strays["value"] != strays["value"] else
               f"{strays['value']:.0f} / {strays['moving_average_px']:.0f} / {strays['noise_px']:.0f}"])
            + " |")  # fmt: skip
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files):
    if TABLE_MARKER in markdown:
        markdown = markdown.replace(TABLE_MARKER, range_test_table())
    return markdown
