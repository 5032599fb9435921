"""The simulated engine behaves like a GPU engine under load and speaks vLLM's metric names."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from autoglm_testenv.engine import Engine, EngineConfig, build_app

IDENTITY = {"namespace": "ml", "autoglm_deployment": "glm-chat", "autoglm_revision": "r1"}


def _run(cfg: EngineConfig, scenario: Any) -> Any:
    async def main() -> Any:
        engine = Engine("zai-org/AutoGLM-Phone-9B", cfg, IDENTITY)
        async with TestClient(TestServer(build_app(engine))) as client:
            return await scenario(client, engine)

    return asyncio.run(main())


def _value(metrics_text: str, name: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exposed")


def test_openai_endpoints_and_metrics() -> None:
    async def scenario(client: TestClient, _: Engine) -> tuple[dict, dict, dict, str]:
        completion = await (await client.post("/v1/completions", json={"prompt": "x" * 400, "max_tokens": 5})).json()
        chat = await (await client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})).json()
        models = await (await client.get("/v1/models")).json()
        assert (await client.get("/health")).status == 200
        return completion, chat, models, await (await client.get("/metrics")).text()

    completion, chat, models, text = _run(EngineConfig(time_scale=100), scenario)
    assert completion["usage"] == {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}
    assert chat["choices"][0]["message"]["role"] == "assistant"
    assert models["data"][0]["id"] == "zai-org/AutoGLM-Phone-9B"
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                 "vllm:time_to_first_token_seconds_count", "vllm:e2e_request_latency_seconds_count",
                 "vllm:request_success_total", "vllm:generation_tokens_total"):
        _value(text, name)
    assert _value(text, "vllm:request_success_total") == 2
    assert _value(text, "vllm:generation_tokens_total") == 21
    assert 'autoglm_revision="r1"' in text and 'namespace="ml"' in text


def _mean_ttft(concurrent: int) -> float:
    async def scenario(client: TestClient, engine: Engine) -> float:
        results = await asyncio.gather(*(engine.generate(prompt_tokens=10, max_tokens=20) for _ in range(concurrent)))
        return sum(ttft for ttft, _ in results) / len(results)

    # TTFT is wall-clock time x time_scale, so scheduling jitter is magnified by it: at 50x, 1 ms of
    # jitter on a loaded machine was 0.05 modelled seconds and failed the first assertion. At 5x the
    # whole test sleeps 0.2 s of real time and needs 10 ms of jitter to move a bound.
    return _run(EngineConfig(max_running=2, decode_tokens_per_s=100, time_scale=5), scenario)


def test_ttft_rises_when_overloaded() -> None:
    assert _mean_ttft(2) < 0.05
    assert _mean_ttft(8) > 0.2  # requests wait for batch slots


def test_fault_injection_at_run_time() -> None:
    async def scenario(client: TestClient, _: Engine) -> tuple[int, int, str]:
        bad = await client.post("/admin/config", json={"no_such_knob": 1})
        await client.post("/admin/config", json={"error_rate": 1.0})
        failed = await client.post("/v1/completions", json={"prompt": "hi"})
        return bad.status, failed.status, await (await client.get("/metrics")).text()

    bad, failed, text = _run(EngineConfig(time_scale=100), scenario)
    assert bad == 400
    assert failed == 500
    assert 'status="5xx"' in text


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"max_tokens": 0}', b'{"max_tokens": "lots"}'])
def test_bad_requests_get_400(body: bytes) -> None:
    async def scenario(client: TestClient, _: Engine) -> int:
        return (await client.post("/v1/completions", data=body)).status

    assert _run(EngineConfig(), scenario) == 400
