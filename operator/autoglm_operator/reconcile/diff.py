"""Deciding, without writing, whether a child object needs an apply and which children to prune.

An apply is sent only when the desired object changed or the live one drifted, so a resync of an
unchanged resource writes nothing. Two checks together cover both cases:

- a fingerprint of the desired object, stored in an annotation on the child, changes whenever the
  operator's intent changes, including when it stops setting a field (server-side apply then
  removes the field; a subset check alone would never notice it is gone from the intent);
- "desired is a subset of live" catches edits and deletions by anyone else. It compares what the
  API server stores, not what was sent, so the server's normalisations never count as drift (each
  one re-applied the object at every resync, with an Event: issue 15, fault 4):
  - defaults it adds (a Service port's `protocol: TCP`, a container's `terminationMessagePath`):
    only desired fields are compared;
  - empty values it drops: `null`, `[]`, `{}`, and `""` or `false` in a field Go omits when empty
    (an env var's `value: ""`, a mount's `readOnly: false`);
  - quantities it canonicalises (`1024Mi` is stored as `1Gi`, `1000m` as `1`, a number `2` as
    `"2"`): compared by value (`kubernetes.utils.parse_quantity`);
  - keyed lists (containers, env, volumes by `name`; ports by number and protocol; mounts by
    path): matched by key, whatever the order, and entries other field managers added are not
    the operator's to remove (server-side apply keeps them: re-applying never changes them).

An apply that changes only a replica count or the autoscaler's minimum (`SCALE_FIELDS`) is
routine: load and the predictor's forecast move them all day (37 floor changes in 4 minutes were
seen), status shows them (`replicas`, `autoscaling.minReplicas`), so they are logged but earn no
Event. Events stay for what a human should notice: objects created, changed by a spec edit, or
reverted after someone else's edit.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from autoglm_operator.api.spec import KIND

FINGERPRINT_ANNOTATION = "autoglm.io/applied-fingerprint"
FIELD_MANAGER = "autoglm-operator"

ObjectKey = tuple[str, str]  # (kind, name) within the resource's namespace

# Per kind, the paths of the replica counts the operator sets from spec.replicas or the forecast floor.
SCALE_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Deployment": (("spec", "replicas"),),
    "ScaledObject": (("spec", "minReplicaCount"), ("spec", "fallback", "replicas")),
    "HorizontalPodAutoscaler": (("spec", "minReplicas"),),
}
_ABSENT = object()


@dataclasses.dataclass(frozen=True)
class ApplyReason:
    """Why an object is applied: `text` (created, updated, drift at <path>, or rescaled <counts>)
    goes to the log line and, unless `routine`, to the `Applied` Event."""

    text: str
    routine: bool = False

    def __str__(self) -> str:
        return self.text


def object_key(obj: Mapping[str, Any], kind: str | None = None) -> ObjectKey:
    """`kind` is needed for list items of built-in kinds, which the server returns without one."""
    return (kind or obj["kind"], obj["metadata"]["name"])


def fingerprint(obj: Mapping[str, Any]) -> str:
    """16 hex digits of SHA-256 over canonical JSON of `obj` without a fingerprint annotation of its
    own (and without `annotations` if that was the only one), so a fingerprinted object can be
    fingerprinted again, with a change, and compared."""
    meta = dict(obj["metadata"])
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != FINGERPRINT_ANNOTATION}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    canonical = json.dumps({**obj, "metadata": meta}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def fingerprinted(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `obj` carrying the fingerprint of everything else in it."""
    marked = copy.deepcopy(dict(obj))
    marked["metadata"].setdefault("annotations", {})[FINGERPRINT_ANNOTATION] = fingerprint(obj)
    return marked


def apply_reason(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> ApplyReason | None:
    """Why `desired` (fingerprinted) must be applied over `live`, or None when it need not be."""
    if live is None:
        return ApplyReason("created")
    wanted = desired["metadata"]["annotations"][FINGERPRINT_ANNOTATION]
    if (live["metadata"].get("annotations") or {}).get(FINGERPRINT_ANNOTATION) != wanted:
        rescaled = _rescaled(desired, live)
        return ApplyReason(f"rescaled {rescaled}", routine=True) if rescaled else ApplyReason("updated")
    body = {key: value for key, value in desired.items() if key not in ("apiVersion", "kind")}
    path = first_difference(body, live)
    return None if path is None else ApplyReason(f"drift at {path}")


def _rescaled(desired: Mapping[str, Any], live: Mapping[str, Any]) -> str | None:
    """The replica counts that changed, in words, when nothing else did: `desired` with the live
    counts put back has the fingerprint `live` was applied with, and `live` holds all of it (no
    drift to revert elsewhere). None otherwise."""
    probe = copy.deepcopy(dict(desired))
    changes = []
    for path in SCALE_FIELDS.get(desired["kind"], ()):
        want, have = _get(desired, path), _get(live, path)
        if want is _ABSENT:
            continue
        if have is _ABSENT:
            return None
        if want != have:
            _get(probe, path[:-1])[path[-1]] = have
            changes.append(f"{'.'.join(path)} {have} -> {want}")
    applied = (live["metadata"].get("annotations") or {}).get(FINGERPRINT_ANNOTATION)
    if not changes or fingerprint(probe) != applied:
        return None
    probe["metadata"]["annotations"][FINGERPRINT_ANNOTATION] = applied
    body = {key: value for key, value in probe.items() if key not in ("apiVersion", "kind")}
    return ", ".join(changes) if first_difference(body, live) is None else None


def _get(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, Mapping) or key not in obj:
            return _ABSENT
        obj = obj[key]
    return obj


def first_difference(desired: Any, live: Any, path: str = "") -> str | None:
    """The first path where `live` does not hold `desired`, or None when it holds all of it."""
    if isinstance(desired, dict):
        if not desired and live is None:
            return None
        if not isinstance(live, dict):
            return path or "."
        for key, value in desired.items():
            where = f"{path}.{key}"
            if key not in live or live[key] is None:
                if _empty(value):  # the server omits empty values
                    continue
                return where
            found = first_difference(value, live[key], where)
            if found:
                return found
        return None
    if isinstance(desired, list):
        if not desired and live is None:
            return None
        if not isinstance(live, list):
            return path
        key_of = _list_key(desired, live)
        if key_of is not None:
            return _keyed_difference(desired, live, key_of, path)
        if len(live) != len(desired):
            return path
        for i, (want, have) in enumerate(zip(desired, live)):
            found = first_difference(want, have, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if _same_scalar(desired, live) else path


# The keys of the keyed lists of the kinds the operator applies (the Kubernetes API's
# `x-kubernetes-list-map-keys`/patch merge keys), tried in this order on an entry's fields.
_LIST_KEYS: tuple[tuple[str, ...], ...] = (("containerPort", "protocol"), ("port", "protocol"), ("mountPath",), ("name",))
_DEFAULTS = {"protocol": "TCP"}  # a key field the server defaults when the entry leaves it out


def _list_key(desired: list[Any], live: list[Any]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]] | None:
    """How entries of this list are keyed, when every entry on both sides is a map with that key
    and no key repeats in `desired` (else None: compared position by position)."""
    entries = [*desired, *live]
    if not all(isinstance(entry, Mapping) for entry in entries):
        return None
    for fields in _LIST_KEYS:
        if all(fields[0] in entry for entry in entries):
            def key_of(entry: Mapping[str, Any], fields: tuple[str, ...] = fields) -> tuple[Any, ...]:
                return tuple(entry.get(f, _DEFAULTS.get(f)) for f in fields)

            keys = [key_of(entry) for entry in desired]
            return key_of if len(set(keys)) == len(keys) else None
    return None


def _keyed_difference(desired: list[Any], live: list[Any], key_of: Callable[[Mapping[str, Any]], tuple[Any, ...]],
                      path: str) -> str | None:
    """Each desired entry held by the live entry of the same key, the path naming the key."""
    keys = [key_of(entry) for entry in desired]
    by_key = {key_of(entry): entry for entry in live}
    for key, want in zip(keys, desired):
        where = f"{path}[{'='.join(str(k) for k in key)}]"
        if key not in by_key:
            return where
        found = first_difference(want, by_key[key], where)
        if found:
            return found
    return None


def _empty(value: Any) -> bool:
    """A value the API server drops rather than stores (Go's `omitempty` on a non-pointer field)."""
    return value is None or value is False or (isinstance(value, (str, list, dict)) and not value)


def _same_scalar(desired: Any, live: Any) -> bool:
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if desired == live:
        return True
    if isinstance(desired, (str, int, float)) and isinstance(live, (str, int, float)):
        want = _quantity(desired)
        return want is not None and want == _quantity(live)
    return False


def _quantity(value: str | int | float) -> Decimal | None:
    try:
        return parse_quantity(value)
    except (ValueError, InvalidOperation, TypeError):
        return None


def replicas_to_hand_over(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> int | None:
    """The live replica count to hand over before an apply that stops setting `spec.replicas`.

    When autoscaling is switched on, the operator stops setting replicas. Server-side apply would
    then remove the field it owned and the Deployment would fall back to 1 replica until the
    autoscaler reacts; handing the field to another manager first keeps the running count
    (the ownership transfer described in the Kubernetes server-side apply documentation).
    """
    if live is None or desired["kind"] != "Deployment" or "replicas" in desired["spec"]:
        return None
    for entry in live["metadata"].get("managedFields") or []:
        owned = entry.get("fieldsV1", {}).get("f:spec", {})
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply" and "f:replicas" in owned:
            return int(live["spec"].get("replicas", 1))
    return None


def prunable(live: Mapping[ObjectKey, Mapping[str, Any]], keep: set[ObjectKey]) -> list[ObjectKey]:
    """Live children (already selected by the managed-by and instance labels) not in `keep`.

    Objects being deleted are left alone: deleting them again would only add writes. So are objects
    another controller made and controls: KEDA copies a ScaledObject's labels onto the HPA it creates
    (`keda-hpa-<name>`, controlled by the ScaledObject), and deleting that HPA fights KEDA.
    """
    return [key for key, obj in live.items() if key not in keep and not obj["metadata"].get("deletionTimestamp")
            and not _controlled_by_another_kind(obj)]


def _controlled_by_another_kind(obj: Mapping[str, Any]) -> bool:
    """Whether `obj`'s controller reference names a kind other than ours (every child the operator
    applies has its AutoGLMDeployment as controller)."""
    return any(ref.get("controller") and ref.get("kind") != KIND for ref in obj["metadata"].get("ownerReferences") or [])
