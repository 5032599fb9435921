"""The children and pods of every resource, kept current by watches instead of listed on each converge.

Listing every child kind and the pods by label on each converge cost 13 API reads per converge,
and a new resource converges about ten times while its pods start (measured in `make bench`):
with a thousand resources the API server spent its time answering the operator's LISTs. Here
each resource is listed once per process (`replace`), then watch events (handlers.py) and the
operator's own writes (`stored`, `removed`) keep the copy current.

Ordering: a watch event can arrive after a newer copy came from the operator's own apply or from
a LIST, so an object is replaced only by one with a higher resourceVersion (the API server's etcd
revision; compared as integers when both are). An object seen deleted is never brought back by a
LIST or a late event (its uid is remembered for a while).

Pods keep only what the status reads (conditions.py): names, labels, timestamps, conditions.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from autoglm_operator.api.labels import INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from autoglm_operator.reconcile.diff import FIELD_MANAGER, ObjectKey, object_key
from autoglm_operator.reconcile.kinds import Kind

Owner = tuple[str, str]  # (namespace, resource name)
POD = Kind("v1", "Pod", "pods")  # cached and watched, never written: not a child kind
GONE_SECONDS = 600.0  # how long a deleted uid is remembered; far longer than any LIST or event lag


def owner_of(obj: Mapping[str, Any]) -> Owner | None:
    """The resource an object was made for, from its labels (None: not the operator's)."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or not labels.get(INSTANCE_LABEL):
        return None
    return (meta.get("namespace", ""), labels[INSTANCE_LABEL])


class Entry:
    """One held object: its identity and version, and the object as compact JSON. Kept encoded
    because a thousand resources' children as Python dicts took more memory than the rest of the
    operator (a live Deployment is ~5 KB of JSON and many times that as dicts); a converge decodes
    the few it reads."""

    __slots__ = ("uid", "version", "data")

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.uid = obj["metadata"].get("uid")
        self.version = obj["metadata"].get("resourceVersion", "")
        self.data = json.dumps(obj, separators=(",", ":")).encode()

    def decoded(self) -> dict[str, Any]:
        return json.loads(self.data)  # type: ignore[no-any-return]


def newer(candidate: Mapping[str, Any], current: Entry | None) -> bool:
    """Whether `candidate` is a later version of the object than `current` (None: nothing held)."""
    if current is None:
        return True
    if candidate["metadata"].get("uid") != current.uid:
        return True  # a new object under the same name
    new, old = candidate["metadata"].get("resourceVersion", ""), current.version
    if new.isdigit() and old.isdigit():
        return int(new) > int(old)
    return new != old


def _after(entry: Entry, list_version: str) -> bool:
    """Whether `entry` changed after a LIST taken at `list_version`."""
    return entry.version.isdigit() and list_version.isdigit() and int(entry.version) > int(list_version)


def _without_version(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}


def slim_child(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the managed fields except the operator's own Apply entry (diff.replicas_to_hand_over reads it)."""
    meta = dict(obj["metadata"])
    ours = [e for e in meta.get("managedFields") or [] if e.get("manager") == FIELD_MANAGER and e.get("operation") == "Apply"]
    if ours:
        meta["managedFields"] = ours
    else:
        meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


def slim_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    meta = pod["metadata"]
    kept = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "labels", "creationTimestamp",
                                 "deletionTimestamp") if k in meta}
    status = pod.get("status") or {}
    return {"metadata": kept, "status": {k: status[k] for k in ("phase", "conditions") if k in status}}


class ChildrenCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._children: dict[Owner, dict[ObjectKey, Entry]] = {}
        self._pods: dict[Owner, dict[str, Entry]] = {}
        self._seeded: set[Owner] = set()
        self._gone: dict[str, float] = {}  # uid -> when it was seen deleted

    # --- watch events and the operator's own writes ------------------------------------------
    def observe(self, kind: str, obj: Mapping[str, Any], deleted: bool) -> bool:
        """One watch event of a child of kind `kind` (pods: kind "Pod"); whether it told anything
        new. The echo of the operator's own apply does not, nor a pod update that changed none of
        what the status reads (kwok and the kubelet rewrite pod status often), so neither needs a
        converge."""
        return self.removed(kind, obj) if deleted else self.stored(kind, obj)

    def stored(self, kind: str, obj: Mapping[str, Any]) -> bool:
        """Hold `obj` unless a copy as new is held; whether that changed anything."""
        owner = owner_of(obj)
        if owner is None:
            return False
        with self._lock:
            if obj["metadata"].get("uid") in self._gone:
                return False
            if kind == "Pod":
                pods = self._pods.setdefault(owner, {})
                name = obj["metadata"]["name"]
                held = pods.get(name)
                if not newer(obj, held):
                    return False
                slim = slim_pod(obj)
                pods[name] = Entry(slim)
                return held is None or _without_version(held.decoded()) != _without_version(slim)
            children = self._children.setdefault(owner, {})
            key = object_key(obj, kind)
            if not newer(obj, children.get(key)):
                return False
            children[key] = Entry(slim_child(obj))
            return True

    def removed(self, kind: str, obj: Mapping[str, Any]) -> bool:
        """Drop `obj`; whether it was held (the operator's own deletes are dropped when made)."""
        owner = owner_of(obj)
        meta = obj["metadata"]
        with self._lock:
            now = self._clock()
            if meta.get("uid"):
                self._gone[meta["uid"]] = now
                self._expire(now)
            if owner is None:
                return False
            held = (self._pods.get(owner, {}).get(meta["name"]) if kind == "Pod"
                    else self._children.get(owner, {}).get((kind, meta["name"])))
            found = held is not None and held.uid == meta.get("uid")
            if found and kind == "Pod":
                del self._pods[owner][meta["name"]]
            elif found:
                del self._children[owner][(kind, meta["name"])]
            if owner not in self._seeded and not self._pods.get(owner) and not self._children.get(owner):
                self._pods.pop(owner, None)  # what late events of a deleted resource's children left
                self._children.pop(owner, None)
            return found

    def forget(self, namespace: str, name: str) -> None:
        """The resource is gone: its children go by garbage collection, their events may never come."""
        owner = (namespace, name)
        with self._lock:
            self._seeded.discard(owner)
            self._children.pop(owner, None)
            self._pods.pop(owner, None)

    # --- reads ------------------------------------------------------------------------------
    def seeded(self, namespace: str, name: str) -> bool:
        """Whether the resource's children and pods were listed since it was last expired."""
        with self._lock:
            return (namespace, name) in self._seeded

    def expire(self, namespace: str, name: str) -> None:
        """List the resource again at its next converge (the resync does this: a watch that was
        down, for instance during an API server outage, does not replay the deletions it missed)."""
        with self._lock:
            self._seeded.discard((namespace, name))

    def replace(self, namespace: str, name: str, listings: Iterable[tuple[str, list[dict[str, Any]], str]]) -> None:
        """Take LISTs of the resource's children and pods as the truth: (kind, items, the list's
        resourceVersion) per kind, pods as kind "Pod". A held object the LIST lacks stays only if
        it is newer than the LIST (created after it was taken)."""
        owner = (namespace, name)
        with self._lock:
            children = self._children.setdefault(owner, {})
            pods = self._pods.setdefault(owner, {})
            for kind, items, list_version in listings:
                held = pods if kind == "Pod" else children
                keys = [k for k, obj in held.items() if kind == "Pod" or k[0] == kind]
                listed = {}
                for item in items:
                    if item["metadata"].get("uid") in self._gone:
                        continue
                    key = item["metadata"]["name"] if kind == "Pod" else object_key(item, kind)
                    current = held.get(key)
                    listed[key] = item if newer(item, current) else current
                for key in keys:
                    if key not in listed and not _after(held[key], list_version):
                        del held[key]
                for key, obj in listed.items():
                    if not isinstance(obj, Entry):
                        held[key] = Entry(slim_pod(obj) if kind == "Pod" else slim_child(obj))
            self._seeded.add(owner)

    def children(self, namespace: str, name: str, kinds: Iterable[Kind]) -> dict[ObjectKey, dict[str, Any]]:
        wanted = {kind.kind for kind in kinds}
        with self._lock:
            held = [(key, entry) for key, entry in self._children.get((namespace, name), {}).items() if key[0] in wanted]
        return {key: entry.decoded() for key, entry in held}

    def pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        with self._lock:
            held = list(self._pods.get((namespace, name), {}).values())
        return [entry.decoded() for entry in held]

    def _expire(self, now: float) -> None:
        if len(self._gone) > 1024:
            for uid in [uid for uid, seen in self._gone.items() if now - seen > GONE_SECONDS]:
                del self._gone[uid]
