"""Every code block of the README and the documentation site runs, and the site builds.

A page's Python blocks run in order, in one fresh Python process per page (in a
temporary folder), after tests/docs_preamble.py, which defines what the guides
take as given (``make_model()``, ``x_train``...). The examples are written for
TensorFlow, Keras's default backend, and run in the suite's TensorFlow run. A
comment on the line before a fence changes that, and says why:

- ``<!-- test: alone -->``: the block runs in a process of its own;
- ``<!-- test: alone, jax -->``: ... in the suite's run on Keras's JAX backend;
- ``<!-- test: run -->``: a bash block whose lines run one by one;
- ``<!-- test: skip (why) -->``: not run here, and the reason names what runs it.

A bash block needs one of the last two.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest

import keras_lrkit

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md"] + sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")
)
PREAMBLE = (Path(__file__).parent / "docs_preamble.py").read_text()
FENCE = re.compile(r"(?:<!-- test: (?P<how>[^\n]*?) -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)```", re.S)


def blocks(page: str) -> list[tuple[str, str, str]]:
    """(language, marker, code) of each fenced block of a page."""
    text = (ROOT / page).read_text()
    return [(m["lang"], m["how"] or "", m["code"]) for m in FENCE.finditer(text)]


def run_python(code: str, tmp_path: Path, backend: str | None = None) -> None:
    script = tmp_path / "page.py"
    script.write_text(PREAMBLE + "\n\n" + code)
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if backend:
        env["KERAS_BACKEND"] = backend
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("page", PAGES)
def test_every_block_runs_or_says_what_runs_it(page, tmp_path):
    found = blocks(page)
    here = keras.backend.backend()
    shared = []
    for lang, how, code in found:
        if how.startswith("skip"):
            assert re.fullmatch(r"skip \(.{10,}\)", how), f"{page}: a skip says why: {how!r}"
        elif lang == "python" and how in ("", "alone"):
            if here != "tensorflow":
                continue  # run in the TensorFlow run of the suite
            if how == "":
                shared.append(code)
            else:
                run_python(code, tmp_path)
        elif lang == "python" and how == "alone, jax":
            if here == "jax":
                run_python(code, tmp_path, backend="jax")
        elif lang == "bash" and how == "run":
            if here != "tensorflow":
                continue
            (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n0,1.0,1.1\n1,0.5,0.7\n")
            for line in code.splitlines():
                command = line.split("#")[0].strip()
                if command:
                    done = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True,
                                          text=True, timeout=300)  # fmt: skip
                    assert done.returncode == 0, (command, done.stderr[-2000:])
        else:
            raise AssertionError(f"{page}: a {lang} block marked {how!r}: see this test's docstring")
    if shared:
        run_python("\n\n".join(shared), tmp_path)


def test_the_pages_hold_code_to_run():
    counted = sum(lang == "python" for page in PAGES for lang, _, _ in blocks(page))
    assert counted >= 8


def test_every_public_name_has_a_reference_page_with_its_figure():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import hooks
    finally:
        sys.path.remove(str(ROOT / "docs"))
    assert hooks.public_names() == list(keras_lrkit.__all__)
    base = keras.optimizers.schedules.LearningRateSchedule
    schedules = [n for n in keras_lrkit.__all__ if isinstance(getattr(keras_lrkit, n), type)
                 and issubclass(getattr(keras_lrkit, n), base)]  # fmt: skip
    assert sorted(schedules) == sorted(hooks.FIGURES)  # every schedule draws its curve
    for name in keras_lrkit.__all__:
        page = hooks.reference_page(name)
        assert f"::: keras_lrkit.{name}" in page
        assert (f"![{name}]({name}.png)" in page) == (name in hooks.FIGURES)
    png = hooks.figure_png("StepDecay")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "site" / "reference" / "StepDecay" / "index.html").read_text()
    assert "initial_learning_rate" in page and "StepDecay.png" in page and "&gt;&gt;&gt;" in page
    assert (tmp_path / "site" / "reference" / "StepDecay.png").stat().st_size > 5000
