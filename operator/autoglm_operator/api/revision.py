"""The revision: a short, stable hash of exactly the spec fields that change the pods.

Each revision gets its own Deployment, so changing replicas, autoscaling, routing or security
must never produce a new one (that would reload the model on fresh GPUs for nothing).
Only fields that differ from their defaults are hashed, so adding a new defaulted field to the
API in a later release does not restart every model in the fleet. Values are hashed in the
spelling the API server treats as equal (a field's `canonical`, such as a quantity's canonical
form: `cpu: 1000m` and `cpu: 1` are one revision). Sections added after the first release
(`scheduling`) are hashed only when set, so the revision of a spec without them stays the same.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from autoglm_operator.api.schema import camel
from autoglm_operator.api.spec import Spec


def revision(spec: Spec) -> str:
    pod_fields = {"model": spec.model, "runtime": spec.runtime, "resources": spec.resources}
    reduced = {key: _non_default(value) for key, value in pod_fields.items()}
    scheduling = _non_default(spec.scheduling)
    if scheduling:
        reduced["scheduling"] = scheduling
    canonical = json.dumps(reduced, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:10]


def _non_default(value: Any) -> Any:
    if isinstance(value, list):
        return [_non_default(v) for v in value]
    if not dataclasses.is_dataclass(value):
        return value
    out = {}
    for f in dataclasses.fields(value):
        current = getattr(value, f.name)
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = f.default
        canonical = f.metadata.get("canonical")
        if canonical is not None:
            current = canonical(current)
            default = default if default is dataclasses.MISSING else canonical(default)
        if current != default:
            out[camel(f.name)] = _non_default(current)
    return out
