"""The Argo CD health check (Lua, run by a real Lua interpreter through lupa) maps each status the
operator writes to the Argo CD health Argo CD users expect."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

HEALTH_LUA = Path(__file__).resolve().parents[3] / "manifests" / "argocd" / "health.lua"


def cr(generation: int = 3, status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "glm-chat", "generation": generation}}
    if status is not None:
        obj["status"] = status
    return obj


def cond(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


READY = cond("Ready", "True", "Ready", "2/2 replicas of revision e1f7013882 ready")


@pytest.mark.parametrize(
    ("obj", "expected_status", "message_part"),
    [
        (cr(status=None), "Progressing", "Waiting for the operator"),
        (cr(status={"observedGeneration": 2, "conditions": [READY]}), "Progressing", "observe generation 3"),
        (cr(status={"observedGeneration": 3, "conditions": [READY]}), "Healthy", "2/2 replicas"),
        (cr(status={"observedGeneration": 3, "conditions": [
            cond("Ready", "True"), cond("Progressing", "True", "CanaryStep", "canary at 25%")]}),
         "Progressing", "canary at 25%"),
        (cr(status={"observedGeneration": 3, "phase": "Paused", "conditions": [
            cond("Ready", "True"), cond("Progressing", "True", "Paused", "paused at step 2")]}),
         "Suspended", "paused at step 2"),
        (cr(status={"observedGeneration": 3, "canary": {"paused": True}, "conditions": [cond("Ready", "True")]}),
         "Suspended", "Rollout paused"),
        (cr(status={"observedGeneration": 3, "conditions": [
            cond("Ready", "False", "RolledBack", "ttft p95 3.1s > 2.0s"),
            cond("Degraded", "True", "RolledBack", "canary rolled back: ttft p95 3.1s > 2.0s")]}),
         "Degraded", "rolled back"),
        (cr(status={"observedGeneration": 3, "conditions": [
            cond("Ready", "False", "InvalidSpec", "tensorParallelSize 3 does not divide gpu.count 4")]}),
         "Degraded", "tensorParallelSize"),
        (cr(status={"observedGeneration": 3, "conditions": [
            cond("Ready", "False", "Unschedulable", "0/5 nodes: Insufficient nvidia.com/gpu")]}),
         "Progressing", "Insufficient nvidia.com/gpu"),
        (cr(status={"observedGeneration": 3}), "Progressing", "Not ready yet"),
    ],
    ids=["no-status", "stale-generation", "ready", "canary", "paused-phase", "paused-canary", "rolled-back",
         "invalid-spec", "unschedulable", "no-conditions"],
)
def test_health_mapping(run_lua, obj: dict[str, Any], expected_status: str, message_part: str) -> None:
    result = run_lua(HEALTH_LUA.read_text(), obj)
    status, message = result["status"], result["message"]
    assert status == expected_status
    assert message_part in message
