"""The README shows what exists: its figures are in docs/, its demos in demos/."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.image
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("path", sorted(set(re.findall(r"!\[[^]]*\]\((docs/[^)]+)\)", README))))
def test_every_figure_the_readme_shows_is_there(path):
    height, width = matplotlib.image.imread(ROOT / path).shape[:2]
    assert height >= 200 and width >= 400, f"{path}: {width}x{height}"


def test_every_demo_the_readme_names_is_there():
    named = set(re.findall(r"python demos/(\w+\.py)", README))
    assert named >= {"resnet_step_decay.py", "compare_schedules.py", "early_stopping.py"}
    assert all((ROOT / "demos" / name).is_file() for name in named), named


def test_every_page_the_readme_links_to_is_there():
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", README))
    assert len(linked) >= 10
    missing = [page for page in linked if not (ROOT / page).is_file()]
    assert not missing, missing


def test_the_readme_is_a_front_page():
    assert len(README.splitlines()) <= 250
