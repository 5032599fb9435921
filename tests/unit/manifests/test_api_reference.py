"""docs/reference.md is generated from the CRD; it must be regenerated when the schema changes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_reference_is_current() -> None:
    result = subprocess.run([sys.executable, str(REPO / "hack" / "gen_api_reference.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_reference_lists_every_spec_section() -> None:
    text = (REPO / "docs" / "reference.md").read_text()
    for field in ("spec.model.name", "spec.runtime.engine", "spec.resources.gpu.count", "spec.autoscaling.minReplicas",
                  "status.observedGeneration", "status.conditions[].type"):
        assert f"`{field}`" in text
