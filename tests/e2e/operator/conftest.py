"""Fixtures of the operator's e2e tests (helpers are in operator_support.py)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from operator_support import apply, wait_for

from autoglm_testenv import Env


@pytest.fixture
def model_cache(testenv: Env, namespace: str, tmp_path: Path) -> Iterator[str]:
    """A bound PVC `model-cache` (as examples with pvc:// sources expect) backed by a hostPath PV."""
    pv_name = f"{namespace}-model-cache"
    apply(testenv, {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
        "spec": {"capacity": {"storage": "100Gi"}, "accessModes": ["ReadOnlyMany"], "storageClassName": "",
                 "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": str(tmp_path)},
                 "claimRef": {"namespace": namespace, "name": "model-cache"}},
    })
    # A claim the volume controller sees before the volume waits for its 15 s resync to bind.
    wait_for("PV Available", lambda: _phase(testenv, "pv", pv_name) == "Available", 30)
    apply(testenv, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "model-cache", "namespace": namespace},
        "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": pv_name,
                 "resources": {"requests": {"storage": "100Gi"}}},
    })
    wait_for("PVC model-cache Bound", lambda: _phase(testenv, "pvc", "model-cache", "-n", namespace) == "Bound", 30)
    yield "model-cache"
    testenv.kubectl("delete", "pv", pv_name, "--wait=false", check=False)


def _phase(testenv: Env, *what: str) -> str | None:
    return testenv.kubectl_json("get", *what).get("status", {}).get("phase")
