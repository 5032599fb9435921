"""`autoglm rollout ...` / `kubectl autoglm rollout ...`: parsing, the patches sent, the status summary."""
from __future__ import annotations

import tomllib

import pytest

from autoglm_operator.cli.main import build_parser
from autoglm_operator.cli.rollout import action_patch, describe, kubectl_main, kubectl_parser, refusal


@pytest.mark.parametrize("verb", ["status", "pause", "resume", "promote", "abort", "retry"])
def test_every_verb_parses(verb):
    args = build_parser().parse_args(["rollout", verb, "glm", "-n", "ml"])
    assert (args.verb, args.name, args.namespace) == (verb, "glm", "ml")


def test_patches_are_plain_kubectl_patches():
    assert action_patch("pause") == {"spec": {"rollout": {"paused": True}}}
    assert action_patch("resume") == {"spec": {"rollout": {"paused": False}}}
    assert action_patch("promote", "n1") == {"metadata": {"annotations": {"autoglm.io/rollout-action": "promote:n1"}}}
    a, b = action_patch("abort"), action_patch("abort")
    assert a != b, "each command gets its own nonce, so repeating it is a new request the operator consumes once"


def test_status_summary_tells_the_story():
    cr = {"metadata": {"name": "glm", "namespace": "ml"}, "spec": {"rollout": {}},
          "status": {"phase": "Degraded", "currentRevision": "old",
                     "conditions": [{"type": "Ready", "status": "False", "reason": "RolledBack", "message": "ttftP95=3.5"}],
                     "canary": {"revision": "new", "phase": "RolledBack", "step": 1, "weight": 0, "mirror": 0,
                                "failedChecks": 2, "message": "analysis failed 2/2: ttftP95=3.5 (above max 2)",
                                "analysis": [{"name": "ttftP95", "result": "Fail", "value": 3.5, "stable": 0.2}],
                                "retiring": [{"revision": "new", "at": "2025-01-01T00:00:00Z"}],
                                "history": [{"revision": "new", "result": "RolledBack", "finishedAt": "2025-01-01T00:00:00Z"}]}}}
    text = describe(cr)
    assert "canary new: RolledBack, step 2, weight 0%, mirror 0%, failed checks 2" in text
    assert "ttftP95        Fail   value=3.5 stable=0.2" in text
    assert "Ready=False RolledBack: ttftP95=3.5" in text and "retiring new" in text
    assert "no spec.rollout" in describe({"metadata": {"name": "g", "namespace": "n"}, "spec": {}})


def test_kubectl_plugin_is_a_console_script(repo):
    scripts = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-autoglm"] == "autoglm_operator.cli.rollout:kubectl_main"


def test_status_summary_says_when_no_operator_has_reconciled_the_resource():
    fresh = {"metadata": {"name": "glm-chat", "namespace": "ml", "generation": 1}, "spec": {}}
    assert "no operator has reconciled this resource" in describe(fresh)
    assert "namespace ml" in describe(fresh)
    behind = {**fresh, "metadata": {**fresh["metadata"], "generation": 3}, "status": {"observedGeneration": 2}}
    assert "generation 2, the spec is at 3" in describe(behind)
    current = {**behind, "status": {"observedGeneration": 3, "phase": "Ready"}}
    assert "no operator" not in describe(current) and "caught up" not in describe(current)


def _resource(rollout: dict | None, canary: dict | None = None) -> dict:
    return {"metadata": {"name": "glm", "namespace": "ml"}, "spec": {"rollout": rollout} if rollout is not None else {},
            "status": {"canary": canary} if canary else {}}


@pytest.mark.parametrize("verb", ["pause", "resume", "promote", "abort", "retry"])
def test_every_control_is_refused_without_a_rollout(verb):
    assert "no spec.rollout" in refusal(verb, _resource(None))


@pytest.mark.parametrize(("verb", "phase", "acts"), [
    ("promote", "Progressing", True), ("promote", "Paused", True), ("promote", "Starting", False),
    ("promote", "Promoted", False), ("promote", None, False),
    ("abort", "Starting", True), ("abort", "Progressing", True), ("abort", "RolledBack", False),
    ("retry", "RolledBack", True), ("retry", "Aborted", True), ("retry", "Promoted", False), ("retry", "Progressing", False),
])
def test_actions_act_only_in_their_phases(verb, phase, acts):
    why = refusal(verb, _resource({"steps": [{"weight": 5}]}, {"revision": "c2d4", "phase": phase} if phase else None))
    assert (why is None) == acts, why
    if not acts:
        assert ("canary c2d4 is " + phase if phase else "no canary has started") in why


def test_pause_and_resume_refuse_only_when_already_there():
    running, paused = _resource({"steps": []}), _resource({"paused": True})
    assert refusal("pause", running) is None and refusal("resume", paused) is None
    assert "already paused" in refusal("pause", paused) and "not paused" in refusal("resume", running)


def test_kubectl_plugin_help_names_the_plugin_and_only_its_commands(capsys):
    with pytest.raises(SystemExit) as done:
        kubectl_main(["--help"])
    assert done.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith("usage: kubectl autoglm") and "rollout" in usage
    assert "operator" not in usage and "train" not in usage
    args = kubectl_parser().parse_args(["rollout", "promote", "glm", "-n", "ml"])
    assert (args.verb, args.name, args.namespace) == ("promote", "glm", "ml")
