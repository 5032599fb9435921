"""Everything the operator wants to exist for one `AutoGLMDeployment`, as plain dicts.

Pure: no API calls. The apply layer (apply.py) server-side-applies the result with the field
manager `autoglm-operator`, adds the owner reference, and prunes managed objects that are no
longer listed (by the `app.kubernetes.io/managed-by` and `autoglm.io/instance` labels).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.engines import check_signals, check_user_args
from autoglm_operator.api.revision import revision
from autoglm_operator.api.spec import Instance, check_capabilities, check_labels, parse_instance
from autoglm_operator.render.autoscaling import autoscaler
from autoglm_operator.render.edge import check_edge, render_edge
from autoglm_operator.render.gateway import check_gateway, gateway_routing
from autoglm_operator.render.istio import check_traffic, destination_rule, virtual_service
from autoglm_operator.render.pdb import pod_disruption_budget
from autoglm_operator.render.routing import Route
from autoglm_operator.render.security import authorization_policy, peer_authentication, request_authentication
from autoglm_operator.render.service import service
from autoglm_operator.render.workload import deployment


def validate(cr: dict[str, Any], capabilities: Capabilities) -> Instance:
    """Every check, before anything is rendered or applied, so a bad spec never half-applies."""
    inst = parse_instance(cr)
    check_capabilities(inst.spec, keda=capabilities.keda, istio=capabilities.istio)
    check_labels(inst.spec)
    check_user_args(inst.spec.runtime)
    check_signals(inst.spec)
    check_edge(inst)
    if inst.spec.traffic.provider == "istio":
        check_traffic(inst)
    else:
        check_gateway(inst, capabilities)
    return inst


def render(
    inst: Instance,
    capabilities: Capabilities,
    serving: str | None = None,
    *,
    forecast: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    route: Route | None = None,
) -> list[dict[str, Any]]:
    """The objects for the spec's revision, with traffic and autoscaling on `serving`.

    `serving` is the revision that currently takes traffic (the spec's own when None). While it
    differs, the new revision's Deployment starts beside it and routing stays where it is.
    `forecast` (status.forecast) judged at `now` may raise the autoscaler's minimum
    (spec.autoscaling.predictive; autoscaling.py).
    """
    rev = revision(inst.spec)
    serving = serving or rev
    istio_routes = capabilities.istio and inst.spec.traffic.provider == "istio"
    objects = [
        deployment(inst, rev),
        service(inst, None if istio_routes else serving),
        pod_disruption_budget(inst),
    ]
    scaler = autoscaler(inst, serving, keda=capabilities.keda, forecast=forecast, now=now)
    if scaler:
        objects.append(scaler)
    # `route` (a canary's weights and mirror, canary.py) names its own revisions.
    revisions = sorted(set(route.revisions)) if route else sorted({serving, rev})
    if inst.spec.traffic.provider != "istio":  # an HTTPRoute to a Service or InferencePool per revision
        objects += gateway_routing(inst, revisions, route or Route(stable=serving))
    if capabilities.istio:
        if istio_routes:
            # Routing before subsets: when traffic moves on, the old subset goes only after nothing names it.
            objects += [virtual_service(inst, serving, route), destination_rule(inst, revisions)]
        objects += [peer_authentication(inst), authorization_policy(inst)]
        jwt = request_authentication(inst)
        if jwt:
            objects.append(jwt)
    # Edge groups (KubeEdge NodeGroups + EdgeApplication, or pinned Deployments); see edge.py.
    objects += render_edge(inst, rev, kubeedge=capabilities.kubeedge)
    return objects


def desired_objects(cr: dict[str, Any], capabilities: Capabilities) -> list[dict[str, Any]]:
    """Raises InvalidSpec, before rendering anything, when the resource cannot be served."""
    return render(validate(cr, capabilities), capabilities)
