"""The Service spans every revision (Istio picks one) or selects one; the PodDisruptionBudget spans all."""
from __future__ import annotations

from autoglm_operator.render.pdb import pod_disruption_budget
from autoglm_operator.render.service import service


def test_service(make_instance):
    svc = service(make_instance(), None)
    assert svc["metadata"]["name"] == "glm"
    assert svc["spec"]["selector"] == {"autoglm.io/instance": "glm"}
    assert service(make_instance(), "r1")["spec"]["selector"] == {"autoglm.io/instance": "glm", "autoglm.io/revision": "r1"}
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}]


def test_pdb(make_instance):
    pdb = pod_disruption_budget(make_instance())
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == {"matchLabels": {"autoglm.io/instance": "glm"}}
