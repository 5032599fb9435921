"""Helpers for the operator's e2e tests: example resources, polling status, counting writes in the audit log.

The `operator` fixture itself (the real `autoglm operator` process under its own ServiceAccount)
lives in tests/e2e/conftest.py so other suites can run against a live operator too.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import yaml

from autoglm_operator.api.labels import children_selector
from autoglm_operator.api.spec import KIND
from autoglm_operator.reconcile.kinds import CHILD_KINDS
from autoglm_testenv import Env, audit, config

T = TypeVar("T")

EXAMPLES = config.REPO_DIR / "manifests" / "examples"
CHILD_RESOURCES = ",".join(f"{k.plural}.{k.group}" if k.group else k.plural for k in CHILD_KINDS)


def example(filename: str, namespace: str) -> dict[str, Any]:
    """An example from manifests/examples, moved into the test's namespace."""
    cr = yaml.safe_load((EXAMPLES / filename).read_text())
    cr["metadata"]["namespace"] = namespace
    return cr


def apply(testenv: Env, obj: dict[str, Any]) -> None:
    testenv.kubectl("apply", "-f", "-", input=json.dumps(obj))


def resource(testenv: Env, namespace: str, name: str) -> dict[str, Any]:
    return testenv.kubectl_json("get", "autoglmdeployment", name, "-n", namespace)


def condition(cr: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in cr.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def wait_for(what: str, check: Callable[[], T], timeout: float = 60) -> T:
    """Poll until `check` returns something truthy and return it; fail with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def wait_for_condition(testenv: Env, namespace: str, name: str, kind: str, status: str, reason: str | None = None,
                       timeout: float = 60) -> dict[str, Any]:
    """The resource once its condition `kind` has `status` (and `reason`) for its current generation."""
    def reached() -> dict[str, Any] | None:
        cr = resource(testenv, namespace, name)
        cond = condition(cr, kind)
        current = cr.get("status", {}).get("observedGeneration") == cr["metadata"]["generation"]
        if current and cond.get("status") == status and reason in (None, cond.get("reason")):
            return cr
        return None

    return wait_for(f"{name}: {kind}={status} {reason or ''}", reached, timeout)


def children(testenv: Env, namespace: str, name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object, for everything labelled as the operator's for the resource `name`,
    except what another controller made with those labels (KEDA's HPA copies its ScaledObject's)."""
    items = testenv.kubectl_json("get", CHILD_RESOURCES, "-n", namespace, "-l", children_selector(name))["items"]
    return {(item["kind"], item["metadata"]["name"]): item for item in items
            if not any(ref.get("controller") and ref.get("kind") != KIND for ref in item["metadata"].get("ownerReferences") or [])}


def audit_offset(testenv: Env) -> int:
    return audit.offset(testenv.audit_log)


def writes_by(testenv: Env, user: str, since: int) -> list[dict[str, Any]]:
    """Write requests `user` completed since the audit log had `since` bytes."""
    return audit.writes(testenv.audit_log, user, since)


def describe(writes: list[dict[str, Any]]) -> list[str]:
    return [f"{w['verb']} {w['objectRef'].get('resource')}/{w['objectRef'].get('name')}" for w in writes]


def wait_until_quiet(testenv: Env, user: str, quiet_seconds: float, timeout: float = 60) -> int:
    """Wait until `user` has written nothing for `quiet_seconds`; return the audit offset at that point."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        offset = audit_offset(testenv)
        time.sleep(quiet_seconds)
        if not writes_by(testenv, user, offset):
            return audit_offset(testenv)
    pytest.fail(f"{user} kept writing for {timeout:.0f}s")


def node_readiness_changed_since(testenv: Env, started: float) -> bool:
    """Whether a node's Ready condition flipped after `started` (epoch seconds): kwok's heartbeats
    sometimes lapse on a loaded machine, every pod turns NotReady, and status changes are then due."""
    for node in testenv.kubectl_json("get", "nodes")["items"]:
        for cond in node["status"].get("conditions", []):
            changed = datetime.fromisoformat(cond["lastTransitionTime"].replace("Z", "+00:00")).timestamp()
            if cond["type"] == "Ready" and changed >= started - 1:
                return True
    return False


def gpu_quota(testenv: Env, namespace: str, gpus: int) -> None:
    """At most `gpus` GPUs in the namespace: holds a new revision back without touching the shared GPU
    nodes. Admission refuses every pod until the quota controller has counted usage, so wait for that."""
    apply(testenv, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "gpus", "namespace": namespace},
                    "spec": {"hard": {"requests.nvidia.com/gpu": str(gpus)}}})
    wait_for("the GPU quota counted", lambda: testenv.kubectl_json("get", "resourcequota", "gpus", "-n", namespace)
             .get("status", {}).get("hard", {}).get("requests.nvidia.com/gpu") == str(gpus), 30)
