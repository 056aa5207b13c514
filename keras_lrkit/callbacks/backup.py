"""BackupAndRestore: Keras's backup of the weights and the epoch, with the keras_lrkit callbacks' state."""

from __future__ import annotations

import json
import os
from typing import Any

import keras

from .._io import is_chief
from .._keras_private import backup_metadata_path, backup_position
from .._warnings import warn
from ._fit import FitRecord, fit_record
from ._state import load_state, read_states, write_states


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's ``BackupAndRestore``, which also backs up the keras_lrkit callbacks of its fit.

    A drop-in for ``keras.callbacks.BackupAndRestore`` (a subclass, the same
    arguments): besides the weights, the optimizer and the epoch, each backup
    holds the state of every keras_lrkit callback in the fit (early stopping's
    best value, its patience count and best weights; the plateau reductions;
    the plotted table; the logged rates), and a resumed fit gives each one its
    state back, so an interrupted and resumed fit ends exactly as an
    uninterrupted one, whatever the order of the callbacks.

    - The backup of an epoch is written when every callback has taken that
      epoch in: when the next epoch begins (or, with
      ``delete_checkpoint=False``, when fit ends). A kill in between resumes
      from the epoch before, as a kill during the epoch does.
    - A state goes back to the callback with the same ``state_key()`` (its
      class and what it watches, or the ``name`` you gave it), never by
      position. A callback without a matching state starts afresh with one
      warning naming it. Two callbacks with the same key in one fit: give them
      names, or they start afresh.
    - The state file is untrusted input: read in full and checked before
      anything is applied, applied whole or not at all (the model's weights
      are never touched by a state that fails), and never a source of paths.
      A missing, damaged or mismatched state is one warning and a fresh start
      of the callbacks it concerns.
    - ``save_freq=<int>``: Keras resumes a backup made inside an epoch from
      that epoch's first batch, with the weights of the batch it was made at,
      so the resumed fit differs from an uninterrupted one. It warns once when
      fit begins. ``save_freq="epoch"`` (the default) resumes exactly.
    - Under distributed training, only the chief writes the callbacks' state.

    With Keras's own ``BackupAndRestore``, the keras_lrkit callbacks start
    afresh on a resume, and say so once.

    Args:
        backup_dir: the folder of the backup; nothing else may write there.
        save_freq: "epoch", or a number of batches (see above).
        double_checkpoint: keep the previous backup too (Keras's).
        delete_checkpoint: remove the folder when fit ends (Keras's).

    Examples:
        >>> from keras_lrkit import BackupAndRestore
        >>> backup = BackupAndRestore("runs/backup")
        >>> backup.save_freq
        'epoch'
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike,
        save_freq: str | int = "epoch",
        double_checkpoint: bool = False,
        delete_checkpoint: bool = True,
    ) -> None:
        super().__init__(
            os.fspath(backup_dir),
            save_freq=save_freq,
            double_checkpoint=double_checkpoint,
            delete_checkpoint=delete_checkpoint,
        )
        self._deferring = False  # inside Keras's on_epoch_end: its save waits
        self._due = False  # an epoch's backup waits for the next epoch to begin
        self._record: FitRecord | None = None
        self._folder = os.fspath(backup_dir)

    # --- resuming -------------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._due = False
        record = self._record = fit_record(self)
        record.backup, record.resumed = self, None
        if isinstance(self.save_freq, int) and not isinstance(self.save_freq, bool):
            warn(
                f"BackupAndRestore(save_freq={self.save_freq}) makes backups inside an epoch; "
                "Keras resumes such a backup from the epoch's first batch, with the weights "
                "of the batch it was made at, so the resumed fit differs from an "
                'uninterrupted one. save_freq="epoch" resumes exactly.'
            )
        super().on_train_begin(logs)  # Keras loads the weights and the epoch
        record.resumed = self._read()
        for callback in record.members():
            self._hand_over(callback)

    def _read(self) -> dict[str, Any] | None:
        """The states saved with the backup Keras loaded, by key; None for a fresh start."""
        try:
            with open(backup_metadata_path(self), encoding="utf-8") as f:
                metadata = json.load(f)
            position = {"epoch": int(metadata["epoch"]), "batch": int(metadata.get("batch", 0))}
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no backup: a fresh start, whatever else is in the folder
        try:
            return read_states(self._folder, position)
        except ValueError as error:
            warn(
                f"keras_lrkit cannot resume its callbacks' state: {error}. Training resumes "
                f"from the backup (epoch {position['epoch']}); the keras_lrkit callbacks "
                "start afresh."
            )
            return None

    def _hand_over(self, callback: Any) -> None:
        """Give ``callback`` its saved state; one that is missing or fails its checks: a fresh start."""
        record = self._record
        if record is None or record.resumed is None:
            return  # a fresh start, or a state file that was unreadable (said once)
        key = callback.state_key()
        twins = [c for c in record.members() if c is not callback and c.state_key() == key]
        if twins:
            record.warn_once(key, f"{key} is in this fit twice; neither resumes its state. "
                             "Give each a different name=.")  # fmt: skip
            return
        entry = record.resumed.get(key)
        if entry is None:
            warn(f"The backup holds no state for {key}; it starts afresh.")
            return
        try:
            callback.load_state_dict(load_state(self._folder, key, entry))
        except Exception as error:  # noqa: BLE001 - untrusted input: any failure is a fresh start
            warn(f"keras_lrkit cannot resume {key}: {error}. It starts afresh.")

    # --- saving ---------------------------------------------------------------------

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._deferring = True
        try:
            super().on_epoch_end(epoch, logs)
        finally:
            self._deferring = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._due:
            self._save_model()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._due and not self.delete_checkpoint:
            self._save_model()
        self._due = False
        super().on_train_end(logs)

    def _save_model(self) -> None:
        if self._deferring:  # the epoch's end: the callbacks after this one have not run yet
            self._due = True
            return
        self._due = False
        if self._record is not None and is_chief():
            try:
                self._write()
            except Exception as error:  # a failed write never stops training
                warn(f"keras_lrkit could not save its callbacks' state in {self._folder!r}: "
                     f"{error}. A resume from this backup starts them afresh.")  # fmt: skip
        super()._save_model()

    def _write(self) -> None:
        members = self._record.members()
        keys = [callback.state_key() for callback in members]
        states = {}
        for key, callback in zip(keys, members):
            if keys.count(key) > 1:
                self._record.warn_once(key, f"{key} is in this fit twice; neither resumes its "
                                       "state. Give each a different name=.")  # fmt: skip
                continue
            states[key] = callback.state_dict()
        write_states(self._folder, backup_position(self), states)
