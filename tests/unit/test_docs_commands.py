"""Every command README.md, docs/*.md and the chart's NOTES show is run by
tests/e2e/test_docs_commands.py or listed in tests/docs_commands.py with where it runs, and what it
references exists (issue 13: the README's install check waited for an AutoGLMDeployment no example
defines). Pure: the documents, the manifests, the Makefile and our own argparse parsers."""
from __future__ import annotations

from pathlib import Path

import docs_commands as dc
import pytest
from docs_commands import VERIFIED, Elsewhere, Run, Usage

HOW_TO_FIX = (
    "add it to VERIFIED in tests/docs_commands.py exactly as written: Run() when it can run against a "
    "local environment (tests/e2e/test_docs_commands.py then runs it in its block's order; `needs` names "
    "the documented commands it relies on), Elsewhere('where it runs') for a whole job such as CI, the demo "
    "or a benchmark, Usage() for a synopsis with placeholders; or fix the command"
)


def _notes_template_commands() -> list[dc.Command]:
    return list(dc.notes_block(dc.NOTES.read_text()).commands)


def test_every_fenced_block_names_its_language() -> None:
    untagged = [source for path in dc.documents() for source in dc.untagged_blocks(path)]
    assert untagged == [], (
        f"fenced blocks without a language: {untagged}. Commands go in ```sh (or ```console with `$ ` prompts) "
        "so tests/unit/test_docs_commands.py checks them; output and diagrams in ```text")


def test_every_documented_command_is_run_or_listed() -> None:
    missing = [f"{c.source}: `{c.text}`" for c in dc.doc_commands() if c.text not in VERIFIED]
    missing += [f"{c.source}: `{c.text}` (as rendered for `{dc.HELM_INSTALL}`)" for c in _notes_template_commands()
                if not any(dc.template_matches(c.text, listed) for listed in VERIFIED)]
    assert missing == [], "neither run nor listed:\n" + "\n".join(missing) + f"\nTo fix: {HOW_TO_FIX}."


def test_every_listed_command_is_still_documented() -> None:
    documented = {c.text for c in dc.doc_commands()}
    notes = _notes_template_commands()
    stale = [text for text in VERIFIED
             if text not in documented and not any(dc.template_matches(n.text, text) for n in notes)]
    assert stale == [], f"listed in tests/docs_commands.py VERIFIED but in no document or NOTES any more: {stale}"


def test_what_every_command_references_exists() -> None:
    """Files, AutoGLMDeployment names and namespaces, make targets, chart values, Dockerfile stages
    and our own tools' flags. VERIFIED holds every documented command, the rendered NOTES included."""
    wrong = {text: dc.problems(text) for text in VERIFIED}
    assert {text: found for text, found in wrong.items() if found} == {}


def test_needs_are_documented_commands_that_run() -> None:
    for text, how in VERIFIED.items():
        if isinstance(how, Run):
            for need in how.needs:
                assert isinstance(VERIFIED.get(need), Run), f"`{text}` needs `{need}`, which is not a Run entry"
    for text in VERIFIED:  # no cycles: resolving every chain of needs ends
        chain = [text]
        while chain:
            how = VERIFIED[chain.pop()]
            if isinstance(how, Run):
                chain += how.needs
            assert len(chain) < 50, f"the needs of `{text}` form a cycle"


def test_elsewhere_says_where() -> None:
    assert all(how.where.strip() for how in VERIFIED.values() if isinstance(how, Elsewhere))
    assert any(isinstance(how, Usage) for how in VERIFIED.values())


# --- the extractor and the checks themselves ----------------------------------------------------

def _doc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.md"
    path.write_text(text)
    return path


def test_shell_blocks_yield_one_command_per_line(tmp_path: Path) -> None:
    path = _doc(tmp_path, "intro\n\n```sh\n# a comment line\nmake test   # trailing comment\n"
                          "autoglm backtest --trace a.csv \\\n    --report out/x\n\n"
                          "kubectl get agd x -o jsonpath='{.a#b}'\n```\n")
    [block] = dc.markdown_blocks(path, tmp_path)
    assert block.source == "doc.md:3"
    assert [(c.source, c.text) for c in block.commands] == [
        ("doc.md:5", "make test"),
        ("doc.md:6", "autoglm backtest --trace a.csv --report out/x"),
        ("doc.md:9", "kubectl get agd x -o jsonpath='{.a#b}'"),
    ]


def test_console_blocks_yield_only_prompted_lines(tmp_path: Path) -> None:
    path = _doc(tmp_path, "```console\n$ autoglm rollout status a -n ml   # look\nml/a: phase Progressing\n"
                          "$ kubectl get agd a -n ml\nNAME  READY\n```\n")
    [block] = dc.markdown_blocks(path, tmp_path)
    assert [c.text for c in block.commands] == ["autoglm rollout status a -n ml", "kubectl get agd a -n ml"]


def test_other_blocks_are_not_commands_and_untagged_ones_are_reported(tmp_path: Path) -> None:
    path = _doc(tmp_path, "```yaml\nkind: X\n```\n\n```text\nmake test\n```\n\n```\nmake demo\n```\n")
    assert dc.markdown_blocks(path, tmp_path) == []
    assert dc.untagged_blocks(path, tmp_path) == ["doc.md:9"]


def test_an_unclosed_block_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="doc.md:1: fenced block never closed"):
        dc.markdown_blocks(_doc(tmp_path, "```sh\nmake test\n"), tmp_path)


def test_notes_commands_are_the_indented_lines() -> None:
    notes = "Installed.\n\nCheck it:\n  kubectl get pods -n x\n\nCRDs: apply them:\n  kubectl apply -k crds/\n"
    assert [c.text for c in dc.notes_block(notes, "NOTES").commands] == ["kubectl get pods -n x", "kubectl apply -k crds/"]
    assert dc.helm_notes("NAME: autoglm\nSTATUS: deployed\nNOTES:\nhello\n  kubectl get pods\n") == "hello\n  kubectl get pods\n"
    with pytest.raises(ValueError, match="printed no NOTES"):
        dc.helm_notes("NAME: autoglm\n")


def test_template_lines_match_their_renderings() -> None:
    line = '  kubectl -n {{ .Release.Namespace }} rollout status deploy/{{ include "autoglm.fullname" . }}-operator'
    assert dc.template_matches(line, "kubectl -n autoglm-system rollout status deploy/autoglm-operator")
    assert not dc.template_matches(line, "kubectl -n autoglm-system rollout status deploy/autoglm")


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        # the issue: the example is glm-chat, not glm-minimal
        ("kubectl wait --for=condition=Ready agd/glm-minimal -n ml --timeout=30m", "AutoGLMDeployment ml/glm-minimal"),
        ("kubectl wait --for=condition=Ready agd/glm-chat --timeout=30m", "AutoGLMDeployment default/glm-chat"),
        ("kubectl get autoglmdeployment glm-chat -n other", "AutoGLMDeployment other/glm-chat"),
        ("autoglm rollout pause glm-minimal -n ml", "AutoGLMDeployment ml/glm-minimal"),
        ("kubectl apply -f glm-chat.yaml", "glm-chat.yaml does not exist"),
        ("kubectl apply --server-side -k manifests/nothere", "manifests/nothere does not exist"),
        ("autoglm backtest --trace predictor/autoglm_predictor/traces/none.csv", "predictor/autoglm_predictor/traces/none.csv does not exist"),
        ("make tests", "the Makefile has no target tests"),
        ("make bench BENCH_COUNT=10", "the Makefile sets no variable BENCH_COUNT"),
        ("helm install autoglm charts/autoglm-operator --set operator.bogus=1", "values.yaml has no operator.bogus"),
        ("docker build -f hack/images/Dockerfile --target server .", "hack/images/Dockerfile has no stage server"),
        ("autoglm render -f manifests/examples/01-minimal.yaml --engine vllm", "unrecognized arguments: --engine"),
        (".venv/bin/autoglm backtest --trace FILE --horizons 5min", "unrecognized arguments: --horizons"),
        ("kubectl autoglm rollout stop glm-chat -n ml", "invalid choice: 'stop'"),
        ("PYTHONPATH=hack .venv/bin/python -m autoglm_testenv.bench --count 5", "unrecognized arguments: --count"),
        ("hack/testenv start", "invalid choice: 'start'"),
    ],
)
def test_wrong_references_are_found(command: str, problem: str) -> None:
    found = dc.problems(command)
    assert any(problem in p for p in found), found


@pytest.mark.parametrize(
    "command",
    [
        "kubectl wait --for=condition=Ready agd/glm-chat -n ml --timeout=30m",
        "kubectl get agd -A",
        "kubectl patch agd NAME -n NS --type=merge -p '{}'",
        "autoglm train --trace FILE [--bucket 5min] --out model.keras",
        "kubectl autoglm rollout status|pause|resume NAME -n NS",
        "make bench BENCH_N=1000 BENCH_JSON=out/bench-1000.json",
        "pkill -f autoglm-testenv-",
        "kubectl autoglm --help",
        "autoglm crd > crds/autoglm.io_autoglmdeployments.yaml",
        "kubectl get agd glm-chat -n ml -o json | python3 -m json.tool",
    ],
)
def test_right_references_and_placeholders_pass(command: str) -> None:
    assert dc.problems(command) == []
