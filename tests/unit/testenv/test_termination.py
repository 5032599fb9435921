"""The termination runner's pure parts: which pods serve, and the hook it runs for a stopping pod."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kubernetes.client import (
    V1Container, V1ExecAction, V1Lifecycle, V1LifecycleHandler, V1ObjectMeta, V1Pod, V1PodCondition, V1PodSpec,
    V1PodStatus,
)

from autoglm_testenv import termination
from autoglm_testenv.cold_start import TERMINATION_ANNOTATION

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _pod(name: str, revision: str = "r1", ready: bool = True, deleting: bool = False,
         hook: list[str] | None = None) -> V1Pod:
    lifecycle = V1Lifecycle(pre_stop=V1LifecycleHandler(_exec=V1ExecAction(command=hook))) if hook else None
    return V1Pod(
        metadata=V1ObjectMeta(name=name, labels={"autoglm.io/revision": revision},
                              annotations={TERMINATION_ANNOTATION: "kubelet"},
                              deletion_timestamp=NOW + timedelta(seconds=95) if deleting else None),
        spec=V1PodSpec(containers=[V1Container(name="engine", lifecycle=lifecycle)]),
        status=V1PodStatus(conditions=[V1PodCondition(type="Ready", status="True" if ready else "False")]),
    )


def test_a_terminating_pod_is_present_but_no_longer_serves() -> None:
    pods = [_pod("b"), _pod("a", deleting=True), _pod("c", ready=False), _pod("x", revision="r2")]
    assert termination.pod_sets(pods, "r1") == (["b"], ["a", "b", "c"])
    assert termination.pod_sets(pods, "r2") == (["x"], ["x"])


def test_the_rendered_hook_asks_the_pods_own_metrics_on_its_engine() -> None:
    hook = ["python3", "-c", "source", "5", "60", termination.HOOK_URL, "vllm:num_requests_running"]
    pod = _pod("glm-r1-abc", hook=hook)
    assert termination.hook_command(pod, "http://127.0.0.1:4321", None) == [
        "python3", "-c", "source", "5", "60", "http://127.0.0.1:4321/pods/glm-r1-abc/metrics", "vllm:num_requests_running"]
    assert termination.hook_command(pod, "http://e", 5) == ["sleep", "5"], "the baseline's fixed sleep"
    assert termination.hook_command(_pod("p"), "http://e", None) is None


def test_the_hook_may_run_until_the_deletion_timestamp() -> None:
    pod = _pod("p", deleting=True)
    assert termination.seconds_left(pod, NOW) == 95
    assert termination.seconds_left(pod, NOW + timedelta(seconds=100)) == 0
    assert termination.opted_in(pod) and not termination.opted_in(V1Pod(metadata=V1ObjectMeta(name="q")))
