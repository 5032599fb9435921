"""Argo CD resource actions (Lua, run by a real Lua interpreter through lupa) send exactly the
patches `autoglm rollout` sends, and are offered only in the phases where they do something."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from autoglm_operator.cli.rollout import ACTION_ANNOTATION, action_patch

ACTIONS = yaml.safe_load((Path(__file__).resolve().parents[3] / "manifests" / "argocd" / "actions.yaml").read_text())


def cr(phase: str | None = None, paused: bool = False, rollout: bool = True) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "glm-chat"}, "spec": {"model": {"name": "m"}}}
    if rollout:
        obj["spec"]["rollout"] = {"paused": paused, "steps": [{"weight": 5}]}
    if phase:
        obj["status"] = {"canary": {"phase": phase}}
    return obj


def action(name: str) -> str:
    return next(d["action.lua"] for d in ACTIONS["definitions"] if d["name"] == name)


@pytest.mark.parametrize(
    ("obj", "enabled"),
    [
        (cr(rollout=False), set()),
        (cr(), {"pause"}),
        (cr("Starting"), {"pause", "abort"}),
        (cr("Progressing"), {"pause", "promote", "abort"}),
        (cr("Paused", paused=True), {"resume", "promote", "abort"}),
        (cr("RolledBack"), {"pause", "retry"}),
        (cr("Promoted"), {"pause"}),
    ],
    ids=["no-rollout", "idle", "starting", "progressing", "paused", "rolled-back", "promoted"],
)
def test_discovery_offers_actions_by_phase(run_lua, obj: dict[str, Any], enabled: set[str]) -> None:
    offered = run_lua(ACTIONS["discovery.lua"], obj)
    assert {name for name, a in offered.items() if not a["disabled"]} == enabled
    assert set(offered) == {"pause", "resume", "promote", "abort", "retry"}


@pytest.mark.parametrize("verb", ["pause", "resume"])
def test_pause_and_resume_patch_the_spec_like_the_cli(run_lua, verb: str) -> None:
    patched = run_lua(action(verb), cr("Progressing", paused=verb == "resume"))
    assert patched["spec"]["rollout"]["paused"] == action_patch(verb)["spec"]["rollout"]["paused"]


@pytest.mark.parametrize("verb", ["promote", "abort", "retry"])
def test_control_actions_set_the_annotation_with_a_fresh_nonce(run_lua, verb: str) -> None:
    patched = run_lua(action(verb), cr("Progressing"))
    value = patched["metadata"]["annotations"][ACTION_ANNOTATION]
    expected_verb = action_patch(verb, nonce="x")["metadata"]["annotations"][ACTION_ANNOTATION].split(":")[0]
    assert value.split(":")[0] == expected_verb == verb
    assert len(value.split(":", 1)[1]) >= 15  # a UTC timestamp: a new value each time it is clicked
