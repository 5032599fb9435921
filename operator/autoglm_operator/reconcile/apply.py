"""The only module that talks to the API server on the reconciler's behalf.

Children are written with server-side apply under one fixed field manager, `autoglm-operator`,
with `force` (the operator's fields are the operator's, even after a `kubectl edit`) and strict
field validation (a field the server does not know is an error, not silently dropped). Each child
gets a controller owner reference to its `AutoGLMDeployment`, so the garbage collector removes it
with the resource and the operator never needs a finalizer.

Objects come back as plain dicts decoded from the server's JSON (the same shape the renderers
produce); the client's own decoding is bypassed because it drops bodies of unlisted status codes,
such as a `201 Created` answer to an apply.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from autoglm_operator.api.labels import children_selector
from autoglm_operator.api.spec import GROUP, KIND, PLURAL, VERSION
from autoglm_operator.reconcile import metrics
from autoglm_operator.reconcile.children_cache import POD, ChildrenCache
from autoglm_operator.reconcile.diff import FIELD_MANAGER, ObjectKey, object_key
from autoglm_operator.reconcile.kinds import NODE_GROUP, Kind, kind_of

HANDOVER_MANAGER = "autoglm-operator-handover"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
# A JSON surrogate pair (after an even number of backslashes, so not an escaped literal "\\ud83d").
_SURROGATE_PAIR = re.compile(r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def apply_body(obj: Mapping[str, Any]) -> str:
    """An apply patch as text. The API server reads apply patches as YAML, whose parser refuses the
    surrogate pairs JSON escapes characters beyond U+FFFF with (one emoji in a spec string failed
    every apply): they become YAML's 8-digit escapes. Everything else stays JSON, which is YAML."""
    def astral(m: re.Match[str]) -> str:
        return f"{m[1]}\\U{0x10000 + ((int(m[2], 16) - 0xD800) << 10) + int(m[3], 16) - 0xDC00:08x}"

    return _SURROGATE_PAIR.sub(astral, json.dumps(obj))


def server_message(exc: ApiException) -> str:
    """The API server's own words for a refused request (the `message` of its Status body), else
    the HTTP status and reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    return str(message) if message else f"{exc.status} {exc.reason}"


def owner_reference(resource: Mapping[str, Any]) -> dict[str, Any]:
    meta = resource["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned(obj: dict[str, Any], resource: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` with the controller reference to `resource` (whose uid only the live object knows)."""
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner_reference(resource)]}}


class Cluster:
    """Reads and writes of one reconcile; every write is counted in the operator's metrics.

    With a `cache` (children_cache.py, fed by the operator's watches), children and pods are
    listed once per resource until the cache is expired, and every write updates the cache.
    """

    def __init__(self, api: client.ApiClient, cache: ChildrenCache | None = None) -> None:
        self._core = client.CoreV1Api(api)
        self._objects = client.CustomObjectsApi(api)
        self._cache = cache

    def get_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The resource; None when it is gone. A 403 in a namespace that is gone or terminating is
        gone too: with the chart's `watchNamespaces` the namespace's RoleBinding may go before the
        resource, and its resync would otherwise fail with a traceback until the operator restarts."""
        try:
            return _json(
                self._objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, _preload_content=False)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status == 403:
                home = self.get_namespace(namespace)
                if home is None or home["metadata"].get("deletionTimestamp"):
                    return None
            raise

    def list_children(self, namespace: str, name: str, kinds: Iterable[Kind],
                      never_converged: bool = False) -> dict[ObjectKey, dict[str, Any]]:
        """Every object of `kinds` labelled as made by the operator for the resource `name`.

        A resource no converge finished for (no status yet) has no children but those the watches
        reported: listing them would be most of the API requests of a new resource's first converge."""
        kinds = list(kinds)
        if self._cache is not None and not self._cache.seeded(namespace, name) and never_converged:
            self._cache.replace(namespace, name, [(kind.kind, [], "0") for kind in [*kinds, POD]])
        if self._cache is not None and self._cache.seeded(namespace, name):
            return self._cache.children(namespace, name, kinds)
        selector = children_selector(name)
        listings: list[tuple[str, list[dict[str, Any]], str]] = []
        for kind in kinds:
            if kind.group:
                response = self._objects.list_namespaced_custom_object(
                    kind.group, kind.version, namespace, kind.plural, label_selector=selector, _preload_content=False
                )
            else:
                response = self._core_call("list", kind, namespace, label_selector=selector)
            listings.append(_listing(kind.kind, response))
        if self._cache is None:
            return {object_key(item, kind): item for kind, items, _ in listings for item in items}
        pods = self._core.list_namespaced_pod(namespace, label_selector=selector, _preload_content=False)
        self._cache.replace(namespace, name, [*listings, _listing("Pod", pods)])
        return self._cache.children(namespace, name, kinds)

    def list_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The resource's pods (from the cache once `list_children` seeded it)."""
        if self._cache is not None and self._cache.seeded(namespace, name):
            return self._cache.pods(namespace, name)
        response = self._core.list_namespaced_pod(namespace, label_selector=children_selector(name), _preload_content=False)
        return _json(response)["items"]

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = kind_of(obj)
        meta = obj["metadata"]
        live = self._apply_text(_object_path(kind, meta["name"], meta["namespace"]), apply_body(obj))
        metrics.WRITES.labels(verb="apply", kind=kind.kind).inc()
        if self._cache is not None:
            self._cache.stored(kind.kind, live)
        return live

    def hand_over_replicas(self, obj: Mapping[str, Any], replicas: int) -> None:
        """Co-own `spec.replicas` under another manager, so the operator's next apply can drop it."""
        meta = obj["metadata"]
        handover = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                    "metadata": {"name": meta["name"], "namespace": meta["namespace"]}, "spec": {"replicas": replicas}}
        kind = kind_of(obj)
        self._objects.patch_namespaced_custom_object(
            kind.group, kind.version, meta["namespace"], kind.plural, meta["name"], handover,
            field_manager=HANDOVER_MANAGER, _content_type=APPLY_PATCH, _preload_content=False,
        )
        metrics.WRITES.labels(verb="apply", kind=kind.kind).inc()

    def delete(self, kind: Kind, obj: Mapping[str, Any]) -> None:
        """Delete exactly this object: the uid precondition spares a same-named successor."""
        meta = obj["metadata"]
        options = client.V1DeleteOptions(
            propagation_policy="Background", preconditions=client.V1Preconditions(uid=meta["uid"])
        )
        try:
            if kind.group:
                self._objects.delete_namespaced_custom_object(
                    kind.group, kind.version, meta["namespace"], kind.plural, meta["name"], body=options,
                    _preload_content=False,
                )
            else:
                self._core_call("delete", kind, meta["namespace"], meta["name"], body=options)
        except ApiException as exc:
            if exc.status not in (404, 409):  # already gone, or replaced by a new object
                raise
        metrics.WRITES.labels(verb="delete", kind=kind.kind).inc()
        if self._cache is not None:
            self._cache.removed(kind.kind, obj)

    def get_namespace(self, namespace: str) -> dict[str, Any] | None:
        """The Namespace object (its uid owns the NodeGroups, edge_sync.py); None when it is gone."""
        try:
            return _json(self._core.read_namespace(namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_node_groups(self, selector: str) -> list[dict[str, Any]]:
        """KubeEdge NodeGroups (cluster-scoped) matching `selector`; none when KubeEdge is not served."""
        try:
            response = self._objects.list_cluster_custom_object(
                NODE_GROUP.group, NODE_GROUP.version, NODE_GROUP.plural, label_selector=selector, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise
        return _json(response)["items"]

    def apply_cluster_scoped(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = kind_of(obj)
        live = self._apply_text(_object_path(kind, obj["metadata"]["name"]), apply_body(obj))
        metrics.WRITES.labels(verb="apply", kind=kind.kind).inc()
        return live

    def _apply_text(self, path: str, text: str) -> dict[str, Any]:
        """A server-side apply of an already serialised patch. The client's typed methods accept
        only dicts (and would serialise them again), so the request is made one level down."""
        api = self._objects.api_client
        method, url, headers, body, post = api.param_serialize(
            "PATCH", path, body=text, auth_settings=["BearerToken"],
            query_params=[("fieldManager", FIELD_MANAGER), ("force", "true"), ("fieldValidation", "Strict")],
            header_params={"Content-Type": APPLY_PATCH, "Accept": "application/json"},
        )
        response = api.call_api(method, url, headers, body, post)
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return _json(response)

    def delete_node_group(self, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=meta["uid"]))
        try:
            self._objects.delete_cluster_custom_object(
                NODE_GROUP.group, NODE_GROUP.version, NODE_GROUP.plural, meta["name"], body=options, _preload_content=False
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
        metrics.WRITES.labels(verb="delete", kind=NODE_GROUP.kind).inc()

    def list_nodes(self) -> list[dict[str, Any]] | None:
        """Every node, for edge placement checks; None when the operator may not read nodes."""
        try:
            return _json(self._core.list_node(_preload_content=False))["items"]
        except ApiException as exc:
            if exc.status == 403:
                return None
            raise

    def list_pods_selected(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return _json(self._core.list_namespaced_pod(namespace, label_selector=selector, _preload_content=False))["items"]

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """A merge patch of the fields the reconciler owns; others (forecast, canary) are untouched."""
        try:
            self._objects.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": dict(status)},
                _content_type=MERGE_PATCH, _preload_content=False,
            )
        except ApiException as exc:
            if exc.status != 404:  # deleted while being reconciled: nothing left to report on
                raise
        metrics.WRITES.labels(verb="status", kind=KIND).inc()

    def _core_call(self, verb: str, kind: Kind, namespace: str, *args: Any, **kwargs: Any) -> Any:
        """Core-group kinds (the Service) have typed methods only, named by the kind."""
        method = getattr(self._core, f"{verb}_namespaced_{kind.kind.lower()}")
        if verb == "list":
            return method(namespace, *args, _preload_content=False, **kwargs)
        name, *rest = args
        return method(name, namespace, *rest, _preload_content=False, **kwargs)


def _json(response: Any) -> Any:
    return json.loads(response.data)


def _object_path(kind: Kind, name: str, namespace: str | None = None) -> str:
    """The REST path of one object (cluster-scoped without a namespace)."""
    prefix = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"{prefix}{where}/{kind.plural}/{name}"


def _listing(kind: str, response: Any) -> tuple[str, list[dict[str, Any]], str]:
    """(kind, items, the list's resourceVersion) of a LIST response."""
    body = _json(response)
    return kind, body["items"], body["metadata"].get("resourceVersion", "")
