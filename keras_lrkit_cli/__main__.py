"""``python -m keras_lrkit_cli``: the ``lrkit`` command."""

import sys

from . import main

sys.exit(main())
