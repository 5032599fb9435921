"""Every name the renderers build by joining user inputs fits where it ends up (issue 15, fault 7).

Final uses: object names (DNS labels: every derived name is kept one, the strictest of them), label
values (at most 63 characters), and the NodeGroup name, which KubeEdge writes into the node label
and the pods' nodeSelector `apps.kubeedge.io/belonging-to`.
"""
from __future__ import annotations

import re
from typing import Any, Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.spec import LABEL_VALUE
from autoglm_operator.render.desired import desired_objects
from autoglm_operator.render.edge import NODE_GROUP_LABEL

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
ALL = Capabilities(keda=True, istio=True, kubeedge=True)


def _cr(name: str, namespace: str, groups: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "autoglm.io/v1alpha1", "kind": "AutoGLMDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": {"name": "zai-org/GLM-4-9B-0414"}, "autoscaling": {"enabled": True},
                 "edge": [{"name": g, "nodeLabels": {"autoglm.io/edge-group": g}} for g in groups]},
    }


def _label_maps(value: Any) -> Iterator[dict[str, str]]:
    """Every `labels`, `matchLabels` and `nodeSelector` map anywhere in a rendered object."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("labels", "matchLabels", "nodeSelector") and isinstance(item, dict):
                yield item
            yield from _label_maps(item)
    elif isinstance(value, list):
        for item in value:
            yield from _label_maps(item)


def _check(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        name = obj["metadata"]["name"]
        assert DNS_LABEL.fullmatch(name), (obj["kind"], name)
        for labels in _label_maps(obj):
            for value in labels.values():
                assert re.fullmatch(LABEL_VALUE.strip("^$"), value) and len(value) <= 63, (obj["kind"], value)
        if obj["kind"] == "NodeGroup":
            # What KubeEdge does with it: a label value on each node and in the pods' nodeSelector.
            assert re.fullmatch(LABEL_VALUE.strip("^$"), name), {NODE_GROUP_LABEL: name}


def test_issue_input_node_group_name_is_a_label_value():
    """`<ns>-<name>-<group>` was 66 characters here; the API server refused KubeEdge's node label."""
    objects = desired_objects(_cr("autoglm-phone-9b-awq-edge", "inference-production", ["factory-shanghai-01"]), ALL)
    _check(objects)
    group = next(o for o in objects if o["kind"] == "NodeGroup")["metadata"]["name"]
    assert len(group) == 63 and group.startswith("inference-production-autoglm-phone-9b-awq-edge-factory")
    app = next(o for o in objects if o["kind"] == "EdgeApplication")
    assert [t["name"] for t in app["spec"]["workloadScope"]["targetNodeGroups"]] == [group]
    again = desired_objects(_cr("autoglm-phone-9b-awq-edge", "inference-production", ["factory-shanghai-01"]), ALL)
    assert next(o for o in again if o["kind"] == "NodeGroup")["metadata"]["name"] == group, "stable across converges"


def test_short_names_are_unchanged():
    """Objects made before the bound keep their names (no prune and re-create on upgrade)."""
    objects = desired_objects(_cr("glm", "ml", ["site-a"]), ALL)
    assert next(o for o in objects if o["kind"] == "NodeGroup")["metadata"]["name"] == "ml-glm-site-a"
    fallback = desired_objects(_cr("glm", "ml", ["site-a"]), Capabilities())
    assert "glm-edge-site-a" in {o["metadata"]["name"] for o in fallback}


def test_groups_that_differ_only_past_the_cut_get_different_names():
    long = "p" * 52
    objects = desired_objects(_cr(long, "n" * 63, ["site-aaaaaaaaaaaaaa1", "site-aaaaaaaaaaaaaa2"]), ALL)
    names = [o["metadata"]["name"] for o in objects if o["kind"] == "NodeGroup"]
    assert len(set(names)) == 2


NAMES = st.from_regex(r"[a-z]([-a-z0-9]{0,50}[a-z0-9])?", fullmatch=True)
NAMESPACES = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
GROUPS = st.lists(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?", fullmatch=True), min_size=1, max_size=3, unique=True)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(name=NAMES, namespace=NAMESPACES, groups=GROUPS, kubeedge=st.booleans(), istio=st.booleans())
def test_every_derived_name_fits_its_final_use(name, namespace, groups, kubeedge, istio):
    _check(desired_objects(_cr(name, namespace, groups), Capabilities(keda=True, istio=istio, kubeedge=kubeedge)))
