"""The repository's `operator/` folder must never shadow the standard library's `operator` module:
anything run from the repository root (`python -m venv`, `python -m pytest`) imports `operator`
early. The folder therefore has no `__init__.py`; setuptools maps it to `autoglm_operator`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_stdlib_operator_wins_from_the_repo_root() -> None:
    result = subprocess.run([sys.executable, "-c", "import operator, collections; print(operator.__file__)"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not result.stdout.strip().startswith(str(REPO))


def test_operator_folder_is_not_a_regular_package() -> None:
    assert not (REPO / "operator" / "__init__.py").exists()


def test_package_imports_under_its_own_name() -> None:
    import autoglm_operator.render

    assert Path(autoglm_operator.render.__file__).parent == REPO / "operator"
