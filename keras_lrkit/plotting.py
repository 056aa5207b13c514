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

from ._metrics import direction_from_name

LR_KEYS = ("learning_rate", "lr")
_MISSING = ("", "NA")  # how HistoryPlotter and Keras's CSVLogger write a value that is not there
_NOT_METRICS = ("epoch",) + LR_KEYS


def new_figure(figsize: tuple[float, float] | None = None, dpi: int = 100) -> Figure:
    """A Figure with its own Agg canvas, outside pyplot."""
    figure = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def read_history_csv(path: str | os.PathLike) -> dict[str, list[float]]:
    """Read a CSVLogger or HistoryPlotter CSV into ``{column: values}``.

    Raises ValueError naming the file (and the line, where there is one) for a
    file that is not text, a missing header, a header without rows, a row of
    the wrong length, a field too long for a CSV reader, or a value that is not
    a number. A missing value becomes NaN: an empty cell (what HistoryPlotter
    writes) or ``NA`` (what Keras's CSVLogger writes for a ``val_`` column on an
    epoch without validation: no validation data, ``validation_freq > 1``).
    """
    path = os.fspath(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
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
                columns[name].append(math.nan if cell in _MISSING else float(cell))
            except ValueError:
                raise ValueError(
                    f"{path}, line {line}: column {name!r} is not a number: {cell!r}"
                ) from None
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
    title: str | None = None,
    figure: Figure | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
    tight_layout: bool = True,
) -> Figure:
    """Draw training curves: a panel per metric (train against validation) and the learning rate.

    Epochs are numbered from 0 on the x axis, as in Keras's ``epoch`` argument
    and CSVLogger's ``epoch`` column. The learning-rate panel uses a log scale
    when the rate spans more than a decade, a loss panel when the loss spans
    more than two.

    Args:
        history: a ``keras.callbacks.History``, a dict of per-epoch lists, or
            the path of a CSVLogger / HistoryPlotter CSV file.
        metrics: the metrics to draw (names without ``val_``); default all.
        show_learning_rate: add a panel for ``learning_rate`` (or ``lr``).
        best_epoch: where to mark the best epoch. Default (with ``mark_best``):
            the best ``val_loss`` (or the best validation value of the first
            metric), when there is one.
        stopped_epoch: where to mark the epoch training stopped early.
        mark_best: draw the best-epoch mark.
        title: the figure's title.
        figure: draw into this Figure (cleared first) instead of a new one.
        figsize, dpi: of a new Figure.
        tight_layout: fit the panels to the figure (the slowest step of a
            redraw; a figure drawn again with the same panels can skip it).

    Returns:
        The ``matplotlib.figure.Figure``.

    Example:

    >>> from keras_lrkit import plot_history
    >>> fig = plot_history({"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.8],
    ...                     "learning_rate": [0.1, 0.1, 0.01]})
    >>> [ax.get_title() for ax in fig.axes]
    ['loss', 'learning rate']
    """
    table = history_table(history)
    names = list(metrics) if metrics is not None else metric_names(table)
    missing = [n for n in names if n not in table and f"val_{n}" not in table]
    if missing:
        raise ValueError(
            f"Argument `metrics` names metrics not in the history: {missing}. Available: {metric_names(table)}"
        )
    lr_key = learning_rate_key(table) if show_learning_rate else None
    panels = len(names) + (lr_key is not None)
    if figure is None:
        figure = new_figure(figsize or (5.0 * max(panels, 1), 3.8), dpi)
    else:
        figure.clear()
    n = max((len(v) for v in table.values()), default=0)
    epochs = np.asarray(table.get("epoch", range(n)), dtype=float)
    if mark_best and best_epoch is None:
        best_epoch = _best_validation_epoch(table, names, epochs)
    axes = figure.subplots(1, max(panels, 1), squeeze=False)[0]
    for ax, name in zip(axes, names):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            x, y = _measured(epochs, table.get(key, ()))
            if len(y):
                ax.plot(x, y, marker="." if len(y) <= 30 else None, label=label)
        if direction_from_name(name) == "min":  # a loss spanning decades: show them all
            _log_scale_if_wide(
                ax, np.concatenate([table.get(k, []) for k in (name, f"val_{name}")]), 100
            )
        ax.set_title(name)
        _epoch_axis(ax)
        _mark(ax, best_epoch if mark_best else None, stopped_epoch)
        # A fixed corner: loc="best" scans every point, slow on long histories.
        ax.legend(
            loc="upper right" if direction_from_name(name) == "min" else "lower right",
            fontsize="small",
        )
        ax.grid(alpha=0.3)
    if lr_key is not None:
        ax = axes[len(names)]
        rates = np.asarray(table[lr_key], dtype=float)
        ax.plot(epochs[: len(rates)], rates, drawstyle="steps-post", color="tab:green")
        _log_scale_if_wide(ax, rates)
        ax.set_title("learning rate")
        _epoch_axis(ax)
        _mark(ax, best_epoch if mark_best else None, stopped_epoch)
        ax.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    if tight_layout:
        figure.tight_layout()
    return figure


def _measured(epochs: np.ndarray, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The epochs that have a value, and those values.

    A missing value (NaN: no validation that epoch, ``validation_freq > 1``) is
    left out, so the curve joins the epochs that were measured.
    """
    values = np.asarray(values, dtype=float)
    keep = ~np.isnan(values)
    return epochs[: len(values)][keep], values[keep]


def _best_validation_epoch(
    table: Mapping[str, list[float]], names: Sequence[str], epochs: np.ndarray
) -> int | None:
    for name in ["loss", *names]:
        values = np.asarray(table.get(f"val_{name}", []), dtype=float)
        if values.size and np.isfinite(values).any():
            direction = direction_from_name(name) or "min"
            pick = np.nanargmin if direction == "min" else np.nanargmax
            return int(epochs[pick(np.where(np.isfinite(values), values, np.nan))])
    return None


def _epoch_axis(ax: Any) -> None:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))


def _mark(ax: Any, best_epoch: int | None, stopped_epoch: int | None) -> None:
    marks = [
        (best_epoch, "tab:red", "--", f"best epoch {best_epoch}"),
        (stopped_epoch, "gray", ":", f"stopped at {stopped_epoch}"),
    ]
    for epoch, color, style, label in marks:
        if epoch is not None:
            ax.axvline(epoch, color=color, linestyle=style, linewidth=1, label=label)


def _log_scale_if_wide(ax: Any, values: np.ndarray, span: float = 10) -> None:
    """A log y axis when the positive values span more than ``span`` (a decade by default)."""
    values = np.asarray(values, dtype=float)
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size and positive.max() > span * positive.min():
        ax.set_yscale("log")
        # Minor ticks on a log axis cost more to draw than the curves: decades suffice.
        ax.yaxis.set_minor_locator(NullLocator())


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
        title, label: the axes' title and the curve's legend label.
        figure: draw into this Figure (its first axes, added if it has none);
            call again with the same figure to overlay several schedules.
        ax: draw into these matplotlib Axes instead (e.g. one panel of many).
        figsize, dpi: of a new Figure.
        log_scale: a log y axis; default when the rate spans more than a decade.

    The x axis is in epochs when the schedule has ``steps_per_epoch``, else steps.

    Example:

    >>> from keras_lrkit import StepDecay, plot_schedule
    >>> fig = plot_schedule(StepDecay(0.1, [30, 60, 90], steps_per_epoch=10), 1000)
    >>> fig.axes[0].get_xlabel()
    'epoch'
    """
    import keras

    if isinstance(steps, (int, np.integer)):
        if steps < 1:
            raise ValueError(f"Argument `steps` must be >= 1. Received: steps={steps!r}")
        steps = np.arange(int(steps))
    steps = np.asarray(steps, dtype="int64")
    rates = np.asarray(keras.ops.convert_to_numpy(schedule(steps)), dtype=float)
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
    if log_scale or (log_scale is None and ax.get_yscale() != "log"):
        if log_scale:
            ax.set_yscale("log")
        else:
            _log_scale_if_wide(ax, rates)
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
    suggestion: float | None = None,
    *,
    figure: Figure | None = None,
    figsize: tuple[float, float] | None = (6.0, 4.0),
    dpi: int = 100,
) -> Figure:
    """Loss against learning rate (log x axis): raw losses faint, smoothed bold, suggestion marked."""
    if figure is None:
        figure = new_figure(figsize, dpi)
    else:
        figure.clear()
    ax = figure.add_subplot(1, 1, 1)
    rates = np.asarray(learning_rates, dtype=float)
    ax.plot(rates, losses, color="tab:blue", alpha=0.3, label="loss")
    ax.plot(rates, smoothed_losses, color="tab:blue", label="smoothed loss")
    if suggestion is not None:
        y = np.interp(np.log(suggestion), np.log(rates), np.asarray(smoothed_losses, dtype=float))
        ax.plot([suggestion], [y], "o", color="tab:red", label=f"suggestion {suggestion:.2e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    finite = np.asarray(smoothed_losses, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size:  # keep the divergence from flattening the interesting part
        low, high = finite.min(), finite[0]
        ax.set_ylim(
            low - 0.1 * abs(high - low) - 1e-12, max(high, low) + 0.5 * abs(high - low) + 1e-12
        )
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure
