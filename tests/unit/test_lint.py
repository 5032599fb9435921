"""Unused imports and names, undefined names and redefinitions are defects pyflakes finds without
running anything; keeping the tree clean keeps dead code from piling up between reviews."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pyflakes.api import checkPath
from pyflakes.reporter import Reporter

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("operator", "predictor", "hack/autoglm_testenv", "hack/gen_api_reference.py", "hack/gen_observability.py",
           "tests")


class Collect(Reporter):
    def __init__(self) -> None:
        self.problems: list[str] = []

    def unexpectedError(self, filename: str, message: str) -> None:
        self.problems.append(f"{filename}: {message}")

    def syntaxError(self, filename: str, message: str, lineno: int, offset: int, text: str) -> None:
        self.problems.append(f"{filename}:{lineno}: {message}")

    def flake(self, message: object) -> None:
        self.problems.append(str(message))


def test_pyflakes_finds_nothing() -> None:
    reporter = Collect()
    files = [p for source in SOURCES for p in ([REPO / source] if source.endswith(".py") else (REPO / source).rglob("*.py"))]
    assert len(files) > 100
    for path in files:
        checkPath(str(path), reporter)
    assert reporter.problems == []


def test_imports_only_point_down() -> None:
    """The contracts in .importlinter: layers inside each package, the predictor sees only the
    operator's api. Run in a subprocess because import-linter configures logging globally."""
    script = ("import sys; from importlinter.cli import lint_imports; "
              "sys.exit(lint_imports(config_filename='.importlinter', no_cache=True, no_logo=True))")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
