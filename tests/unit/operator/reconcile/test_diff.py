"""Deciding whether to apply (fingerprint + desired-subset-of-live) and what to prune."""
from __future__ import annotations

import copy

from autoglm_operator.reconcile.diff import (
    FINGERPRINT_ANNOTATION,
    ApplyReason,
    apply_reason,
    fingerprinted,
    first_difference,
    prunable,
    replicas_to_hand_over,
)

DESIRED = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "glm-r1", "namespace": "ml", "labels": {"a": "b"}},
    "spec": {
        "replicas": 2,
        "template": {"spec": {
            "containers": [{"name": "engine", "args": [], "resources": {"limits": {"memory": "1024Mi", "cpu": "500m"}}}],
            "volumes": [{"name": "cache", "emptyDir": {}}],
            "enableServiceLinks": False,
        }},
    },
}


def _live(desired: dict) -> dict:
    """What the server returns: the applied fields plus defaults, quantities canonicalised, empties dropped."""
    live = copy.deepcopy(desired)
    del live["apiVersion"], live["kind"]  # list items of built-in kinds carry neither
    live["metadata"].update(uid="u1", resourceVersion="7", managedFields=[])
    pod = live["spec"]["template"]["spec"]
    pod["containers"][0].pop("args")
    pod["containers"][0]["resources"]["limits"]["memory"] = "1Gi"
    pod["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    pod["dnsPolicy"] = "ClusterFirst"
    live["status"] = {"replicas": 2}
    return live


def test_fingerprint_is_stable_and_changes_with_the_object():
    one, again = fingerprinted(DESIRED), fingerprinted(copy.deepcopy(DESIRED))
    assert one == again
    assert FINGERPRINT_ANNOTATION not in DESIRED["metadata"].get("annotations", {}), "the input is not modified"
    changed = copy.deepcopy(DESIRED)
    changed["spec"]["replicas"] = 3
    assert fingerprinted(changed)["metadata"]["annotations"] != one["metadata"]["annotations"]


def test_nothing_to_do_when_live_holds_everything_desired():
    desired = fingerprinted(DESIRED)
    assert apply_reason(desired, _live(desired)) is None


def test_missing_object_is_created():
    assert apply_reason(fingerprinted(DESIRED), None) == ApplyReason("created")


def test_a_changed_intent_is_applied_even_when_a_field_was_only_dropped():
    """Dropping a field keeps desired a subset of live; only the fingerprint notices."""
    before = fingerprinted(DESIRED)
    dropped = copy.deepcopy(DESIRED)
    del dropped["spec"]["replicas"]
    assert apply_reason(fingerprinted(dropped), _live(before)) == ApplyReason("updated")


def test_drift_is_reported_with_its_path():
    desired = fingerprinted(DESIRED)
    live = _live(desired)
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "2"
    assert str(apply_reason(desired, live)) == "drift at .spec.template.spec.containers[engine].resources.limits.cpu"
    live = _live(desired)
    del live["metadata"]["labels"]["a"]
    assert str(apply_reason(desired, live)) == "drift at .metadata.labels.a"
    live = _live(desired)
    live["spec"]["template"]["spec"]["volumes"].append({"name": "extra"})
    assert apply_reason(desired, live) is None, "another manager's entry: an apply would keep it (server-side apply)"
    live["spec"]["template"]["spec"]["volumes"].pop(0)
    assert str(apply_reason(desired, live)).startswith("drift at .spec.template.spec.volumes[")


def test_a_fingerprinted_object_fingerprints_the_same_again():
    once = fingerprinted(DESIRED)
    assert fingerprinted(once) == once


SCALED = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "ScaledObject",
    "metadata": {"name": "glm", "namespace": "ml", "labels": {"a": "b"}},
    "spec": {"minReplicaCount": 1, "maxReplicaCount": 8, "fallback": {"failureThreshold": 3, "replicas": 1},
             "triggers": [{"type": "prometheus", "metadata": {"threshold": "6"}}]},
}


def _with(obj: dict, **spec) -> dict:
    changed = copy.deepcopy(obj)
    changed["spec"].update(spec)
    return fingerprinted(changed)


def _applied(desired: dict) -> dict:
    live = copy.deepcopy(desired)
    live["metadata"].update(uid="u1", resourceVersion="7")
    return live


def test_a_floor_or_replica_change_alone_is_routine():
    """The predictor moves the floor every few seconds: logged, but no Event each time (37 in 4 minutes)."""
    live = _applied(fingerprinted(SCALED))
    reason = apply_reason(_with(SCALED, minReplicaCount=4, fallback={"failureThreshold": 3, "replicas": 4}), live)
    assert reason == ApplyReason("rescaled spec.minReplicaCount 1 -> 4, spec.fallback.replicas 1 -> 4", routine=True)
    hpa = {**SCALED, "kind": "HorizontalPodAutoscaler", "spec": {"minReplicas": 1, "maxReplicas": 8}}
    assert apply_reason(_with(hpa, minReplicas=3), _applied(fingerprinted(hpa))).routine
    assert apply_reason(_with(DESIRED, replicas=5), _live(fingerprinted(DESIRED))) == ApplyReason(
        "rescaled spec.replicas 2 -> 5", routine=True)


def test_a_floor_change_with_anything_else_is_not_routine():
    live = _applied(fingerprinted(SCALED))
    other = copy.deepcopy(SCALED)
    other["spec"]["triggers"][0]["metadata"]["threshold"] = "8"
    assert apply_reason(_with(other, minReplicaCount=4), live) == ApplyReason("updated")
    drifted = copy.deepcopy(live)
    drifted["spec"]["maxReplicaCount"] = 2  # someone else's edit, reverted by this apply
    assert apply_reason(_with(SCALED, minReplicaCount=4), drifted) == ApplyReason("updated")
    started = copy.deepcopy(live)
    del started["spec"]["minReplicaCount"]
    assert apply_reason(_with(SCALED, minReplicaCount=4), started) == ApplyReason("updated")
    pdb = {**SCALED, "kind": "PodDisruptionBudget"}  # a kind without replica counts
    assert apply_reason(_with(pdb, minReplicaCount=4), _applied(fingerprinted(pdb))) == ApplyReason("updated")


def test_scalars_compare_strictly_except_quantities():
    assert first_difference(False, 0) == ""
    assert first_difference(True, True) is None
    assert first_difference(1, 1.0) is None
    assert first_difference("1024Mi", "1Gi") is None
    assert first_difference("0.5", "500m") is None
    assert first_difference("http", "https") == ""
    assert first_difference({"a": None}, {}) is None
    assert first_difference({"a": 0}, {}) == ".a", "zero is a value, not an empty one"


def test_prunable_keeps_desired_and_objects_already_going():
    live = {
        ("Deployment", "glm-old"): {"metadata": {"name": "glm-old"}},
        ("Deployment", "glm-new"): {"metadata": {"name": "glm-new"}},
        ("HorizontalPodAutoscaler", "glm"): {"metadata": {"name": "glm"}},
        ("Service", "glm"): {"metadata": {"name": "glm", "deletionTimestamp": "2026-01-01T00:00:00Z"}},
    }
    keep = {("Deployment", "glm-new"), ("ScaledObject", "glm")}
    assert prunable(live, keep) == [("Deployment", "glm-old"), ("HorizontalPodAutoscaler", "glm")]


def test_prunable_leaves_what_another_controller_made_from_our_labels():
    """KEDA's HPA carries its ScaledObject's labels (so ours) and the ScaledObject as controller."""
    keda_hpa = {"metadata": {"name": "keda-hpa-glm", "ownerReferences": [
        {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "glm", "controller": True}]}}
    ours = {"metadata": {"name": "glm", "ownerReferences": [
        {"apiVersion": "autoglm.io/v1alpha1", "kind": "AutoGLMDeployment", "name": "glm", "controller": True}]}}
    live = {("HorizontalPodAutoscaler", "keda-hpa-glm"): keda_hpa, ("HorizontalPodAutoscaler", "glm"): ours}
    assert prunable(live, set()) == [("HorizontalPodAutoscaler", "glm")]


def _owned_by(manager: str, operation: str, fields: dict) -> dict:
    return {"manager": manager, "operation": operation, "fieldsV1": {"f:spec": fields}}


def test_replicas_are_handed_over_only_when_the_operator_stops_setting_them():
    autoscaled = copy.deepcopy(DESIRED)
    del autoscaled["spec"]["replicas"]
    live = _live(DESIRED)
    live["spec"]["replicas"] = 3
    live["metadata"]["managedFields"] = [_owned_by("autoglm-operator", "Apply", {"f:replicas": {}, "f:template": {}})]
    assert replicas_to_hand_over(autoscaled, live) == 3
    assert replicas_to_hand_over(DESIRED, live) is None, "still set by the operator"
    assert replicas_to_hand_over(autoscaled, None) is None
    live["metadata"]["managedFields"] = [_owned_by("kube-controller-manager", "Update", {"f:replicas": {}}),
                                         _owned_by("autoglm-operator", "Apply", {"f:template": {}})]
    assert replicas_to_hand_over(autoscaled, live) is None, "the autoscaler owns them already"


def test_what_the_api_server_normalises_is_no_drift():
    """Issue 15, fault 4: each of these re-applied a Deployment at every resync."""
    env = [{"name": "HTTPS_PROXY", "value": ""}, {"name": "HF_HOME", "value": "/models/hf"}]
    assert first_difference({"env": env}, {"env": [{"name": "HTTPS_PROXY"}, {"name": "HF_HOME", "value": "/models/hf"}]}) is None
    assert first_difference({"readOnly": False}, {}) is None, "a false the server omits"
    assert first_difference({"cpu": "1000m", "memory": "65536Mi"}, {"cpu": "1", "memory": "64Gi"}) is None
    assert first_difference({"cpu": 2}, {"cpu": "2"}) is None, "a number sent as a quantity comes back a string"
    assert first_difference({"ports": [{"port": 80}]}, {"ports": [{"port": 80, "protocol": "TCP"}]}) is None
    assert first_difference({"securityContext": {}}, {"securityContext": None}) is None
    # Keyed lists: order the server keeps or another manager's entries are not the operator's to fix.
    live_env = [{"name": "ADDED_BY_KUBECTL", "value": "1"}, {"name": "HF_HOME", "value": "/models/hf"},
                {"name": "HTTPS_PROXY"}]
    assert first_difference({"env": env}, {"env": live_env}) is None
    ports = [{"containerPort": 8000, "protocol": "TCP"}, {"containerPort": 8000, "protocol": "UDP"}]
    assert first_difference({"ports": ports[:1]}, {"ports": list(reversed(ports))}) is None


def test_real_drift_is_still_found_in_normalised_lists():
    env = [{"name": "HF_HOME", "value": "/models/hf"}]
    assert first_difference({"env": env}, {"env": [{"name": "HF_HOME", "value": "/tmp"}]}) == ".env[HF_HOME].value"
    assert first_difference({"env": env}, {"env": [{"name": "OTHER", "value": "x"}]}) == ".env[HF_HOME]"
    assert first_difference({"env": [{"name": "A", "value": "x"}]}, {"env": [{"name": "A"}]}) == ".env[A].value"
    assert first_difference({"cpu": "1"}, {"cpu": "2"}) == ".cpu"
    assert first_difference({"args": ["--a", ""]}, {"args": ["--a"]}) == ".args", "plain lists stay positional"
    assert first_difference({"ports": [{"port": 80}]}, {"ports": [{"port": 80, "protocol": "UDP"}]}) == ".ports[80=TCP]"
