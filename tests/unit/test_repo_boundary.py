"""Nothing in the repository reads outside it: a fresh clone (CI, a user's checkout, a built
package) has no folder beside it, so a path that climbs above the repository root works on one
machine only (issue 13: `make demo` read its trace from a folder next to the checkout).

Checked on every tracked file (`git ls-files`):
- Python: path expressions are evaluated symbolically. `__file__`, string literals (relative to the
  repository root, where every command runs), `Path(...)`, `os.path.join/dirname/abspath`,
  `.parent`, `.parents[N]`, `/ "part"`, `.joinpath`, f-strings, and names bound to such paths,
  also across modules (`config.REPO_DIR`), are followed; a step above the root is reported.
  Unknown values stop the evaluation, so only paths that provably leave the repository fail
  (`Path(__file__).parent.parent` that stays inside is fine). String literals count as paths
  where a path is expected: in a path constructor, after `/`, or as an argument of a file
  function (`open`, `read_*`, `load_*`, `*_csv`, `add_argument(default=...)`, ...).
- Shell, Makefile, Dockerfile, TOML, YAML, CFG: each `..` path segment is resolved from its anchor:
  the script's own folder (`$(dirname "$0")`, or a variable assigned from it), `$(CURDIR)`, the
  file's folder for YAML (kustomize resolves paths from the kustomization), else the repository
  root (scripts cd there, make runs there). A `..` after an unknown variable is not judged.
- Symlinks: none points outside the repository.
- Every text file: no absolute path of a developer machine (a top-level `work`, `home`, `root` or
  `Users` folder) and no mention of the trace folder that used to sit beside the repository.
"""
from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parents[2]
# Spelled in two parts so that this file does not report itself.
OLD_TRACE_FOLDER = "shared" + "/traces"
MACHINE_PATH = re.compile(r"(?<![\w.$}\]-])/(?:work|home|root|Users)(?:/|\b)")
PATH_TYPES = {"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "pathlib.PurePosixPath", "os.path.join"}
# Calls whose string arguments are paths (matched on the last name: `pd.read_csv`, `path.open`).
FILE_FUNCTION = re.compile(r"open|read_\w+|load\w*|\w+_csv|exists|is_file|is_dir|listdir|i?glob|rglob"
                           r"|copy\w*|move|rmtree|mkdir|chdir|write_\w+|add_argument")
SHELL_LIKE = re.compile(r"(^|/)(Makefile|Dockerfile|testenv|run)$|\.(sh|toml|cfg|ya?ml)$")


def tracked() -> list[str]:
    return subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()


@dataclass(frozen=True)
class Inside:
    """A path inside the repository: its parts below the root (empty: the root itself)."""
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Text:
    """A string literal; it becomes a path (relative to the repository root) where one is expected."""
    value: str


Value = Inside | Text | None


def climb(base: Inside, relative: str) -> Inside | None:
    """`base` joined with a relative path; None when it leaves the repository root."""
    parts = list(base.parts)
    for segment in relative.split("/"):
        if segment == "..":
            if not parts:
                return None
            parts.pop()
        elif segment not in ("", "."):
            parts.append(segment)
    return Inside(tuple(parts))


def module_name(path: str) -> str:
    """The import name of a tracked Python file (operator/ and predictor/ hold the packages; hack/
    and tests/ are on the test PYTHONPATH)."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if parts[0] in ("operator", "predictor", "hack", "tests"):
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


class PathEvaluator(ast.NodeVisitor):
    """Evaluates one module's path expressions in source order and collects the ones that leave
    the repository; `symbols` holds every module's names bound to paths (for `config.REPO_DIR`)."""

    def __init__(self, path: str, symbols: dict[str, dict[str, Inside]]) -> None:
        self.path, self.symbols, self.module = path, symbols, module_name(path)
        self.names: dict[str, Value] = {}
        self.imports: dict[str, str] = {}  # local name -> dotted module or module.symbol
        self.memo: dict[int, Value] = {}
        self.escapes: dict[tuple[int, int], str] = {}
        self.source = ""

    def run(self, source: str) -> None:
        self.source = source
        self.visit(ast.parse(source))
        self.symbols[self.module] = {"__file__": Inside(tuple(PurePosixPath(self.path).parts)),
                                     **{k: v for k, v in self.names.items() if isinstance(v, Inside)}}

    # Bindings
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.imports[alias.asname] = alias.name
            else:
                self.imports[alias.name.split(".")[0]] = alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        package = self.module.split(".")[:-node.level] if node.level else []
        base = ".".join([*package, *([node.module] if node.module else [])])
        for alias in node.names:
            self.imports[alias.asname or alias.name] = f"{base}.{alias.name}"

    def visit_Assign(self, node: ast.Assign) -> None:
        self.bind(node.targets, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.bind([node.target], node.value)

    def bind(self, targets: list[ast.expr], value: ast.expr) -> None:
        result = self.value(value)
        self.generic_visit(value)
        for target in targets:
            if isinstance(target, ast.Name):
                self.names[target.id] = result
            else:
                self.visit(target)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self.names[node.id] = None  # for-loop targets, with-as, ...: unknown from here on

    # Expressions: every one is evaluated, so a violation nested anywhere is found.
    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.expr):
            self.value(node)
        super().generic_visit(node)

    def value(self, node: ast.expr) -> Value:
        if id(node) not in self.memo:
            self.memo[id(node)] = self._value(node)
        return self.memo[id(node)]

    def as_path(self, node: ast.expr) -> Inside | None:
        value = self.value(node)
        if isinstance(value, Text):
            return self.join(Inside(()), value.value, node)
        return value

    def escape(self, node: ast.expr) -> None:
        segment = ast.get_source_segment(self.source, node) or ast.dump(node)
        self.escapes.setdefault((node.lineno, node.col_offset), f"{self.path}:{node.lineno}: {segment}")

    def join(self, base: Inside | None, relative: str, node: ast.expr) -> Inside | None:
        if base is None or relative.startswith("/"):
            return None
        result = climb(base, relative)
        if result is None:
            self.escape(node)
        return result

    def up(self, base: Inside | None, levels: int, node: ast.expr) -> Inside | None:
        if base is None:
            return None
        if levels > len(base.parts):
            self.escape(node)
            return None
        return Inside(base.parts[:len(base.parts) - levels])

    def dotted(self, node: ast.expr) -> str | None:
        """`os.path.join`, `pathlib.Path` ... with the first name resolved through the imports."""
        if isinstance(node, ast.Name):
            return self.imports.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def lookup(self, dotted: str) -> Inside | None:
        module, _, name = dotted.rpartition(".")
        return self.symbols.get(module, {}).get(name)

    def _value(self, node: ast.expr) -> Value:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return Text(node.value)
        if isinstance(node, ast.Name):
            if node.id == "__file__":
                return Inside(tuple(PurePosixPath(self.path).parts))
            if node.id in self.names:
                return self.names[node.id]
            return self.lookup(self.imports[node.id]) if node.id in self.imports else None
        if isinstance(node, ast.Attribute):
            if node.attr == "parent":
                return self.up(self.as_path(node.value), 1, node)
            dotted = self.dotted(node)
            return self.lookup(dotted) if dotted else None
        if isinstance(node, ast.Subscript):
            if (isinstance(node.value, ast.Attribute) and node.value.attr == "parents"
                    and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int)):
                return self.up(self.as_path(node.value.value), node.slice.value + 1, node)
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left, right = self.as_path(node.left), self.value(node.right)
            return self.join(left, right.value, node) if isinstance(right, Text) else None
        if isinstance(node, ast.JoinedStr):
            return self._fstring(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        return None

    def _fstring(self, node: ast.JoinedStr) -> Value:
        """f"{REPO}/../x": a path followed by literal text."""
        first, rest = node.values[0], node.values[1:]
        if isinstance(first, ast.FormattedValue) and all(isinstance(v, ast.Constant) for v in rest):
            base = self.value(first.value)  # a path, not any text: f"{group}/finalizer" is a name
            if isinstance(base, Inside):
                return self.join(base, "".join(str(v.value) for v in rest).lstrip("/"), node)
            return None
        if all(isinstance(v, ast.Constant) for v in node.values):
            return Text("".join(str(v.value) for v in node.values))
        return None

    def _call(self, node: ast.Call) -> Value:
        name = self.dotted(node.func) or ""
        method = node.func.attr if isinstance(node.func, ast.Attribute) else name
        if name in PATH_TYPES or name in ("Path", "PurePath") or method == "joinpath":
            base = self.as_path(node.func.value) if method == "joinpath" else Inside(())
            for arg in node.args:
                value = self.value(arg)
                if isinstance(value, Text):
                    base = self.join(base, value.value, arg)
                elif isinstance(value, Inside):
                    base = value  # an absolute path restarts the join
                else:
                    return None
            return base
        if name == "os.path.dirname" and node.args:
            return self.up(self.as_path(node.args[0]), 1, node)
        if name in ("os.path.abspath", "os.path.realpath", "os.path.normpath") and node.args:
            return self.as_path(node.args[0])
        if name in ("str", "os.fspath") and node.args:
            return self.value(node.args[0])
        if method in ("resolve", "absolute", "expanduser") and isinstance(node.func, ast.Attribute):
            return self.value(node.func.value)
        if FILE_FUNCTION.fullmatch(method):
            # argparse: only the default is a path (the first arguments are option names).
            args = [] if method == "add_argument" else node.args
            for arg in [*args, *(k.value for k in node.keywords if method != "add_argument" or k.arg == "default")]:
                if isinstance(self.value(arg), Text):
                    self.as_path(arg)
        return None


def python_escapes(sources: dict[str, str]) -> list[str]:
    """Every path expression in `sources` (repository path -> source) that leaves the repository.
    Modules are evaluated until the cross-module names settle, then once more to report."""
    symbols: dict[str, dict[str, Inside]] = {}
    for _ in range(4):
        before = dict(symbols)
        for path, source in sources.items():
            PathEvaluator(path, symbols).run(source)
        if symbols == before:
            break
    escapes: list[str] = []
    for path, source in sources.items():
        evaluator = PathEvaluator(path, symbols)
        evaluator.run(source)
        escapes += evaluator.escapes.values()
    return escapes


# `..` as a whole path segment (not an ellipsis) and the path that follows it.
DOTDOT = re.compile(r"(?<![^\s\"'=:(/`])\.\.(?=/|[\s\"'`);]|$)")
FOLLOWING = re.compile(r"\.\.(?:/[\w.@+-]+)*")
SCRIPT_DIR = r"\$\(dirname\s+\"?\$(?:0|\{BASH_SOURCE\[0\]\})\"?\)"
SCRIPT_DIR_VARIABLE = re.compile(rf"(\w+)=[\"']?\$\((?:cd\s+\"?)?{SCRIPT_DIR}")
ANCHOR = re.compile(rf"(?P<script>{SCRIPT_DIR})\"?$|\$\(CURDIR\)$|\$\{{?(?P<var>\w+)\}}?\"?$")


def script_escapes(path: str, text: str) -> list[str]:
    """Each `..` path in a shell script, Makefile or config file that leaves the repository."""
    own_folder = Inside(tuple(PurePosixPath(path).parent.parts))
    default = own_folder if re.search(r"\.ya?ml$", path) else Inside(())
    script_variables = set(SCRIPT_DIR_VARIABLE.findall(text))
    escapes = []
    for number, line in enumerate(text.splitlines(), 1):
        judged_until = 0  # the end of the last path judged: its later `..` segments are part of it
        for match in DOTDOT.finditer(line):
            if match.start() < judged_until:
                continue
            prefix, base = line[:match.start()], default
            if prefix.endswith("/"):
                anchor = ANCHOR.search(prefix[:-1])
                if anchor and anchor["var"]:
                    if anchor["var"] not in script_variables:
                        continue  # an unknown variable: its value is not known here
                    base = own_folder
                elif anchor:
                    base = own_folder if anchor["script"] else Inside(())
                else:
                    base = climb(default, re.search(r"[\w.@+/-]*$", prefix[:-1]).group()) or Inside(())
            following = FOLLOWING.match(line, match.start())
            judged_until = following.end()
            if climb(base, following.group()) is None:
                escapes.append(f"{path}:{number}: {line.strip()}")
    return list(dict.fromkeys(escapes))


def text_files() -> Iterator[tuple[str, str]]:
    for path in tracked():
        try:
            yield path, (REPO / path).read_text()
        except (UnicodeDecodeError, IsADirectoryError):
            continue  # the gzip traces, images


def test_no_python_path_leaves_the_repository() -> None:
    sources = {path: text for path, text in text_files() if path.endswith(".py")}
    assert len(sources) > 100
    escapes = python_escapes(sources)
    assert not escapes, "\n".join(escapes)


def test_no_script_or_config_path_leaves_the_repository() -> None:
    checked = [(path, text) for path, text in text_files() if SHELL_LIKE.search(path)]
    assert {"Makefile", "hack/testenv", "pyproject.toml", "manifests/base/kustomization.yaml"} <= {p for p, _ in checked}
    escapes = [escape for path, text in checked for escape in script_escapes(path, text)]
    assert not escapes, "\n".join(escapes)


def test_no_machine_path_or_old_trace_folder_in_any_file() -> None:
    found = [f"{path}:{number}: {line.strip()}" for path, text in text_files()
             for number, line in enumerate(text.splitlines(), 1)
             if MACHINE_PATH.search(line) or OLD_TRACE_FOLDER in line]
    assert not found, "\n".join(found)


def test_no_tracked_symlink_points_outside_the_repository() -> None:
    links = [path for path in tracked() if (REPO / path).is_symlink()]
    assert [path for path in links if not (REPO / path).resolve().is_relative_to(REPO)] == []


# The checkers themselves: each must catch what issue 13 found, and leave legitimate paths alone.
CONFIG = 'from pathlib import Path\nHACK_DIR = Path(__file__).resolve().parent.parent\nREPO_DIR = HACK_DIR.parent\n'


@pytest.mark.parametrize("source", [
    'from pathlib import Path\nDEFAULT = str(Path("..") / "beside" / "x.csv")',
    'from autoglm_testenv import config\nTRACE = config.REPO_DIR.parent / "beside" / "x.csv"',
    'from autoglm_testenv.config import REPO_DIR\nTRACE = REPO_DIR / ".." / "x.csv"',
    'from autoglm_testenv import config\nHOME = config.REPO_DIR.parents[1]',
    'from pathlib import Path\nREPO = Path(__file__).resolve().parents[2]\nNASA = REPO.parent / "beside"',
    'import pathlib\nX = pathlib.Path(__file__).parents[3]',
    'import os\nX = os.path.join(os.path.dirname(__file__), "..", "..", "..", "x")',
    'from pathlib import Path\nREPO = Path(__file__).parent.parent.parent\nX = f"{REPO}/../x"',
    'import pandas as pd\nframe = pd.read_csv("../beside/x.csv")',
    'def f(p):\n    p.add_argument("--trace", default="../x.csv")',
    'from pathlib import Path\nX = Path("a").joinpath("..", "..", "x")',
], ids=["cwd-parent", "config-attribute", "imported-name", "repo-parents", "local-name", "parents-index", "os-path",
        "f-string", "read-csv", "argparse-default", "joinpath"])
def test_python_checker_reports_a_path_above_the_root(source: str) -> None:
    escapes = python_escapes({"hack/autoglm_testenv/config.py": CONFIG, "hack/autoglm_testenv/demo.py": source})
    assert len(escapes) == 1 and escapes[0].startswith("hack/autoglm_testenv/demo.py:"), escapes


@pytest.mark.parametrize("source", [
    'from autoglm_testenv import config\nOUT = config.REPO_DIR / "out" / "demo"',
    'from pathlib import Path\nREPO = Path(__file__).resolve().parents[2]\nX = REPO / "predictor" / ".." / "crds"',
    'import autoglm_testenv\nfrom pathlib import Path\nX = Path(autoglm_testenv.__file__).parent.parent',
    'import os\nX = os.path.join(os.path.dirname(__file__), "..", "x")',
    'HOSTILE = ["../../etc/passwd", "pvc://../x", ".."]\nraw(deployment="../etc")',
    'import os\nfrom pathlib import Path\nX = Path(os.environ["HOME"]).parent / ".cache"',
    'def f(p):\n    p.add_argument("..", help="../x")\n    print("... and more")',
    'GROUP = "autoglm.io"\nFINALIZER = f"{GROUP}/../x"',
], ids=["config-attribute", "parents-index", "module-file", "os-path", "hostile-data", "unknown-base", "not-paths",
                                    "text-f-string"])
def test_python_checker_allows_paths_inside(source: str) -> None:
    assert python_escapes({"hack/autoglm_testenv/config.py": CONFIG, "hack/autoglm_testenv/demo.py": source}) == []


@pytest.mark.parametrize(("path", "text", "escapes"), [
    ("hack/x.sh", 'cd "$(dirname "$0")/.."\ncat ../beside/x.csv', 1),
    ("hack/x.sh", 'here="$(cd "$(dirname "$0")" && pwd)"\npy="$here/../../x"', 1),
    ("hack/x.sh", 'cd "$(dirname "$0")/../.."', 1),
    ("Makefile", "demo:\n\t$(PY) -m x --trace $(CURDIR)/../x.csv", 1),
    ("manifests/base/kustomization.yaml", "resources:\n  - ../../../crds", 1),
    ("pyproject.toml", 'readme = "../README.md"', 1),
    ("hack/x.sh", 'cd "$(dirname "$0")/.."\nhere="$(cd "$(dirname "$0")" && pwd)"\npy="$here/../.venv/bin/python"', 0),
    ("manifests/overlays/dev/kustomization.yaml", "resources:\n  - ../../base", 0),
    ("hack/x.sh", '# builds the rest... (wait..)\nout="$root/../x"', 0),
    ("hack/x.sh", 'here="$(dirname "$0")"\npy="$here/../.venv/../x"', 0),
])
def test_script_checker(path: str, text: str, escapes: int) -> None:
    assert len(script_escapes(path, text)) == escapes


@pytest.mark.parametrize(("line", "found"), [  # "{}" is the root: this file must pass its own check
    ("py={}work/main/.venv/bin/python", True), ("cd {}home/me/repo", True), ('"{}Users/me"', True),
    ("mountPath: /tmp", False), ("https://example.com/home/page", False), ("ENV PATH=/opt/autoglm/bin:$PATH", False),
])
def test_machine_path_pattern(line: str, found: bool) -> None:
    assert bool(MACHINE_PATH.search(line.format("/"))) == found
