"""Hostile `AutoGLMDeployment` specs (tests/strategies.py) against the real API server and operator.

The bulk goes through server-side dry runs: each spec is either rejected by the API server with a
message (and then the operator's parser refuses it too), or accepted (and then the parser accepts
it too), and every object the operator would render for an accepted spec is accepted by the API
server as the operator writes it (server-side apply, strict field validation) - with KubeEdge and
without (pinned edge Deployments).
A smaller batch is created for real with the operator running: each resource ends Ready=False
InvalidSpec with a reason and no children, or reconciled with its children; the operator never
records a failed reconcile and stays alive.

The batches are drawn by hypothesis with derandomize (the same specs on every run, no shrinking).
"""
from __future__ import annotations

import dataclasses

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import strategies as st
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError
from operator_support import children, condition, gpu_quota, resource, wait_for
from pipeline_support import PREDICTIVE
from strategies import examples, hostile_spec, names, operator_refused_spec
from strategies import resource as cr_of

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.api.spec import parse_instance
from autoglm_operator.reconcile.apply import apply_body
from autoglm_operator.render.desired import render, validate
from autoglm_testenv import Env, procs

pytestmark = [pytest.mark.e2e, PREDICTIVE]  # its resources are predictive

DRY_RUN_SPECS = 200
OPERATOR_SPECS = 16
OPERATOR_REFUSED_SPECS = 4  # so the InvalidSpec path always runs too
# The test cluster serves Istio, KEDA, KubeEdge, the Gateway API (standard channel: mirror percent) and
# InferencePool, so the operator there accepts every provider; without KubeEdge edge groups become Deployments.
WITH_KUBEEDGE = Capabilities(keda=True, istio=True, kubeedge=True, gateway_api=True, inference_pool=True,
                             mirror_percent=True)
WITHOUT_KUBEEDGE = dataclasses.replace(WITH_KUBEEDGE, kubeedge=False)


def _create(client: DynamicClient, obj: dict[str, Any], namespace: str | None, dry_run: bool) -> dict[str, Any]:
    api = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    return client.create(api, body=obj, namespace=namespace if api.namespaced else None,
                         dry_run="All" if dry_run else None, query_params=[("fieldValidation", "Strict")]).to_dict()


def _apply_dry_run(client: DynamicClient, obj: dict[str, Any], namespace: str) -> None:
    """A child as the operator writes it: server-side apply of `apply_body`, strict field validation."""
    api = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    client.server_side_apply(api, body=apply_body(obj), name=obj["metadata"]["name"],
                             namespace=namespace if api.namespaced else None, field_manager="hostile-test",
                             force_conflicts=True, dry_run="All", query_params=[("fieldValidation", "Strict")])


def _message(error: DynamicApiError) -> str:
    try:
        return json.loads(error.body)["message"]
    except (ValueError, KeyError, TypeError):
        return str(error.body or error.summary())


def _server_verdict(client: DynamicClient, cr: dict[str, Any], namespace: str, dry_run: bool) -> tuple[dict | None, str]:
    """(the stored resource, "") when the API server accepts `cr`, else (None, its message)."""
    try:
        return _create(client, cr, namespace, dry_run), ""
    except DynamicApiError as error:
        assert error.status in (400, 422), f"unexpected HTTP {error.status}: {_message(error)}"
        return None, _message(error)


def _parser_refusal(cr: dict[str, Any]) -> str:
    try:
        parse_instance(cr)
    except InvalidSpec as exc:
        return str(exc)
    return ""


def test_api_server_and_parser_agree_and_rendered_children_are_accepted(testenv: Env, kube, namespace: str,
                                                                        autoglm_crd: None) -> None:
    client = DynamicClient(kube)
    outcomes: Counter[str] = Counter()
    problems: list[str] = []
    for spec, name in examples(st.tuples(hostile_spec(), names()), DRY_RUN_SPECS):
        cr = cr_of(spec, name, namespace)
        stored, message = _server_verdict(client, cr, namespace, dry_run=True)
        refusal = _parser_refusal(cr)
        if stored is None:
            outcomes["rejected by the API server"] += 1
            if not message.strip() or not refusal:
                problems.append(f"server rejected ({message[:200]!r}) but the parser accepts: {json.dumps(spec)[:600]}")
            continue
        if refusal:
            problems.append(f"server accepted but the parser refuses ({refusal}): {json.dumps(spec)[:600]}")
            continue
        try:
            inst = validate(stored, WITH_KUBEEDGE)
        except InvalidSpec as exc:  # the operator-only checks (engine flags it sets)
            outcomes["accepted, then InvalidSpec from the operator"] += 1
            assert str(exc).strip()
            continue
        outcomes["accepted and rendered"] += 1
        rendered = {(o["kind"], o["metadata"]["name"]): o for caps in (WITH_KUBEEDGE, WITHOUT_KUBEEDGE)
                    for o in render(inst, caps)}
        for (kind, child), obj in rendered.items():
            try:
                _apply_dry_run(client, obj, namespace)
            except DynamicApiError as error:
                problems.append(f"{kind} {child} rejected ({_message(error)[:300]}) for {json.dumps(spec)[:600]}")
    print(f"hostile specs, server-side dry run: {dict(outcomes)}")
    assert outcomes["rejected by the API server"] and outcomes["accepted and rendered"], outcomes
    assert problems == [], "\n".join(problems[:10])


def _tame(spec: Any) -> Any:
    """Keep the cluster small: at most 2 replicas per Deployment (a hostile 1000 would create 1000 pods,
    and the HPA controller raises replicas to minReplicas even without metrics)."""
    if not isinstance(spec, dict):
        return spec
    clamp: Callable[[dict, str, int], None] = lambda d, key, top: (
        d.__setitem__(key, min(d[key], top)) if isinstance(d, dict) and type(d.get(key)) is int else None)
    clamp(spec, "replicas", 2)
    scaling = spec.get("autoscaling")
    for key, top in (("minReplicas", 2), ("maxReplicas", 2)):
        clamp(scaling, key, top)
    if isinstance(scaling, dict):
        clamp(scaling.get("predictive"), "maxFloor", 2)
    for group in spec.get("edge") if isinstance(spec.get("edge"), list) else []:
        clamp(group, "replicas", 1)
    return spec


def test_operator_reports_or_reconciles_every_accepted_resource_and_survives(testenv: Env, kube, namespace: str,
                                                                              operator) -> None:
    # Up to 32 pods of a GPU each would take every GPU of the shared nodes from the tests running
    # beside this one; the operator's work ends at the Deployment, so no pod needs to run.
    gpu_quota(testenv, namespace, 0)
    client = DynamicClient(kube)
    created: dict[str, str] = {}  # name -> the parser's refusal ("" when it accepts)
    rejected = 0
    specs = examples(hostile_spec(), OPERATOR_SPECS) + examples(operator_refused_spec(), OPERATOR_REFUSED_SPECS)
    for i, spec in enumerate(specs):
        cr = cr_of(_tame(spec), f"hostile-{i}", namespace)
        stored, _ = _server_verdict(client, cr, namespace, dry_run=False)
        if stored is None:
            rejected += 1
            continue
        try:
            validate(stored, WITH_KUBEEDGE)
            created[cr["metadata"]["name"]] = ""
        except InvalidSpec as exc:
            created[cr["metadata"]["name"]] = str(exc)
    assert created, "no generated resource was accepted"

    def settled(name: str) -> bool:
        cr = resource(testenv, namespace, name)
        return cr.get("status", {}).get("observedGeneration") == cr["metadata"]["generation"]

    for name in created:
        wait_for(f"{name} observed by the operator", lambda: settled(name), timeout=120)
    outcomes: Counter[str] = Counter()
    for name, refusal in created.items():
        ready = condition(resource(testenv, namespace, name), "Ready")
        owned = children(testenv, namespace, name)
        if refusal:
            assert (ready.get("reason"), owned) == ("InvalidSpec", {}), name
            assert ready.get("message"), name
            outcomes["InvalidSpec, nothing applied"] += 1
        else:
            assert ready.get("reason") != "InvalidSpec", (name, ready)
            assert any(kind == "Deployment" for kind, _ in owned), (name, sorted(owned))
            outcomes["reconciled"] += 1
    print(f"hostile resources with the operator: {dict(outcomes)}, rejected by the API server: {rejected}")
    assert outcomes["InvalidSpec, nothing applied"] and outcomes["reconciled"], outcomes
    assert procs.alive(operator.pid), procs.log_tail(operator.log, 100)
    assert operator.metric("autoglm_operator_reconciles_total", result="error") == 0, procs.log_tail(operator.log, 100)
