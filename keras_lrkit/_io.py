"""Files and messages: atomic writes, chief-only writing, and Keras-style output."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import keras

try:  # Keras routes messages to absl logging when interactive logging is off.
    from keras.src.utils.io_utils import print_msg as _print_msg
except ImportError:  # pragma: no cover - a Keras without it

    def _print_msg(message: str) -> None:
        sys.stdout.write(f"{message}\n")
        sys.stdout.flush()


# The process's umask, read once at import (reading it means setting it), so that
# atomically written files get the permissions a plain open() would give them.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def say(message: str) -> None:
    """Print a line the way Keras prints its own callback messages."""
    _print_msg(message)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then move it into place.

    A reader never sees a half-written file, and a crash leaves the previous
    file intact. The temporary name keeps ``path``'s full suffix (Keras wants
    ``.weights.h5``), and it is removed if ``write`` fails.
    """
    path = Path(path)
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent or "."
    )
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def is_chief() -> bool:
    """Whether this process should write files: the chief, or the only worker.

    Under tf.distribute's multi-worker strategies the cluster comes from
    ``TF_CONFIG``: the task of type "chief", or worker 0 when the cluster has no
    chief. Under JAX multi-process training, process 0. Everywhere else, True.
    """
    config = os.environ.get("TF_CONFIG")
    if config:
        try:
            tf_config = json.loads(config)
        except ValueError:
            tf_config = {}
        task = tf_config.get("task", {})
        cluster = tf_config.get("cluster", {})
        kind, index = task.get("type"), int(task.get("index", 0))
        if kind is not None:
            if kind == "chief":
                return True
            if kind == "worker":
                return "chief" not in cluster and index == 0
            return False
    if keras.backend.backend() == "jax":
        import jax

        try:
            return jax.process_index() == 0
        except Exception:  # pragma: no cover - jax not initialised
            return True
    return True
