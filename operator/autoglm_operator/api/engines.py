"""What differs between inference engines: image, command line, health and metric names.

Each engine is a small profile so no renderer, analysis or pipeline query branches on the engine
name. Flag names follow each engine's own CLI reference (vLLM `vllm serve`, SGLang
`sglang.launch_server`, TGI `text-generation-launcher`). Metric names (`Signals`) follow each
engine's metrics reference: vLLM's `vllm/v1/metrics/loggers.py` (plus the HTTP counter of its
prometheus-fastapi-instrumentator), SGLang's `python/sglang/srt/metrics/collector.py`
(served with `--enable-metrics`), TGI's `docs/source/reference/metrics.md`. A signal an
engine does not publish is None, and every check or query that needs it says so by name
(`missing_signal`) instead of asking Prometheus for a series that never exists.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from autoglm_operator.api.rollout_spec import Analysis
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.api.spec import Model, Runtime, Spec

PORT = 8000
MODEL_DIR = "/models"


@dataclasses.dataclass(frozen=True)
class Launch:
    """The model as the engine sees it: where the weights are and which adapters to load."""

    model_path: str
    served_name: str
    revision: str | None
    adapters: list[tuple[str, str]]


@dataclasses.dataclass(frozen=True)
class Signals:
    """One engine's Prometheus metric names (as scraped, counters with their exposed suffix).

    Request outcomes come as two of three counters: `succeeded` (requests that finished well),
    `failed` (requests that failed), `total` (every finished request, failed ones included);
    `failed_matchers` narrows `failed` (vLLM counts failures as HTTP 5xx responses).
    """

    running: str  # gauge: requests in the running batch, per pod
    waiting: str  # gauge: requests queued for a batch slot, per pod
    succeeded: str | None
    failed: str | None
    total: str | None
    ttft: str | None  # histogram of time to first token, seconds (the base name, without _bucket)
    kv_cache_usage: str | None  # gauge: share of the KV cache in use, 0..1
    failed_matchers: str = ""


SIGNAL_NAMES = {"successRate": "request outcome counters", "ttftP95": "time-to-first-token histogram",
                "queueDepth": "waiting-requests gauge"}


def missing_signal(engine: str, check: str) -> str | None:
    """Why the built-in check `check` (successRate, ttftP95, queueDepth) cannot be computed for
    `engine`, or None when it can."""
    s = PROFILES[engine].signals
    available = {"successRate": sum(x is not None for x in (s.succeeded, s.failed, s.total)) >= 2,
                 "ttftP95": s.ttft is not None, "queueDepth": bool(s.waiting)}[check]
    return None if available else f"engine {engine} publishes no {SIGNAL_NAMES[check]}, so {check} cannot be computed"


@dataclasses.dataclass(frozen=True)
class EngineProfile:
    """One engine's CLI: the flag it uses for each setting the operator controls."""

    image: str
    command: list[str]
    model_flag: str | None  # None: the model is the first positional argument
    host_flag: str
    served_name_flag: str | None
    tensor_parallel_flag: str
    max_len_flag: str
    quantization_flag: str
    lora_args: Callable[[list[str]], list[str]]  # from ["name=path", ...]
    always: tuple[str, ...]
    health_path: str
    signals: Signals
    # The vLLM image runs as any user given a writable HOME; the SGLang and TGI images expect to
    # write to root-owned paths (compile caches, /data), so they keep the image's user.
    run_as_non_root: bool

    def args(self, launch: Launch, model: Model, runtime: Runtime) -> list[str]:
        args = [self.model_flag, launch.model_path] if self.model_flag else [launch.model_path]
        args += [self.host_flag, "0.0.0.0", "--port", str(PORT), *self.always]
        if self.served_name_flag:
            args += [self.served_name_flag, launch.served_name]
        args += [self.tensor_parallel_flag, str(runtime.tensor_parallel_size)]
        if launch.revision:
            args += ["--revision", launch.revision]
        if runtime.max_model_len:
            args += [self.max_len_flag, str(runtime.max_model_len)]
        if model.quantization != "none":
            args += [self.quantization_flag, model.quantization]
        if launch.adapters:
            args += self.lora_args([f"{name}={path}" for name, path in launch.adapters])
        return args

    def managed_flags(self) -> set[str]:
        """Flags the operator owns; a user setting them in `runtime.args` would be ambiguous."""
        flags = {self.model_flag, self.host_flag, "--port", self.served_name_flag, self.tensor_parallel_flag}
        flags |= {"--revision", self.max_len_flag, self.quantization_flag, *self.always}
        flags |= {a for a in self.lora_args(["a=/a"]) if a.startswith("--")}
        return {f for f in flags if f}

    @property
    def running_metric(self) -> str:
        return self.signals.running

    @property
    def waiting_metric(self) -> str:
        return self.signals.waiting


PROFILES: dict[str, EngineProfile] = {
    "vllm": EngineProfile(
        image="vllm/vllm-openai:v0.11.0",
        command=["vllm", "serve"],
        model_flag=None,
        host_flag="--host",
        served_name_flag="--served-model-name",
        tensor_parallel_flag="--tensor-parallel-size",
        max_len_flag="--max-model-len",
        quantization_flag="--quantization",
        lora_args=lambda mods: ["--enable-lora", "--max-loras", str(len(mods)), "--lora-modules", *mods],
        always=(),
        health_path="/health",
        signals=Signals(running="vllm:num_requests_running", waiting="vllm:num_requests_waiting",
                        succeeded="vllm:request_success_total", failed="http_requests_total",
                        failed_matchers='status=~"5.."', total=None,
                        ttft="vllm:time_to_first_token_seconds", kv_cache_usage="vllm:kv_cache_usage_perc"),
        run_as_non_root=True,
    ),
    "sglang": EngineProfile(
        image="lmsysorg/sglang:v0.5.3",
        command=["python3", "-m", "sglang.launch_server"],
        model_flag="--model-path",
        host_flag="--host",
        served_name_flag="--served-model-name",
        tensor_parallel_flag="--tp-size",
        max_len_flag="--context-length",
        quantization_flag="--quantization",
        lora_args=lambda mods: ["--enable-lora", "--lora-paths", *mods],
        always=("--enable-metrics",),
        health_path="/health",
        # An aborted request still finishes through the scheduler, so num_requests_total counts it.
        signals=Signals(running="sglang:num_running_reqs", waiting="sglang:num_queue_reqs",
                        succeeded=None, failed="sglang:num_aborted_requests_total", total="sglang:num_requests_total",
                        ttft="sglang:time_to_first_token_seconds", kv_cache_usage="sglang:token_usage"),
        run_as_non_root=False,
    ),
    "tgi": EngineProfile(
        image="ghcr.io/huggingface/text-generation-inference:3.3.6",
        command=["text-generation-launcher"],
        model_flag="--model-id",
        host_flag="--hostname",
        served_name_flag=None,
        tensor_parallel_flag="--num-shard",
        max_len_flag="--max-total-tokens",
        quantization_flag="--quantize",
        lora_args=lambda mods: ["--lora-adapters", ",".join(mods)],
        always=(),
        health_path="/health",
        # TGI's Rust exporter publishes counters without a _total suffix, and no TTFT histogram
        # (only queue, inference and per-token durations) nor a KV-cache gauge.
        signals=Signals(running="tgi_batch_current_size", waiting="tgi_queue_size",
                        succeeded="tgi_request_success", failed=None, total="tgi_request_count",
                        ttft=None, kv_cache_usage=None),
        run_as_non_root=False,
    ),
}


def check_user_args(runtime: Runtime) -> None:
    """Refuse `runtime.args` that repeat a flag the operator already sets."""
    managed = PROFILES[runtime.engine].managed_flags()
    clashes = sorted({a.split("=", 1)[0] for a in runtime.args} & managed)
    if clashes:
        raise InvalidSpec(
            f"spec.runtime.args: {', '.join(clashes)} are set by the operator; use the matching spec field instead"
        )


BOUNDS = {"successRate": "successRateMin", "ttftP95": "ttftP95MaxSeconds", "queueDepth": "queueDepthMax"}


def check_bound(analysis: Analysis, check: str) -> float | None:
    """The spec's bound on built-in check `check` (None: not set)."""
    return {"successRate": analysis.success_rate_min, "ttftP95": analysis.ttft_p95_max_seconds,
            "queueDepth": analysis.queue_depth_max}[check]


def check_signals(spec: Spec) -> None:
    """Refuse a canary bound the engine cannot measure: it would be "no data" every interval (a
    rollback, or with `noData: pass` a promotion with nothing checked)."""
    if spec.rollout is None:
        return
    engine, analysis = spec.runtime.engine, spec.rollout.analysis
    refused = [f"spec.rollout.analysis.{BOUNDS[check]}: {reason}" for check in BOUNDS
               if check_bound(analysis, check) is not None and (reason := missing_signal(engine, check))]
    if refused:
        raise InvalidSpec("; ".join(refused) + " (use spec.rollout.analysis.metrics with a query on what it publishes)")
