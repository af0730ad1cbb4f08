"""The board side stays light and Python 3.10-compatible; the two deployables keep their boundaries."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BOARD_PACKAGES = ("rdk_agent", "shared_schema")
TRAINING_PACKAGES = (
    "torch",
    "torchvision",
    "lightning",
    "pytorch_lightning",
    "hydra",
    "albumentations",
    "torchmetrics",
)
# Standard-library names that appeared after 3.10 and would break on the board's Python.
NEWER_THAN_310 = re.compile(
    r"\b(tomllib|datetime\.UTC|from datetime import UTC|typing\.Self|ExceptionGroup|TaskGroup)\b"
)


def _board_sources() -> list[Path]:
    return sorted(p for pkg in BOARD_PACKAGES for p in (REPO / pkg).rglob("*.py"))


def test_board_packages_never_import_training_packages():
    code = (
        "import sys, rdk_agent.__main__, rdk_agent.app, rdk_agent.launcher, shared_schema.preprocess;"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {TRAINING_PACKAGES!r});"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"the agent pulled in training packages: {out.stdout}"


@pytest.mark.parametrize("path", _board_sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_board_sources_parse_as_python_310(path):
    text = path.read_text(encoding="utf-8")
    ast.parse(text, filename=str(path), feature_version=(3, 10))
    assert not NEWER_THAN_310.search(text), f"{path} uses a standard-library name newer than Python 3.10"


def test_agent_requirements_hold_no_training_package():
    names = [
        re.split(r"[<>=!~\[ ]", line.strip(), maxsplit=1)[0].lower()
        for line in (REPO / "requirements" / "agent.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert names and not set(names) & {"torch", "torchvision", "lightning", "hydra-core", "albumentations"}
