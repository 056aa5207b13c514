"""keras_lrkit's warnings: one category to filter, pointing at the user's own line."""

from __future__ import annotations

import os
import sys
import warnings


class LRKitWarning(UserWarning):
    """A warning from keras_lrkit. Silence them all with
    ``warnings.filterwarnings("ignore", category=keras_lrkit.LRKitWarning)``."""


_LIBRARIES = ("keras_lrkit", "keras", "tensorflow", "jax", "jaxlib", "torch", "matplotlib")


def _library_folders() -> tuple[str, ...]:
    folders = [os.path.dirname(warnings.__file__)]  # the standard library (threading, runpy)
    for name in _LIBRARIES:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            folders.append(os.path.dirname(path) + os.sep)
    return tuple(folders)


def warn(message: str, category: type[Warning] = LRKitWarning) -> None:
    """Warn, attributing the warning to the first caller outside keras_lrkit, Keras and the backends.

    A warning raised in a callback names the user's ``model.fit(...)`` line, not
    a line of this package or of Keras's training loop.
    """
    folders = _library_folders()
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(folders):
        frame, level = frame.f_back, level + 1
    if frame is None:  # nothing outside the libraries (a background thread)
        level = 2
    warnings.warn(message, category, stacklevel=level)
