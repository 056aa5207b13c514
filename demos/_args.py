"""The demos' command lines, checked before Keras loads: nothing here imports it."""

from __future__ import annotations

import argparse
import os


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors in one line (``lrkit demo resnet: error: ...``), not the usage block."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def argument_parser(doc: str, **kwargs) -> argparse.ArgumentParser:
    """The demo's parser: its docstring's first paragraph as the description.

    Run by ``lrkit demo NAME``, the demo goes by that name in its messages
    (the command sets ``LRKIT_DEMO``); run as a script, by its file's name.
    """
    prog = os.environ.get("LRKIT_DEMO") or None
    return _OneLineParser(prog=prog, description=doc.split("\n\n")[0], **kwargs)
