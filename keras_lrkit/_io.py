"""Files and messages: the one atomic-write routine, chief-only writing, Keras-style output."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from ._keras_private import print_msg

# The process's umask, read once at import (reading it means setting it), so that
# atomically written new files get the permissions a plain open() would give them.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

_TMP_MARK = ".lrkit-"  # every temporary name starts with it: ".lrkit-<target hash>-<pid>-<random>"
_swept: set[str] = set()  # targets whose leftovers this process has already cleaned up


def say(message: str) -> None:
    """Print a line the way Keras prints its own callback messages."""
    print_msg(message)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Write ``path`` by calling ``write(name)``, so that nothing is ever half-written or lost.

    - A regular file, or a new one: ``write`` fills a temporary file in the same
      folder, which is synced to disk, renamed over ``path``, and the folder
      synced after the rename. A reader sees the old file or the new one, never
      a part, even after a power cut. An existing file keeps its permission bits.
    - A symbolic link: the file it points to is replaced; the link stays a link.
    - Anything else (a device such as ``/dev/null``, a FIFO): written through in
      place, since a rename would replace the device itself. A FIFO that no one
      reads is refused at once rather than waited on.

    The temporary name is short (``.lrkit-<hash>-<pid>-<random>`` plus the
    target's suffix, which Keras needs: ``.weights.h5``), so it fits wherever the
    final name fits. It is removed if ``write`` fails; leftovers of a process that
    died mid-write (``kill -9``) are removed at this process's first write of the
    same path. Every OSError names ``path``, never the temporary name.
    """
    target = os.path.realpath(os.fspath(path))
    try:
        if os.path.isdir(target):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if os.path.exists(target) and not stat.S_ISREG(os.stat(target).st_mode):
            _write_through(target, write)
        else:
            _write_and_rename(target, write)
    except OSError as error:
        raise OSError(error.errno, error.strerror or str(error), os.fspath(path)) from error


def _write_and_rename(target: str, write: Callable[[str], None]) -> None:
    folder = os.path.dirname(target)
    _sweep_leftovers(target)
    tmp = os.path.join(folder, _temporary_name(target))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        write(tmp)
        _sync(tmp)
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)  # keep an existing file's bits
        except FileNotFoundError:
            mode = 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _sync(folder, directory=True)


def _write_through(target: str, write: Callable[[str], None]) -> None:
    """Write into a device or FIFO in place: ``write`` fills a scratch file, copied in after."""
    # O_NONBLOCK: opening a FIFO that has no reader fails (ENXIO) instead of hanging.
    fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)  # then write as usual
        with tempfile.TemporaryDirectory(prefix="lrkit-") as scratch:
            name = os.path.join(scratch, "out" + "".join(Path(target).suffixes[-2:]))
            write(name)
            with open(name, "rb") as source, os.fdopen(fd, "wb", closefd=False) as sink:
                shutil.copyfileobj(source, sink)
    finally:
        os.close(fd)


def _temporary_name(target: str) -> str:
    name = os.path.basename(target)
    stem = f"{_TMP_MARK}{_target_hash(target)}-{os.getpid()}-{secrets.token_hex(4)}"
    limit = _name_max(os.path.dirname(target))
    for suffix in ("".join(Path(name).suffixes), Path(name).suffix, ""):
        if len(os.fsencode(stem + suffix)) <= limit:
            return stem + suffix
    return stem  # pragma: no cover - the stem alone is 35 bytes


def _target_hash(target: str) -> str:
    return hashlib.sha1(os.fsencode(target)).hexdigest()[:10]


def _name_max(folder: str) -> int:
    try:
        return os.pathconf(folder or ".", "PC_NAME_MAX")
    except (OSError, ValueError):  # pragma: no cover - no pathconf here
        return 255


def _sweep_leftovers(target: str) -> None:
    """Remove temporary files of ``target`` left by processes that died while writing it."""
    if target in _swept:
        return
    _swept.add(target)
    prefix = f"{_TMP_MARK}{_target_hash(target)}-"
    try:
        entries = list(os.scandir(os.path.dirname(target)))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            try:
                os.remove(entry.path)
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _sync(path: str, directory: bool = False) -> None:
    """fsync a file, or a folder after a rename in it (where the file system allows)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:  # some file systems cannot sync a folder
            raise
    finally:
        os.close(fd)


# --- which process writes ---------------------------------------------------------

_TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'
)


def _tf_config_task() -> tuple[str | None, int, dict[str, Any]]:
    """(task type, task index, cluster) from ``TF_CONFIG``, read as TensorFlow reads it.

    Unset or empty: (None, 0, {}). Anything TensorFlow's ``TFConfigClusterResolver``
    would not read (not a JSON object, a task that is not an object, a type that
    is not a string, an index ``int()`` refuses) raises one ValueError.
    """
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return None, 0, {}

    def bad(why: str) -> ValueError:
        return ValueError(
            f"The environment variable TF_CONFIG must be a JSON object such as "
            f"{_TF_CONFIG_EXAMPLE}: {why}. Received: TF_CONFIG={raw!r}"
        )

    try:
        config = json.loads(raw)
    except ValueError as error:
        raise bad(f"it is not JSON ({error})") from None
    if not isinstance(config, dict):
        raise bad(f"it is a JSON {type(config).__name__}, not an object")
    cluster = config.get("cluster", {})
    task = config.get("task", {})
    if not isinstance(cluster, dict):
        raise bad('"cluster" is not an object')
    if not isinstance(task, dict):
        raise bad('"task" is not an object')
    kind = task.get("type")
    if kind is not None and not isinstance(kind, str):
        raise bad('"task"."type" is not a string')
    index = task.get("index", 0)
    try:
        if isinstance(index, bool) or isinstance(index, float):
            raise ValueError
        index = int(index)  # TensorFlow reads the index with int(): 0 and "0" alike
    except (TypeError, ValueError):
        raise bad('"task"."index" is not a whole number') from None
    if index < 0:
        raise bad('"task"."index" is negative')
    return kind, index, cluster


def is_chief() -> bool:
    """Whether this process should write files: the chief, or the only worker.

    Under tf.distribute's multi-worker strategies the cluster comes from
    ``TF_CONFIG``: the task of type "chief", or worker 0 when the cluster has no
    chief. Under JAX multi-process training, process 0. Everywhere else, True.
    A malformed ``TF_CONFIG`` raises a ValueError saying what is wrong.
    """
    kind, index, cluster = _tf_config_task()
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
