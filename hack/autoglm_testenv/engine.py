"""A simulated GPU inference engine: OpenAI-compatible HTTP, an engine's metric names, no GPU or weights.

It models what makes LLM serving hard to scale: a fixed number of batch slots, a queue in front of
them, prefill time that grows with the prompt, and decode that slows as the batch fills. So when
load exceeds capacity, time-to-first-token and latency rise the way a real engine's do, and the
metrics the operator and the predictor read show it, under the names of the engine it plays
(`--engine vllm|sglang|tgi`, names from the operator's engine profiles, `api.engines.Signals`,
so the simulation and the queries cannot drift apart). One process stands for
one revision of one deployment: its metrics carry `namespace`, `autoglm_deployment` and
`autoglm_revision` labels. Faults (errors, extra TTFT) can be injected at start or at run time
through POST /admin/config, to play a bad canary.

    python -m autoglm_testenv.engine --port 8000 --deployment glm-chat --revision r1
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from dataclasses import asdict, dataclass, fields
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from autoglm_operator.api.engines import PROFILES

# Bucket edges as vLLM publishes them, so histogram_quantile behaves the same on both.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0)
CHARS_PER_TOKEN = 4


@dataclass
class EngineConfig:
    """Capacity and fault knobs; all but the identity can change at run time."""

    max_running: int = 8  # batch slots
    max_waiting: int = 512  # queue bound; beyond it requests get 503 like an overloaded server
    prefill_tokens_per_s: float = 20000.0
    decode_tokens_per_s: float = 50.0  # per sequence, with an empty batch
    batch_slowdown: float = 0.5  # a full batch decodes (1 + batch_slowdown) times slower
    kv_cache_tokens: int = 131072
    error_rate: float = 0.0  # share of requests answered 500
    extra_ttft_seconds: float = 0.0  # added before the first token (a slow canary)
    time_scale: float = 1.0  # divides every modelled duration, for fast tests

    def service_seconds(self, prompt_tokens: int, max_tokens: int, running: int = 0) -> float:
        """Modelled seconds one request spends in a batch slot (prefill, then decode) while
        `running` requests share the batch; queueing for a slot comes on top."""
        per_token = (1.0 + self.batch_slowdown * running / self.max_running) / self.decode_tokens_per_s
        return prompt_tokens / self.prefill_tokens_per_s + self.extra_ttft_seconds + max_tokens * per_token

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f.type for f in fields(self)}
        unknown = set(changes) - set(known)
        if unknown:
            raise ValueError(f"unknown engine settings: {sorted(unknown)}; known: {sorted(known)}")
        for name, value in changes.items():
            current = getattr(self, name)
            setattr(self, name, type(current)(value))


class _Absent:
    """A metric the engine does not publish: recording into it does nothing."""

    def labels(self, *_: Any, **__: Any) -> _Absent:
        return self

    def set(self, _: float) -> None: ...

    def inc(self, _: float = 1) -> None: ...

    def observe(self, _: float) -> None: ...


def _counter(name: str | None, doc: str, names: list[str], registry: CollectorRegistry) -> Any:
    """A counter exposed under exactly `name`: prometheus-client adds `_total` itself, and a name
    without that suffix (TGI's Rust exporter) is served as a gauge that only rises."""
    if name is None:
        return _Absent()
    if name.endswith("_total"):
        return Counter(name.removesuffix("_total"), doc, names, registry=registry)
    return Gauge(name, doc, names, registry=registry)


class Metrics:
    """The engine's series, named by its profile; what the profile lacks is not published (TGI: no TTFT)."""

    def __init__(self, model: str, identity: dict[str, str], engine: str = "vllm") -> None:
        self.registry = CollectorRegistry()
        names = ["model_name", *identity]
        self.labels = {"model_name": model, **identity}
        signals = PROFILES[engine].signals
        r = self.registry
        self.running = Gauge(signals.running, "Requests in the batch", names, registry=r)
        self.waiting = Gauge(signals.waiting, "Requests queued", names, registry=r)
        self.kv_usage = (Gauge(signals.kv_cache_usage, "KV-cache usage (1 = full)", names, registry=r)
                         if signals.kv_cache_usage else _Absent())
        self.ttft = (Histogram(signals.ttft, "TTFT", names, buckets=TTFT_BUCKETS, registry=r)
                     if signals.ttft else _Absent())
        # Not read by the operator or the pipeline (so not in the profile): vLLM's and SGLang's names, TGI's histogram.
        prefix = "tgi_request_" if engine == "tgi" else f"{engine}:"
        self.e2e = Histogram("tgi_request_duration" if engine == "tgi" else f"{prefix}e2e_request_latency_seconds",
                             "End-to-end latency", names, buckets=E2E_BUCKETS, registry=r)
        tokens = engine != "tgi"  # TGI publishes token counts as per-request histograms only
        self.generation_tokens = Counter(f"{prefix}generation_tokens", "Generated tokens", names, registry=r) if tokens else _Absent()
        self.prompt_tokens = Counter(f"{prefix}prompt_tokens", "Prompt tokens", names, registry=r) if tokens else _Absent()
        self.succeeded = _counter(signals.succeeded, "Requests that finished well", names, r)
        self.total = _counter(signals.total, "Finished requests, failed ones included", names, r)
        # vLLM counts failures in its HTTP middleware's counter (status "5xx"), the others per request.
        self.http_failures = signals.failed == "http_requests_total"
        self.failed = _Absent() if self.http_failures else _counter(signals.failed, "Failed requests", names, r)
        self.http = Counter("http_requests", "HTTP requests", ["handler", "method", "status", *identity], registry=r)
        self.identity = identity
        for gauge in (self.running, self.waiting, self.kv_usage):
            gauge.labels(**self.labels).set(0)
        for counter in (self.succeeded, self.total, self.failed):
            counter.labels(**self.labels).inc(0)

    def http_done(self, handler: str, status: int) -> None:
        self.http.labels(handler=handler, method="POST", status=f"{status // 100}xx", **self.identity).inc()

    def finished(self, ok: bool) -> None:
        """One request finished (ok) or failed with a server error."""
        (self.succeeded if ok else self.failed).labels(**self.labels).inc()
        self.total.labels(**self.labels).inc()


class Engine:
    def __init__(self, model: str, cfg: EngineConfig, identity: dict[str, str], engine: str = "vllm") -> None:
        self.model = model
        self.cfg = cfg
        self.metrics = Metrics(model, identity, engine)
        self.running = 0
        self.waiting = 0
        self.kv_tokens = 0
        self.slots = asyncio.Condition()

    def _gauges(self) -> None:
        m, labels = self.metrics, self.metrics.labels
        m.running.labels(**labels).set(self.running)
        m.waiting.labels(**labels).set(self.waiting)
        m.kv_usage.labels(**labels).set(min(1.0, self.kv_tokens / self.cfg.kv_cache_tokens))

    async def generate(self, prompt_tokens: int, max_tokens: int) -> tuple[float, float]:
        """Queue, prefill and decode one request; returns (ttft, e2e) in modelled seconds."""
        cfg = self.cfg
        start = time.monotonic()
        async with self.slots:
            self.waiting += 1
            self._gauges()
            try:
                await self.slots.wait_for(lambda: self.running < self.cfg.max_running)
            finally:
                self.waiting -= 1
            self.running += 1
            self.kv_tokens += prompt_tokens + max_tokens
            self._gauges()
        try:
            prefill = cfg.service_seconds(prompt_tokens, 0)
            await asyncio.sleep(prefill / cfg.time_scale)
            ttft = (time.monotonic() - start) * cfg.time_scale
            decode = cfg.service_seconds(prompt_tokens, max_tokens, self.running) - prefill
            await asyncio.sleep(decode / cfg.time_scale)
        finally:
            async with self.slots:
                self.running -= 1
                self.kv_tokens -= prompt_tokens + max_tokens
                self._gauges()
                self.slots.notify()
        e2e = (time.monotonic() - start) * cfg.time_scale
        m, labels = self.metrics, self.metrics.labels
        m.ttft.labels(**labels).observe(ttft)
        m.e2e.labels(**labels).observe(e2e)
        m.finished(ok=True)
        m.generation_tokens.labels(**labels).inc(max_tokens)
        m.prompt_tokens.labels(**labels).inc(prompt_tokens)
        return ttft, e2e


def _prompt_tokens(body: dict[str, Any]) -> int:
    if "messages" in body:
        text = "".join(str(m.get("content", "")) for m in body["messages"] if isinstance(m, dict))
    else:
        prompt = body.get("prompt", "")
        text = "".join(prompt) if isinstance(prompt, list) else str(prompt)
    return max(1, len(text) // CHARS_PER_TOKEN)


def build_app(engine: Engine) -> web.Application:
    async def completion(request: web.Request) -> web.StreamResponse:
        handler = request.path
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            raw = body.get("max_tokens")
            max_tokens = 16 if raw is None else int(raw)
            if not 1 <= max_tokens <= 32768:
                raise ValueError("max_tokens must be between 1 and 32768")
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            engine.metrics.http_done(handler, 400)
            return web.json_response({"error": {"message": str(exc), "type": "invalid_request_error"}}, status=400)
        if engine.waiting >= engine.cfg.max_waiting:
            engine.metrics.http_done(handler, 503)
            return web.json_response({"error": {"message": "queue full", "type": "overloaded"}}, status=503)
        if random.random() < engine.cfg.error_rate:
            engine.metrics.http_done(handler, 500)
            engine.metrics.finished(ok=False)
            return web.json_response({"error": {"message": "injected failure", "type": "server_error"}}, status=500)
        prompt_tokens = _prompt_tokens(body)
        await engine.generate(prompt_tokens, max_tokens)
        engine.metrics.http_done(handler, 200)
        chat = handler.endswith("chat/completions")
        text = "ok " * max_tokens
        choice = {"index": 0, "finish_reason": "length",
                  **({"message": {"role": "assistant", "content": text}} if chat else {"text": text})}
        return web.json_response({
            "id": f"cmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": engine.model, "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": max_tokens,
                      "total_tokens": prompt_tokens + max_tokens},
        })

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": engine.model, "object": "model", "owned_by": "autoglm"}]})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(engine.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def admin_get(_: web.Request) -> web.Response:
        return web.json_response(asdict(engine.cfg))

    async def admin_set(request: web.Request) -> web.Response:
        try:
            engine.cfg.update(await request.json())
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(asdict(engine.cfg))

    app = web.Application()
    app.router.add_post("/v1/completions", completion)
    app.router.add_post("/v1/chat/completions", completion)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/admin/config", admin_get)
    app.router.add_post("/admin/config", admin_set)
    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m autoglm_testenv.engine", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default="zai-org/AutoGLM-Phone-9B")
    p.add_argument("--namespace", default="default")
    p.add_argument("--deployment", default="glm")
    p.add_argument("--revision", default="r1")
    p.add_argument("--engine", choices=sorted(PROFILES), default="vllm", help="whose metric names to publish")
    for f in fields(EngineConfig):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    args = p.parse_args(argv)
    disable_created_metrics()  # the engines expose no *_created series either
    cfg = EngineConfig(**{f.name: getattr(args, f.name) for f in fields(EngineConfig)})
    identity = {"namespace": args.namespace, "autoglm_deployment": args.deployment, "autoglm_revision": args.revision}
    app = build_app(Engine(args.model, cfg, identity, args.engine))
    print(f"engine: {args.engine} serving {args.model} ({args.namespace}/{args.deployment}@{args.revision}) on http://{args.host}:{args.port}",
          flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
