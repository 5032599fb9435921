"""The custom metrics API for HPA mode: prometheus-adapter registered on 127.0.0.1 and serving
per-pod series, which the capacity poller derives from the one engine and the Ready pods."""
from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace

from autoglm_testenv import capacity, custom_metrics

PORT = 20100


def test_both_custom_metrics_versions_reach_the_adapter_through_an_external_name_service() -> None:
    objects = custom_metrics.registration(b"CA", PORT)
    service = next(o for o in objects if o["kind"] == "Service")
    assert service["spec"] == {"type": "ExternalName", "externalName": "localhost"}
    apis = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "APIService"}
    assert set(apis) == {"v1beta2.custom.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io"}
    for spec in apis.values():
        assert spec["service"] == {"name": service["metadata"]["name"], "namespace": custom_metrics.NAMESPACE, "port": PORT}
        assert spec["caBundle"] == base64.b64encode(b"CA").decode()
    assert apis["v1beta2.custom.metrics.k8s.io"]["versionPriority"] > apis["v1beta1.custom.metrics.k8s.io"]["versionPriority"]


def test_the_adapter_listens_on_loopback_and_reads_the_environment_prometheus() -> None:
    bins = SimpleNamespace(prometheus_adapter=Path("/cache/adapter"))
    argv = custom_metrics.argv(bins, Path("/env"), PORT, "http://127.0.0.1:9090", Path("/env/kubeconfig"))  # type: ignore[arg-type]
    assert argv[0] == "/cache/adapter"
    assert {f"--secure-port={PORT}", "--bind-address=127.0.0.1", "--prometheus-url=http://127.0.0.1:9090",
            "--config=/env/prometheus-adapter.yaml"} <= set(argv)


def test_the_adapter_serves_series_labelled_with_namespace_and_pod_as_pod_metrics() -> None:
    (rule,) = custom_metrics.adapter_config()["rules"]
    assert rule["seriesQuery"] == '{namespace!="",pod!=""}'
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    assert "name" not in rule, "the series name is the metric name the HPA asks for"


def _pod(name: str, *conditions: tuple[str, str]) -> SimpleNamespace:
    return SimpleNamespace(metadata=SimpleNamespace(name=name), status=SimpleNamespace(
        conditions=[SimpleNamespace(type=t, status=s) for t, s in conditions] or None))


def test_only_ready_pods_get_a_series_and_they_share_the_engine_load() -> None:
    pods = [_pod("b", ("Ready", "True")), _pod("c", ("Ready", "False")), _pod("d"), _pod("a", ("PodScheduled", "True"), ("Ready", "True"))]
    ready = capacity.ready_pod_names(pods)
    assert ready == ["a", "b"]
    assert capacity.pod_series(ready, 9.0) == {"a": 4.5, "b": 4.5}
    assert capacity.pod_series([], 9.0) == {}, "no Ready pod, no series"


def test_the_engine_value_sums_the_metric_over_its_label_sets() -> None:
    exposition = ('# TYPE vllm:num_requests_running gauge\n'
                  'vllm:num_requests_running{model_name="m",namespace="n"} 3.0\n'
                  'vllm:num_requests_running{model_name="m2",namespace="n"} 2.0\n'
                  '# TYPE vllm:num_requests_waiting gauge\n'
                  'vllm:num_requests_waiting{model_name="m",namespace="n"} 7.0\n')
    assert capacity.engine_value(exposition, "vllm:num_requests_running") == 5.0
    assert capacity.engine_value(exposition, "sglang:num_running_reqs") == 0.0
