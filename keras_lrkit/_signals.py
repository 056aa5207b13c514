"""Blocks that Ctrl-C cannot cut in half."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT (Ctrl-C) until the block has run to its end, then deliver it.

    A restore that Ctrl-C interrupts half-way leaves a model that is neither
    the old one nor the new one. Inside this block a SIGINT is recorded, not
    raised; when the block ends, the handler that was in place before gets it
    (Python's default raises KeyboardInterrupt). Only the main thread receives
    signals, so elsewhere the block simply runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[tuple[int, object]] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(*received[0])
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt
