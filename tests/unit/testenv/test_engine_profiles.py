"""The simulated engine publishes the metric names of the engine it plays (`--engine`), taken from
the operator's engine profiles, and nothing of another engine's: what the canary analysis and the
collector query for an SGLang or TGI deployment exists in the simulation, and only that."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from autoglm_operator.api.engines import PROFILES
from autoglm_testenv.engine import Engine, EngineConfig, build_app

IDENTITY = {"namespace": "ml", "autoglm_deployment": "glm-chat", "autoglm_revision": "r1"}


def _metrics_after(engine_name: str, ok: int, failed: int) -> dict[str, float]:
    """{series name: summed value} after `ok` answered and `failed` injected-failure requests."""
    async def main() -> str:
        engine = Engine("m", EngineConfig(time_scale=100), IDENTITY, engine_name)
        async with TestClient(TestServer(build_app(engine))) as client:
            for n, rate in ((ok, 0.0), (failed, 1.0)):
                engine.cfg.error_rate = rate
                for _ in range(n):
                    await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2})
            return await (await client.get("/metrics")).text()

    out: dict[str, float] = {}
    for line in asyncio.run(main()).splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


@pytest.mark.parametrize("engine", sorted(PROFILES))
def test_the_engine_publishes_its_profile_names_and_no_other_engines(engine: str) -> None:
    series = _metrics_after(engine, ok=3, failed=1)
    s = PROFILES[engine].signals
    wanted = [n for n in (s.running, s.waiting, s.kv_cache_usage, s.succeeded, s.total) if n]
    wanted += [s.failed] if s.failed and not s.failed_matchers else []
    wanted += [f"{s.ttft}_bucket"] if s.ttft else []
    assert set(wanted) <= set(series), (wanted, sorted(series))
    foreign = ("vllm:", "sglang:", "tgi_")
    own = {"vllm": "vllm:", "sglang": "sglang:", "tgi": "tgi_"}[engine]
    assert not [n for n in series if n.startswith(foreign) and not n.startswith(own)], sorted(series)
    # Outcome counters count what happened: 3 answered, 1 failed.
    if s.total:
        assert series[s.total] == 4
    if s.succeeded:
        assert series[s.succeeded] == 3
    if s.failed and not s.failed_matchers:
        assert series[s.failed] == 1


def test_tgi_publishes_no_ttft_histogram_as_tgi_itself() -> None:
    assert not any("time_to_first_token" in n for n in _metrics_after("tgi", ok=1, failed=0))
