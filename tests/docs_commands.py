"""The shell commands README.md, docs/*.md and the chart's NOTES.txt tell readers to type, and how
each one is verified before it is published (issue 13: a documented install check that failed with
NotFound).

A command is one line a shell runs: every non-comment line of a ```sh, ```bash or ```shell block
(a trailing backslash joins the next line; a trailing `# comment` is dropped), every line after a
`$ ` prompt in a ```console block, and every indented line of the NOTES that `helm install` prints.
Every fenced block must name its language, so no command hides in an untagged block: ```text for
output and diagrams.

VERIFIED holds each command exactly as written, with how it is verified:
- Run: tests/e2e/test_docs_commands.py runs it for real, in its block's order, in a fresh local
  environment of its own; `needs` names the documented commands that must have run before it
  (run first when the block has not run them);
- Elsewhere: a whole job (CI, the demo, a benchmark), with where it runs;
- Usage: a synopsis with placeholders ([optional] flags, FILE, NAME), not runnable as written.
tests/unit/test_docs_commands.py fails on a command missing from VERIFIED, on an entry no document
uses any more, and on a command whose references are wrong (`problems`): files, AutoGLMDeployment
names and namespaces, make targets and variables, chart values, Dockerfile stages and the flags of
our own command-line tools.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
NOTES = REPO / "charts" / "autoglm-operator" / "templates" / "NOTES.txt"
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})
_FENCE = re.compile(r"^\s*```\s*(\S*)\s*$")


@dataclass(frozen=True)
class Command:
    text: str  # as a shell runs it (continuations joined, prompt and trailing comment removed)
    source: str  # where it starts: "README.md:131", or the NOTES file for rendered NOTES


@dataclass(frozen=True)
class Block:
    source: str  # the opening fence ("docs/api.md:7") or the NOTES file
    commands: tuple[Command, ...]


@dataclass(frozen=True)
class Run:
    """Run for real by tests/e2e/test_docs_commands.py; a non-zero exit or a timeout fails it."""

    needs: tuple[str, ...] = ()  # documented commands (VERIFIED Run keys) that must have run first
    given: tuple[str, ...] = ()  # shell commands standing in for what the docs take as given, run first
    operator: bool = False  # it creates the operator Deployment, whose kwok pod runs no image: the
    # test then runs that Deployment's command line locally, as its ServiceAccount, in its place


@dataclass(frozen=True)
class Elsewhere:
    """A whole job that runs elsewhere; `where` says where (and what this repository checks of it)."""

    where: str


@dataclass(frozen=True)
class Usage:
    """A synopsis with placeholders, not runnable as written; its references are still checked."""


How = Run | Elsewhere | Usage


def documents(repo: Path = REPO) -> list[Path]:
    """The Markdown files whose commands are checked: README.md and docs/*.md."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def _fenced(path: Path, repo: Path) -> Iterator[tuple[str, int, list[tuple[int, str]]]]:
    """(language, line of the opening fence, [(line number, text)]) for each fenced block."""
    rel = path.relative_to(repo)
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append((i + 1, lines[i]))
            i += 1
        if i == len(lines):
            raise ValueError(f"{rel}:{start}: fenced block never closed")
        yield opening.group(1).lower(), start, body
        i += 1


def untagged_blocks(path: Path, repo: Path = REPO) -> list[str]:
    """Sources ("docs/x.md:12") of fenced blocks that do not name their language."""
    rel = path.relative_to(repo)
    return [f"{rel}:{start}" for language, start, _ in _fenced(path, repo) if not language]


def markdown_blocks(path: Path, repo: Path = REPO) -> list[Block]:
    """The shell blocks of one Markdown file that hold at least one command, in order."""
    rel = path.relative_to(repo)
    blocks = []
    for language, start, body in _fenced(path, repo):
        if language in SHELL_LANGUAGES:
            commands = _commands(body, str(rel), console=language == "console")
            if commands:
                blocks.append(Block(f"{rel}:{start}", commands))
    return blocks


def notes_block(notes: str, source: str = str(NOTES.relative_to(REPO))) -> Block:
    """The commands of NOTES text (rendered, or the template): its indented lines."""
    numbered = [(n, line) for n, line in enumerate(notes.splitlines(), 1) if line[:1].isspace() and line.strip()]
    return Block(source, _commands(numbered, source, console=False))


def helm_notes(install_output: str) -> str:
    """The NOTES part of what `helm install` prints (after its `NOTES:` line); ValueError if none."""
    head, marker, notes = install_output.partition("\nNOTES:\n")
    if not marker:
        raise ValueError(f"helm install printed no NOTES:\n{install_output}")
    return notes


def strip_comment(line: str) -> str:
    """`line` without a trailing shell comment (a `#` outside quotes, at the start or after a blank)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _commands(body: list[tuple[int, str]], rel: str, console: bool) -> tuple[Command, ...]:
    commands: list[Command] = []
    pending: tuple[int, str] | None = None  # a command continued by a trailing backslash
    for number, raw in body:
        line = raw.strip()
        if pending is not None:
            number, line = pending[0], f"{pending[1]} {line}"
            pending = None
        elif console:
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        line = strip_comment(line)
        if line.endswith("\\"):
            pending = (number, line[:-1].rstrip())
        elif line:
            commands.append(Command(line, f"{rel}:{number}"))
    if pending is not None:
        raise ValueError(f"{rel}:{pending[0]}: the last command ends with a backslash")
    return tuple(commands)


def doc_commands(repo: Path = REPO) -> list[Command]:
    """Every command of README.md and docs/*.md, in document order."""
    return [c for path in documents(repo) for block in markdown_blocks(path, repo) for c in block.commands]


def template_matches(template_line: str, text: str) -> bool:
    """Whether `text` can be a rendering of a NOTES template line: each `{{ ... }}` matches any text."""
    parts = re.split(r"\{\{-?.*?-?\}\}", template_line.strip())
    return re.fullmatch(".+".join(map(re.escape, parts)), text) is not None


# --- what commands reference ------------------------------------------------------------------

SOURCE_DIRS = ("charts", "crds", "docs", "hack", "manifests", "operator", "predictor", "tests")
# Flags whose value is a file or directory, per program (pkill -f is a pattern, not a file).
FILE_FLAGS = {
    "kubectl": ("-f", "--filename", "-k", "--kustomize"),
    "helm": ("-f", "--values"),
    "docker": ("-f", "--file"),
    "autoglm": ("-f", "--filename"),
}
AGD_TYPES = frozenset({"agd", "autoglmdeployment", "autoglmdeployments", "autoglmdeployments.autoglm.io"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PLACEHOLDER = re.compile(r"^(<.*>|[A-Z][A-Z0-9_]*|\.\.\.)$")  # NAME, NS, FILE, <name>, ...


_SHELL_OPERATORS = frozenset({"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"})


def argv(text: str) -> list[str]:
    """The words of a command up to the first pipe, redirection or list operator, without leading
    VAR=value assignments; a Usage line's [ ] brackets and `...` are dropped and `a|b|c` keeps its
    first alternative."""
    words = []
    for word in shlex.split(text):
        if word in _SHELL_OPERATORS:
            break
        word = word.strip("[]")
        if word and word != "...":
            words.append(word.split("|")[0] if re.fullmatch(r"[\w-]+(\|[\w-]+)+", word) else word)
    while words and _ASSIGNMENT.match(words[0]):
        words.pop(0)
    return words


def _program(words: list[str]) -> str:
    """kubectl, helm, autoglm (also .venv/bin/autoglm and `kubectl autoglm`), make, docker, ..."""
    if not words:
        return ""
    if words[:2] == ["kubectl", "autoglm"] or Path(words[0]).name in ("autoglm", "kubectl-autoglm"):
        return "autoglm"
    return Path(words[0]).name


def _flag_values(words: list[str], flags: tuple[str, ...]) -> list[str]:
    values = []
    for i, word in enumerate(words):
        name, equals, value = word.partition("=")
        if name in flags and equals:
            values.append(value)
        elif word in flags and i + 1 < len(words):
            values.append(words[i + 1])
    return values


def _is_placeholder(word: str) -> bool:
    return bool(_PLACEHOLDER.match(word)) or "$" in word or "://" in word or word == "-"


def _path_problems(words: list[str], repo: Path) -> list[str]:
    program = _program(words)
    paths = [v for v in _flag_values(words, FILE_FLAGS.get(program, ())) if not _is_placeholder(v)]
    for word in words:
        value = word.partition("=")[2] if word.startswith("-") else word
        if value.split("/")[0] in SOURCE_DIRS and "/" in value:
            paths.append(value)
    return [f"{path} does not exist in the repository" for path in dict.fromkeys(paths) if not (repo / path).exists()]


def autoglm_deployments(repo: Path = REPO) -> set[tuple[str, str]]:
    """(namespace, name) of every AutoGLMDeployment in manifests/examples and hack/demo."""
    found = set()
    for path in sorted([*(repo / "manifests" / "examples").glob("*.yaml"), *(repo / "hack" / "demo").glob("*.yaml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "AutoGLMDeployment":
                meta = doc["metadata"]
                found.add((meta.get("namespace", "default"), meta["name"]))
    return found


def _namespace(words: list[str]) -> str:
    values = _flag_values(words, ("-n", "--namespace"))
    return values[-1] if values else "default"


def _agd_problems(words: list[str], repo: Path) -> list[str]:
    program = _program(words)
    names: list[str] = []
    if program == "kubectl":
        if "-A" in words or "--all-namespaces" in words:
            return []
        for i, word in enumerate(words):
            kind, slash, name = word.partition("/")
            if kind in AGD_TYPES and slash:
                names.append(name)
            elif word in AGD_TYPES and i + 1 < len(words) and not words[i + 1].startswith("-"):
                names.append(words[i + 1])
    elif program == "autoglm":
        rest = words[words.index("autoglm") + 1:] if "autoglm" in words else words[1:]
        if rest[:1] == ["rollout"] and len(rest) > 2:
            names.append(rest[2])
    known = autoglm_deployments(repo)
    namespace = _namespace(words)
    return [
        f"AutoGLMDeployment {namespace}/{name} is defined by no manifest in manifests/examples or hack/demo "
        f"(they define {', '.join(sorted(f'{ns}/{n}' for ns, n in known))})"
        for name in names
        if not _is_placeholder(name) and (namespace, name) not in known
    ]


def make_targets_and_variables(makefile: Path) -> tuple[set[str], set[str]]:
    text = makefile.read_text()
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.MULTILINE))
    variables = set(re.findall(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*[?:+]?=", text, re.MULTILINE))
    return targets, variables


def _make_problems(words: list[str], repo: Path) -> list[str]:
    targets, variables = make_targets_and_variables(repo / "Makefile")
    found = []
    for word in words[1:]:
        if word.startswith("-"):
            continue
        name, equals, _ = word.partition("=")
        if equals and name not in variables:
            found.append(f"the Makefile sets no variable {name}")
        elif not equals and word not in targets:
            found.append(f"the Makefile has no target {word}")
    return found


def _helm_values_problems(words: list[str], repo: Path) -> list[str]:
    chart = next((w for w in words[3:] if w.startswith("charts/")), None) if words[1:2] in (["install"], ["upgrade"]) else None
    if chart is None:
        return []
    values = yaml.safe_load((repo / chart / "values.yaml").read_text())
    found = []
    for setting in _flag_values(words, ("--set",)):
        for assignment in setting.split(","):
            node = values
            for key in assignment.partition("=")[0].split("."):
                if not isinstance(node, dict) or key not in node:
                    found.append(f"{chart}/values.yaml has no {assignment.partition('=')[0]}")
                    break
                node = node[key]
    return found


def _docker_problems(words: list[str], repo: Path) -> list[str]:
    files = _flag_values(words, FILE_FLAGS["docker"])
    targets = _flag_values(words, ("--target",))
    if words[1:2] != ["build"] or not files or not targets or not (repo / files[0]).exists():
        return []
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", (repo / files[0]).read_text(), re.MULTILINE | re.IGNORECASE))
    return [f"{files[0]} has no stage {t}" for t in targets if t not in stages]


class _Parsed(Exception):
    """Raised in place of running a command once argparse accepted its arguments."""


def cli_module(words: list[str]) -> tuple[str, list[str]] | None:
    """(module whose `main(argv)` runs the command, its argv) for our own tools, else None."""
    program = _program(words)
    if program == "autoglm":
        return "autoglm_operator.cli.main", words[2:] if words[:2] == ["kubectl", "autoglm"] else words[1:]
    if Path(words[0]).name in ("python", "python3") and words[1:2] == ["-m"] and words[2].startswith("autoglm"):
        return words[2], words[3:]
    if words[0] == "hack/testenv":
        return "autoglm_testenv.__main__", words[1:]
    return None


def argparse_problem(module: str, args: list[str]) -> str | None:
    """argparse's error for `args` given to `module.main`, or None when it accepts them; nothing
    runs (argparse's parse_args is wrapped to stop right after a successful parse)."""
    original = argparse.ArgumentParser.parse_args

    def parse_only(self: argparse.ArgumentParser, *a: object, **kw: object) -> argparse.Namespace:
        original(self, *a, **kw)
        raise _Parsed

    stderr = io.StringIO()
    argparse.ArgumentParser.parse_args = parse_only  # type: ignore[method-assign]
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            importlib.import_module(module).main(args)
    except _Parsed:
        return None
    except SystemExit as exc:
        return None if exc.code == 0 else stderr.getvalue().strip().splitlines()[-1]
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    return f"{module}.main returned without parsing its arguments"


def problems(text: str, repo: Path = REPO) -> list[str]:
    """What is wrong with what `text` references (empty when nothing): files and folders, named
    AutoGLMDeployments, make targets and variables, chart values, Dockerfile stages, and the flags
    of our own tools (parsed by their argparse, nothing runs)."""
    words = argv(text)
    if not words:
        return []
    found = _path_problems(words, repo) + _agd_problems(words, repo)
    if words[0] == "make":
        found += _make_problems(words, repo)
    elif words[0] == "helm":
        found += _helm_values_problems(words, repo)
    elif words[0] == "docker":
        found += _docker_problems(words, repo)
    cli = cli_module(words)
    if cli is not None:
        error = argparse_problem(*cli)
        if error:
            found.append(error)
    return found


# --- the commands and how each is verified ----------------------------------------------------

UP = "hack/testenv up"
LOCAL_ENV = 'eval "$(hack/testenv env)"'
HELM_INSTALL = "helm install autoglm charts/autoglm-operator -n autoglm-system --create-namespace"
KUSTOMIZE_INSTALL = "kubectl apply --server-side -k manifests/base"
CREATE_ML = "kubectl create namespace ml"
APPLY_MINIMAL = "kubectl apply -f manifests/examples/01-minimal.yaml"
APPLY_CANARY = "kubectl apply -f manifests/examples/05-canary.yaml"

CI = "CI: .ci/run runs `make test` (unit tests, then e2e tests against a local environment it starts)"
BY_HAND_BENCHMARK = "by hand, for the numbers in docs/benchmarks.md"
OPERATOR_E2E = ("tests/e2e/operator runs `autoglm operator` (conftest.py OperatorProcess: --namespace, "
                "--resync-seconds, --metrics-port, --health-port, --log-format) under the chart's RBAC")
IMAGES = ("by whoever publishes images (needs docker and a registry); nothing in this repository builds them: "
          "tests/unit/manifests/test_images.py lints the Dockerfile, and the stages and chart values named are checked here")

VERIFIED: dict[str, How] = {
    # The local environment (README "Working with the local environment", docs/testenv.md). The
    # e2e test runs these in a scratch copy of the checkout, whose environment is its own.
    UP: Run(),
    LOCAL_ENV: Run(needs=(UP,)),
    "kubectl get nodes -L nvidia.com/gpu.product,autoglm.io/edge-group": Run(needs=(LOCAL_ENV,)),
    "kubectl autoglm --help": Run(needs=(LOCAL_ENV,)),
    "hack/testenv status": Run(needs=(UP,)),
    "hack/testenv env": Run(needs=(UP,)),
    "hack/testenv kubeconfig": Run(needs=(UP,)),
    "hack/testenv down": Run(),
    "hack/testenv down --force": Run(),
    "hack/testenv build": Run(),
    "make testenv-up": Elsewhere(f"{CI}: the same `make venv tools`, then the test runs `hack/testenv up` "
                                "(make in the test's scratch checkout would reinstall the .venv it shares)"),
    "make test": Elsewhere(CI),
    "make e2e": Elsewhere(f"{CI}: the same e2e tests"),
    "make demo": Elsewhere("by hand: the demo itself (about 5 min warm; README \"What make demo shows\" is its output); "
                           "its parts run in the e2e tests"),
    # Installing (README "Installing into a real cluster", the chart's NOTES).
    HELM_INSTALL: Run(needs=(LOCAL_ENV,), operator=True),
    CREATE_ML: Run(needs=(LOCAL_ENV,)),
    APPLY_MINIMAL: Run(needs=(HELM_INSTALL, CREATE_ML)),
    "kubectl wait --for=condition=Ready agd/glm-chat -n ml --timeout=30m": Run(needs=(APPLY_MINIMAL,)),
    "kubectl get autoglmdeployments -A": Run(needs=(HELM_INSTALL,)),
    "kubectl get autoglmdeployments -n ml": Run(needs=(HELM_INSTALL,)),
    "kubectl explain autoglmdeployment.spec": Run(needs=(HELM_INSTALL,)),
    KUSTOMIZE_INSTALL: Run(needs=(LOCAL_ENV,), operator=True),
    # after either install (README's kustomize block, the NOTES of the Helm release `autoglm`)
    "kubectl -n autoglm-system rollout status deploy/autoglm-operator": Run(needs=(LOCAL_ENV,)),
    "kubectl apply -k manifests/argocd": Run(needs=(LOCAL_ENV,), given=("kubectl create namespace argocd",)),  # Argo CD's
    "kubectl apply --server-side --force-conflicts -k crds/": Run(needs=(LOCAL_ENV,)),
    ".venv/bin/autoglm render -f manifests/examples/05-canary.yaml --capabilities keda,istio": Run(),
    "autoglm render -f manifests/examples/02-keda-autoscaled.yaml --capabilities keda,istio": Run(),
    # Images (docs/operations.md).
    "docker build -f hack/images/Dockerfile --target operator  -t $REGISTRY/autoglm/autoglm:$TAG .": Elsewhere(IMAGES),
    "docker build -f hack/images/Dockerfile --target predictor -t $REGISTRY/autoglm/autoglm-predictor:$TAG .":
        Elsewhere(IMAGES),
    "docker push $REGISTRY/autoglm/autoglm:$TAG": Elsewhere(IMAGES),
    "docker push $REGISTRY/autoglm/autoglm-predictor:$TAG": Elsewhere(IMAGES),
    "helm install autoglm charts/autoglm-operator -n autoglm-system --create-namespace "
    "--set image.registry=$REGISTRY --set image.tag=$TAG": Elsewhere(IMAGES),
    # The operator (docs/operator.md): a process that runs until stopped.
    "autoglm operator": Elsewhere(OPERATOR_E2E),
    "autoglm operator -n ml -n 'team-*'": Elsewhere(f"{OPERATOR_E2E} (one plain namespace per test; no glob)"),
    "autoglm operator --resync-seconds 300 --metrics-port 8080 --health-port 8081 --log-level info":
        Elsewhere(OPERATOR_E2E),
    "autoglm operator --peering autoglm --priority 100":
        Elsewhere("tests/e2e/operator/test_peering.py (--peering=autoglm with priorities 200 and 100)"),
    # Canary rollouts (docs/rollouts.md, worked example).
    APPLY_CANARY: Run(needs=(HELM_INSTALL, CREATE_ML)),
    "kubectl patch agd glm-canary -n ml --type merge -p '{\"spec\":{\"model\":{\"name\":\"zai-org/GLM-4-9B-0414-v2\"}}}'":
        Run(needs=(APPLY_CANARY,)),
    "kubectl wait --for=condition=Ready agd/glm-canary -n ml --timeout=30m": Run(needs=(APPLY_CANARY,)),
    "autoglm rollout status glm-canary -n ml": Run(needs=(APPLY_CANARY,)),
    "autoglm rollout pause glm-canary -n ml": Run(needs=(APPLY_CANARY,)),
    "autoglm rollout resume glm-canary -n ml": Run(needs=(APPLY_CANARY,)),
    "autoglm rollout promote glm-canary -n ml": Run(needs=(APPLY_CANARY,)),
    "kubectl get agd glm-canary -n ml": Run(needs=(APPLY_CANARY,)),
    "kubectl get agd glm-canary -n ml -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].message}'":
        Run(needs=(APPLY_CANARY,)),
    # Forecasting and benchmarks (docs/forecasting.md, docs/benchmarks.md).
    "autoglm train --trace FILE [--bucket 5min] [--horizon 30min] [--window 3h] [--test-start DATE] --out model.keras":
        Usage(),
    "autoglm backtest --trace FILE [--test-start DATE] [--step 1min] [--capacity 15/min] [--target 0.8] "
    "[--cold-start 5min] [--max-replicas 40] [--sweep 0.6,0.7,0.75,0.8,0.9] [--model model.keras] "
    "[--report out/backtest] [--json out/backtest.json]": Usage(),
    "autoglm backtest --scenario staged-ramp [--ramp-rates 2,4,6,8,10,4,1] [--ramp-stage 6min] [--ttft-slo 3s] "
    "[--json out/ramp.json]": Usage(),
    "autoglm backtest --trace predictor/autoglm_predictor/traces/nasa_http_1995_per_minute.csv.gz --test-start 1995-08-15 "
    "--report out/backtest-nasa --json out/backtest-nasa.json": Elsewhere(
        f"{BY_HAND_BENCHMARK} (52 s with the LSTM); tests/unit/predictor/cli/test_commands.py runs "
        "`autoglm backtest` and `autoglm train` on a small trace"),
    "autoglm train --trace predictor/autoglm_predictor/traces/nasa_http_1995_per_minute.csv.gz --test-start 1995-08-15 "
    "--out out/nasa-lstm.keras": Elsewhere(f"{BY_HAND_BENCHMARK} (43 s); tests/unit/predictor/cli/test_commands.py "
                                           "runs `autoglm train` on a small trace"),
    **{f"autoglm backtest --trace predictor/autoglm_predictor/traces/azure_llm_2023_{kind}_per_second.csv.gz "
       "--test-start \"2023-11-16 18:45\" --step 10s --bucket 10s --horizon 60s --report-horizons 10s,30s,60s "
       "--window 2min --cold-start 30s --capacity 1/s --max-replicas 20 --p99-fraction 0.5 --scale-down-window 2min "
       f"--report out/backtest-azure-{kind} --json out/backtest-azure-{kind}.json": Elsewhere(BY_HAND_BENCHMARK)
       for kind in ("code", "conv")},
    "autoglm backtest --scenario staged-ramp --report out/backtest-ramp --json out/backtest-ramp.json":
        Elsewhere(f"{BY_HAND_BENCHMARK} (104 s with the LSTM)"),
    **{f"autoglm backtest --trace predictor/autoglm_predictor/traces/azure_llm_2023_{kind}_per_second.csv.gz "
       "--test-start \"2023-11-16 18:45\" --step 10s --bucket 10s --horizon 6min --report-horizons 10s,30s,60s "
       "--window 2min --cold-start 30s --capacity 1/s --max-replicas 20 --p99-fraction 0.5 --scale-down-window 2min "
       f"--report out/attainment-azure-{kind} --json out/attainment-azure-{kind}.json": Elsewhere(BY_HAND_BENCHMARK)
       for kind in ("code", "conv")},
    "python -m autoglm_predictor.pipeline.bench --kafka-bootstrap \"$AUTOGLM_KAFKA_BOOTSTRAP\" --deployments 500 "
    "--history-samples 240 --latency-seconds 20": Elsewhere(f"{BY_HAND_BENCHMARK} (a few minutes)"),
    "make bench BENCH_N=1000 BENCH_JSON=out/bench-1000.json": Elsewhere(
        f"{BY_HAND_BENCHMARK} (about 12 min on an environment of its own); "
        "tests/unit/testenv/test_bench_stats.py tests its statistics"),
    "PYTHONPATH=hack .venv/bin/python -m autoglm_testenv.bench --n 500 --json out/bench-500.json "
    "[--nodes 200] [--resync-seconds 300] [--steady-seconds 300] [--skip-floor]": Usage(),
}
