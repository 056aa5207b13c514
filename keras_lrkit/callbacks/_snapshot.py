"""One on-device copy of a model's weights, taken in one compiled call and put back without a host round trip.

Keras's own EarlyStopping copies every weight to host memory (``get_weights``)
and back (``set_weights``), one variable at a time. Here the copy stays on the
device that holds the variables, in a single compiled program per direction:

- TensorFlow: backup ``tf.Variable``s made once (mirrored under a
  tf.distribute strategy), filled by one ``tf.function`` of ``assign``s.
- JAX: one jitted tree copy; the previous backup's buffers are donated, so
  the copy lands in place and memory holds one backup. A restore hands the
  backup's arrays back to the variables without a copy.
- PyTorch: backup tensors made once, filled with ``torch._foreach_copy_``.
- Any other backend: ``get_weights`` / ``set_weights``.

Every path copies bits exactly: a restore gives back bit-identical weights.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from .._keras_private import assign_exact, stored_array


class WeightSnapshot:
    """Holds one copy of ``variables``; ``capture()`` overwrites it, ``restore()`` puts it back."""

    def __init__(self, variables: Sequence[Any]) -> None:
        self.variables = list(variables)
        self.captured = False
        backend = keras.backend.backend()
        impl = {"tensorflow": _TensorFlowCopy, "jax": _JaxCopy, "torch": _TorchCopy}
        self._impl = impl.get(backend, _HostCopy)(self.variables)

    def covers(self, variables: Sequence[Any]) -> bool:
        """Whether this snapshot holds exactly ``variables`` (the same objects, in order)."""
        return len(variables) == len(self.variables) and all(
            a is b for a, b in zip(variables, self.variables)
        )

    def capture(self) -> None:
        self._impl.capture()
        self.captured = True

    def restore(self) -> None:
        if not self.captured:
            raise RuntimeError("restore() before any capture()")
        self._impl.restore()

    def set_values(self, values: Sequence[np.ndarray]) -> None:
        """Make ``values`` (host arrays of the variables' shapes and dtypes) the captured copy.

        The variables keep what they hold: only the copy changes.
        """
        self._impl.set_values(list(values))
        self.captured = True

    def values(self) -> list[np.ndarray]:
        """Host copies of the captured weights, in the order of ``variables``."""
        if not self.captured:
            raise RuntimeError("values() before any capture()")
        return [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in self._impl.backup()]


class _TensorFlowCopy:
    def __init__(self, variables: list[Any]) -> None:
        import tensorflow as tf

        self._model_vars = [getattr(v, "value", v) for v in variables]
        strategy = tf.distribute.get_strategy()
        with strategy.scope():
            self._backup = [
                tf.Variable(v.read_value(), trainable=False, name="lrkit_best")
                for v in self._model_vars
            ]

        @tf.function(autograph=False)
        def copy(dst: list[Any], src: list[Any]) -> None:
            for d, s in zip(dst, src):
                d.assign(s)

        self._copy = copy

    def capture(self) -> None:
        self._copy(self._backup, self._model_vars)

    def restore(self) -> None:
        self._copy(self._model_vars, self._backup)

    def set_values(self, values: list[np.ndarray]) -> None:
        for backup, value in zip(self._backup, values):
            backup.assign(value)

    def backup(self) -> list[Any]:
        return self._backup


class _JaxCopy:
    """JAX arrays are immutable: the backup is a list of arrays of its own.

    A capture copies every weight in one jitted program. It donates the
    previous backup and writes into it in place
    (``dynamic_update_slice`` of the whole array: a real copy kernel that XLA
    runs in the donated buffer), so memory holds one backup however often the
    best changes. A restore hands the backup's arrays to the variables without
    copying; the next capture then copies afresh, since training will donate
    those arrays.

    (Measured on an H200 with ResNet50's 103 MB, see benchmarks/results: one
    flat buffer per dtype made the capture about twice as fast but needed 1.6x
    the weights' memory at its peak, and made the restore slower.)
    """

    def __init__(self, variables: list[Any]) -> None:
        import jax
        import jax.numpy as jnp
        from jax import lax

        self._variables = variables
        self._backup: list[Any] | None = None
        self._shared = False  # the backup's arrays are the model's (after a restore)

        def copy(values: list[Any]) -> list[Any]:
            return [jnp.copy(v) for v in values]

        def copy_into(old: list[Any], values: list[Any]) -> list[Any]:
            return [lax.dynamic_update_slice(o, v, (0,) * v.ndim) for o, v in zip(old, values)]

        self._copy = jax.jit(copy)
        self._copy_into = jax.jit(copy_into, donate_argnums=0)

    def capture(self) -> None:
        values = _current_values(self._variables)
        if self._backup is None or self._shared:
            self._backup = self._copy(values)
            self._shared = False
        else:
            with warnings.catch_warnings():
                # A platform that cannot donate copies instead: still exact.
                warnings.filterwarnings("ignore", "Some donated buffers were not usable")
                self._backup = self._copy_into(self._backup, values)

    def restore(self) -> None:
        for variable, value in zip(self._variables, self._backup):
            # Bit-for-bit copies of the variables' own arrays: the dtype, shape and
            # sharding checks of assign() cannot fail, and cost 30x the assignment.
            assign_exact(variable, value)
        self._shared = True

    def set_values(self, values: list[np.ndarray]) -> None:
        import jax

        current = _current_values(self._variables)
        self._backup = [jax.device_put(v, c.sharding) for v, c in zip(values, current)]
        self._shared = False

    def backup(self) -> list[Any]:
        return self._backup


def _current_values(variables: list[Any]) -> list[Any]:
    """The arrays the variables hold now (``.value``'s scope checks cost 0.3-0.7 ms for ResNet50's 320)."""
    return [stored_array(v) for v in variables]


class _TorchCopy:
    def __init__(self, variables: list[Any]) -> None:
        import torch

        self._torch = torch
        self._variables = variables
        with torch.no_grad():
            self._backup = [torch.empty_like(v.value) for v in variables]

    def _copy(self, dst: list[Any], src: list[Any]) -> None:
        with self._torch.no_grad():
            self._torch._foreach_copy_(dst, src)

    def capture(self) -> None:
        self._copy(self._backup, _current_values(self._variables))

    def restore(self) -> None:
        self._copy(_current_values(self._variables), self._backup)

    def set_values(self, values: list[np.ndarray]) -> None:
        self._copy(self._backup, [self._torch.as_tensor(v) for v in values])

    def backup(self) -> list[Any]:
        return [b.detach().cpu() for b in self._backup]


class _HostCopy:
    def __init__(self, variables: list[Any]) -> None:
        self._variables = variables
        self._backup: list[Any] = []

    def capture(self) -> None:
        self._backup = [keras.ops.convert_to_numpy(v).copy() for v in self._variables]

    def restore(self) -> None:
        for variable, value in zip(self._variables, self._backup):
            variable.assign(value)

    def set_values(self, values: list[np.ndarray]) -> None:
        self._backup = [np.array(v, copy=True) for v in values]

    def backup(self) -> list[Any]:
        return self._backup
