"""keras_lrkit in a real Jupyter kernel: figures shown inline, live plots sent only when they change."""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import textwrap
import types

import pytest

from .helpers import BACKEND

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

SETUP = textwrap.dedent(
    """
    import hashlib, time
    import numpy as np, keras
    from keras_lrkit import HistoryPlotter, LearningRateLogger, StepDecay, plot_history, plot_schedule
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    """
)


def execute(cells, tmp_path, env=None):
    """Run the cells in a fresh kernel; return every output message, in order, per cell."""
    seen: list[tuple[int, str, dict]] = []

    class Recording(nbclient.NotebookClient):
        def process_message(self, msg, cell, cell_index):  # every message, updates too
            seen.append((cell_index, msg["msg_type"], msg["content"]))
            return super().process_message(msg, cell, cell_index)

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    kernel_env = dict(os.environ, KERAS_BACKEND=BACKEND, **(env or {}))
    kernel_env.pop("MPLBACKEND", None)  # the kernel's own default, as in Jupyter
    client = Recording(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute(env=kernel_env)
    return seen


def images(messages, cell):
    return [
        base64.b64decode(content["data"]["image/png"])
        for index, kind, content in messages
        if index == cell and "image/png" in content.get("data", {})
    ]


def test_figures_show_inline_and_the_live_plot_sends_each_image_once(tmp_path):
    cells = [
        SETUP,
        'plot_history({"loss": [1.0, 0.6, 0.5], "val_loss": [1.1, 0.8, 0.9]})',
        "plot_schedule(StepDecay(0.1, [3, 6], steps_per_epoch=10), 100)",
        textwrap.dedent(
            """
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
            model.compile(keras.optimizers.SGD(StepDecay(0.05, [10], steps_per_epoch="fit")), "mse")
            plotter = HistoryPlotter(None, drawing_budget=1.0)
            slow = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: time.sleep(0.1))
            model.fit(x, y, validation_split=0.25, batch_size=16, epochs=30, verbose=0,
                      callbacks=[LearningRateLogger(), plotter, slow])
            print("final", hashlib.sha1(plotter._png).hexdigest())
            """
        ),
    ]
    messages = execute(cells, tmp_path)
    # Pure functions: a picture, without %matplotlib inline, not "<Figure size ...>".
    for cell in (1, 2):
        (png,) = images(messages, cell)
        assert png.startswith(b"\x89PNG")
    # The live plot: one display, then updates, each a different picture.
    live = [(kind, content) for index, kind, content in messages if index == 3]
    kinds = [kind for kind, content in live if "image/png" in content.get("data", {})]
    assert kinds[0] == "display_data" and set(kinds[1:]) == {"update_display_data"}
    pictures = images(messages, 3)
    assert len(pictures) >= 2
    assert all(a != b for a, b in zip(pictures, pictures[1:])), "the same image was sent again"
    assert len(set(pictures)) == len(pictures)
    printed = "".join(c.get("text", "") for kind, c in live if kind == "stream")
    assert f"final {hashlib.sha1(pictures[-1]).hexdigest()}" in printed  # it ends on the last


def test_colab_s_shell_counts_as_a_notebook(monkeypatch):
    from keras_lrkit.callbacks import history_plotter

    class ZMQInteractiveShell:  # ipykernel's shell, as Colab's subclasses it
        pass

    class Shell(ZMQInteractiveShell):  # google.colab._shell.Shell
        pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: Shell()
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert history_plotter._in_notebook()
    fake.get_ipython = lambda: None
    assert not history_plotter._in_notebook()
