"""Pure drawing: a training history or a schedule in, a matplotlib Figure out.

Nothing here touches pyplot or any global figure state: every function builds
(or clears and reuses) its own ``matplotlib.figure.Figure`` with an Agg canvas,
so it is safe in a background thread and needs no display.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from ._metrics import check_mode, direction_from_name

LR_KEYS = ("learning_rate", "lr")
_MISSING = ("", "NA")  # how HistoryPlotter and Keras's CSVLogger write a value that is not there
_LEGEND_ROOM = 0.35  # inches above the panels for the figure's one legend
_TITLE_ROOM = 0.3  # and above the legend for a title
_NOT_METRICS = ("epoch",) + LR_KEYS


class _ShownFigure(Figure):
    """A Figure that a Jupyter notebook shows as a picture, ``%matplotlib inline`` or not.

    Figures made outside pyplot have no display hook of their own: a notebook
    would print ``<Figure size ...>``. Where matplotlib's inline backend is on,
    its own formatter takes precedence, and the figure shows once.
    """

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def new_figure(figsize: tuple[float, float] | None = None, dpi: int = 100) -> Figure:
    """A Figure with its own Agg canvas, outside pyplot, shown inline in notebooks."""
    figure = _ShownFigure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


_LARGEST_DRAWN = 1e300  # a range between +-1e308 overflows: matplotlib cannot set the axis


def read_history_csv(path: str | os.PathLike) -> dict[str, list[float]]:
    """Read a CSVLogger or HistoryPlotter CSV into ``{column: values}``.

    Raises ValueError naming the file (and the line, where there is one) for a
    file that is not text, a missing header, a header without rows, a row of
    the wrong length, a field too long for a CSV reader, or a value that is not
    a number. A missing value becomes NaN: an empty cell (what HistoryPlotter
    writes) or ``NA`` (what Keras's CSVLogger writes for a ``val_`` column on an
    epoch without validation: no validation data, ``validation_freq > 1``).
    A byte-order mark (a CSV saved by Excel) is not part of the first name; a
    column named twice, a missing or non-whole ``epoch``, and a value too large
    to draw (beyond +-1e300) are ValueErrors naming the file, line and column.
    """
    path = os.fspath(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows = []
            try:
                rows.extend(reader)
            except csv.Error as error:
                raise ValueError(f"{path}, line {reader.line_num}: {error}") from None
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not a UTF-8 text CSV file (byte {error.start} is 0x{error.object[error.start]:02x})"
        ) from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError(f"{path}, line 1: no header row (expected e.g. 'epoch,loss,val_loss')")
    header = [cell.strip() for cell in rows[0]]
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise ValueError(f"{path}, line 1: column {twice[0]!r} is named twice in the header")
    columns: dict[str, list[float]] = {name: [] for name in header}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(
                f"{path}, line {line}: {len(row)} values for {len(header)} columns {header}"
            )
        for name, cell in zip(header, row):
            cell = cell.strip()
            try:
                value = math.nan if cell in _MISSING else float(cell)
            except ValueError:
                raise ValueError(
                    f"{path}, line {line}: column {name!r} is not a number: {cell!r}"
                ) from None
            if name == "epoch" and not (math.isfinite(value) and value == int(value) >= 0):
                raise ValueError(f"{path}, line {line}: column 'epoch' holds {cell!r}, "
                                 "not a whole number >= 0")  # fmt: skip
            if abs(value) > _LARGEST_DRAWN:
                raise ValueError(f"{path}, line {line}: column {name!r} holds {cell}, beyond "
                                 f"the +-{_LARGEST_DRAWN:g} a figure can draw")  # fmt: skip
            columns[name].append(value)
    if not any(columns.values()):
        raise ValueError(f"{path}: a header row ({','.join(header)}) but no rows of values")
    return columns


def history_table(history: Any) -> dict[str, list[float]]:
    """``{key: per-epoch values}`` from a keras History, a dict of lists or a CSV path."""
    if isinstance(history, (str, os.PathLike)):
        table = read_history_csv(history)
    elif hasattr(history, "history") and isinstance(history.history, Mapping):
        table = {k: list(v) for k, v in history.history.items()}
        if getattr(history, "epoch", None) and "epoch" not in table:
            table["epoch"] = list(history.epoch)
    elif isinstance(history, Mapping):
        table = {k: list(v) for k, v in history.items()}
    else:
        raise ValueError(
            "Argument `history` must be a keras History, a dict of lists or a CSV path. "
            f"Received: history={history!r}"
        )
    return {k: [float(x) for x in v] for k, v in table.items()}


def metric_names(table: Mapping[str, Sequence[float]]) -> list[str]:
    """The metrics in a history, without ``val_`` prefixes: loss first, then alphabetical."""
    names = {k[4:] if k.startswith("val_") else k for k in table}
    names -= set(_NOT_METRICS)
    return sorted(names, key=lambda n: (n != "loss", n))


def learning_rate_key(table: Mapping[str, Any]) -> str | None:
    return next((k for k in LR_KEYS if k in table), None)


def plot_history(
    history: Any,
    *,
    metrics: Sequence[str] | None = None,
    show_learning_rate: bool = True,
    best_epoch: int | None = None,
    stopped_epoch: int | None = None,
    mark_best: bool = True,
    monitor: str | None = None,
    mode: str = "auto",
    title: str | None = None,
    figure: Figure | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
    tight_layout: bool = True,
) -> Figure:
    """Draw training curves: a panel per metric (train against validation) and the learning rate.

    Epochs are numbered from 0 on the x axis, as in Keras's ``epoch`` argument
    and CSVLogger's ``epoch`` column. A missing value (``NA`` in a CSVLogger
    file, an epoch without validation) is left out, and the curve joins the
    epochs that have one. The learning-rate panel uses a log scale when every
    rate is above 0 and they span more than a decade (a schedule that reaches 0
    stays linear), a loss panel when the losses span more than two decades.
    One legend above the panels names the curves and the marks.

    Args:
        history: a ``keras.callbacks.History``, a dict of per-epoch lists, or
            the path of a CSVLogger / HistoryPlotter CSV file.
        metrics: the metrics to draw (names without ``val_``); default all.
        show_learning_rate: add a panel for ``learning_rate`` (or ``lr``).
        best_epoch: where to mark the best epoch. Default (with ``mark_best``):
            the best value of ``monitor``.
        stopped_epoch: where to mark the epoch training stopped early.
        mark_best: draw the best-epoch mark.
        monitor: the logged quantity whose best epoch is marked when
            ``best_epoch`` is not given. Default: ``val_loss``, else the first
            metric's validation values, else its training values. The legend
            names it ("best epoch 7 (highest val_accuracy)").
        mode: "min", "max" or "auto" (by the name: losses and errors go down,
            accuracy, AUC, precision, recall and F1 go up) for ``monitor``.
        title: the figure's title.
        figure: draw into this Figure (cleared first) instead of a new one.
        figsize: the size of a new Figure, in inches.
        dpi: the resolution of a new Figure.
        tight_layout: fit the margins to the labels (otherwise fixed margins
            in inches, which a figure redrawn with the same panels keeps).

    Returns:
        The ``matplotlib.figure.Figure``.

    Examples:
        >>> from keras_lrkit import plot_history
        >>> fig = plot_history({"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.8],
        ...                     "learning_rate": [0.1, 0.1, 0.01]})
        >>> [ax.get_title() for ax in fig.axes]
        ['loss', 'learning rate']
    """
    check_mode(mode)
    table = history_table(history)
    if metrics is not None:
        missing = [n for n in metrics if n not in table and f"val_{n}" not in table]
        if missing:
            raise ValueError(
                f"Argument `metrics` names metrics not in the history: {missing}. "
                f"Available: {metric_names(table)}"
            )
    if monitor is not None and monitor not in table:
        raise ValueError(
            f"Argument `monitor` names a column not in the history: {monitor!r}. "
            f"Available: {sorted(k for k in table if k != 'epoch')}"
        )
    drawing = HistoryFigure(
        figure,
        metrics=metrics,
        show_learning_rate=show_learning_rate,
        mark_best=mark_best,
        monitor=monitor,
        mode=mode,
        title=title,
        figsize=figsize,
        dpi=dpi,
        sticky_limits=False,
    )
    best_of = best_description(monitor, mode) if best_epoch is not None and monitor else None
    drawing.update(table, best_epoch=best_epoch, stopped_epoch=stopped_epoch, best_of=best_of)
    if tight_layout:  # below the legend, which the layout does not see (it sees the title)
        height = drawing.figure.get_size_inches()[1]
        drawing.figure.tight_layout(rect=(0, 0, 1, 1 - _LEGEND_ROOM / height))
    return drawing.figure


class HistoryFigure:
    """The training-curves figure, laid out once and updated in place.

    ``update(table, ...)`` puts a history into the figure; ``png()`` renders it.
    What changes rarely (the panels, their limits and scales, the marks, the
    legend) is the *frame*; what changes every epoch is the curves. ``png()``
    draws the frame only when it changed and keeps a picture of it; otherwise it
    draws the curves alone over that picture. With ``sticky_limits`` (the live
    plotter) each axis's limits are rounded out to tick values and kept until
    the data leave them, and the x axis spans the planned ``epochs``, so the
    frame seldom changes: a frame of a three-panel, 100-epoch history costs
    about a ninth of a full redraw (``benchmarks/run.py``, case 3).

    The Figure stays an ordinary one: ``figure.savefig`` draws it all.
    """

    def __init__(
        self,
        figure: Figure | None = None,
        *,
        metrics: Sequence[str] | None = None,
        show_learning_rate: bool = True,
        mark_best: bool = True,
        monitor: str | None = None,
        mode: str = "auto",
        title: str | None = None,
        figsize: tuple[float, float] | None = None,
        dpi: int = 100,
        sticky_limits: bool = True,
        epochs: int | None = None,
    ) -> None:
        self.figure = figure
        self.metrics = None if metrics is None else list(metrics)
        self.show_learning_rate = show_learning_rate
        self.mark_best = mark_best
        self.monitor, self.mode = monitor, mode
        self.title = title
        self.figsize, self.dpi = figsize, dpi
        self.sticky_limits = sticky_limits
        self.epochs = epochs  # the fit's planned epochs: the x axis spans them
        self._layout: tuple | None = None  # the panels: (metric names, rate key)
        self._panels: list[dict[str, Any]] = []
        self._frame: tuple | None = None  # what the cached picture shows
        # Inches above the panels: the legend, and the title above it.
        self.header = _LEGEND_ROOM + (_TITLE_ROOM if title else 0.0)
        self._drawn_frame: tuple | None = None
        self._background: Any = None

    # --- putting data in ------------------------------------------------------

    def update(
        self,
        table: Mapping[str, Sequence[float]],
        *,
        best_epoch: int | None = None,
        stopped_epoch: int | None = None,
        best_of: str | None = None,
    ) -> None:
        """Put ``table`` in; ``best_of`` says what the best epoch is best at ("lowest val_loss")."""
        names = [
            n for n in (self.metrics or metric_names(table)) if n in table or f"val_{n}" in table
        ]
        lr_key = learning_rate_key(table) if self.show_learning_rate else None
        if self._layout != (tuple(names), lr_key):
            self._build(names, lr_key)
        n = max((len(v) for v in table.values()), default=0)
        epochs = np.asarray(table.get("epoch", range(n)), dtype=float)
        if self.mark_best and best_epoch is None:
            monitor = best_monitor(table, self.monitor, names)
            best_epoch = best_epoch_of(table, epochs, monitor, self.mode, names)
            best_of = monitor and best_description(monitor, self.mode)
        marks = (best_epoch if self.mark_best else None, stopped_epoch)
        frame: list[Any] = [marks, best_of]
        for panel in self._panels:
            values = []
            for key, line in panel["lines"].items():
                x, y = _measured(epochs, table.get(key, ()))
                if panel["rate"] and len(x):  # an epoch's rate holds until the next begins:
                    x, y = np.append(x, x[-1] + 1), np.append(y, y[-1])  # the last one too
                line.set_data(x, y)
                line.set_marker("." if len(y) <= 30 and not panel["rate"] else "None")
                line.set_label(panel["labels"][key] if len(y) else "_" + key)
                values.append(y)
            data = np.concatenate(values) if values else np.zeros(0)
            if panel["rate"]:
                log = _stepped_down(data)
            else:
                log = panel["loss"] and _wide(data, 100)
            scale = "log" if log else "linear"
            kept = (
                panel.get("ylim") if panel.get("scale") == scale else None
            )  # a new scale: new limits
            panel["scale"] = scale
            panel["ylim"] = self._limits(kept, data, log)
            frame.append((panel["scale"], panel["ylim"], tuple(len(v) > 0 for v in values)))
        frame.append(self._x_limits(epochs))
        self._frame = tuple(frame)
        if self._frame != self._drawn_frame:
            self._set_frame()

    def _build(self, names: list[str], lr_key: str | None) -> None:
        panels = len(names) + (lr_key is not None)
        width, height = self.figsize or (5.0 * max(panels, 1), 3.8)
        if self.figure is None:
            self.figure = new_figure((width, height), self.dpi)
        else:
            self.figure.clear()
            if self.figsize is None:
                self.figure.set_size_inches(width, height)
        self._layout = (tuple(names), lr_key)
        self._panels, self._drawn_frame, self._background = [], None, None
        width, height = self.figure.get_size_inches()
        self.figure.subplots_adjust(
            left=0.8 / width, right=1 - 0.2 / width, bottom=0.55 / height,
            top=1 - (0.4 + self.header) / height,
            wspace=0.35,
        )  # fmt: skip
        axes = self.figure.subplots(1, max(panels, 1), squeeze=False)[0]
        for ax, name in zip(axes, names):
            (train,) = ax.plot([], [], color="tab:blue")
            (val,) = ax.plot([], [], color="tab:orange")
            self._panels.append(self._panel(ax, name, name, {name: train, f"val_{name}": val}))
        if lr_key is not None:
            ax = axes[len(names)]
            (rate,) = ax.plot([], [], drawstyle="steps-post", color="tab:green")
            self._panels.append(self._panel(ax, "learning rate", "learning rate", {lr_key: rate}))
        if self.title:
            self.figure.suptitle(self.title, y=1 - 0.05 / height, va="top")

    def _panel(self, ax: Any, title: str, ylabel: str, lines: dict[str, Any]) -> dict[str, Any]:
        rate = title == "learning rate"
        ax.set_title(title, y=1.0)  # a fixed y: no search for room above the ticks
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        ax.grid(alpha=0.3)
        marks = {
            "best": ax.axvline(0, color="tab:red", linestyle="--", linewidth=1, alpha=0.7),
            "stopped": ax.axvline(0, color="gray", linestyle=":", linewidth=1),
        }
        for mark in marks.values():
            mark.set_visible(False)
            mark.set_zorder(1.5)  # under the curves: a milestone's step stays visible
        labels = {key: ("validation" if key.startswith("val_") else "train") for key in lines}
        return {
            "ax": ax, "lines": lines, "labels": labels, "marks": marks, "rate": rate,
            "loss": direction_from_name(title) == "min",
        }  # fmt: skip

    def _limits(self, current: Any, data: np.ndarray, log: bool) -> tuple[float, float] | None:
        finite = data[np.isfinite(data) & ((data > 0) if log else True)]
        if not finite.size:
            return current
        low, high = float(finite.min()), float(finite.max())
        if self.sticky_limits and current is not None and current[0] <= low and high <= current[1]:
            return current  # the data still fit: keep the frame
        if log:  # a margin of 0.15 decade, so a rate of exactly 0.1 is not drawn on the edge
            low, high = math.log10(low) - 0.15, math.log10(high) + 0.15
            if self.sticky_limits:  # rounded out to whole decades: kept longer
                low, high = math.floor(low), math.ceil(high)
            return 10**low, 10**high
        if low == high:
            pad = abs(low) * 0.05 or 0.05
            low, high = low - pad, high + pad
        if not self.sticky_limits:
            pad = 0.05 * (high - low)
            return low - pad, high + pad
        ticks = MaxNLocator(nbins=5).tick_values(low, high)
        return float(ticks[0]), float(ticks[-1])

    def _x_limits(self, epochs: np.ndarray) -> tuple[float, float]:
        if not epochs.size:
            return (0.0, 1.0)
        first, last = float(epochs.min()), float(epochs.max())
        if self.sticky_limits and self.epochs:
            last = max(last, float(self.epochs - 1))
        # A margin, so a mark or a point on the first or last epoch is drawn whole, and the
        # last epoch's rate (drawn to the epoch after it) shows its width.
        pad = 0.02 * (last - first)
        return first - max(pad, 0.5), last + 1 + max(pad, 0.25)

    def _set_frame(self) -> None:
        """Limits, scales, marks and the legend, as the frame says."""
        marks, best_of, *panels, xlim = self._frame
        for panel, (scale, ylim, _) in zip(self._panels, panels):
            ax = panel["ax"]
            if ax.get_yscale() != scale:
                ax.set_yscale(scale)
                if scale == "log":  # minor ticks cost more to draw than the curves: decades do
                    ax.yaxis.set_minor_locator(NullLocator())
            if ylim is not None:
                ax.set_ylim(*ylim)
            ax.set_xlim(*xlim)
            for (name, mark), epoch in zip(panel["marks"].items(), marks):
                mark.set_visible(epoch is not None)
                if epoch is not None:
                    mark.set_xdata([epoch, epoch])
                    label = f"best epoch {epoch}" if name == "best" else f"stopped at {epoch}"
                    if name == "best" and best_of:
                        label += f" ({best_of})"
                    mark.set_label(label)
        handles = {}
        for panel in self._panels:
            for artist in [*panel["lines"].values(), *panel["marks"].values()]:
                label = artist.get_label()
                if artist.get_visible() and not label.startswith("_") and label not in handles:
                    if not (panel["rate"] and artist in panel["lines"].values()):
                        handles[label] = artist
        for legend in list(self.figure.legends):
            legend.remove()
        if handles:
            self.figure.legend(
                list(handles.values()), list(handles), loc="upper center",
                ncol=len(handles), fontsize="small", frameon=False,
                bbox_to_anchor=(0.5, 1 - (self.header - _LEGEND_ROOM + 0.05) / self.figure.get_size_inches()[1]),
            )  # fmt: skip

    # --- rendering ---------------------------------------------------------------

    def png(self) -> bytes:
        """The figure as PNG bytes: the frame drawn only when it changed, then the curves."""
        canvas = self.figure.canvas
        curves = [(p["ax"], line) for p in self._panels for line in p["lines"].values()]
        if self._frame != self._drawn_frame or self._background is None:
            for _, line in curves:
                line.set_visible(False)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            for _, line in curves:
                line.set_visible(True)
            self._drawn_frame = self._frame
        else:
            canvas.restore_region(self._background)
        for ax, line in curves:
            ax.draw_artist(line)
        return _encode_png(canvas)


def _encode_png(canvas: Any) -> bytes:
    """The canvas's pixels as a PNG: zlib level 1 (a fifth of savefig's time, ~10% larger)."""
    import io

    from PIL import Image

    width, height = canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def _wide(values: np.ndarray, span: float) -> bool:
    """Whether every value is above 0 and they span more than ``span`` (a log axis shows them)."""
    values = values[np.isfinite(values)]
    return bool(values.size) and values.min() > 0 and values.max() > span * values.min()


def _stepped_down(rates: np.ndarray) -> bool:
    """Whether learning rates want a log axis: all above 0, over a decade, and half of them
    a decade or more below the top.

    A staircase or an exponential decay spends its time at low rates, which a
    linear axis flattens; a cosine, a linear decay or a restart only passes
    through them on its way to 0, and on a log axis that plunge looks like a
    crash.
    """
    rates = rates[np.isfinite(rates)]
    if not _wide(rates, 10):
        return False
    return bool(np.mean(rates <= rates.max() / 10 * (1 + 1e-6)) >= 0.5)


def _measured(epochs: np.ndarray, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The epochs that have a value, and those values.

    A missing value (NaN: no validation that epoch, ``validation_freq > 1``) is
    left out, so the curve joins the epochs that were measured.
    """
    values = np.asarray(values, dtype=float)
    keep = ~np.isnan(values)
    return epochs[: len(values)][keep], values[keep]


def best_monitor(
    table: Mapping[str, Sequence[float]], monitor: str | None = None, names: Sequence[str] = ()
) -> str | None:
    """``monitor``, or by default ``val_loss``, else the first metric's validation values, else
    its training values: the first of them the table holds a number for."""
    if monitor is not None:
        return monitor
    candidates = ["val_loss", *(f"val_{n}" for n in names), *names]
    return next((k for k in candidates if _has_finite(table.get(k))), None)


def best_description(monitor: str, mode: str = "auto") -> str:
    """What the best epoch is best at: "lowest val_loss", "highest val_accuracy"."""
    direction = mode if mode != "auto" else (direction_from_name(monitor) or "min")
    return f"{'lowest' if direction == 'min' else 'highest'} {monitor}"


def best_epoch_of(
    table: Mapping[str, Sequence[float]],
    epochs: np.ndarray,
    monitor: str | None = None,
    mode: str = "auto",
    names: Sequence[str] = (),
) -> int | None:
    """The epoch of the best value of ``monitor`` (see ``plot_history``), or None."""
    monitor = best_monitor(table, monitor, names)
    if monitor is None:
        return None
    values = np.asarray(table.get(monitor, []), dtype=float)
    if not _has_finite(values):
        return None
    direction = mode if mode != "auto" else (direction_from_name(monitor) or "min")
    pick = np.nanargmin if direction == "min" else np.nanargmax
    return int(epochs[pick(np.where(np.isfinite(values), values, np.nan))])


def _has_finite(values: Any) -> bool:
    return values is not None and bool(np.isfinite(np.asarray(values, dtype=float)).any())


def plot_schedule(
    schedule: Any,
    steps: int | Sequence[int] | np.ndarray,
    *,
    title: str | None = None,
    label: str | None = None,
    figure: Figure | None = None,
    ax: Any = None,
    figsize: tuple[float, float] | None = (6.0, 3.8),
    dpi: int = 100,
    log_scale: bool | None = None,
) -> Figure:
    """Draw a schedule's curve from one vectorized evaluation.

    Args:
        schedule: any ``LearningRateSchedule`` (or a callable of the step).
        steps: how many optimizer steps to draw (an int), or the steps themselves.
        title: the axes' title.
        label: the curve's legend label.
        figure: draw into this Figure (its first axes, added if it has none);
            call again with the same figure to overlay several schedules.
        ax: draw into these matplotlib Axes instead (e.g. one panel of many).
        figsize: the size of a new Figure, in inches.
        dpi: the resolution of a new Figure.
        log_scale: a log y axis; by default when every rate is above 0, they
            span more than a decade and half of them lie more than a
            decade below the top (a staircase, an exponential decay; not a
            cosine on its way to 0, which would look like a crash).

    The x axis is in epochs when the schedule has ``steps_per_epoch``, else steps.

    Examples:
        >>> from keras_lrkit import StepDecay, plot_schedule
        >>> fig = plot_schedule(StepDecay(0.1, [30, 60, 90], steps_per_epoch=10), 1000)
        >>> fig.axes[0].get_xlabel()
        'epoch'
    """
    import keras

    from .schedules._base import evaluate

    if isinstance(steps, (int, np.integer)):
        if steps < 1:
            raise ValueError(f"Argument `steps` must be >= 1. Received: steps={steps!r}")
        steps = np.arange(int(steps))
    steps = np.asarray(steps, dtype="int64")
    rates = np.asarray(keras.ops.convert_to_numpy(evaluate(schedule, steps)), dtype=float)
    rates = np.broadcast_to(rates, steps.shape)
    spe = getattr(schedule, "steps_per_epoch", None)
    x = steps / spe if spe else steps
    if ax is not None:
        figure = ax.figure
    else:
        figure = figure if figure is not None else new_figure(figsize, dpi)
        ax = figure.axes[0] if figure.axes else figure.add_subplot(1, 1, 1)
    ax.plot(x, rates, label=label or type(schedule).__name__)
    ax.set_xlabel("epoch" if spe else "step")
    ax.set_ylabel("learning rate")
    if log_scale or (log_scale is None and ax.get_yscale() != "log" and _stepped_down(rates)):
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if label:
        ax.legend(loc="best", fontsize="small")
    return figure


def fixed_margins(figure: Figure) -> None:
    """Margins in inches that fit titles and tick labels, without tight_layout's extra render."""
    width, height = figure.get_size_inches()
    figure.subplots_adjust(
        left=0.75 / width,
        right=1 - 0.2 / width,
        bottom=0.55 / height,
        top=1 - 0.4 / height,
        wspace=0.3,
    )


def figure_png(figure: Figure, dpi: int | None = None) -> bytes:
    """The figure as PNG bytes (rendered once; written or displayed by the caller)."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def plot_lr_range_test(
    learning_rates: Sequence[float],
    losses: Sequence[float],
    smoothed_losses: Sequence[float],
    suggestion: float | Mapping[str, float | None] | None = None,
    *,
    default: str | None = None,
    figure: Figure | None = None,
    figsize: tuple[float, float] | None = (6.0, 4.0),
    dpi: int = 100,
) -> Figure:
    """Loss against learning rate (log x axis): raw losses faint, smoothed bold, suggestions marked.

    ``suggestion`` is one rate, or a mapping of rule name to rate (None: the
    rule could not tell), each marked on the smoothed curve with its own
    marker and named in the legend; the ``default`` rule's name says so.

    The y range is the smoothed curve's useful span: from a little below the
    lowest loss (raw or smoothed) to a little above where the smoothed loss
    began, so the divergence at the end does not flatten the rest. Raw losses
    outside it are drawn at its edge, never off the plot.
    """
    if figure is None:
        figure = new_figure(figsize, dpi)
    else:
        figure.clear()
    ax = figure.add_subplot(1, 1, 1)
    rates = np.asarray(learning_rates, dtype=float)
    raw = np.asarray(losses, dtype=float)
    smoothed = np.asarray(smoothed_losses, dtype=float)
    finite = smoothed[np.isfinite(smoothed)]
    if finite.size:
        lows = np.concatenate([finite, raw[np.isfinite(raw)]])
        low, high = lows.min(), max(finite[0], finite.min())
        span = max(high - low, 1e-12)
        low, high = low - 0.05 * span, high + 0.25 * span
        ax.set_ylim(low, high)
        raw = np.clip(np.where(np.isfinite(raw), raw, high), low, high)  # kept inside the plot
    ax.plot(rates, raw, color="tab:blue", alpha=0.3, label="loss")
    ax.plot(rates, smoothed, color="tab:blue", label="smoothed loss")
    marks = suggestion if isinstance(suggestion, Mapping) else {"suggestion": suggestion}
    styles = iter([("o", "tab:red"), ("s", "tab:green"), ("^", "tab:purple"), ("D", "tab:orange")])
    known = np.isfinite(smoothed)
    for name, rate in marks.items():
        marker, color = next(styles, ("x", "black"))
        if rate is None or not known.any():
            continue
        y = np.interp(np.log(rate), np.log(rates[known]), smoothed[known])
        label = f"{name}{' (default)' if name == default else ''}: {rate:.3g}"
        ax.plot([rate], [y], marker, color=color, markersize=8, label=label, zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure
