"""Case 3: HistoryPlotter: its hold on the training thread, its frames, and a whole fit with it.

- how long ``on_epoch_end`` holds the training thread (drawing in the
  background, and drawing in the training thread for comparison);
- a frame (the curves redrawn over the kept frame, then encoded) against a
  full redraw of the same figure (rebuild, draw, encode: the plotter's frame
  before frames kept their picture) and against livelossplot 0.6.1's frame,
  when it is installed (``pip install livelossplot==0.6.1``);
- a whole ``fit`` with the plotter against one without. ``fit`` draws the last
  frame itself, so the PNG is complete when it returns: that frame is timed on
  its own row, and the per-epoch cost is the ratio without it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
from harness import interleaved, row

import keras_lrkit as lrk
from keras_lrkit.plotting import HistoryFigure, figure_png, plot_history


class _Stub:
    """Just enough of a model for the plotter's on_epoch_end."""

    def __init__(self):
        self.optimizer = keras.optimizers.SGD(0.01)
        self.stop_training = False


def _logs(epoch: int) -> dict:
    return {
        "loss": 1 / (epoch + 1),
        "val_loss": 1.1 / (epoch + 1),
        "accuracy": 1 - 0.5 / (epoch + 1),
        "val_accuracy": 1 - 0.6 / (epoch + 1),
        "learning_rate": 0.1 * 0.1 ** (epoch // 30),
    }


def held_per_epoch(quick: bool, tmp: Path) -> list:
    epochs = 20 if quick else 200
    held = {}
    for background in (True, False):
        plotter = lrk.HistoryPlotter(tmp / f"bg{background}.png", background=background)
        plotter.set_model(_Stub())
        plotter.on_train_begin()
        times = []
        for epoch in range(epochs):
            logs = _logs(epoch)
            start = time.perf_counter()
            plotter.on_epoch_end(epoch, logs)
            times.append(time.perf_counter() - start)
        plotter.on_train_end()
        held[background] = statistics.median(times)
    return [
        row(3, "training thread held per epoch, background drawing", round(1000 * held[True], 3),
            "ms", "<= 2 ms", held[True] <= 0.002),
        row(3, "training thread held per epoch, drawing in the training thread",
            round(1000 * held[False], 3), "ms", note="what livelossplot-style plotting costs"),
    ]  # fmt: skip


def frames(quick: bool, repeats: int, tmp: Path) -> list:
    """One frame of a 100-epoch, three-panel history (loss, accuracy, rate), epoch after epoch."""
    n = 100
    table = {"epoch": [], **{k: [] for k in _logs(0)}}
    for epoch in range(n):
        table["epoch"].append(epoch)
        for key, value in _logs(epoch).items():
            table[key].append(value)
    kept = HistoryFigure(epochs=n)
    kept.update(table)
    kept.png()  # the frame's first drawing: once per fit
    full = plot_history(table, tight_layout=False)

    def frame_kept():
        kept.update(table)  # the curves change every epoch, the frame seldom
        kept.png()

    def frame_full():
        plot_history(table, figure=full, tight_layout=False)
        figure_png(full)

    variants = {"kept": frame_kept, "full": frame_full}
    livelossplot = _livelossplot_frame(table, tmp)
    if livelossplot is not None:
        variants["livelossplot"] = livelossplot
    medians = interleaved(variants, repeats)
    ratio = medians["kept"] / medians["full"]
    out = [
        row(3, "frame: curves over the kept frame / a full redraw (100 epochs, 3 panels)",
            round(ratio, 3), "x", "<= 0.333x", ratio <= 1 / 3,
            frame_ms=round(1000 * medians["kept"], 2), full_ms=round(1000 * medians["full"], 2)),
    ]  # fmt: skip
    if "livelossplot" in medians:
        lll = medians["kept"] / medians["livelossplot"]
        out.append(row(3, "frame / livelossplot 0.6.1's frame (100 epochs, 3 panels)", round(lll, 3),
                       "x", livelossplot_ms=round(1000 * medians["livelossplot"], 2)))  # fmt: skip
    return out


def _livelossplot_frame(table: dict, tmp: Path):
    """livelossplot 0.6.1's frame for the same history, or None when it is not installed."""
    try:
        import livelossplot
        from livelossplot.main_logger import MainLogger
        from livelossplot.outputs import MatplotlibPlot
    except ImportError:
        return None
    if livelossplot.__version__ != "0.6.1":
        return None
    logger = MainLogger()
    for epoch in table["epoch"]:
        logger.update({k: v[epoch] for k, v in table.items() if k != "epoch"})
    plot = MatplotlibPlot(figpath=str(tmp / "livelossplot.png"))
    return lambda: plot.send(logger)


def whole_fit(quick: bool, repeats: int, tmp: Path) -> list:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.01), "mse")
    model.fit(x, y, epochs=1, verbose=0)
    fit_epochs = 20 if quick else 200
    final_frames = []

    class TimedPlotter(lrk.HistoryPlotter):
        def on_train_end(self, logs=None):  # the last frame, which fit waits for
            start = time.perf_counter()
            super().on_train_end(logs)
            final_frames.append(time.perf_counter() - start)

    # The hooks' hold inside a real fit, where (on JAX) each epoch's rate is a fresh
    # device array: timed around on_epoch_end, one fit, untimed as a whole. With a float
    # rate (read from its variable), and with a schedule and no LearningRateLogger (the
    # plotter works its rate out when it draws, off the training thread).
    def held(rate_model):
        inside, hook_times = lrk.HistoryPlotter(tmp / "inside.png"), []
        hook = inside.on_epoch_end

        def timed_hook(epoch, logs=None):
            start = time.perf_counter()
            hook(epoch, logs)
            hook_times.append(time.perf_counter() - start)

        inside.on_epoch_end = timed_hook
        rate_model.fit(x, y, batch_size=32, epochs=fit_epochs, verbose=0,
                       validation_data=(x, y), callbacks=[inside])  # fmt: skip
        return statistics.median(hook_times), max(hook_times)

    held_in_fit, _ = held(model)
    scheduled = keras.models.clone_model(model)
    scheduled.compile(keras.optimizers.SGD(lrk.CosineDecay(0.01, 10_000)), "mse")
    scheduled.fit(x, y, epochs=1, verbose=0)
    held_scheduled, held_scheduled_worst = held(scheduled)

    class Empty(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    def fit(callbacks):
        return lambda: model.fit(x, y, batch_size=32, epochs=fit_epochs, verbose=0,
                                 validation_data=(x, y), callbacks=callbacks())  # fmt: skip

    medians = interleaved(
        {
            "without": fit(lambda: []),
            "an empty callback": fit(lambda: [Empty()]),
            "with HistoryPlotter": fit(lambda: [TimedPlotter(tmp / "fit.png")]),
        },
        max(3, repeats // 2) if quick else repeats,
    )
    without, final = medians["without"], statistics.median(final_frames)
    with_plotter = medians["with HistoryPlotter"]
    per_epoch = (with_plotter - final) / without
    extra = {"without_s": round(without, 3), "with_s": round(with_plotter, 3)}
    return [
        row(3, "training thread held per epoch inside model.fit", round(1000 * held_in_fit, 3),
            "ms", "<= 2 ms", held_in_fit <= 0.002),
        row(3, "the same, a schedule and no LearningRateLogger (the rate worked out when drawn)",
            round(1000 * held_scheduled, 3), "ms", "< 1 ms", held_scheduled < 0.001,
            worst_ms=round(1000 * held_scheduled_worst, 3)),
        row(3, f"fit with HistoryPlotter, less its final frame / without ({fit_epochs} epochs)",
            round(per_epoch, 4), "x", "<= 1.05x", per_epoch <= 1.05, **extra),
        row(3, "the final frame, which fit draws itself (the PNG is complete when fit returns)",
            round(1000 * final, 1), "ms",
            note="part of every fit with a HistoryPlotter; a user-visible cost, reported, not hidden"),
        row(3, f"fit with HistoryPlotter, final frame included / without ({fit_epochs} epochs)",
            round(with_plotter / without, 4), "x", **extra),
        row(3, f"fit with an empty callback / without ({fit_epochs} epochs; Keras's own cost of a callback)",
            round(medians["an empty callback"] / without, 4), "x"),
    ]  # fmt: skip


def run(quick: bool, repeats: int) -> list:
    with tempfile.TemporaryDirectory(prefix="lrkit-bench-") as scratch:  # the plotter's figures
        tmp = Path(scratch)
        return (
            held_per_epoch(quick, tmp)
            + frames(quick, repeats, tmp)
            + whole_fit(quick, repeats, tmp)
        )
