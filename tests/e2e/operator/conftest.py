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
    objects = [
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
         "spec": {"capacity": {"storage": "100Gi"}, "accessModes": ["ReadOnlyMany"], "storageClassName": "",
                  "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": str(tmp_path)},
                  "claimRef": {"namespace": namespace, "name": "model-cache"}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "model-cache", "namespace": namespace},
         "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": pv_name,
                  "resources": {"requests": {"storage": "100Gi"}}}},
    ]
    apply(testenv, {"apiVersion": "v1", "kind": "List", "items": objects})
    wait_for("PVC model-cache Bound", lambda: testenv.kubectl_json("get", "pvc", "model-cache", "-n", namespace)
             .get("status", {}).get("phase") == "Bound", 30)
    yield "model-cache"
    testenv.kubectl("delete", "pv", pv_name, "--wait=false", check=False)
