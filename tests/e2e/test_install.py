"""Installing the product the three ways users do: Helm, kustomize (kubectl apply -k) and GitOps
(the same manifests). Everything is checked by the real API server."""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from autoglm_testenv import Env, config

pytestmark = pytest.mark.e2e

REPO = config.REPO_DIR
CHART = str(REPO / "charts" / "autoglm-operator")
GENERATED = ("manifests/base/autoglm-operator.yaml", "manifests/overlays/with-predictor/pipeline.yaml")


def _release() -> str:
    return f"autoglm-{uuid.uuid4().hex[:6]}"


def test_generated_manifests_are_current(tmp_path: Path) -> None:
    subprocess.run([str(REPO / "hack" / "render-manifests.sh"), str(config.binaries().helm), str(tmp_path)], check=True)
    for rel in GENERATED:
        assert (tmp_path / rel).read_text() == (REPO / rel).read_text(), f"{rel} is stale: run `make manifests`"


def test_helm_install_upgrade_uninstall(testenv: Env, namespace: str) -> None:
    release = _release()
    testenv.helm("install", release, CHART, "-n", namespace, "--wait", "--timeout=120s")
    deploys = testenv.kubectl_json("get", "deploy", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}")
    assert [d["metadata"]["name"] for d in deploys["items"]] == [f"{release}-operator"]
    assert deploys["items"][0]["status"].get("availableReplicas") == 1
    assert testenv.kubectl("get", "crd", "autoglmdeployments.autoglm.io").returncode == 0

    testenv.helm("upgrade", release, CHART, "-n", namespace, "--wait", "--timeout=120s",
                 "--set", "collector.enabled=true", "--set", "predictor.enabled=true")
    deploys = testenv.kubectl_json("get", "deploy", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}")
    assert sorted(d["metadata"]["name"] for d in deploys["items"]) == [
        f"{release}-collector", f"{release}-operator", f"{release}-predictor"]

    testenv.helm("uninstall", release, "-n", namespace, "--wait", "--timeout=120s")
    left = testenv.kubectl("get", "clusterrole,clusterrolebinding,deploy,sa", "-A", "-l",
                           f"app.kubernetes.io/instance={release}", "-o", "name").stdout.split()
    assert left == []


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("operator.replicas=abc", "at '/operator/replicas': got string, want integer"),
        ("operator.bogus=1", "additional properties 'bogus' not allowed"),
        ("kafka.securityProtocol=TLS", "at '/kafka/securityProtocol'"),
        ("prometheus.url=prometheus:9090", "at '/prometheus/url'"),
    ],
)
def test_wrong_values_fail_install_with_a_clear_message(testenv: Env, namespace: str, setting: str, message: str) -> None:
    result = testenv.helm("install", _release(), CHART, "-n", namespace, "--set", setting, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert testenv.kubectl("get", "deploy", "-n", namespace, "-o", "name").stdout == ""  # nothing half-installed


@pytest.mark.parametrize(
    "values",
    [[], ["--set", "collector.enabled=true", "--set", "predictor.enabled=true", "--set", "kafka.caSecret=kafka-ca",
          "--set", "kafka.credentialsSecret=kafka-user", "--set", "kafka.securityProtocol=SASL_SSL",
          "--set", "kafka.saslMechanism=SCRAM-SHA-512", "--set", "prometheus.bearerTokenSecret=prom-token"],
     ["--set", "operator.watchNamespaces={autoglm-system}", "--set", "operator.replicas=2",
      "--set", "operator.peering.enabled=true"],
     ["--set", "prometheusRule.configMap=true", "--set", "grafanaDashboard.enabled=true"]],
    ids=["defaults", "pipeline-with-credentials", "namespaced-ha", "rules-and-dashboard-configmaps"],
)
def test_helm_template_passes_server_dry_run(testenv: Env, values: list[str]) -> None:
    testenv.kubectl("create", "namespace", "autoglm-system", check=False)
    # The chart's CRDs for real: a dry run cannot check objects (KopfPeering) whose CRD it only pretends to create.
    testenv.kubectl("apply", "--server-side", "--force-conflicts", "-f", f"{CHART}/crds/")
    rendered = testenv.helm("template", "autoglm", CHART, "-n", "autoglm-system", *values).stdout
    result = testenv.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=rendered, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", ["manifests/base", "manifests/overlays/with-predictor", "manifests/overlays/dev",
                                  "manifests/argocd"])
def test_kustomize_output_passes_server_dry_run(testenv: Env, path: str) -> None:
    for ns in ("autoglm-system", "argocd"):
        testenv.kubectl("create", "namespace", ns, check=False)
    rendered = testenv.kubectl("kustomize", str(REPO / path)).stdout
    result = testenv.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=rendered, check=False)
    assert result.returncode == 0, result.stderr


def test_every_example_passes_server_dry_run(testenv: Env) -> None:
    """The examples users copy are accepted by the real schema and CEL rules of the chart's CRD."""
    testenv.kubectl("apply", "--server-side", "--force-conflicts", "-f", f"{CHART}/crds/")
    testenv.kubectl("create", "namespace", "ml", check=False)
    for example in sorted((REPO / "manifests" / "examples").glob("*.yaml")):
        result = testenv.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", str(example), check=False)
        assert result.returncode == 0, f"{example.name}: {result.stderr}"


def _can(testenv: Env, kubeconfig: Path, *args: str) -> bool:
    """`kubectl auth can-i` as that identity: the API server's own RBAC decision."""
    result = subprocess.run([str(config.binaries().kubectl), f"--kubeconfig={kubeconfig}", "auth", "can-i", *args],
                            capture_output=True, text=True, timeout=60)
    return result.stdout.strip() == "yes"


def test_chart_identities_are_least_privilege(testenv: Env, namespace: str, tmp_path: Path) -> None:
    """What each component needs is allowed, and what it does not need is denied, by the real
    RBAC authorizer. (The operator e2e suite runs the operator under the same rules through full
    reconciles; `make demo` runs collector and predictor under theirs.)"""
    from autoglm_testenv import components

    components.install_crds(testenv)  # can-i resolves resource names through discovery
    release = _release()
    ids = components.chart_identities(testenv, release, namespace, [namespace], tmp_path)
    try:
        op, col, pred = (ids[c].kubeconfig for c in ("operator", "collector", "predictor"))
        ns = ["-n", namespace]
        for verb_resource in (["create", "deployments.apps"], ["patch", "scaledobjects.keda.sh"],
                              ["delete", "virtualservices.networking.istio.io"], ["patch", "autoglmdeployments.autoglm.io", "--subresource=status"],
                              ["create", "events"]):
            assert _can(testenv, op, *verb_resource, *ns), verb_resource
        assert _can(testenv, op, "create", "nodegroups.apps.kubeedge.io")  # cluster-scoped children
        assert _can(testenv, pred, "patch", "autoglmdeployments.autoglm.io", "--subresource=status", *ns)
        assert _can(testenv, col, "list", "autoglmdeployments.autoglm.io", *ns)
        # Denied: nobody reads Secrets or touches Nodes; the operator stays out of other namespaces;
        # the predictor writes only the status (the operator owns the ScaledObject); the collector only reads.
        for kubeconfig in (op, col, pred):
            assert not _can(testenv, kubeconfig, "list", "secrets", "--all-namespaces")
            assert not _can(testenv, kubeconfig, "get", "secrets", *ns)
            assert not _can(testenv, kubeconfig, "delete", "nodes")
        assert not _can(testenv, op, "create", "deployments.apps", "-n", "kube-system")
        assert not _can(testenv, pred, "patch", "scaledobjects.keda.sh", *ns)
        assert not _can(testenv, pred, "patch", "autoglmdeployments.autoglm.io", *ns)
        assert not _can(testenv, col, "patch", "autoglmdeployments.autoglm.io", "--subresource=status", *ns)
    finally:
        testenv.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}",
                        "--wait=false", check=False)
