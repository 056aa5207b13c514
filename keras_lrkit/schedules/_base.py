"""What every keras_lrkit schedule shares: units, the step's arithmetic, bounds, validation, config.

The step a schedule receives is kept whole where it is whole: an integer step
(the optimizer's iteration counter) is compared with milestones and boundaries
in integer arithmetic, so a switch lands on its exact step at any count the
counter holds (float32 holds every integer only up to 2**24). Smooth formulas
then read the step, or the time since a boundary, as float32.

A negative step reads as step 0. On torch, Keras's ``ops.maximum`` and
``ops.floor_divide`` narrow int64 to int32 (``keras.backend.result_type``
follows JAX's 32-bit default), so integer steps go through comparisons,
``ops.where`` and the tensors' own ``-`` and ``//`` there.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from .._validate import constructor_arguments, fail, is_choice, is_int, is_real

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule

# Every schedule computes in this dtype, the dtype of a float learning rate in
# Keras's own schedules and of the optimizer's learning-rate variable.
DTYPE = "float32"
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # the smallest normal float32
_FLOAT32_RANGE = f"{FLOAT32_TINY:.3g} to {FLOAT32_MAX:.3g}"

# Real schedules nest a few levels (a warmup around a chain of decays). A config
# nested deeper is refused before it costs anything to build.
MAX_DEPTH = 32


def float32_holds(value: float) -> bool:
    """Whether float32 holds ``value`` as a normal number (or exactly 0)."""
    return value == 0 or FLOAT32_TINY <= abs(value) <= FLOAT32_MAX


def check_rate(name: str, value: Any) -> float:
    """A learning rate: a real number >= 0 that float32 holds, returned as a float."""
    if not is_real(value) or value < 0 or not float32_holds(float(value)):
        raise fail(name, f"a float >= 0 that float32 holds (0, or {_FLOAT32_RANGE})", value)
    return float(value)


def check_floor(min_learning_rate: Any, initial_learning_rate: float) -> float:
    """``min_learning_rate``: a rate (see ``check_rate``) no higher than the peak it decays from."""
    floor = check_rate("min_learning_rate", min_learning_rate)
    if floor > initial_learning_rate:
        raise fail("min_learning_rate", f"<= initial_learning_rate={initial_learning_rate!r}",
                   min_learning_rate)  # fmt: skip
    return floor


def check_between(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """A factor or fraction in [low, high] (either end open) that float32 holds, as a float."""
    ok = is_real(value) and float32_holds(float(value))
    ok = ok and (low < value if open_low else low <= value)
    ok = ok and (value < high if open_high else value <= high)
    if not ok:
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise fail(name, f"a float in {interval} that float32 holds", value)
    return float(value)


def check_positive(name: str, value: Any, unit: int = 1) -> float | int:
    """A duration or scale > 0 that float32 holds, also as ``value * unit`` steps (ints stay ints)."""
    if not is_real(value) or value <= 0:
        raise fail(name, "> 0" if is_real(value) else "a finite number > 0", value)
    if not (float32_holds(float(value)) and float(value) * unit <= FLOAT32_MAX):
        steps = f", times steps_per_epoch={unit}," if unit > 1 else ""
        raise fail(name, f"a number that float32 holds{steps} ({_FLOAT32_RANGE})", value)
    return int(value) if is_int(value) else float(value)


# ``steps_per_epoch=FROM_FIT``: the number of batches fit runs per epoch, which a
# keras_lrkit callback in the fit gives the schedule when training begins.
FROM_FIT = "fit"


def check_steps_per_epoch(value: Any) -> int | str | None:
    if value is None or is_choice(value, (FROM_FIT,)):
        return value
    if not is_int(value) or value <= 0 or value > 2**31 - 1:
        raise fail("steps_per_epoch", 'None, "fit" or a positive int (at most 2**31 - 1)', value)
    return int(value)


def check_increasing(name: str, values: Any, *, allow_empty: bool = False) -> list[float | int]:
    """A strictly increasing sequence of finite numbers >= 0, as a list."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        try:
            values = list(values)
        except TypeError:
            raise fail(name, "a sequence of numbers", values) from None
    values = list(values)
    if not values and not allow_empty:
        raise fail(name, "a non-empty sequence", values)
    if not all(is_real(v) and v >= 0 for v in values):
        raise fail(name, "a sequence of finite numbers >= 0", values)
    checked = [int(v) if is_int(v) else float(v) for v in values]
    if any(b <= a for a, b in zip(checked, checked[1:])):
        raise fail(name, "strictly increasing", values)
    return checked


def check_schedule(name: str, value: Any) -> LearningRateSchedule:
    if not isinstance(value, LearningRateSchedule):
        raise fail(name, "a keras LearningRateSchedule", value)
    return value


def check_depth(name: str, children: Sequence[LearningRateSchedule]) -> int:
    """The nesting depth of a schedule built from ``children``; ValueError past MAX_DEPTH."""
    depth = 1 + max(getattr(child, "_depth", 1) for child in children)
    if depth > MAX_DEPTH:
        raise ValueError(
            f"Argument `{name}` must nest at most {MAX_DEPTH} schedules deep. "
            f"Received: {name} holding schedules {depth - 1} deep"
        )
    return depth


# --- the step ----------------------------------------------------------------


def index_dtype() -> str:
    """int64, or int32 on JAX without ``jax_enable_x64`` (where the optimizer counts in int32)."""
    if keras.backend.backend() == "jax":
        import jax

        return "int64" if jax.config.jax_enable_x64 else "int32"
    return "int64"


def is_integer(step: Any) -> bool:
    dtype = keras.backend.standardize_dtype(step.dtype)
    return "int" in dtype or dtype == "bool"


def as_step(step: Any) -> Any:
    """The step as a tensor: whole steps as integers (int64 where the backend has it), others float32."""
    step = ops.convert_to_tensor(step)
    return ops.cast(step, index_dtype() if is_integer(step) else DTYPE)


def as_float(step: Any) -> Any:
    return ops.cast(step, DTYPE) if is_integer(step) else step


def at_least_zero(x: Any) -> Any:
    """``max(x, 0)``, keeping the integer dtype (torch's ops.maximum would narrow int64)."""
    if is_integer(x) and keras.backend.backend() == "torch":
        return ops.where(x > 0, x, ops.zeros_like(x))
    return ops.maximum(x, 0)


def elapsed(step: Any) -> Any:
    """The step as float32 time, a negative step read as 0."""
    return ops.maximum(as_float(step), 0.0)


def _largest(step: Any) -> int:
    return int(np.iinfo(keras.backend.standardize_dtype(step.dtype)).max)


def reached(step: Any, boundary: float) -> Any:
    """``step >= boundary``, exact for integer steps of any size their dtype holds."""
    if not is_integer(step):
        return ops.greater_equal(step, boundary)
    first = math.ceil(boundary)  # the first whole step at or after the boundary
    if first > _largest(step):
        return ops.zeros_like(step, dtype="bool")  # a step the counter never reaches
    return ops.greater_equal(step, first)


def since(step: Any, boundary: float) -> Any:
    """The time since ``boundary`` in steps (0 before it): whole when both are whole."""
    if is_integer(step) and float(boundary).is_integer():
        whole = int(boundary)
        if whole > _largest(step):
            return ops.zeros_like(step)
        return at_least_zero(step - whole)
    return ops.maximum(as_float(step) - boundary, 0.0)


def periods(step: Any, period: float) -> tuple[Any, Any]:
    """(k, since), float32: the whole periods of ``period`` steps done by ``step``, and the steps since.

    In integers for an integer step and a whole period, so a new period starts
    on its exact step at any count; in float32 otherwise, with ``k`` corrected
    so that ``k * period <= step < (k + 1) * period`` holds (XLA may divide by
    multiplying with the reciprocal: 107 / 107 -> 0.99999994). A negative step
    reads as step 0.
    """
    if is_integer(step) and float(period).is_integer():
        whole = int(period)
        step = at_least_zero(step)
        if whole > _largest(step):  # a period the counter never completes
            return ops.zeros_like(as_float(step)), as_float(step)
        k = step // whole  # the tensor's own operator: ops.floor_divide narrows int64 on torch
        return ops.cast(k, DTYPE), ops.cast(step - k * whole, DTYPE)
    t = elapsed(step)
    k = ops.floor(t / float(period))
    k = ops.where((k + 1.0) * period <= t, k + 1.0, k)
    k = ops.where(k * period > t, k - 1.0, k)
    return k, t - k * period


def evaluate(schedule: LearningRateSchedule, step: Any) -> Any:
    """``schedule(step)``, for any schedule and any array of steps.

    keras_lrkit's schedules take arrays everywhere. Another schedule may take
    only one step (Keras's ``PiecewiseConstantDecay`` on PyTorch): where an
    array fails, or gives back the wrong shape, it is evaluated one step at a
    time (only ever outside a compiled step, which passes one step).
    """
    if isinstance(schedule, Schedule):
        return schedule(step)
    step = ops.convert_to_tensor(step)
    if len(step.shape) == 0:
        return schedule(step)
    try:
        value = schedule(step)
        if tuple(ops.shape(value)) == tuple(ops.shape(step)):
            return value
    except Exception:  # noqa: BLE001 - any failure of a vector call: one step at a time
        pass
    flat = np.asarray(ops.convert_to_numpy(step)).reshape(-1)
    values = [ops.cast(schedule(ops.convert_to_tensor(x)), DTYPE) for x in flat]
    return ops.reshape(ops.stack(values), ops.shape(step))


def is_live(schedule: Any) -> bool:
    """Whether ``schedule``'s value at a step can change while it runs: it, or a schedule nested
    in it, holds ``LiveArrays`` (a ``Reduced``'s reductions, a ``Cooldown``'s start)."""
    if any(isinstance(value, LiveArrays) for value in vars(schedule).values()):
        return True
    children = schedule._children() if isinstance(schedule, Schedule) else []
    return any(is_live(child) for child in children)


def join(
    step: Any,
    boundaries: Sequence[float],
    pieces: Sequence[Callable[[Any], Any]],
) -> Any:
    """``pieces[i](step - boundaries[i-1])`` on ``[boundaries[i-1], boundaries[i])``.

    The boundaries are in steps; every piece runs on its own clock. All pieces
    are evaluated (no Python branching on the step) and the right value is
    selected with ``ops.where``, so this compiles and vectorizes.
    """

    def call(piece: Any, x: Any) -> Any:
        return evaluate(piece, x) if isinstance(piece, LearningRateSchedule) else piece(x)

    value = call(pieces[0], step)
    for boundary, piece in zip(boundaries, pieces[1:]):
        value = ops.where(reached(step, boundary), call(piece, since(step, boundary)), value)
    return value


class LiveArrays:
    """Arrays that a compiled train step reads at every step, changed by assignment: never a retrace.

    On TensorFlow and PyTorch they are Keras variables, which a compiled step
    reads where they are. JAX's compiled step reads only the variables passed
    into it (the model's and the optimizer's, whose number a saved file fixes),
    so there they are host arrays, read by ``jax.pure_callback`` at each step.
    What keras_lrkit changes at run time (``Reduced``'s reductions, a
    cooldown's start) lives here.
    """

    def __init__(self, *arrays: np.ndarray, name: str) -> None:
        self._jax = keras.backend.backend() == "jax"
        if self._jax:
            self._arrays = tuple(arrays)
        else:
            self._arrays = tuple(
                keras.Variable(a, dtype=str(a.dtype), trainable=False, name=f"{name}_{i}")
                for i, a in enumerate(arrays)
            )

    def write(self, *arrays: np.ndarray) -> None:
        if self._jax:  # replaced, never changed in place: a callback may be reading the old ones
            self._arrays = tuple(arrays)
        else:
            for variable, array in zip(self._arrays, arrays):
                variable.assign(array)

    def read(self, step: Any) -> tuple[Any, ...]:
        """The arrays, as the computation of ``step``'s rate should read them."""
        if not self._jax:
            return self._arrays
        import jax

        if not isinstance(step, jax.core.Tracer):
            return self._arrays
        shapes = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in self._arrays)
        return jax.pure_callback(lambda: self._arrays, shapes, vmap_method="broadcast_all")


# --- the base class ----------------------------------------------------------


class Schedule(LearningRateSchedule):
    """Base of every keras_lrkit schedule.

    A subclass validates and stores its constructor arguments under their own
    names, calls ``super().__init__(steps_per_epoch)``, implements ``_rate(t)``
    where ``t >= 0`` is the time in the schedule's unit (epochs when
    ``steps_per_epoch`` is set, steps otherwise) as a float32 tensor, and
    ``_limits()``: the lowest and highest rate it can give. ``get_config`` then
    returns exactly the constructor arguments.

    Every value is clipped to ``_limits()``: float rounding (XLA divides by
    multiplying with a reciprocal) never takes a rate below its floor or above
    its peak.
    """

    _depth = 1  # how deeply schedules nest inside this one (combinators add theirs)
    _at_step_zero = False  # True while _start() evaluates step 0, where the unit does not matter

    def __init__(self, steps_per_epoch: int | str | None = None) -> None:
        super().__init__()
        self.steps_per_epoch = check_steps_per_epoch(steps_per_epoch)
        # "fit": every fit gives its own number (a schedule shared by fits of other sizes too).
        self._from_fit = self.steps_per_epoch == FROM_FIT

    @property
    def _steps_per_unit(self) -> int:
        """Steps in one unit of time: ``steps_per_epoch``, or 1 when durations count steps."""
        if self.steps_per_epoch == FROM_FIT and not self._at_step_zero:
            raise ValueError(
                f"{type(self).__name__}(steps_per_epoch={FROM_FIT!r}) learns its steps per epoch "
                "when fit starts, from a keras_lrkit callback in the fit (LearningRateLogger, "
                "HistoryPlotter, EarlyStoppingWithBestRestore, ReduceOnPlateau), and only when "
                "fit knows how many batches an epoch has. Add one of them to fit's callbacks, "
                "or pass steps_per_epoch as a number."
            )
        return self._known_unit

    @property
    def _known_unit(self) -> int:
        """``_steps_per_unit`` where it is known, else 1 (for checks that are repeated once it is)."""
        spe = self.steps_per_epoch
        return spe if isinstance(spe, int) else 1

    def _check_units(self) -> None:
        """Checks of durations scaled by the unit: at construction, and again once "fit" is known."""

    def _children(self) -> list[LearningRateSchedule]:
        """The schedules nested inside this one."""
        return []

    def _take_steps_per_epoch_from_fit(self, steps: int) -> bool:
        """Give a ``steps_per_epoch="fit"`` schedule the batches this fit runs per epoch; True if new.

        Each fit gives its own number, so one schedule shared by fits of other
        sizes counts each fit's epochs. The config holds the latest number, so a
        saved model trains on with its clock.
        """
        if not self._from_fit or self.steps_per_epoch == steps:
            return False
        self.steps_per_epoch = check_steps_per_epoch(steps)
        self._check_units()
        return True

    def __call__(self, step: Any) -> Any:
        rate = self._rate_at_step(as_step(step))
        if self._bounds is None:
            return rate
        return ops.clip(rate, *self._bounds)

    def _rate_at_step(self, step: Any) -> Any:
        return self._rate(self._time(step))

    def _time(self, step: Any) -> Any:
        """The time since step 0 in the schedule's unit: steps, or epochs with ``steps_per_epoch``."""
        t = elapsed(step)
        return t if self.steps_per_epoch is None else t / float(self._steps_per_unit)

    def _rate(self, t: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _limits(self) -> tuple[float, float] | None:  # pragma: no cover - abstract
        """(floor, peak) of every rate; None where unknown (a Keras schedule inside)."""
        raise NotImplementedError

    @functools.cached_property
    def _bounds(self) -> tuple[float, float] | None:
        return self._limits()

    def _start(self) -> float:
        """The rate at step 0, as a Python float (known before a "fit" unit is)."""
        self._at_step_zero = True
        try:
            return float(ops.convert_to_numpy(self(0)))
        finally:
            del self._at_step_zero

    def get_config(self) -> dict[str, Any]:
        return {
            name: self._config_value(getattr(self, name)) for name in constructor_arguments(self)
        }

    @staticmethod
    def _config_value(value: Any) -> Any:
        if isinstance(value, LearningRateSchedule):
            return keras.optimizers.schedules.serialize(value)
        if isinstance(value, list):
            return [Schedule._config_value(v) for v in value]
        return value

    @staticmethod
    def _deserialize(name: str, config: Any) -> LearningRateSchedule:
        if isinstance(config, LearningRateSchedule):
            return config
        # Measured before building: a hostile config nested thousands deep is refused
        # here, not deep in Python's recursion limit.
        depth = _config_depth(config)
        if depth >= MAX_DEPTH:
            raise ValueError(
                f"Argument `{name}` must nest at most {MAX_DEPTH} schedules deep. "
                f"Received: a {name} config holding schedules {depth}+ deep"
            )
        return keras.optimizers.schedules.deserialize(config)

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in constructor_arguments(self))
        return f"{type(self).__name__}({args})"


def _config_depth(config: Any) -> int:
    """How many serialized objects nest along the deepest path of ``config`` (no recursion)."""
    deepest, stack = 0, [(config, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            depth += "config" in node and "class_name" in node
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            stack.extend((value, depth) for value in node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend((value, depth) for value in node)
    return deepest


def start_of(schedule: LearningRateSchedule) -> float:
    """A schedule's rate at step 0, without evaluating the schedules nested inside a combinator."""
    if isinstance(schedule, Schedule):
        return schedule._start()
    return float(ops.convert_to_numpy(schedule(0)))


def schedules_in(schedule: Any) -> list[LearningRateSchedule]:
    """``schedule`` and every schedule nested inside it, outermost first."""
    found, stack = [], [schedule]
    while stack:
        current = stack.pop()
        if isinstance(current, LearningRateSchedule):
            found.append(current)
            if isinstance(current, Schedule):
                stack.extend(reversed(current._children()))
    return found


def limits_of(schedule: LearningRateSchedule) -> tuple[float, float] | None:
    return schedule._bounds if isinstance(schedule, Schedule) else None
