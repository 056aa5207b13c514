"""HistoryPlotter and the plotting functions: recorded data, written files, warnings."""

from __future__ import annotations

import copy
import csv
import math
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import keras
import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from keras_lrkit import (
    EarlyStoppingWithBestRestore,
    HistoryPlotter,
    LearningRateLogger,
    ReduceOnPlateau,
    StepDecay,
    plot_history,
    plot_schedule,
)
from keras_lrkit.callbacks.history_plotter import _table
from keras_lrkit.plotting import read_history_csv

from .helpers import BACKEND, tiny_model, tiny_regression_data


def fit(callbacks, epochs=4, schedule=None):
    x, y = tiny_regression_data(48)
    model = tiny_model(
        optimizer=keras.optimizers.SGD(schedule or StepDecay(0.05, [2], steps_per_epoch=4)),
        metrics=["mae"],
    )
    history = model.fit(
        x[:32],
        y[:32],
        validation_data=(x[32:], y[32:]),
        batch_size=8,
        epochs=epochs,
        verbose=0,
        callbacks=callbacks,
    )
    return history, model


@pytest.mark.parametrize("background", [True, False])
def test_png_and_csv_written(tmp_path, background):
    png, table = tmp_path / "h.png", tmp_path / "h.csv"
    plotter = HistoryPlotter(png, csv_path=table, background=background)
    history, _ = fit([LearningRateLogger(), plotter])
    image = matplotlib.image.imread(png)
    height, width = image.shape[:2]
    assert (
        300 <= height <= 1000 and width > 2 * height
    )  # three panels side by side: loss, mae, rate
    assert [ax.get_title() for ax in plotter.figure.axes] == ["loss", "mae", "learning rate"]
    with open(table) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[0] == "epoch" and list(rows[0])[-1] == "learning_rate"
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    for key in ["loss", "val_loss", "mae", "val_mae", "learning_rate"]:
        np.testing.assert_allclose([float(r[key]) for r in rows], history.history[key], rtol=1e-7)
    np.testing.assert_allclose(
        [float(r["learning_rate"]) for r in rows], [0.05, 0.05, 0.005, 0.005], rtol=1e-6
    )
    assert sorted(os.listdir(tmp_path)) == ["h.csv", "h.png"]  # no temporary files left
    umask = os.umask(0)
    os.umask(umask)
    for name in ("h.csv", "h.png"):  # the permissions a plain open() gives, not mkstemp's 0600
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_rate_read_from_the_optimizer_without_a_logger(tmp_path):
    plotter = HistoryPlotter(tmp_path / "h.png")
    fit([plotter])
    np.testing.assert_allclose(
        plotter.history["learning_rate"], [0.05, 0.05, 0.005, 0.005], rtol=1e-6
    )


def test_without_a_logger_the_training_thread_leaves_the_schedule_to_the_drawing(tmp_path):
    # The plotter's epoch-end hook evaluates no schedule; the rates it records are the ones the
    # optimizer used (0.05 for epochs 0-1, 0.005 after), filled in by the time fit returns.
    class Counted(StepDecay):
        calls_at_epoch_end = 0
        in_hook = False

        def __call__(self, step):
            Counted.calls_at_epoch_end += Counted.in_hook
            return super().__call__(step)

    class Hooked(HistoryPlotter):
        def on_epoch_end(self, epoch, logs=None):
            Counted.in_hook = True
            try:
                super().on_epoch_end(epoch, logs)
            finally:
                Counted.in_hook = False

    plotter = Hooked(tmp_path / "h.png", csv_path=tmp_path / "h.csv")
    fit([plotter], schedule=Counted(0.05, [2], steps_per_epoch=4))
    assert Counted.calls_at_epoch_end == 0
    np.testing.assert_allclose(plotter.history["learning_rate"], [0.05, 0.05, 0.005, 0.005],
                               rtol=1e-6)  # fmt: skip
    written = read_history_csv(tmp_path / "h.csv")["learning_rate"]
    np.testing.assert_allclose(written, [0.05, 0.05, 0.005, 0.005], rtol=1e-6)


def test_a_reduced_schedule_is_recorded_at_the_rate_each_epoch_used(tmp_path):
    # A reduction changes the schedule's value after the epoch it was decided in: the plotter
    # (before the reducer, no logger) records the epoch's own rate, at the epoch's end.
    class Inject(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = [1.0, 1.0, 1.0, 1.0][epoch]

    plotter = HistoryPlotter(tmp_path / "h.png")
    reducer = ReduceOnPlateau(factor=0.5, patience=1)
    fit([Inject(), plotter, reducer], schedule=StepDecay(0.05, [10], steps_per_epoch=4))
    # No improvement after epoch 0: halved after epochs 1, 2 and 3 (patience 1).
    np.testing.assert_allclose(plotter.history["learning_rate"], [0.05, 0.05, 0.025, 0.0125],
                               rtol=1e-6)  # fmt: skip


def test_every_and_final_draw(tmp_path):
    plotter = HistoryPlotter(tmp_path / "h.png", every=3, background=False)
    drawn = []
    original = plotter._draw
    plotter._draw = lambda request: (
        drawn.append(request["rows"]),
        original(request),
    )
    fit([plotter], epochs=4)
    assert drawn == [3, 4]  # after epoch index 2, and the final state at train end


def test_png_and_csv_show_every_epoch_when_fit_returns(tmp_path):
    png, table = tmp_path / "h.png", tmp_path / "h.csv"
    plotter = HistoryPlotter(png, csv_path=table)
    drawn = []
    original = plotter._draw

    def recording_draw(request):
        original(request)
        drawn.append((request["rows"], threading.current_thread().name))

    plotter._draw = recording_draw
    history, _ = fit([plotter], epochs=3)
    # fit has returned, nothing waited for: the last figure is on disk and shows all 3 epochs.
    assert drawn[-1] == (3, threading.current_thread().name)
    assert png.read_bytes() == plotter._png
    assert read_history_csv(table)["loss"] == pytest.approx(history.history["loss"], rel=1e-7)
    assert len(plotter.figure.axes[0].get_lines()[0].get_xdata()) == 3
    assert plotter_threads() == []


def test_drawer_rests_before_the_first_draw_and_draws_the_newest_request(monkeypatch):
    from keras_lrkit.callbacks import history_plotter

    # A clock that never advances: the first draw's rest never ends, so only
    # flush() gets a request drawn. Requests replace each other.
    monkeypatch.setattr(history_plotter, "_now", lambda: 1000.0)
    drawn = []
    drawer = history_plotter._Drawer(drawn.append, rest=39.0, first_draw=0.1)
    for request in range(5):
        drawer.submit(request)
    assert drawn == []
    assert drawer.flush(timeout=60)
    assert drawn == [4] and drawer._thread is None
    drawer._hurry = False
    # The draw took no time on the frozen clock, so no rest would follow it: rest until 2000.
    drawer._ready_at = 2000.0
    drawer.submit("after")  # a new thread for new work, ended by close() without drawing
    assert drawer.close(timeout=60) and drawn == [4] and drawer._thread is None


def test_the_figure_of_a_fit_that_raised_is_written_before_the_interpreter_exits(tmp_path):
    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        from keras_lrkit import HistoryPlotter

        class Boom(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    raise SystemExit(0)  # Keras skips on_train_end

        plotter = HistoryPlotter({str(tmp_path / "h.png")!r}, csv_path={str(tmp_path / "h.csv")!r})
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=5, verbose=0, callbacks=[plotter, Boom()])
        """
    )
    env = dict(os.environ, KERAS_BACKEND=BACKEND, MPLBACKEND="Agg")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=240)
    assert matplotlib.image.imread(tmp_path / "h.png").shape[0] > 100
    assert read_history_csv(tmp_path / "h.csv")["epoch"] == [0, 1]


class Boom(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("boom")


def plotter_threads():
    return [t for t in threading.enumerate() if t.name == "lrkit-plotter"]


def test_fits_that_raise_leave_no_drawing_threads_behind(tmp_path):
    for i in range(10):
        plotter = HistoryPlotter(tmp_path / f"h{i}.png")
        with pytest.raises(RuntimeError, match="boom"):
            fit([plotter, Boom()], epochs=3)  # Keras skips on_train_end
    # Each thread draws what was left waiting (after its rest) and ends.
    for thread in plotter_threads():
        thread.join(timeout=60)
    assert plotter_threads() == []
    assert len(list(tmp_path.glob("h*.png"))) == 10  # nothing lost: each drew its figure


def test_a_plotter_reused_after_a_fit_that_raised(tmp_path):
    plotter = HistoryPlotter(tmp_path / "h.png", csv_path=tmp_path / "h.csv")
    with pytest.raises(RuntimeError, match="boom"):
        fit([plotter, Boom()], epochs=3)
    fit([plotter], epochs=2)
    assert plotter_threads() == []
    assert read_history_csv(tmp_path / "h.csv")["epoch"] == [0, 1]


def test_marks_come_from_this_fit_only(tmp_path):
    class Inject(keras.callbacks.Callback):
        def __init__(self, values):
            super().__init__()
            self.values = values

        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = self.values[epoch]

    x, y = tiny_regression_data(32)
    model = tiny_model()
    stop = EarlyStoppingWithBestRestore(patience=1)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[Inject([1.0, 0.5, 0.7]), stop])
    assert (stop.best_epoch, stop.stopped_epoch) == (1, 2)
    plotter = HistoryPlotter(tmp_path / "h.png")  # a second fit, without early stopping
    model.fit(x, y, epochs=4, verbose=0, callbacks=[Inject([0.9, 0.8, 0.3, 0.6]), plotter])
    labels = {line.get_label() for line in plotter.figure.axes[0].get_lines()}
    assert "best epoch 2 (lowest val_loss)" in labels  # this fit's lowest val_loss
    assert not {"best epoch 1", "stopped at 2"} & labels


def test_checks_what_it_can_at_construction():
    for kwargs, name in [
        ({"figsize": "big"}, "figsize"),
        ({"figsize": (5, -1)}, "figsize"),
        ({"figsize": (5, float("nan"))}, "figsize"),
        ({"figsize": (700, 4)}, "figsize"),  # 70,000 pixels wide at dpi 100
        ({"dpi": 10**6}, "dpi"),
        ({"dpi": 2.5}, "dpi"),
        ({"background": "yes"}, "background"),
        ({"mark_best": None}, "mark_best"),
        ({"csv_path": 3}, "csv_path"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            HistoryPlotter(**kwargs)


def test_a_metric_never_logged_warns_once_naming_the_keys(tmp_path):
    plotter = HistoryPlotter(tmp_path / "h.png", metrics=["nope", "mae"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit([plotter], epochs=3)
    messages = [str(w.message) for w in caught if "nope" in str(w.message)]
    assert len(messages) == 1 and "'val_mae'" in messages[0] and "'loss'" in messages[0]
    assert [ax.get_title() for ax in plotter.figure.axes] == ["mae", "learning rate"]


def test_marks_best_and_stop_epoch_from_early_stopping(tmp_path):
    class Inject(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = [1.0, 0.5, 0.7, 0.8, 0.9][epoch]

    stop = EarlyStoppingWithBestRestore(patience=2)
    plotter = HistoryPlotter(tmp_path / "h.png")
    fit([Inject(), stop, plotter], epochs=5)
    assert (stop.best_epoch, stop.stopped_epoch) == (1, 3)
    labels = {line.get_label() for line in plotter.figure.axes[0].get_lines()}
    assert {"best epoch 1 (lowest val_loss)", "stopped at 3"} <= labels


def test_unwritable_path_warns_once_and_fit_completes(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    bad = tmp_path / "a_file" / "h.png"
    plotter = HistoryPlotter(bad, csv_path=tmp_path / "ok.csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history, _ = fit([plotter], epochs=3)
    messages = [str(w.message) for w in caught if "could not write" in str(w.message)]
    assert len(messages) == 1 and "a_file" in messages[0]
    assert len(history.epoch) == 3
    assert len(read_history_csv(tmp_path / "ok.csv")["epoch"]) == 3  # the rest was still written


def test_plot_history_from_history_dict_and_csv(tmp_path):
    history, _ = fit([LearningRateLogger(), keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))])
    from_history = plot_history(history)
    from_dict = plot_history(history.history, metrics=["loss"])
    from_csv = plot_history(tmp_path / "log.csv")
    for fig in (from_history, from_dict, from_csv):
        assert isinstance(fig, Figure)
    assert [a.get_title() for a in from_history.axes] == ["loss", "mae", "learning rate"]
    assert [a.get_title() for a in from_dict.axes] == ["loss", "learning rate"]
    # The plotted curves are the recorded numbers.
    train_line = from_csv.axes[0].get_lines()[0]
    np.testing.assert_allclose(train_line.get_ydata(), history.history["loss"], rtol=1e-6)
    # Default best mark: the lowest val_loss.
    best = int(np.argmin(history.history["val_loss"]))
    labels = {ln.get_label() for ln in from_dict.axes[0].get_lines()}
    assert f"best epoch {best} (lowest val_loss)" in labels


def test_learning_rate_panel_is_log_scale_when_it_spans_decades():
    fig = plot_history({"loss": [3, 2, 1], "learning_rate": [0.1, 0.01, 0.001]})
    assert fig.axes[-1].get_yscale() == "log"
    fig = plot_history({"loss": [3, 2, 1], "learning_rate": [0.1, 0.08, 0.05]})
    assert fig.axes[-1].get_yscale() == "linear"


def test_read_history_csv_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("epoch,loss\n0,1.0\n1,oops\n")
    with pytest.raises(ValueError, match=r"bad\.csv, line 3: column 'loss'"):
        read_history_csv(path)
    path.write_text("epoch,loss\n0,1.0,2.0\n")
    with pytest.raises(ValueError, match=r"bad\.csv, line 2"):
        read_history_csv(path)


def test_plot_schedule_one_vectorized_call_in_epochs():
    schedule = StepDecay(0.1, [3, 6], steps_per_epoch=10)
    fig = plot_schedule(schedule, 100)
    line = fig.axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), np.arange(100) / 10)
    expected = 0.1 * 0.1 ** ((np.arange(100) >= 30).astype(int) + (np.arange(100) >= 60))
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-6)
    assert fig.axes[0].get_xlabel() == "epoch" and fig.axes[0].get_yscale() == "log"
    steps_fig = plot_schedule(StepDecay(0.1, [3]), np.array([0, 2, 3, 5]))
    np.testing.assert_allclose(steps_fig.axes[0].get_lines()[0].get_xdata(), [0, 2, 3, 5])
    assert steps_fig.axes[0].get_xlabel() == "step"


def test_bad_arguments():
    for kwargs, name in [
        ({"every": 0}, "every"),
        ({"dpi": 0}, "dpi"),
        ({"metrics": "loss"}, "metrics"),
        ({"path": 3}, "path"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            HistoryPlotter(**kwargs)
    with pytest.raises(ValueError, match="`metrics`"):
        plot_history({"loss": [1.0]}, metrics=["accuracy"])
    with pytest.raises(ValueError, match="`history`"):
        plot_history(42)


def test_notebook_figure_updates_inline(tmp_path, monkeypatch):
    """In a Jupyter kernel the PNG is displayed once, then updated in place (IPython stand-in)."""
    import sys
    import types

    from keras_lrkit.callbacks import history_plotter

    shown = []

    class Handle:
        def update(self, image):
            shown.append(("update", image.data))

    def display(image, display_id=False):
        shown.append(("display", image.data))
        return Handle()

    fake = types.ModuleType("IPython.display")
    fake.display = display
    fake.Image = lambda data: types.SimpleNamespace(data=data)
    monkeypatch.setitem(sys.modules, "IPython.display", fake)
    monkeypatch.setattr(history_plotter, "_in_notebook", lambda: True)
    plotter = HistoryPlotter(tmp_path / "h.png", background=False)
    fit([plotter], epochs=3)
    assert [kind for kind, _ in shown][0] == "display"
    assert {kind for kind, _ in shown[1:]} == {"update"} and len(shown) >= 3
    assert shown[-1][1] == (tmp_path / "h.png").read_bytes()  # the final figure, as written


@pytest.mark.parametrize(
    "make",
    [
        lambda p: HistoryPlotter(p / "h.png", csv_path=p / "h.csv", every=2),
        lambda p: EarlyStoppingWithBestRestore("val_loss", patience=2),
        lambda p: LearningRateLogger(per_batch=True),
    ],
)
def test_callbacks_deep_copy(tmp_path, make):
    # KerasTuner deep-copies the callbacks it is given, once for every trial.
    callback = make(tmp_path)
    clone = copy.deepcopy(callback)
    assert clone.get_config() == callback.get_config()
    fit([clone], epochs=2)  # the copy trains on its own
    if isinstance(clone, HistoryPlotter):
        assert clone.history["epoch"] == [0, 1] and callback.history == {"epoch": []}


def test_a_request_holds_the_rows_and_columns_it_was_made_with(tmp_path):
    # The training thread hands the drawer the table's length, not a copy; rows and
    # columns added after the request must not reach that request's figure or CSV.
    plotter = HistoryPlotter(tmp_path / "h.png", background=False, mark_best=False)
    plotter.history = {"epoch": []}
    plotter._append(0, {"loss": 1.0})
    first = plotter._request()
    plotter._append(1, {"loss": 0.5, "val_loss": 0.7})
    assert _table(first) == {"epoch": [0], "loss": [1.0]}
    second = _table(plotter._request())
    assert second["epoch"] == [0, 1] and second["loss"] == [1.0, 0.5]
    assert math.isnan(second["val_loss"][0]) and second["val_loss"][1] == 0.7


def csv_logger_file(tmp_path, name, **fit_kwargs):
    """A file Keras's CSVLogger wrote in a real fit (it writes NA where a value is missing)."""
    x, y = tiny_regression_data(48)
    model = tiny_model(metrics=["mae"])
    path = tmp_path / name
    append = fit_kwargs.pop("append", False)
    if append:  # a first fit without validation, then a second one appended with it
        model.fit(x, y, epochs=2, verbose=0, callbacks=[keras.callbacks.CSVLogger(str(path))])
        fit_kwargs.update(initial_epoch=2)
    model.fit(x, y, verbose=0, callbacks=[keras.callbacks.CSVLogger(str(path), append=append)],
              **fit_kwargs)  # fmt: skip
    return path


@pytest.mark.parametrize(
    "name,fit_kwargs,validated",
    [
        ("no_validation.csv", {"epochs": 3}, []),
        ("every_2nd.csv", {"epochs": 4, "validation_split": 0.25, "validation_freq": 2}, [1, 3]),
        ("appended.csv", {"epochs": 4, "validation_split": 0.25, "append": True}, [2, 3]),
    ],
)
def test_csv_logger_files_with_na_are_plotted(tmp_path, name, fit_kwargs, validated):
    path = csv_logger_file(tmp_path, name, **fit_kwargs)
    assert "NA" in path.read_text()  # what Keras writes for a value that is not there
    table = read_history_csv(path)
    epochs = [int(e) for e in table["epoch"]]
    assert [e for e, v in zip(epochs, table["val_loss"]) if not math.isnan(v)] == validated
    figure = plot_history(path)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    np.testing.assert_array_equal(lines["train"].get_xdata(), epochs)
    if validated:  # the validation curve joins the epochs that were measured
        np.testing.assert_array_equal(lines["validation"].get_xdata(), validated)
    else:
        assert "validation" not in lines


def test_each_trial_or_fit_gets_its_own_files(tmp_path):
    # KerasTuner deep-copies the callbacks for every trial and fits a new model each time.
    template = HistoryPlotter(
        tmp_path / "tuning" / "{run}-{model}" / "history.png",
        csv_path=tmp_path / "tuning" / "{run}-{model}" / "history.csv",
    )
    written = []
    for trial in range(2):
        plotter = copy.deepcopy(template)
        history, model = fit([plotter], epochs=2 + trial)
        written.append((plotter.current_path, plotter.current_csv_path, model.name))
        assert read_history_csv(plotter.current_csv_path)["epoch"] == list(range(2 + trial))
    (png_a, csv_a, name_a), (png_b, csv_b, name_b) = written
    assert png_a != png_b and os.path.dirname(png_a) != os.path.dirname(png_b)
    assert os.path.basename(os.path.dirname(png_a)).endswith(name_a)
    assert all(os.path.exists(p) for p in (png_a, csv_a, png_b, csv_b))


def test_path_fields_other_than_run_model_and_time_are_refused():
    with pytest.raises(ValueError, match="`path`"):
        HistoryPlotter("runs/{trial}/h.png")
    with pytest.raises(ValueError, match="`csv_path`"):
        HistoryPlotter(csv_path="runs/{0}/h.csv")
    for kwargs, name in [
        ({"drawing_budget": 0}, "drawing_budget"),
        ({"drawing_budget": 1.5}, "drawing_budget"),
        ({"mode": "up"}, "mode"),
        ({"monitor": ""}, "monitor"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            HistoryPlotter(**kwargs)


def test_the_marked_best_epoch_follows_monitor_without_early_stopping(tmp_path):
    class Inject(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_score"] = [0.2, 0.9, 0.5, 0.4][epoch]

    plotter = HistoryPlotter(tmp_path / "h.png", monitor="val_score", mode="max")
    fit([Inject(), plotter], epochs=4)
    labels = {line.get_label() for line in plotter.figure.axes[0].get_lines()}
    assert "best epoch 1 (highest val_score)" in labels


def test_a_schedule_on_its_way_to_zero_is_drawn_on_a_linear_axis():
    from keras_lrkit import CosineDecay, CosineRestarts, OneCycle, Warmup

    # On a log axis their plunge to 0 (or 4e-7) at the end would look like a crash.
    for schedule in (
        CosineDecay(0.1, 100),
        Warmup(CosineDecay(0.1, 95), 5),
        CosineRestarts(0.1, 10),
        OneCycle(0.1, 100),
    ):
        assert plot_schedule(schedule, 100).axes[0].get_yscale() == "linear", schedule
    # A staircase spends its time a decade and more below the top: a log axis shows it.
    assert plot_schedule(StepDecay(0.1, [30, 60, 90]), 100).axes[0].get_yscale() == "log"


@pytest.mark.parametrize("title", [None, "A title"])
def test_title_legend_and_panels_stack_without_overlap_or_a_gap(title):
    history = {"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.6], "learning_rate": [0.1] * 3}
    figure = plot_history(history, title=title)
    renderer = figure.canvas.get_renderer()
    inch = figure.dpi
    legend = figure.legends[0].get_window_extent(renderer)
    panel_tops = max(ax.title.get_window_extent(renderer).y1 for ax in figure.axes)
    assert legend.y0 > panel_tops  # the legend sits above the panels' titles...
    assert legend.y0 - panel_tops < 0.35 * inch  # ...without a band of white between
    if title:
        above = figure._suptitle.get_window_extent(renderer)
        assert above.y0 > legend.y1 and above.y1 <= figure.bbox.height


def test_every_panel_has_a_y_label_and_the_best_mark_lies_under_the_step():
    # The best epoch on a milestone: the rate's vertical step is drawn over the marker.
    rates = [0.1] * 3 + [0.01] * 3
    history = {"loss": [1.0, 0.8, 0.7, 0.5, 0.55, 0.6], "val_loss": [1.1, 0.9, 0.8, 0.6, 0.65, 0.7],
               "mae": [0.5] * 6, "learning_rate": rates}  # fmt: skip
    figure = plot_history(history, best_epoch=3)
    assert all(ax.get_ylabel() for ax in figure.axes), [ax.get_ylabel() for ax in figure.axes]
    rate_panel = figure.axes[-1]
    (best,) = [line for line in rate_panel.get_lines() if line.get_linestyle() == "--"]
    assert best.get_visible() and best.get_xdata()[0] == 3
    curve = max(rate_panel.get_lines(), key=lambda line: len(line.get_xdata()))
    assert curve.get_zorder() > best.get_zorder()


@pytest.mark.parametrize(
    "path",
    ["{model.__init__.__globals__}.png", "{run:>99999999999}.png", "{run!r}.png", "{0}.png",
     "{}.png", "{time[0]}.png", "{model:>5}.png"],
)  # fmt: skip
def test_path_templates_hold_only_the_documented_fields(path):
    with pytest.raises(ValueError, match="Argument `path`"):
        HistoryPlotter(path)
    assert HistoryPlotter("runs/{run:03d}/{model}-{time}.png", csv_path="h{{1}}.csv").every == 1


def test_the_marks_and_the_last_epoch_s_rate_are_drawn_inside_the_axes():
    # Stopped on the last epoch, best on it too: both marks and the last points lie inside.
    history = {"loss": [1.0, 0.8, 0.7, 0.6], "val_loss": [1.1, 0.9, 0.8, 0.7],
               "learning_rate": [0.1, 0.1, 0.01, 0.01]}  # fmt: skip
    figure = plot_history(history, stopped_epoch=3)
    for ax in figure.axes:
        low, high = ax.get_xlim()
        assert low < 0 and high > 3  # a margin on both sides
        for line in ax.get_lines():
            if line.get_visible() and len(line.get_xdata()):
                assert low < min(line.get_xdata()) and max(line.get_xdata()) < high
    marks = {ln.get_label() for ln in figure.axes[0].get_lines() if ln.get_visible()}
    assert {"best epoch 3 (lowest val_loss)", "stopped at 3"} <= marks
    # The last epoch's rate has the width of an epoch: drawn from epoch 3 to 4, inside the axes.
    rate = max(figure.axes[-1].get_lines(), key=lambda line: len(line.get_xdata()))
    assert list(rate.get_xdata()[-2:]) == [3, 4] and list(rate.get_ydata()[-2:]) == [0.01, 0.01]
    assert figure.axes[-1].get_xlim()[1] > 4


def test_the_live_figure_leaves_a_margin_after_the_planned_last_epoch(tmp_path):
    stop = EarlyStoppingWithBestRestore(patience=10)
    plotter = HistoryPlotter(tmp_path / "h.png")
    fit([stop, plotter], epochs=3)
    for ax in plotter.figure.axes:
        assert ax.get_xlim()[0] < 0 and ax.get_xlim()[1] > 2
    labels = {ln.get_label() for ln in plotter.figure.axes[0].get_lines() if ln.get_visible()}
    assert f"best epoch {stop.best_epoch} (lowest val_loss)" in labels


def test_plot_history_names_the_monitor_it_marks_the_best_of():
    history = {"loss": [1.0, 0.8, 0.7], "val_loss": [1.0, 0.9, 0.95],
               "accuracy": [0.5, 0.6, 0.7], "val_accuracy": [0.5, 0.6, 0.62]}  # fmt: skip
    figure = plot_history(history, monitor="val_accuracy")
    labels = {ln.get_label() for ln in figure.axes[0].get_lines() if ln.get_visible()}
    assert "best epoch 2 (highest val_accuracy)" in labels  # the lowest val_loss is epoch 1
    figure = plot_history(history, monitor="val_loss", mode="max")
    labels = {ln.get_label() for ln in figure.axes[0].get_lines() if ln.get_visible()}
    assert "best epoch 0 (highest val_loss)" in labels
