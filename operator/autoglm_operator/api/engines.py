"""What differs between inference engines: image, command line, health and metric names.

Each engine is a small profile so the workload renderer never branches on the engine name.
Flag names follow each engine's own CLI reference (vLLM `vllm serve`, SGLang
`sglang.launch_server`, TGI `text-generation-launcher`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.api.spec import Model, Runtime

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
    running_metric: str
    waiting_metric: str
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
        running_metric="vllm:num_requests_running",
        waiting_metric="vllm:num_requests_waiting",
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
        running_metric="sglang:num_running_reqs",
        waiting_metric="sglang:num_queue_reqs",
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
