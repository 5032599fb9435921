"""The committed CRD is exactly what the Python model generates, and it has what kubectl needs."""
from __future__ import annotations

import dataclasses
import re

import yaml

from autoglm_operator.api.crd import build_crd, crd_yaml
from autoglm_operator.api.schema import NO_EMPTY_ITEM, NOT_EMPTY, camel
from autoglm_operator.api.spec import Autoscaling, Spec
from autoglm_operator.api.status import Status

CRD_PATH = "crds/autoglm.io_autoglmdeployments.yaml"


def test_committed_crd_matches_generator(repo):
    assert (repo / CRD_PATH).read_text(encoding="utf-8") == crd_yaml(), "run: autoglm crd > " + CRD_PATH


def _version() -> dict:
    return build_crd()["spec"]["versions"][0]


def test_names_and_subresources():
    crd = build_crd()
    assert crd["metadata"]["name"] == "autoglmdeployments.autoglm.io"
    assert crd["spec"]["names"]["shortNames"] == ["agd"]
    assert set(crd["spec"]["names"]["categories"]) == {"autoglm", "all"}
    assert _version()["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert _version()["subresources"]["status"] == {}


def test_every_spec_and_status_field_is_in_the_schema():
    schema = _version()["schema"]["openAPIV3Schema"]["properties"]
    for cls, section in ((Spec, "spec"), (Status, "status")):
        assert set(schema[section]["properties"]) == {camel(f.name) for f in dataclasses.fields(cls)}


def test_status_types_kopf_and_kstatus_rely_on():
    status = _version()["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["observedGeneration"]["type"] == "integer"
    condition = status["conditions"]["items"]
    assert set(condition["properties"]) == {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"}
    assert condition["properties"]["observedGeneration"]["type"] == "integer"
    assert status["coldStartSeconds"]["additionalProperties"]["type"] == "number"
    assert {"weight", "mirror", "step"} <= set(status["canary"]["properties"])
    assert {"predicted", "recommendedMinReplicas", "updatedAt"} <= set(status["forecast"]["properties"])


def test_printer_columns_point_at_declared_status_fields():
    status = _version()["schema"]["openAPIV3Schema"]["properties"]["status"]
    for column in _version()["additionalPrinterColumns"]:
        # conditions[?(@.type=="Ready")].reason -> conditions[], reason: a list item's field follows.
        path = re.sub(r"\[[^]]*\]", "[]", column["jsonPath"]).lstrip(".").split(".")
        if path[0] != "status":
            continue
        node = status
        for part in path[1:]:
            name, _, select = part.partition("[")
            node = node["properties"][name]
            node = node["items"] if select else node
        assert node["type"] == column["type"], column["name"]
    names = [c["name"] for c in _version()["additionalPrinterColumns"]]
    assert names[0] == "Phase", "a Degraded resource must not read healthy from its pod counts"
    assert {"Ready", "Revision", "Canary", "Predicted", "Age", "Reason"} <= set(names)


def test_cel_rules_are_in_the_schema():
    spec = _version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    cel = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert "self.resources.gpu.count % self.runtime.tensorParallelSize == 0" in cel
    assert [r.cel for r in Spec.RULES + Spec.TRANSITION_RULES] == cel
    assert any("oldSelf" in rule for rule in cel), "the transition rule on spec.replicas"
    autoscaling = [r["rule"] for r in spec["properties"]["autoscaling"]["x-kubernetes-validations"]]
    assert [r.cel for r in Autoscaling.RULES] == autoscaling


def test_field_rules_are_on_their_fields():
    """Field rules (schema.NOT_EMPTY, NO_EMPTY_ITEM) sit on the field, so the API server names its path."""
    spec = _version()["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["model"]["properties"]["name"]["x-kubernetes-validations"] == [
        {"rule": NOT_EMPTY.cel, "message": NOT_EMPTY.message}]
    assert spec["runtime"]["properties"]["args"]["x-kubernetes-validations"] == [
        {"rule": NO_EMPTY_ITEM.cel, "message": NO_EMPTY_ITEM.message}]


def test_defaults_reach_nested_objects():
    """CEL rules read nested fields, and the API server checks them against a section's default
    before nested defaults apply, so each optional section's default is spelled out in full."""
    spec = _version()["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    for section in ("runtime", "resources", "autoscaling", "traffic", "security"):
        assert spec[section]["default"], section
    assert spec["autoscaling"]["default"]["minReplicas"] == 1
    assert spec["autoscaling"]["default"]["maxReplicas"] == 4
    assert spec["resources"]["properties"]["gpu"]["default"] == {"count": 1, "product": ""}
    assert "jwt" not in spec["security"]["default"], "unset optional fields stay unset"


def test_crd_yaml_is_plain_yaml():
    assert "&id" not in crd_yaml()
    assert yaml.safe_load(crd_yaml()) == build_crd()
