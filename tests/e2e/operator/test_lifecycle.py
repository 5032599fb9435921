"""Deleting things (issue 15, fault 1): nothing the operator does may make a deletion depend on the
operator's rights or on the operator running. With the chart's `watchNamespaces` the operator's Role
and RoleBinding live in the namespace being deleted and go early; a finalizer released by the
operator then kept the namespace Terminating for good."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from operator_support import apply, example, resource, wait_for, wait_for_condition

from autoglm_testenv import Env, components, procs

pytestmark = pytest.mark.e2e

NAMESPACE_GONE_SECONDS = 60  # the namespace controller deletes content in passes; 17 s measured with cluster-wide rights


class _Operator:
    """`autoglm operator` watching one namespace as the chart's ServiceAccount of another (its
    release namespace), as the chart installs it: deleting the watched namespace takes the Role and
    RoleBinding, never the operator's own identity."""

    def __init__(self, testenv: Env, watched: str, log_dir: Path) -> None:
        self.release = f"lc-{uuid.uuid4().hex[:6]}"
        self.home = f"{watched[:50]}-home"
        self.identity = components.chart_identities(testenv, self.release, self.home, [watched], log_dir,
                                                    peering=True)["operator"]
        self.watched, self.log_dir, self.pid = watched, log_dir, 0

    def start(self) -> None:
        health = procs.free_port()
        self.pid = components.start_autoglm("operator", ["operator", f"--namespace={self.watched}", "--resync-seconds=2",
                                                         f"--health-port={health}", "--metrics-port=0", "--log-format=plain"],
                                            self.identity, self.log_dir)
        procs.wait_until("operator liveness", lambda: procs.http_ok(f"http://127.0.0.1:{health}/healthz"), 30, self.pid,
                         self.log_dir / "operator.log")

    def stop(self) -> None:
        if self.pid:  # never 0: stopping process group 0 would stop the test run itself
            procs.stop(self.pid)
            self.pid = 0


@pytest.fixture
def released_operator(testenv: Env, namespace: str, autoglm_crd: None, tmp_path: Path) -> Iterator[_Operator]:
    process = _Operator(testenv, namespace, tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        print(f"--- operator log (last lines) ---\n{procs.log_tail(tmp_path / 'operator.log', 200)}")
        testenv.kubectl("delete", "namespace", process.home, "--wait=false", check=False)
        testenv.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={process.release}",
                        "--wait=false", check=False)


def _node_groups(testenv: Env, namespace: str) -> list[str]:
    items = testenv.kubectl_json("get", "nodegroups.apps.kubeedge.io", "-l", f"autoglm.io/namespace={namespace}")["items"]
    return [item["metadata"]["name"] for item in items]


def _namespace_owned(testenv: Env, namespace: str) -> bool:
    """Every NodeGroup of `namespace` is owned by that Namespace (its uid), so the garbage collector
    deletes it with the namespace even if the operator lost its rights there first."""
    uid = testenv.kubectl_json("get", "namespace", namespace)["metadata"]["uid"]
    items = testenv.kubectl_json("get", "nodegroups.apps.kubeedge.io", "-l", f"autoglm.io/namespace={namespace}")["items"]
    owners = [[(ref["kind"], ref["name"], ref["uid"]) for ref in item["metadata"].get("ownerReferences", [])] for item in items]
    return len(items) == 2 and all(refs == [("Namespace", namespace, uid)] for refs in owners)


def test_a_watched_namespace_with_resources_finishes_deleting(testenv: Env, namespace: str,
                                                              released_operator: _Operator) -> None:
    """The namespace's RoleBinding may go before the resources, and the operator then never sees their
    DELETED events: the NodeGroups must still go (owned by the namespace; this was flaky before)."""
    cr = example("06-edge.yaml", namespace)
    apply(testenv, cr)
    apply(testenv, example("01-minimal.yaml", namespace))
    wait_for_condition(testenv, namespace, "glm-edge", "Degraded", "False", timeout=90)
    wait_for("the edge example's two NodeGroups, owned by their namespace", lambda: _namespace_owned(testenv, namespace), 60)
    assert not resource(testenv, namespace, "glm-edge")["metadata"].get("finalizers"), "nothing holds the deletion"

    testenv.kubectl("delete", "namespace", namespace, "--wait=false")

    def gone() -> bool:
        return testenv.kubectl("get", "namespace", namespace, check=False).returncode != 0

    wait_for(f"namespace {namespace} deleted", gone, NAMESPACE_GONE_SECONDS)
    wait_for("the cluster-scoped NodeGroups deleted with their resource", lambda: not _node_groups(testenv, namespace), 30)
    # A resource whose DELETED event was missed is still resynced: a 403 in a namespace that is gone
    # reads as gone, not as a failure logged with a traceback at every resync (2 s) until a restart.
    time.sleep(5)  # a window of two resyncs: the check is that nothing is logged in it
    failures = [line for line in (released_operator.log_dir / "operator.log").read_text().splitlines()
                if f"of {namespace}/" in line and "failed" in line]
    assert not failures, failures[:3]


def test_resources_go_while_no_operator_runs_and_their_node_groups_are_swept_at_start(
        testenv: Env, namespace: str, released_operator: _Operator) -> None:
    apply(testenv, example("06-edge.yaml", namespace))
    wait_for("the edge example's NodeGroups", lambda: len(_node_groups(testenv, namespace)) == 2, 90)
    released_operator.stop()

    testenv.kubectl("delete", "autoglmdeployment", "glm-edge", "-n", namespace, "--timeout=20s")
    assert len(_node_groups(testenv, namespace)) == 2, "the test needs NodeGroups left behind by a stopped operator"

    released_operator.start()
    wait_for("the orphaned NodeGroups swept at start", lambda: not _node_groups(testenv, namespace), 30)


def test_the_finalizer_an_older_operator_put_is_taken_off(testenv: Env, namespace: str, released_operator) -> None:
    """Upgrading from an operator that had kopf's finalizer: a running operator removes it, so these
    resources become deletable without the operator too."""
    cr = example("01-minimal.yaml", namespace)
    cr["metadata"]["finalizers"] = ["autoglm.io/finalizer"]
    apply(testenv, cr)
    wait_for("the old finalizer removed", lambda: not resource(testenv, namespace, "glm-chat")["metadata"].get("finalizers"), 30)
    released_operator.stop()
    testenv.kubectl("delete", "autoglmdeployment", "glm-chat", "-n", namespace, "--timeout=20s")
