"""The state protocol of keras_lrkit's callbacks, and the file that holds their states.

Each callback that keeps state across epochs owns it through three methods
(the model is torch's ``state_dict`` / ``load_state_dict`` and Lightning's
``Callback.state_dict``):

- ``state_key()``: what the callback is, as a string: its class and what it
  watches (``EarlyStoppingWithBestRestore(monitor='val_loss', mode='min')``),
  or the ``name`` the user gave it. A saved state goes back only to a callback
  with the same key, never by position.
- ``state_dict()``: plain data (``dict``, ``list``, ``str``, ``int``,
  ``float``, ``bool``, ``None``); a list of arrays travels as ``Arrays``.
- ``load_state_dict(state)``: reads ``state`` in full, and raises ValueError
  naming the field at the first thing wrong, before it changes anything; only
  then does it apply it. A state is applied whole or not at all.

``StateReader`` is what ``load_state_dict`` reads with. ``write_states`` and
``read_states`` keep the states of the last two backups in one folder (see
``keras_lrkit.BackupAndRestore``): ``keras_lrkit_state.json``, plus one
``.npz`` per list of arrays, under names keras_lrkit makes from the key and a
version number, never names read from a file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from .._io import atomic_write
from .._keras_private import resumed_epoch
from .._validate import check
from ._fit import current_record, join

STATE_FILE = "keras_lrkit_state.json"
FORMAT = 2
MAX_STATE_BYTES = 64 * 2**20  # the JSON of a run of a million logged rates is ~20 MB
_ARRAYS_PREFIX = "keras_lrkit_arrays-"


class StatefulCallback(keras.callbacks.Callback):
    """Base of the keras_lrkit callbacks that keep state: the protocol above, and joining the fit.

    A subclass calls ``_init_name(name)`` in ``__init__`` and ``_join()`` at the
    end of ``on_train_begin`` (after resetting itself), and implements
    ``_identity()`` (what, besides its class, tells it apart: ``{"monitor": ...}``),
    ``state_dict()`` and ``load_state_dict(state)``.
    """

    def _init_name(self, name: str | None) -> None:
        check("name", name, name is None or (isinstance(name, str) and name != ""),
              "None or a non-empty str")  # fmt: skip
        self.name = name
        self._first_epoch = True

    def _identity(self) -> dict[str, Any]:
        return {}

    def state_key(self) -> str:
        """What this callback is: its class and what it watches, or its ``name``; saved states match on it."""
        fields = {"name": self.name} if self.name is not None else self._identity()
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"

    def state_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_state_dict(self, state: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _reader(self, state: Any) -> StateReader:
        """A reader of ``state`` that holds exactly the fields ``state_dict()`` gives."""
        return StateReader(state, self.state_key(), keys=list(self.state_dict()))

    def _join(self) -> None:
        self._first_epoch = True
        join(self)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if not self._first_epoch:
            return
        self._first_epoch = False
        record = current_record(self.model)
        if (
            record is not None
            and record.backup is None
            and epoch > 0
            and (epoch == resumed_epoch(self.model))
        ):
            record.warn_once(
                "keras-backup",
                f"This fit resumed at epoch {epoch} from a backup of Keras's BackupAndRestore, "
                "which does not hold the state of keras_lrkit's callbacks: they start afresh. "
                "Use keras_lrkit.BackupAndRestore (the same arguments) to resume them too.",
            )


class Arrays:
    """A list of arrays in a state (the best weights): written once per ``version``, read back as a list."""

    def __init__(self, version: int, get: Callable[[], list[np.ndarray]]) -> None:
        self.version = int(version)
        self.get = get  # called only when the file for this version is not written yet


def _arrays_file(key: str, version: int) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{_ARRAYS_PREFIX}{digest}-{int(version)}.npz"


class StateReader:
    """Reads the fields of one saved state; each read checks the field or raises ValueError naming it."""

    def __init__(self, state: Any, owner: str, keys: Sequence[str] | None = None) -> None:
        if not isinstance(state, dict):
            raise ValueError(f"{owner}'s state is a {type(state).__name__}, not a dict")
        if keys is not None and set(state) != set(keys):
            unknown, missing = (
                sorted(map(str, set(state) - set(keys))),
                sorted(set(keys) - set(state)),
            )
            raise ValueError(f"{owner}'s state has the fields {unknown[:5]} it never has"
                             if unknown else f"{owner}'s state lacks {missing}")  # fmt: skip
        self.state, self.owner = state, owner

    def field(self, key: str) -> Any:
        """The raw value of ``key`` (ValueError where it is missing), to check by hand."""
        if key not in self.state:
            raise ValueError(f"{self.owner}'s state has no `{key}`")
        return self.state[key]

    def _bad(self, key: str, what: str) -> ValueError:
        value = repr(self.state[key])
        value = value if len(value) <= 80 else value[:77] + "..."
        return ValueError(f"{self.owner}'s state has `{key}`={value}, not {what}")

    def integer(self, key: str, low: int = 0, high: int | None = None) -> int:
        value = self.field(key)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= low
                and (high is None or value <= high)):  # fmt: skip
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise self._bad(key, f"an int {bound}")
        return value

    def flag(self, key: str) -> bool:
        value = self.field(key)
        if not isinstance(value, bool):
            raise self._bad(key, "a bool")
        return value

    def number(self, key: str, *, optional: bool = False, low: float = -math.inf) -> float | None:
        """A finite number >= ``low`` (or None where ``optional``)."""
        value = self.field(key)
        if value is None and optional:
            return None
        if not (_is_number(value) and math.isfinite(value) and value >= low):
            raise self._bad(key, "a finite number" + (f" >= {low:g}" if low > -math.inf else ""))
        return float(value)

    def choice(self, key: str, options: Sequence[Any]) -> Any:
        value = self.field(key)
        if not any(value is o or (type(value) is type(o) and value == o) for o in options):
            raise self._bad(key, f"one of {list(options)}")
        return value

    def numbers(self, key: str, *, gaps: bool = False, low: float = -math.inf) -> list[float]:
        """A list of numbers >= ``low``: finite, or NaN where ``gaps`` (None reads as NaN too)."""
        values = self.field(key)
        if not isinstance(values, list):
            raise self._bad(key, "a list of numbers")
        out = []
        for v in values:
            if gaps and v is None:
                out.append(math.nan)
                continue
            ok = _is_number(v) and (math.isfinite(v) and v >= low or gaps and math.isnan(v))
            if not ok:
                raise self._bad(key, "a list of finite numbers" + (" or NaN" if gaps else ""))
            out.append(float(v))
        return out

    def arrays(self, key: str, like: Sequence[Any]) -> list[np.ndarray] | None:
        """None, or arrays of the shapes and dtypes of ``like`` (the model's weights), all finite."""
        values = self.field(key)
        if values is None:
            return None
        if not isinstance(values, list) or len(values) != len(like):
            count = len(values) if isinstance(values, list) else type(values).__name__
            raise ValueError(
                f"{self.owner}'s state has {count} arrays in `{key}`; the model has {len(like)}"
            )
        for i, (value, variable) in enumerate(zip(values, like)):
            shape, dtype = tuple(variable.shape), np.dtype(variable.dtype)
            if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype != dtype:
                got = (value.shape, value.dtype) if isinstance(value, np.ndarray) else type(value)
                raise ValueError(
                    f"{self.owner}'s state has array {i} of `{key}` as {got}; the model's "
                    f"{variable.path if hasattr(variable, 'path') else i} is {(shape, dtype)}"
                )
            if value.dtype.kind in "fc" and not np.isfinite(value).all():
                raise ValueError(
                    f"{self.owner}'s state has non-finite values in array {i} of `{key}`"
                )
        return values


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- the file -------------------------------------------------------------------------


def write_states(folder: str, position: dict[str, int], states: dict[str, dict]) -> None:
    """Record ``states`` (by key) for the backup at ``position``, beside the previous backup's.

    Arrays are written first, each once per version; then the JSON, atomically;
    then files no kept record refers to are removed. A kill at any moment leaves
    a JSON whose records refer only to files that exist.
    """
    os.makedirs(folder, exist_ok=True)
    entries = {}
    for key, state in states.items():
        plain, arrays = {}, None
        for field, value in state.items():
            if isinstance(value, Arrays):
                arrays, plain[field] = [field, value.version], None
                target = os.path.join(folder, _arrays_file(key, value.version))
                if not os.path.exists(target):
                    data = value.get()
                    atomic_write(target, lambda tmp, d=data: _save_arrays(tmp, d))
            else:
                plain[field] = value
        entries[key] = {"state": plain, "arrays": arrays}
    path = os.path.join(folder, STATE_FILE)
    previous = [r for r in _records(path) if r.get("backup") != position][-1:]
    records = [*previous, {"backup": dict(position), "callbacks": entries}]
    text = json.dumps({"format": FORMAT, "records": records})
    atomic_write(path, lambda tmp: _write_text(tmp, text))
    _remove_unreferenced(folder, records)


def read_states(folder: str, position: dict[str, int]) -> dict[str, dict]:
    """The entries recorded for the backup at ``position``, by key: ValueError where there are none.

    Only the JSON's structure is checked here; each callback checks its own
    state. Arrays are read by ``load_state``, for the callbacks of the fit only.
    """
    path = os.path.join(folder, STATE_FILE)
    if not os.path.exists(path):
        raise ValueError(f"{path!r} is missing")
    records = _records(path, strict=True)
    record = next((r for r in records if r.get("backup") == position), None)
    if record is None:
        raise ValueError(f"{path!r} holds no state for the backup of epoch {position['epoch']}")
    callbacks = record.get("callbacks")
    if not isinstance(callbacks, dict) or not all(
        isinstance(e, dict) and set(e) == {"state", "arrays"} for e in callbacks.values()
    ):
        raise ValueError(f"{path!r} is damaged")
    return callbacks


def load_state(folder: str, key: str, entry: dict) -> Any:
    """``entry``'s state, with the arrays it refers to read back into their field."""
    state, arrays = entry["state"], entry["arrays"]
    if arrays is None:
        return state
    ok = isinstance(arrays, list) and len(arrays) == 2 and isinstance(state, dict)
    field, version = arrays if ok else (None, None)
    if not (ok and field in state and state[field] is None and _is_version(version)):
        raise ValueError(f"the state of {key} refers to its arrays as {arrays!r}")
    path = os.path.join(folder, _arrays_file(key, version))
    with np.load(path, allow_pickle=False) as data:
        names = [f"a{i}" for i in range(len(data.files))]
        if sorted(names) != sorted(data.files):
            raise ValueError(f"{path!r} is damaged")
        values = [np.array(data[name]) for name in names]
    return {**state, field: values}


def _is_version(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _records(path: str, strict: bool = False) -> list[dict]:
    try:
        if os.path.getsize(path) > MAX_STATE_BYTES:
            raise ValueError(f"{path!r} is larger than {MAX_STATE_BYTES} bytes")
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path!r} is not a keras_lrkit state file of format {FORMAT}")
        records = data.get("records")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ValueError(f"{path!r} is damaged")
        return records
    except (OSError, ValueError, RecursionError) as error:
        if strict:
            raise ValueError(str(error) if isinstance(error, ValueError) else
                             f"{path!r} cannot be read: {error!r}") from error  # fmt: skip
        return []


def _save_arrays(path: str, values: list[np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **{f"a{i}": v for i, v in enumerate(values)})


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _remove_unreferenced(folder: str, records: list[dict]) -> None:
    kept = set()
    for record in records:
        callbacks = record.get("callbacks")
        for key, entry in callbacks.items() if isinstance(callbacks, dict) else ():
            arrays = entry.get("arrays") if isinstance(entry, dict) else None
            if isinstance(arrays, list) and len(arrays) == 2 and _is_version(arrays[1]):
                kept.add(_arrays_file(key, arrays[1]))
    for name in os.listdir(folder):
        if name.startswith(_ARRAYS_PREFIX) and name.endswith(".npz") and name not in kept:
            try:
                os.remove(os.path.join(folder, name))
            except OSError:
                pass
