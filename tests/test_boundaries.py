"""keras_lrkit stays inside its own boundaries: importing it changes no Keras class."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from .helpers import BACKEND

CHECK = textwrap.dedent(
    """
    import json, sys
    import keras

    def classes():
        modules = [keras.callbacks, keras.optimizers, keras.optimizers.schedules, keras.layers,
                   keras.models, keras.metrics, keras.losses, keras.saving]
        found = {keras.Model, keras.Sequential, keras.Variable}
        for module in modules:
            found.update(v for v in vars(module).values() if isinstance(v, type))
        return sorted(found, key=lambda c: c.__module__ + c.__qualname__)

    before = {c: dict(vars(c)) for c in classes()}
    import keras_lrkit  # noqa: F401
    changed = []
    for c, attributes in before.items():
        now = vars(c)
        for name in set(now) | set(attributes):
            if now.get(name) is not attributes.get(name):
                changed.append(f"{c.__qualname__}.{name}")
    print(json.dumps({"classes": len(before), "changed": changed}))
    """
)


def test_importing_keras_lrkit_changes_no_keras_class():
    env = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True,
                         check=True, timeout=300)  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["classes"] > 200  # every class of those modules was compared
    assert result["changed"] == []
