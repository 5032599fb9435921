"""Unused imports and names, undefined names and redefinitions are defects pyflakes finds without
running anything; keeping the tree clean keeps dead code from piling up between reviews."""
from __future__ import annotations

from pathlib import Path

from pyflakes.api import checkPath
from pyflakes.reporter import Reporter

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("operator", "predictor", "hack/autoglm_testenv", "hack/gen_api_reference.py", "tests")


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
