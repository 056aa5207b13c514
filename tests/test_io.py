"""The one atomic-write routine every file goes through, and who writes under distribution."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading

import keras
import pytest

from keras_lrkit import EarlyStoppingWithBestRestore, HistoryPlotter
from keras_lrkit._io import atomic_write, is_chief

from .helpers import tiny_model, tiny_regression_data


def write_text(text):
    def write(name):
        with open(name, "w") as f:
            f.write(text)

    return write


def listing(folder):
    return sorted(os.listdir(folder))


def test_a_new_file_gets_the_umask_permissions_and_no_debris(tmp_path):
    target = tmp_path / "a.csv"
    atomic_write(target, write_text("one"))
    assert target.read_text() == "one"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask
    assert listing(tmp_path) == ["a.csv"]


def test_an_existing_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "best.weights.h5"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic_write(target, write_text("new"))
    assert target.read_text() == "new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_a_symlink_stays_a_link_and_its_target_is_replaced(tmp_path):
    real = tmp_path / "real" / "best.weights.h5"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.weights.h5"
    link.symlink_to(real)
    atomic_write(link, write_text("new"))
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"
    assert listing(real.parent) == ["best.weights.h5"]


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.png"
    link.symlink_to(tmp_path / "made.png")
    atomic_write(link, write_text("x"))
    assert link.is_symlink() and (tmp_path / "made.png").read_text() == "x"


def test_a_fifo_is_written_through_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    # Open the writing end only once the reader is waiting on it.
    for _ in range(1000):
        try:
            atomic_write(fifo, write_text("through the pipe"))
            break
        except OSError:  # no reader yet
            threading.Event().wait(0.01)
    reader.join(timeout=10)
    assert received == ["through the pipe"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert listing(tmp_path) == ["pipe.csv"]


def test_a_fifo_without_a_reader_is_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="pipe.png"):
        atomic_write(fifo, write_text("nobody reads"))
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_dev_null_is_written_through_not_replaced():
    atomic_write("/dev/null", write_text("discarded"))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_dev_full_fails_naming_it_and_stays_a_device():
    with pytest.raises(OSError, match="/dev/full") as caught:
        atomic_write("/dev/full", write_text("x" * 10000))
    assert "lrkit" not in str(caught.value)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_errors_name_the_path_given_not_the_temporary_one(tmp_path):
    path = tmp_path / "missing" / "x.png"
    with pytest.raises(OSError) as caught:
        atomic_write(path, write_text("x"))
    assert str(path) in str(caught.value) and ".lrkit-" not in str(caught.value)
    with pytest.raises(OSError, match="a_folder"):
        (tmp_path / "a_folder").mkdir()
        atomic_write(tmp_path / "a_folder", write_text("x"))


def test_a_name_as_long_as_the_file_system_allows_can_be_written(tmp_path):
    name = "h" * (os.pathconf(tmp_path, "PC_NAME_MAX") - len(".weights.h5")) + ".weights.h5"
    atomic_write(tmp_path / name, write_text("long"))
    assert listing(tmp_path) == [name]
    long_suffix = "x." + "s" * 240  # a suffix that leaves no room: the temporary name drops it
    atomic_write(tmp_path / long_suffix, write_text("ok"))
    assert (tmp_path / long_suffix).read_text() == "ok"


def test_a_failed_write_leaves_the_previous_file_and_no_debris(tmp_path):
    target = tmp_path / "h.csv"
    target.write_text("previous")

    def fails(name):
        with open(name, "w") as f:
            f.write("partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, fails)
    assert target.read_text() == "previous" and listing(tmp_path) == ["h.csv"]


def test_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.realpath(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.realpath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write(tmp_path / "a.png", write_text("x"))
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"], events
    assert ".lrkit-" in events[0][1]  # the temporary file, before it takes the name
    assert events[2][1] == os.path.realpath(tmp_path)  # the folder, after the rename


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from keras_lrkit._io import atomic_write

    def write(name):
        with open(name, "wb") as f:
            f.write(b"x" * 1_000_000)
            f.flush()
        print("writing", flush=True)
        time.sleep(60)  # killed here, mid-write

    atomic_write(sys.argv[1], write)
    """
)


def test_leftovers_of_killed_writers_are_removed_at_the_next_write(tmp_path):
    target = tmp_path / "best.weights.h5"
    for _ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, str(target)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout.readline().strip() == "writing"
        child.kill()  # SIGKILL: no cleanup runs in the child
        child.wait()
        child.stdout.close()
        # One hidden temporary file: each writer removed the one its killed predecessor left.
        assert len(listing(tmp_path)) == 1 and listing(tmp_path)[0].startswith(".lrkit-")
    assert not target.exists()
    atomic_write(target, write_text("clean"))
    assert listing(tmp_path) == ["best.weights.h5"]


# --- TF_CONFIG: read as TensorFlow reads it, one clear error otherwise ---------------


@pytest.mark.parametrize(
    "config,chief",
    [
        ("", True),
        ("{}", True),
        ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}', True),
        (
            '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": "1"}}',
            False,
        ),
        ('{"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker"}}', False),
        ('{"cluster": {"chief": ["c:1"]}, "task": {"type": "chief", "index": 0}}', True),
        ('{"task": {"type": "evaluator", "index": 0}}', False),
    ],
)
def test_tf_config_decides_the_chief(config, chief, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", config)
    assert is_chief() is chief


MALFORMED = ["null", "[]", '"worker"', "{not json", '{"task": {"index": "one"}}',
             '{"task": {"type": 3}}', '{"task": []}', '{"cluster": [], "task": {}}',
             '{"task": {"type": "worker", "index": -1}}', '{"task": {"index": 1.5}}']  # fmt: skip


@pytest.mark.parametrize("config", MALFORMED)
def test_malformed_tf_config_is_one_clear_error_at_train_begin(config, monkeypatch, tmp_path):
    monkeypatch.setenv("TF_CONFIG", config)
    x, y = tiny_regression_data(16)
    for callback in (
        HistoryPlotter(tmp_path / "h.png"),
        EarlyStoppingWithBestRestore("loss", checkpoint_path=tmp_path / "b.weights.h5"),
    ):
        epochs: list[int] = []
        count = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda e, logs, seen=epochs: seen.append(e)
        )
        with pytest.raises(ValueError, match="TF_CONFIG must be a JSON object") as caught:
            tiny_model().fit(x, y, epochs=2, verbose=0, callbacks=[count, callback])
        assert repr(config) in str(caught.value)
        assert epochs == []  # raised at train begin, before any epoch ran
