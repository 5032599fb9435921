"""Folder name = import name: operator/autoglm_operator and predictor/autoglm_predictor are ordinary
packages inside top-level folders that hold nothing importable, so nothing run from the repository
root (`python -m venv`, `python -m pytest`, which import the standard library's `operator` early)
can be shadowed, and no package-dir mapping is needed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (REPO / "operator" / "autoglm_operator", REPO / "predictor" / "autoglm_predictor")


def test_stdlib_operator_wins_from_the_repo_root() -> None:
    result = subprocess.run([sys.executable, "-c", "import operator, collections; print(operator.__file__)"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not result.stdout.strip().startswith(str(REPO))


def test_top_level_folders_hold_no_module() -> None:
    for folder in ("operator", "predictor"):
        assert sorted(p.name for p in (REPO / folder).glob("*.py")) == []


def test_packages_import_from_their_folders() -> None:
    import autoglm_operator
    import autoglm_predictor

    assert [Path(autoglm_operator.__file__).parent, Path(autoglm_predictor.__file__).parent] == list(PACKAGES)


def test_every_folder_of_code_is_a_regular_package() -> None:
    """A folder without __init__.py would import as a namespace package, which the import contract
    (.importlinter) and setuptools' package discovery both miss."""
    folders = {p.parent for package in PACKAGES for p in package.rglob("*.py")}
    assert sorted(str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").exists()) == []
