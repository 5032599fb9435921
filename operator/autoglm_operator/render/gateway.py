"""Gateway API routing (providers `gateway-api` and `inference-pool`): one HTTPRoute, one backend per revision.

The rollout decides the split (render.routing `Route`, the same value render.istio draws); this
module only draws it, as an HTTPRoute (gateway.networking.k8s.io/v1, standard channel) whose
weighted backendRefs name one backend per live revision:
- `gateway-api`: a Service `<name>-<revision>` selecting that revision's pods;
- `inference-pool`: an InferencePool `<name>-<revision>` (inference.networking.k8s.io/v1) over that
  revision's pods, whose endpoint picker is an existing Service (traffic.endpointPicker.service) or
  one the operator renders per pool (a Deployment + Service `<name>-<revision>-epp`).

The weighted rule always sums to 100 (stable `100 - weight`, canary `weight`, the canary's entry
kept at 0 while it only mirrors); mirror steps add a RequestMirror filter with `percent` (without
it a gateway mirrors every request: check_gateway refuses mirror steps where the served HTTPRoute
schema lacks the field). Unlike Istio's first match, Gateway API picks the most specific match, so
the tester rules (a header, a sticky cookie) win over the weighted rule whatever their order.
Each write is one server-side apply of the whole HTTPRoute, so a rollback removes the mirror and
the canary's weight at once.
"""
from __future__ import annotations

from typing import Any

from autoglm_operator.api.capabilities import Capabilities, MissingCapability
from autoglm_operator.api.engines import PORT
from autoglm_operator.api.labels import REVISION_LABEL, metadata, pod_selector
from autoglm_operator.api.spec import EndpointPicker, Instance
from autoglm_operator.render.routing import Route

GATEWAY_API = "gateway.networking.k8s.io/v1"
INFERENCE_API = "inference.networking.k8s.io/v1"
INFERENCE_GROUP = INFERENCE_API.split("/")[0]
PICKER_HEALTH_PORT = 9003  # lwepp --grpc-health-port default (pkg/lwepp/server/options.go)
PICKER_LABEL = "autoglm.io/endpoint-picker"  # the rendered picker's pods: never the engine Service's selector
INSTALL_GATEWAY_API = "the Gateway API CRDs (standard channel v1.3 or later: kubectl apply --server-side -f " \
                      "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.6.3/standard-install.yaml)"
INSTALL_INFERENCE_POOL = "the Gateway API Inference Extension's InferencePool CRD (inference.networking.k8s.io/v1: " \
                         "kubectl apply -f https://github.com/kubernetes-sigs/gateway-api-inference-extension/releases/" \
                         "download/v1.6.0/manifests.yaml)"


def check_gateway(inst: Instance, capabilities: Capabilities) -> None:
    """Refuse, naming what to install, a provider or a mirror step the cluster cannot serve: a
    status condition instead of applies the API server would refuse at every converge."""
    provider = inst.spec.traffic.provider
    if provider == "gateway-api" and not capabilities.gateway_api:
        raise MissingCapability(f"spec.traffic.provider gateway-api needs HTTPRoute ({GATEWAY_API}), which is not "
                                f"installed: install {INSTALL_GATEWAY_API}", "gateway_api")
    if provider == "inference-pool" and not capabilities.inference_pool:
        missing = [what for what, ok in ((INSTALL_GATEWAY_API, capabilities.gateway_api), (INSTALL_INFERENCE_POOL, False))
                   if not ok]
        raise MissingCapability(f"spec.traffic.provider inference-pool needs HTTPRoute ({GATEWAY_API}) and InferencePool "
                                f"({INFERENCE_API}), which are not both installed: install {' and '.join(missing)}",
                                *(["gateway_api"] if not capabilities.gateway_api else []), "inference_pool")
    rollout = inst.spec.rollout
    mirrors = [i for i, step in enumerate(rollout.steps) if step.mirror] if rollout else []
    if mirrors and not capabilities.mirror_percent:
        raise MissingCapability(f"spec.rollout.steps[{mirrors[0]}].mirror needs the HTTPRoute RequestMirror filter's `percent`, "
                          "which the installed Gateway API lacks (standard channel since v1.3, experimental since v1.2; "
                                f"without it every request would be copied): install {INSTALL_GATEWAY_API}, or use weight "
                                "steps only", "mirror_percent")


def backend_name(inst: Instance, revision: str) -> str:
    """The revision's Service or InferencePool: named like its Deployment (a DNS label: names are at most 52)."""
    return f"{inst.name}-{revision}"


def picker_name(inst: Instance, revision: str) -> str:
    """`<name>-<revision>-epp` in at most 63 characters (the name is cut to 48)."""
    return f"{inst.name[:48].rstrip('-')}-{revision}-epp"


def _revision_selector(inst: Instance, revision: str) -> dict[str, str]:
    return {**pod_selector(inst), REVISION_LABEL: revision}


def backend_ref(inst: Instance, revision: str) -> dict[str, Any]:
    """A BackendObjectReference (no weight: the mirror filter takes the same shape)."""
    if inst.spec.traffic.provider == "inference-pool":
        return {"group": INFERENCE_GROUP, "kind": "InferencePool", "name": backend_name(inst, revision)}
    return {"kind": "Service", "name": backend_name(inst, revision), "port": PORT}


def revision_service(inst: Instance, revision: str) -> dict[str, Any]:
    """The `gateway-api` backend: only `revision`'s pods (the model's own Service selects the stable one)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(inst, backend_name(inst, revision), "routing"),
        "spec": {
            "type": "ClusterIP",
            "selector": _revision_selector(inst, revision),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}],
        },
    }


def inference_pool(inst: Instance, revision: str) -> dict[str, Any]:
    """The `inference-pool` backend: `revision`'s pods, picked by the endpoint picker."""
    picker = inst.spec.traffic.endpoint_picker or EndpointPicker()
    return {
        "apiVersion": INFERENCE_API,
        "kind": "InferencePool",
        "metadata": metadata(inst, backend_name(inst, revision), "routing"),
        "spec": {
            "selector": {"matchLabels": _revision_selector(inst, revision)},
            "targetPorts": [{"number": PORT}],
            "endpointPickerRef": {
                "kind": "Service",
                "name": picker.service or picker_name(inst, revision),
                "port": {"number": picker.port},
                "failureMode": picker.failure_mode,
            },
        },
    }


def endpoint_picker(inst: Instance, revision: str) -> list[dict[str, Any]]:
    """A picker Deployment + Service for `revision`'s pool (lwepp flags at v1.6.0); none when
    traffic.endpointPicker.service names an existing one. Its pods carry no instance label, so no
    engine selector (Service, PDB, status) ever counts them."""
    picker = inst.spec.traffic.endpoint_picker or EndpointPicker()
    if picker.service:
        return []
    name = picker_name(inst, revision)
    labels = {PICKER_LABEL: name}
    args = ["--pool-name", backend_name(inst, revision), "--pool-namespace", inst.namespace,
            "--grpc-port", str(picker.port), "--endpoint-target-ports", str(PORT), *picker.args]
    pod: dict[str, Any] = {
        "containers": [{
            "name": "epp",
            "image": picker.rendered_image,
            "args": args,
            "ports": [{"name": "grpc", "containerPort": picker.port, "protocol": "TCP"},
                      {"name": "grpc-health", "containerPort": PICKER_HEALTH_PORT, "protocol": "TCP"}],
            "readinessProbe": {"grpc": {"port": PICKER_HEALTH_PORT}, "periodSeconds": 5},
        }],
    }
    if picker.service_account_name:
        pod["serviceAccountName"] = picker.service_account_name
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(inst, name, "endpoint-picker"),
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(inst, name, "endpoint-picker"),
            "spec": {"type": "ClusterIP", "selector": labels,
                     "ports": [{"name": "grpc", "port": picker.port, "targetPort": "grpc", "protocol": "TCP",
                                "appProtocol": "http2"}]},
        },
    ]


def http_route(inst: Instance, route: Route) -> dict[str, Any]:
    """`route` as an HTTPRoute: tester rules to the canary, then the weighted rule (and its mirror)."""
    traffic = inst.spec.traffic
    timeouts = {"request": f"{traffic.timeout_seconds}s"}
    rules: list[dict[str, Any]] = []
    rollout, canary = inst.spec.rollout, route.canary

    def to(revision: str, weight: int, **extra: Any) -> dict[str, Any]:
        return {**backend_ref(inst, revision), "weight": weight, **extra}

    if canary and route.testers and rollout is not None:
        if rollout.header is not None:
            rules.append({"name": "canary-header",
                          "matches": [{"headers": [{"type": "Exact", "name": rollout.header.name, "value": rollout.header.value}]}],
                          "backendRefs": [to(canary, 100)], "timeouts": timeouts})
        if rollout.sticky_cookie:
            cookie = f"{rollout.sticky_cookie}={canary}"
            # RegularExpression header matches are implementation-specific support (docs/routing.md).
            rules.append({"name": "canary-cookie",
                          "matches": [{"headers": [{"type": "RegularExpression", "name": "cookie",
                                                    "value": f"^(.*?;\\s*)?{cookie}(;.*)?$"}]}],
                          "backendRefs": [to(canary, 100)], "timeouts": timeouts})
    backends = [to(route.stable, 100 - route.weight)]
    if canary:
        extra: dict[str, Any] = {}
        if rollout is not None and rollout.sticky_cookie and route.testers and route.weight:
            ttl = rollout.interval_seconds * len(rollout.steps)
            extra["filters"] = [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                "add": [{"name": "Set-Cookie", "value": f"{rollout.sticky_cookie}={canary}; Max-Age={ttl}; Path=/"}]}}]
        backends.append(to(canary, route.weight, **extra))
    weighted: dict[str, Any] = {"name": "stable", "backendRefs": backends, "timeouts": timeouts}
    if canary and route.mirror:
        weighted["filters"] = [{"type": "RequestMirror",
                                "requestMirror": {"backendRef": backend_ref(inst, canary), "percent": route.mirror}}]
    rules.append(weighted)
    spec: dict[str, Any] = {"parentRefs": [_parent(ref.name, ref.namespace, ref.section_name) for ref in traffic.parent_refs]}
    if traffic.hosts:
        spec["hostnames"] = list(traffic.hosts)
    spec["rules"] = rules
    return {"apiVersion": GATEWAY_API, "kind": "HTTPRoute", "metadata": metadata(inst, inst.name, "routing"), "spec": spec}


def _parent(name: str, namespace: str, section: str) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name}
    if namespace:
        ref["namespace"] = namespace
    if section:
        ref["sectionName"] = section
    return ref


def gateway_routing(inst: Instance, revisions: list[str], route: Route) -> list[dict[str, Any]]:
    """Backends of `revisions` first, then the HTTPRoute: a backend exists before the route names it,
    and a retired one is pruned (after every apply) only once the route no longer names it."""
    objects: list[dict[str, Any]] = []
    for rev in revisions:
        if inst.spec.traffic.provider == "inference-pool":
            objects += [*endpoint_picker(inst, rev), inference_pool(inst, rev)]
        else:
            objects.append(revision_service(inst, rev))
    return [*objects, http_route(inst, route)]
