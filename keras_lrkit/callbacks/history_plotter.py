"""HistoryPlotter: live training curves, drawn off the training thread."""

from __future__ import annotations

import atexit
import csv
import math
import os
import re
import string
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from .._io import atomic_write, is_chief
from .._keras_private import learning_rate_object
from .._metrics import check_mode
from .._validate import check, constructor_arguments, fail, is_int, is_real
from .._warnings import warn
from ..plotting import HistoryFigure, best_description, learning_rate_key
from ..schedules._base import LearningRateSchedule, check_between, evaluate, is_live
from ._fit import base_optimizer, current_record, match_schedules_to_fit, run_number
from ._monitor import logged_number
from ._state import StatefulCallback, StateReader
from .early_stopping import EarlyStoppingWithBestRestore
from .lr_logger import iterations, last_learning_rate


def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (Jupyter, JupyterLab, VS Code, Colab)."""
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None and hasattr(shell, "get_ipython") else None
    if ip is None:
        return False
    # Colab's shell and others subclass ipykernel's ZMQInteractiveShell.
    return any(c.__name__ == "ZMQInteractiveShell" for c in type(ip).__mro__)


_now = time.monotonic  # the drawer's clock (tests replace it)


class _Drawer:
    """Draws the newest request in a background thread that lives only while there is work.

    ``submit`` never waits for matplotlib: it drops the request in a one-slot
    mailbox (replacing any request still waiting) and starts a drawing thread
    when none runs. Drawing holds Python's GIL, so the thread keeps to a share
    of the time: after a draw that took ``d`` seconds it rests ``rest * d``
    before the next one, and before the first it rests ``rest * first_draw``
    (a guess at ``d``). Drawing then takes at most about 1 / (1 + rest) of the
    time, from the first epoch on, however short the epochs.

    The thread ends as soon as no request is waiting, so none outlives its
    work, even when ``fit`` raises and never reaches ``on_train_end``.
    ``close`` drops the waiting request and waits for a draw in progress;
    ``flush`` draws the waiting request at once and waits for it.
    """

    def __init__(self, draw: Any, rest: float = 39.0, first_draw: float = 0.1) -> None:
        self._draw = draw
        self._rest = rest
        self._pending: Any = None
        self._ready_at = _now() + rest * first_draw  # the next draw
        self._hurry = False  # draw what waits without resting (flush)
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, request: Any) -> None:
        with self._wake:
            self._pending = request
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lrkit-plotter", daemon=True)
                self._thread.start()
                _running.add(self)
            # A resting thread wakes up by itself; waking it at every epoch would
            # cost a GIL hand-over each time.

    def close(self, timeout: float | None = None) -> bool:
        """Drop the waiting request and wait for a draw in progress; True once none runs."""
        with self._wake:
            self._pending = None
            self._wake.notify()
        return self._join(timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Draw the waiting request now and wait for it; True once no thread runs."""
        with self._wake:
            self._hurry = True
            self._wake.notify()
        return self._join(timeout)

    def _join(self, timeout: float | None) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def _next_request(self) -> Any:
        with self._wake:
            while True:
                if self._pending is None:
                    self._thread = None  # under the lock: the next submit starts a new thread
                    return None
                now = _now()
                if self._hurry or now >= self._ready_at:
                    request, self._pending = self._pending, None
                    return request
                self._wake.wait(self._ready_at - now)

    def _run(self) -> None:
        while (request := self._next_request()) is not None:
            started = _now()
            self._draw(request)
            self._ready_at = _now() + self._rest * (_now() - started)


_running: weakref.WeakSet[_Drawer] = weakref.WeakSet()
# Held while a plotter works out the rates of its table (HistoryPlotter._rate_rows). One lock
# for every plotter (a lock on each would keep a plotter from being deep-copied, as
# KerasTuner copies the callbacks of each trial); it is held for one evaluation at a time.
_RATING = threading.Lock()


@atexit.register
def _finish_drawing_at_exit() -> None:
    # A fit that raised may leave a figure waiting to be drawn: draw it, do not lose it.
    for drawer in list(_running):
        drawer.flush(timeout=60)


# Agg cannot render an image wider or taller than this many pixels.
_MAX_PIXELS = 2**16
_PATH_FIELDS = ("run", "model", "time")


def _check_template(name: str, value: Any) -> None:
    """A path in which {run}, {model} and {time} may appear (``{run:03d}`` too), and nothing else.

    Parsed, never formatted here: an attribute (``{model.__init__}``), an index,
    a conversion or a width of more than two digits is a ValueError naming ``name``.
    """
    check(name, value, value is None or isinstance(value, (str, os.PathLike)), "a path or None")
    if value is None:
        return
    requirement = "a path whose only {fields} are {run}, {model} and {time} (or {run:03d})"
    try:
        fields = list(string.Formatter().parse(os.fspath(value)))
    except ValueError as error:
        raise fail(name, requirement, value) from error
    for _, field, spec, conversion in fields:
        if field is None:
            continue
        ok = field in _PATH_FIELDS and conversion is None
        ok = ok and (not spec or re.fullmatch(r"0?[1-9]\d?d?", spec) is not None and field == "run")
        if not ok:
            raise fail(name, requirement, value)


@keras.saving.register_keras_serializable(package="keras_lrkit")
class HistoryPlotter(StatefulCallback):
    """Redraw the training curves to a PNG while training runs, without slowing it.

    Every ``every`` epochs (and at the end) it draws one figure: a panel per
    metric in the logs (train against ``val_``), a learning-rate panel (log
    scale where every rate is above 0 and they span more than a decade), the
    best epoch and the epoch training stopped, with one legend above the
    panels. The best epoch comes from an ``EarlyStoppingWithBestRestore`` in
    the same fit; without one, it is the best value of ``monitor`` (default
    ``val_loss``).

    While training runs, drawing happens in a background thread with its own
    Figure (never pyplot), the newest request replacing one still waiting, so
    the training thread only records the epoch's row. Drawing holds Python's
    GIL, so the thread keeps to ``drawing_budget`` of the time (a fortieth by
    default): the first figure comes after a few seconds of training, then as
    often as that share allows. A frame redraws only the curves over a kept
    picture of the rest (axes, labels, legend), about a ninth of a full redraw.
    When ``fit`` returns, the PNG and the CSV are complete and show every
    epoch, as Keras's CSVLogger and ModelCheckpoint files are: ``fit`` draws
    the last figure itself (one frame, part of fit's time). In a Jupyter
    notebook (Colab too) the figure also shows and updates inline, sent again
    only when it changed.

    Files are written atomically (a temporary name, then a rename), into
    folders made as needed. A file that cannot be written gives one warning
    and training goes on. Under distributed training only the chief draws and
    writes. ``path`` and ``csv_path`` may hold ``{run}`` (0, 1, 2, ... for each
    fit in this process: KerasTuner's trials, repeated fits), ``{model}`` (the
    model's name) and ``{time}`` (when the fit started, ``20261128-201500``);
    ``current_path`` and ``current_csv_path`` hold the files of the latest fit.

    Args:
        path: the PNG to write (None: no PNG, e.g. notebook only).
        metrics: the metrics to draw (names without ``val_``); default all. A
            name that the logs never hold gets one warning naming the keys there.
        every: redraw every this many epochs (the last epoch is always drawn).
        show_learning_rate: add the learning-rate panel. When no callback put
            ``learning_rate`` into the logs, it is read from the optimizer.
        mark_best: mark the best and the stop epochs.
        monitor: without early stopping in the fit, the logged quantity whose
            best epoch is marked; default ``val_loss`` (else the first metric).
        mode: "min", "max" or "auto" (by the name) for ``monitor``.
        csv_path: also write the history table here (epoch, every log key,
            learning_rate), readable by ``plot_history`` and ``lrkit plot``.
        background: draw in a background thread (default); False draws in the
            training thread.
        drawing_budget: the largest share of the time the background drawing
            may take, in (0, 1]; default 1/40. Higher: more frames.
        figsize: (width, height) in inches; default 5 inches a panel by 3.8.
        dpi: of the figure, 1 to 1000.
        name: what ``keras_lrkit.BackupAndRestore`` knows this callback by
            (default: its class, ``path`` and ``csv_path``). A resumed plotter
            takes back the table of the epochs before the backup and writes to
            the paths it was constructed with.

    After ``fit``, ``history`` holds the recorded table ``{key: values}``.

    Examples:
        >>> from keras_lrkit import HistoryPlotter
        >>> plotter = HistoryPlotter("runs/{run}/history.png", csv_path="runs/{run}/history.csv")
        >>> plotter.every
        1
    """

    def __init__(
        self,
        path: str | os.PathLike | None = "training_history.png",
        *,
        metrics: Sequence[str] | None = None,
        every: int = 1,
        show_learning_rate: bool = True,
        mark_best: bool = True,
        monitor: str | None = None,
        mode: str = "auto",
        csv_path: str | os.PathLike | None = None,
        background: bool = True,
        drawing_budget: float = 1 / 40,
        figsize: tuple[float, float] | None = None,
        dpi: int = 100,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self._init_name(name)
        _check_template("path", path)
        _check_template("csv_path", csv_path)
        check("every", every, is_int(every) and every >= 1, "an int >= 1")
        check("dpi", dpi, is_int(dpi) and 1 <= dpi <= 1000, "an int from 1 to 1000")
        names_ok = metrics is None or (
            not isinstance(metrics, str) and all(isinstance(m, str) for m in metrics)
        )
        check("metrics", metrics, names_ok, "None or a list of metric names")
        check("monitor", monitor, monitor is None or (isinstance(monitor, str) and monitor != ""),
              "None or a non-empty str")  # fmt: skip
        check_mode(mode)
        check_between("drawing_budget", drawing_budget, 0.0, 1.0, open_low=True)
        if figsize is not None:
            pair = isinstance(figsize, (tuple, list)) and len(figsize) == 2
            check(
                "figsize",
                figsize,
                pair and all(is_real(v) and v > 0 for v in figsize),
                "None or (width, height) in inches, both > 0",
            )
            check(
                "figsize",
                figsize,
                max(figsize) * dpi < _MAX_PIXELS,
                f"smaller than {_MAX_PIXELS} pixels at dpi={dpi} on each side",
            )
            figsize = (float(figsize[0]), float(figsize[1]))
        for flag, value in (
            ("show_learning_rate", show_learning_rate),
            ("mark_best", mark_best),
            ("background", background),
        ):
            check(flag, value, isinstance(value, bool), "a bool")
        self.path = None if path is None else os.fspath(path)
        self.metrics = None if metrics is None else list(metrics)
        self.every = every
        self.show_learning_rate = show_learning_rate
        self.mark_best = mark_best
        self.monitor = monitor
        self.mode = mode
        self.csv_path = None if csv_path is None else os.fspath(csv_path)
        self.background = background
        self.drawing_budget = float(drawing_budget)
        self.figsize = figsize
        self.dpi = dpi
        self.history: dict[str, list[float]] = {"epoch": []}
        self.current_path: str | None = None
        self.current_csv_path: str | None = None
        self.figure = None
        self._drawer: _Drawer | None = None
        self._drawing: HistoryFigure | None = None
        self._warned: set[str] = set()
        self._png: bytes | None = None
        self._shown: bytes | None = None  # the PNG the notebook shows
        self._display = None
        self._writes = True
        self._metrics_checked = False
        # Rates still to work out: (row, schedule, step), filled in by whoever draws next.
        self._unrated: list[tuple[int, Any, int]] = []

    # --- the training thread: record a row, hand off the table's length -------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._stop_drawing()  # a fit that raised never reached on_train_end
        self.history = {"epoch": []}
        self._unrated = []
        self._warned = set()
        self._metrics_checked = False
        self._writes = is_chief()
        match_schedules_to_fit(self)
        fields = {
            "run": run_number(self),
            "model": getattr(self.model, "name", "model"),
            "time": time.strftime("%Y%m%d-%H%M%S"),
        }
        self.current_path = None if self.path is None else self.path.format(**fields)
        self.current_csv_path = None if self.csv_path is None else self.csv_path.format(**fields)
        self._drawing = HistoryFigure(
            metrics=self.metrics,
            show_learning_rate=self.show_learning_rate,
            mark_best=self.mark_best,
            monitor=self.monitor,
            mode=self.mode,
            figsize=self.figsize,
            dpi=self.dpi,
            epochs=(getattr(self, "params", None) or {}).get("epochs"),
        )
        self._display = None
        if self._writes and self.background:
            rest = (1 - self.drawing_budget) / self.drawing_budget
            self._drawer = _Drawer(self._draw, rest=rest)
        self._join()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {k: _as_float(k, v) for k, v in (logs or {}).items()}
        unrated = None
        if self.show_learning_rate and learning_rate_key(row) is None:
            # No LearningRateLogger before this callback: the rate of the epoch's last step.
            # A schedule is evaluated when the figure is drawn, in the drawing thread, all
            # the epochs waiting at once (eager ops cost milliseconds each here); one whose
            # value can change after this epoch (a reduction, a cooldown) is evaluated now.
            schedule = learning_rate_object(base_optimizer(self.model.optimizer))
            if isinstance(schedule, LearningRateSchedule) and not is_live(schedule):
                unrated = (schedule, max(iterations(self.model.optimizer) - 1, 0))
                row["learning_rate"] = math.nan
            else:
                row["learning_rate"] = last_learning_rate(self.model.optimizer)
        self._append(epoch, row)
        if unrated is not None:
            self._unrated.append((len(self.history["epoch"]) - 1, *unrated))
        if not self._metrics_checked:
            self._check_metrics(row)
        if (epoch + 1) % self.every == 0 and self._writes:
            self._submit(self._request())
        self._show_in_notebook()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._stop_drawing()
        self._rate_rows()  # the table is complete when fit returns, drawn or not
        if self.history["epoch"] and self._writes:
            self._drawing.epochs = None  # the x axis now spans the epochs run, not those planned
            self._draw(self._request())  # PNG and CSV complete when fit returns
        self._show_in_notebook()

    def _stop_drawing(self) -> None:
        """Drop a waiting draw and wait for one in progress: this thread draws next."""
        if self._drawer is not None:
            self._drawer.close()
            self._drawer = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until any figure still being drawn is written; True once none is.

        ``fit`` returns with the last figure written, so this is only needed
        after a fit that raised (Keras then skips ``on_train_end``): it draws
        the figure of the epochs that ran. The interpreter's exit does the same.
        """
        drawer = self._drawer
        return drawer is None or drawer.flush(timeout)

    def _check_metrics(self, row: dict[str, float]) -> None:
        self._metrics_checked = True
        missing = [m for m in self.metrics or [] if m not in row and f"val_{m}" not in row]
        if missing:
            warn(
                f"HistoryPlotter was asked to draw {missing}, which are not in the logs; "
                f"they are left out. Keys in the logs: {sorted(row)}."
            )

    def _append(self, epoch: int, row: dict[str, float]) -> None:
        n = len(self.history["epoch"])
        self.history["epoch"].append(epoch)
        for key, value in row.items():
            # A key that first appears late is NaN-filled before, so columns align.
            self.history.setdefault(key, [math.nan] * n).append(value)
        for column in self.history.values():
            if len(column) == n:
                column.append(math.nan)

    def _request(self) -> dict[str, Any]:
        """What to draw: the history's first ``rows`` rows, read by the drawer when it draws.

        The columns only grow during a fit (the next fit starts a new dict), so
        the training thread hands over their length, not a copy: a copy each
        epoch would cost time in proportion to the epochs so far.
        """
        stopper = self._early_stopping() if self.mark_best else None
        best_epoch, stopped_epoch = stopper.marks() if stopper is not None else (None, None)
        best_of = None
        if best_epoch is not None:  # the stopper's own rule, its direction resolved by now
            best_of = best_description(stopper.monitor, stopper.direction or stopper.mode)
        return {
            "history": self.history,
            "columns": tuple(self.history),
            "rows": len(self.history["epoch"]),
            "best_epoch": best_epoch,
            "stopped_epoch": stopped_epoch,
            "best_of": best_of,
        }

    def _submit(self, request: dict[str, Any]) -> None:
        if self._drawer is not None:
            self._drawer.submit(request)
        else:
            self._draw(request)

    # --- the drawing thread ---------------------------------------------------

    def _rate_rows(self) -> None:
        """Work out the rates still missing from the table: each schedule once, at all its steps.

        Called by the drawing thread and by the training thread (a backup's ``state_dict``,
        the end of the fit): one at a time, so neither returns before the rows it took in
        hand are filled. The training thread only appends to ``_unrated``.
        """
        with _RATING:
            n = len(self._unrated)
            waiting = self._unrated[:n]
            del self._unrated[:n]
            self._fill_rates(waiting)

    def _fill_rates(self, waiting: list[tuple[int, Any, int]]) -> None:
        by_schedule: dict[int, tuple[Any, list[int], list[int]]] = {}
        for row, schedule, step in waiting:
            by_schedule.setdefault(id(schedule), (schedule, [], []))
            by_schedule[id(schedule)][1].append(row)
            by_schedule[id(schedule)][2].append(step)
        column = self.history.get("learning_rate")
        for schedule, rows, steps in by_schedule.values():
            rates = keras.ops.convert_to_numpy(evaluate(schedule, np.asarray(steps, "int64")))
            for row, rate in zip(rows, np.asarray(rates, dtype="float64").reshape(-1)):
                if column is not None and row < len(column):
                    column[row] = float(rate)

    def _draw(self, request: dict[str, Any]) -> None:
        try:
            self._rate_rows()
        except Exception as error:  # a schedule that fails here fails the fit's step too
            self._warn_once("rate", f"HistoryPlotter could not evaluate the rate: {error!r}")
        table = _table(request)
        drawing = self._drawing
        try:
            drawing.update(
                table,
                best_epoch=request["best_epoch"],
                stopped_epoch=request["stopped_epoch"],
                best_of=request["best_of"],
            )
            png = drawing.png()
            self.figure = drawing.figure
        except Exception as error:
            self._warn_once("draw", f"HistoryPlotter could not draw the figure: {error!r}")
            png = None
        if png is not None:
            self._png = png
            if self.current_path is not None:
                self._write(self.current_path, lambda tmp: _write_bytes(tmp, png))
        if self.current_csv_path is not None:
            self._write(self.current_csv_path, lambda tmp: _write_csv(tmp, table))

    def _write(self, path: str, write: Any) -> None:
        try:
            folder = os.path.dirname(path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            atomic_write(path, write)
        except Exception as error:
            self._warn_once(
                path, f"HistoryPlotter could not write {path!r}: {error}. Training goes on."
            )

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warn(message)

    def _show_in_notebook(self) -> None:
        png = self._png
        if png is None or png is self._shown or not _in_notebook():
            return  # only a new figure is sent to the notebook
        from IPython.display import Image, display

        if self._display is None:
            self._display = display(Image(data=png), display_id=True)
        else:
            self._display.update(Image(data=png))
        self._shown = png

    def _early_stopping(self) -> EarlyStoppingWithBestRestore | None:
        """The EarlyStoppingWithBestRestore in this fit, whose best and stop epochs are marked."""
        record = current_record(self.model)
        members = record.members() if record is not None else []
        return next((c for c in members if isinstance(c, EarlyStoppingWithBestRestore)), None)

    # --- across an interruption (keras_lrkit.BackupAndRestore) --------------------------

    def _identity(self) -> dict[str, Any]:
        return {"path": self.path, "csv_path": self.csv_path}

    def state_dict(self) -> dict[str, Any]:
        """The table recorded so far (epoch, then every logged key)."""
        self._rate_rows()
        return {"history": {key: list(values) for key, values in self.history.items()}}

    def load_state_dict(self, state: Any) -> None:
        """Check ``state`` (ValueError naming the field), then take the table of the epochs before."""
        history = self._reader(state).field("history")
        if not isinstance(history, dict) or "epoch" not in history:
            raise ValueError(f"{self.state_key()}'s state has no table with an `epoch` column")
        table = {}
        for key in history:
            if not isinstance(key, str) or not 0 < len(key) <= 256:
                raise ValueError(f"{self.state_key()}'s table has a column named {key!r:.80}")
            table[key] = StateReader(history, "its table").numbers(key, gaps=key != "epoch")
        epochs = table["epoch"]
        if any(e != int(e) or e < 0 for e in epochs) or epochs != sorted(set(epochs)):
            raise ValueError(f"{self.state_key()}'s table has epochs {epochs[:10]!r:.80}")
        if any(len(column) != len(epochs) for column in table.values()):
            raise ValueError(f"{self.state_key()}'s table has columns of different lengths")
        table["epoch"] = [int(e) for e in epochs]
        self.history = table

    def get_config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in constructor_arguments(self)}


def _table(request: dict[str, Any]) -> dict[str, list[float]]:
    rows, history = request["rows"], request["history"]
    return {key: history[key][:rows] for key in request["columns"]}


def _as_float(key: str, value: Any) -> float:
    """A logged value as one number (a size-1 array too); NaN for one of several numbers."""
    try:
        return logged_number(key, value)
    except (TypeError, ValueError):
        return math.nan


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _write_csv(path: str, table: dict[str, list[float]]) -> None:
    lr = [k for k in table if k == "learning_rate"]
    keys = ["epoch"] + [k for k in table if k not in ("epoch", "learning_rate")] + lr
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(keys)
        for i in range(len(table["epoch"])):
            row = [int(table["epoch"][i])]
            row += ["" if math.isnan(table[k][i]) else repr(table[k][i]) for k in keys[1:]]
            writer.writerow(row)
