"""What differs between inference engines: image, command line, health and metric names.

Each engine is a small profile so the workload renderer never branches on the engine name.
Flag names follow each engine's own CLI reference (vLLM `vllm serve`, SGLang
`sglang.launch_server`, TGI `text-generation-launcher`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from autoglm_operator.schema import InvalidSpec
from autoglm_operator.spec import Model, Runtime

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
class EngineProfile:
    image: str
    command: list[str]
    build_args: Callable[[Launch, Model, Runtime], list[str]]
    health_path: str
    running_metric: str
    waiting_metric: str
    # The vLLM image runs as any user given a writable HOME; the SGLang and TGI images expect to
    # write to root-owned paths (compile caches, /data), so they keep the image's user.
    run_as_non_root: bool

    def managed_flags(self) -> set[str]:
        """Flags the operator owns; a user setting them in `runtime.args` would be ambiguous."""
        sample = Launch("/m", "m", "main", [("a", "/a")])
        full = dataclasses.replace(Runtime(), max_model_len=1)
        args = self.build_args(sample, Model(name="m", quantization="fp8"), full)
        return {a for a in args if a.startswith("--")}


def _vllm_args(launch: Launch, model: Model, runtime: Runtime) -> list[str]:
    args = [launch.model_path, "--host", "0.0.0.0", "--port", str(PORT), "--served-model-name", launch.served_name]
    args += ["--tensor-parallel-size", str(runtime.tensor_parallel_size)]
    if launch.revision:
        args += ["--revision", launch.revision]
    if runtime.max_model_len:
        args += ["--max-model-len", str(runtime.max_model_len)]
    if model.quantization != "none":
        args += ["--quantization", model.quantization]
    if launch.adapters:
        args += ["--enable-lora", "--max-loras", str(len(launch.adapters)), "--lora-modules"]
        args += [f"{name}={path}" for name, path in launch.adapters]
    return args


def _sglang_args(launch: Launch, model: Model, runtime: Runtime) -> list[str]:
    args = ["--model-path", launch.model_path, "--host", "0.0.0.0", "--port", str(PORT)]
    args += ["--served-model-name", launch.served_name, "--tp-size", str(runtime.tensor_parallel_size), "--enable-metrics"]
    if launch.revision:
        args += ["--revision", launch.revision]
    if runtime.max_model_len:
        args += ["--context-length", str(runtime.max_model_len)]
    if model.quantization != "none":
        args += ["--quantization", model.quantization]
    if launch.adapters:
        args += ["--enable-lora", "--lora-paths"] + [f"{name}={path}" for name, path in launch.adapters]
    return args


def _tgi_args(launch: Launch, model: Model, runtime: Runtime) -> list[str]:
    args = ["--model-id", launch.model_path, "--hostname", "0.0.0.0", "--port", str(PORT)]
    args += ["--num-shard", str(runtime.tensor_parallel_size)]
    if launch.revision:
        args += ["--revision", launch.revision]
    if runtime.max_model_len:
        args += ["--max-total-tokens", str(runtime.max_model_len)]
    if model.quantization != "none":
        args += ["--quantize", model.quantization]
    if launch.adapters:
        args += ["--lora-adapters", ",".join(f"{name}={path}" for name, path in launch.adapters)]
    return args


PROFILES: dict[str, EngineProfile] = {
    "vllm": EngineProfile(
        image="vllm/vllm-openai:v0.11.0",
        command=["vllm", "serve"],
        build_args=_vllm_args,
        health_path="/health",
        running_metric="vllm:num_requests_running",
        waiting_metric="vllm:num_requests_waiting",
        run_as_non_root=True,
    ),
    "sglang": EngineProfile(
        image="lmsysorg/sglang:v0.5.3",
        command=["python3", "-m", "sglang.launch_server"],
        build_args=_sglang_args,
        health_path="/health",
        running_metric="sglang:num_running_reqs",
        waiting_metric="sglang:num_queue_reqs",
        run_as_non_root=False,
    ),
    "tgi": EngineProfile(
        image="ghcr.io/huggingface/text-generation-inference:3.3.6",
        command=["text-generation-launcher"],
        build_args=_tgi_args,
        health_path="/health",
        running_metric="tgi_batch_current_size",
        waiting_metric="tgi_queue_size",
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
