"""desired_objects: which objects exist for which capabilities, and what the apply layer relies on."""
from __future__ import annotations

import pytest

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.render.desired import desired_objects, render, validate

JWT = {"jwt": {"issuer": "https://i", "jwksUri": "https://i/jwks"}}


def _kinds(objects):
    return [o["kind"] for o in objects]


def test_plain_cluster(make_cr):
    assert _kinds(desired_objects(make_cr(), Capabilities())) == ["Deployment", "Service", "PodDisruptionBudget"]


def test_everything(make_cr):
    objects = desired_objects(make_cr(autoscaling={"enabled": True}, security=JWT), Capabilities(keda=True, istio=True))
    assert _kinds(objects) == [
        "Deployment", "Service", "PodDisruptionBudget", "ScaledObject", "VirtualService", "DestinationRule",
        "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication",
    ]


def test_every_object_carries_the_prune_labels_and_no_owner(make_cr):
    for obj in desired_objects(make_cr(autoscaling={"enabled": True}, security=JWT), Capabilities(keda=True, istio=True)):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "autoglm-operator"
        assert labels["autoglm.io/instance"] == "glm"
        assert obj["metadata"]["namespace"] == "ml"
        assert "ownerReferences" not in obj["metadata"], "the apply layer adds it"


def test_same_input_same_output(make_cr):
    caps = Capabilities(keda=True, istio=True)
    assert desired_objects(make_cr(), caps) == desired_objects(make_cr(), caps)


def test_invalid_specs_render_nothing(make_cr):
    with pytest.raises(InvalidSpec):
        desired_objects(make_cr(runtime={"args": ["--port", "9000"]}), Capabilities())
    with pytest.raises(InvalidSpec):
        desired_objects(make_cr(security=JWT), Capabilities())


def _by_kind(objects):
    return {o["kind"]: o for o in objects}


def test_while_a_new_revision_starts_traffic_and_autoscaling_stay_on_the_serving_one(make_cr):
    caps = Capabilities(keda=True, istio=True)
    inst = validate(make_cr(autoscaling={"enabled": True}), caps)
    new = _by_kind(render(inst, caps))["Deployment"]["metadata"]["labels"]["autoglm.io/revision"]
    objects = _by_kind(render(inst, caps, serving="old"))
    assert objects["Deployment"]["metadata"]["name"] == f"glm-{new}", "only the spec's revision is rendered"
    assert objects["ScaledObject"]["spec"]["scaleTargetRef"]["name"] == "glm-old"
    assert objects["VirtualService"]["spec"]["http"][0]["route"][0]["destination"]["subset"] == "old"
    assert [s["name"] for s in objects["DestinationRule"]["spec"]["subsets"]] == sorted(["old", new])
    assert objects["Service"]["spec"]["selector"] == {"autoglm.io/instance": "glm"}, "Istio splits by subset"


def test_without_istio_the_service_selects_the_serving_revision(make_cr):
    inst = validate(make_cr(), Capabilities())
    service = _by_kind(render(inst, Capabilities(), serving="old"))["Service"]
    assert service["spec"]["selector"] == {"autoglm.io/instance": "glm", "autoglm.io/revision": "old"}


def test_capabilities_parse():
    assert Capabilities.parse("keda, istio") == Capabilities(keda=True, istio=True)
    assert Capabilities.parse("") == Capabilities()
    with pytest.raises(ValueError, match=r"unknown capabilities linkerd \(valid: keda, istio, kubeedge, gateway_api, inference_pool, mirror_percent\)"):
        Capabilities.parse("linkerd")
