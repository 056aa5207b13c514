"""Argument checks and configs shared by every public class: one message form everywhere."""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any


def fail(name: str, requirement: str, value: Any) -> ValueError:
    """``Argument `name` must be <requirement>. Received: name=<value>``."""
    return ValueError(f"Argument `{name}` must be {requirement}. Received: {name}={value!r}")


def check(name: str, value: Any, ok: bool, requirement: str) -> None:
    if not ok:
        raise fail(name, requirement, value)


def is_choice(value: Any, options: tuple[str, ...]) -> bool:
    """``value`` is one of the strings ``options`` (an array or any other object is not)."""
    return isinstance(value, str) and value in options


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A finite real number (not a bool); an int too large for a float is not finite."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # math.isfinite(10**400)
        return False


def constructor_arguments(obj: Any) -> list[str]:
    """The names of ``type(obj).__init__``'s parameters, which ``obj`` stores under the same names."""
    params = inspect.signature(type(obj).__init__).parameters
    return [name for name in params if name != "self"]
