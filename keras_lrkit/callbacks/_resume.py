"""Callback state that survives an interruption, saved with Keras's BackupAndRestore backup.

When ``keras.callbacks.BackupAndRestore(backup_dir)`` is in a fit, every
keras_lrkit callback of that fit saves its state in ``backup_dir`` just before
each backup is written, and takes it back when a resumed fit loads the backup,
whatever the order of the callbacks:

- ``keras_lrkit_state.json`` holds the states of the last two backups, each
  labelled with the backup's position (``{"epoch", "batch"}``, as
  BackupAndRestore records it). It is written atomically before the backup, so
  a kill at any moment leaves a state that matches whichever backup survives.
  A backup made at an epoch's end waits until every keras_lrkit callback has
  taken that epoch in (those listed after BackupAndRestore run after it), so
  the state and the weights hold the same epochs.
- arrays (the best weights) go to ``keras_lrkit_<callback>-<run>-<n>.npz``,
  written once and removed when no kept state refers to them.

A resumed fit takes the state whose position matches the backup that
BackupAndRestore loaded. A folder without a backup starts clean (a stale file
from another run is never read); a missing or damaged state gives a warning and
a clean start. Under distributed training only the chief writes.

A callback takes part by calling ``join_fit(self)`` in ``on_train_begin``
(after resetting itself) and by having ``_resume_state()`` (a JSON-able dict,
plus ``(name, values)`` where ``values()`` gives a list of arrays, or None) and
``_resume_from(state, arrays)``.
"""

from __future__ import annotations

import json
import os
import secrets
import weakref
from typing import Any

import numpy as np

from .._io import atomic_write, is_chief
from .._keras_private import backup_metadata_path, backup_position, hook_backup_and_restore
from .._warnings import warn
from ._fit import fit_token

STATE_FILE = "keras_lrkit_state.json"
_FORMAT = 1

# The keras_lrkit callbacks in each model's current fit, in the order they began.
_fits: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _fit_of(model: Any) -> dict[str, Any]:
    token = fit_token(model)
    fit = _fits.get(model)
    if fit is None or fit["token"] != token:
        fit = {
            "token": token,
            "callbacks": [],
            "resumed": None,
            "run": secrets.token_hex(4),
            "done": {},  # epochs each callback has taken in, by its key
            "waiting": None,  # a backup waiting for the callbacks: (bar, its save)
        }
        _fits[model] = fit
    return fit


def _current_fit(model: Any) -> dict[str, Any] | None:
    """The record of ``model``'s current fit, if a keras_lrkit callback has joined it."""
    try:
        fit = _fits.get(model)
    except TypeError:  # an unhashable stand-in model
        return None
    return fit if fit is not None and fit["token"] == fit_token(model) else None


def _key(callback: Any, callbacks: list[weakref.ref]) -> str:
    """``ClassName:n``: the n-th callback of its class in the fit (stable across restarts)."""
    name = type(callback).__name__
    same = [c for c in (ref() for ref in callbacks) if type(c).__name__ == name]
    return f"{name}:{same.index(callback)}"


def join_fit(callback: Any) -> None:
    """Register a keras_lrkit callback in its fit; give it its resumed state if there is one."""
    try:
        fit = _fit_of(callback.model)
    except TypeError:  # an unhashable stand-in model
        return
    fit["callbacks"].append(weakref.ref(callback))
    if fit["resumed"] is not None:
        _hand_over(fit, callback)


def _members(fit: dict[str, Any]) -> list[tuple[str, Any]]:
    callbacks = [c for c in (ref() for ref in fit["callbacks"]) if c is not None]
    return [(_key(c, fit["callbacks"]), c) for c in callbacks]


def _hand_over(fit: dict[str, Any], callback: Any) -> None:
    """Give ``callback`` its resumed state; a state it cannot read warns and it starts afresh."""
    try:
        _give_state(fit, callback)
    except (OSError, ValueError, KeyError) as error:
        warn(f"keras_lrkit cannot resume {type(callback).__name__}'s state: {error}.")


def _give_state(fit: dict[str, Any], callback: Any) -> None:
    record, folder = fit["resumed"]
    key = _key(callback, fit["callbacks"])
    entry = record["callbacks"].get(key)
    if entry is None:
        return  # a callback the interrupted fit did not have: it starts afresh
    arrays = None
    if entry.get("arrays"):
        with np.load(os.path.join(folder, entry["arrays"])) as data:
            arrays = [data[f"a{i}"] for i in range(len(data.files))]
    callback._resume_from(entry["state"], arrays)


# --- saving, just before BackupAndRestore writes its backup ---------------------------


def epoch_done(callback: Any, epoch: int) -> None:
    """A keras_lrkit callback has taken ``epoch`` in: a backup waiting for it may go ahead."""
    fit = _current_fit(callback.model)
    if fit is None:
        return
    fit["done"][_key(callback, fit["callbacks"])] = epoch + 1
    if fit["waiting"] is not None:
        bar, save = fit["waiting"]
        if _ready(fit, bar):
            fit["waiting"] = None
            _save_state(fit, bar)
            save()


def _ready(fit: dict[str, Any], bar: Any) -> bool:
    epochs = backup_position(bar)["epoch"]
    return all(fit["done"].get(key, 0) >= epochs for key, _ in _members(fit))


def _around_backup(bar: Any, save: Any) -> None:
    """BackupAndRestore is about to save: our state first, or both once our callbacks catch up."""
    fit = _current_fit(bar.model)
    if fit is None or not _members(fit):
        save()
        return
    if not _ready(fit, bar):
        fit["waiting"] = (bar, save)  # the epoch's end: callbacks listed after BackupAndRestore
        return
    _save_state(fit, bar)
    save()


def _save_state(fit: dict[str, Any], bar: Any) -> None:
    if not is_chief():
        return
    members = _members(fit)
    folder = bar.backup_dir
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, STATE_FILE)
    previous = _read(path)
    records = [] if previous is None else previous["records"][-1:]
    record = {"backup": backup_position(bar), "run": fit["run"], "callbacks": {}}
    for key, callback in members:
        state, arrays = callback._resume_state()
        entry = {"state": state, "arrays": None}
        if arrays is not None:
            name, values = arrays  # values: a function, called only when the file is missing
            entry["arrays"] = f"keras_lrkit_{key.replace(':', '-')}-{fit['run']}-{name}.npz"
            target = os.path.join(folder, entry["arrays"])
            if not os.path.exists(target):  # written once: the same best weights keep their file
                arrays_now = values()
                atomic_write(target, lambda tmp, v=arrays_now: _save_arrays(tmp, v))
        record["callbacks"][key] = entry
    records = [r for r in records if r["backup"] != record["backup"]] + [record]
    atomic_write(path, lambda tmp: _write_json(tmp, {"format": _FORMAT, "records": records}))
    _remove_unreferenced(folder, records)


def _save_arrays(path: str, values: list[np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **{f"a{i}": v for i, v in enumerate(values)})


def _write_json(path: str, data: dict) -> None:
    with open(path, "w") as f:
        json.dump(data, f)


def _remove_unreferenced(folder: str, records: list[dict]) -> None:
    kept = {e["arrays"] for r in records for e in r["callbacks"].values() if e["arrays"]}
    for name in os.listdir(folder):
        if name.startswith("keras_lrkit_") and name.endswith(".npz") and name not in kept:
            try:
                os.remove(os.path.join(folder, name))
            except OSError:
                pass


def _read(path: str) -> dict | None:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    if not isinstance(data.get("records"), list):
        return None
    return data


# --- taking it back, right after BackupAndRestore loads its backup ---------------------


def _after_restore(bar: Any) -> None:
    model = bar.model
    try:
        fit = _fit_of(model)
    except TypeError:
        return
    fit["resumed"] = None
    try:
        with open(backup_metadata_path(bar)) as f:
            metadata = json.load(f)
    except (OSError, ValueError):
        return  # no backup: a fresh start, whatever else is in the folder
    folder = bar.backup_dir
    path = os.path.join(folder, STATE_FILE)
    position = {"epoch": int(metadata.get("epoch", 0)), "batch": int(metadata.get("batch", 0))}
    data = _read(path)
    record = None
    if data is not None:
        record = next((r for r in data["records"] if r.get("backup") == position), None)
    if record is None:
        reason = (
            "it is missing" if not os.path.exists(path) else "it is damaged or from another backup"
        )
        warn(
            f"keras_lrkit cannot resume its callbacks' state from {path!r}: {reason}. "
            f"Training resumes from BackupAndRestore's backup (epoch {position['epoch']}); "
            "the keras_lrkit callbacks start afresh."
        )
        return
    fit["run"] = record["run"]
    fit["resumed"] = (record, folder)
    for _, callback in _members(fit):
        _hand_over(fit, callback)


hook_backup_and_restore(_around_backup, _after_restore)
