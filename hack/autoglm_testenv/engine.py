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

Streams and pods (the stream-safe scale-in e2e): a request with `"stream": true` is answered as
Server-Sent Events, one chunk per STREAM_CHUNK_SECONDS of decode, like vLLM's OpenAI server. Once
told its Deployment's pods (POST /admin/pods `{"serving": [...], "present": [...]}`, from the
termination runner, termination.py) the engine puts every request on one serving pod (Ready, not
terminating; the one with the fewest requests, as a least-request balancer would) and answers 503
when none serves; it publishes each pod's own running and waiting gauges at GET /pods/<pod>/metrics
(what that pod's engine would publish on its localhost, for its preStop hook); and a pod that is no
longer present has been stopped: its requests still in flight are cut (the connection is closed)
and counted in `autoglm_testenv_streams_cut_total`. Until told, the engine serves as one pool.

    python -m autoglm_testenv.engine --port 8000 --deployment glm-chat --revision r1
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from autoglm_operator.api.engines import PROFILES, Signals

# Bucket edges as vLLM publishes them, so histogram_quantile behaves the same on both.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0)
CHARS_PER_TOKEN = 4
STREAM_CHUNK_SECONDS = 0.5  # modelled decode time per streamed chunk


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


@dataclass
class Flight:
    """One request in flight on a pod: queued until it gets a batch slot; `cut` is set when its pod stops."""

    pod: str
    queued: bool = True
    cut: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class Pods:
    """The Deployment's pods as the termination runner reports them, and the requests on each."""

    def __init__(self) -> None:
        self.serving: list[str] = []
        self.flights: dict[str, list[Flight]] = {}  # every present pod, with its requests in flight

    def update(self, serving: list[str], present: list[str]) -> list[Flight]:
        """New pod sets; returns the flights of the pods that are gone (each is cut)."""
        self.serving = [p for p in serving if p in present]
        gone = [f for pod in set(self.flights) - set(present) for f in self.flights.pop(pod)]
        for pod in present:
            self.flights.setdefault(pod, [])
        return gone

    def admit(self) -> Flight | None:
        """A new request on the serving pod with the fewest in flight (ties: by name); None when none serves."""
        if not self.serving:
            return None
        pod = min(self.serving, key=lambda p: (len(self.flights[p]), p))
        flight = Flight(pod)
        self.flights[pod].append(flight)
        return flight

    def done(self, flight: Flight) -> None:
        if flight in self.flights.get(flight.pod, []):
            self.flights[flight.pod].remove(flight)

    def exposition(self, pod: str, signals: Signals) -> str | None:
        """The pod's running and waiting gauges in the text format, or None for a pod not present."""
        flights = self.flights.get(pod)
        if flights is None:
            return None
        waiting = sum(f.queued for f in flights)
        return (f'{signals.running}{{pod="{pod}"}} {len(flights) - waiting}\n'
                f'{signals.waiting}{{pod="{pod}"}} {waiting}\n')


class Engine:
    def __init__(self, model: str, cfg: EngineConfig, identity: dict[str, str], engine: str = "vllm") -> None:
        self.model = model
        self.cfg = cfg
        self.signals = PROFILES[engine].signals
        self.metrics = Metrics(model, identity, engine)
        self.running = 0
        self.waiting = 0
        self.kv_tokens = 0
        self.slots = asyncio.Condition()
        self.pods: Pods | None = None  # None until the termination runner reports them
        self.cuts = Counter("autoglm_testenv_streams_cut", "Requests in flight on a pod that stopped",
                            list(identity), registry=self.metrics.registry).labels(**identity)
        self.cuts.inc(0)

    async def configure(self, changes: dict[str, Any]) -> None:
        """Apply EngineConfig `changes` (POST /admin/config; ValueError/TypeError on a bad one). More
        batch slots admit queued requests at once, as a real engine's scheduler does at its next step:
        the capacity poller raises them when pods turn Ready, often after requests already queue."""
        self.cfg.update(changes)
        async with self.slots:
            self.slots.notify_all()

    def set_pods(self, serving: list[str], present: list[str]) -> int:
        """Follow the pods (POST /admin/pods); cuts the requests of pods gone and returns how many."""
        if self.pods is None:
            self.pods = Pods()
        gone = self.pods.update(serving, present)
        for flight in gone:
            flight.cut.set()
        self.cuts.inc(len(gone))
        return len(gone)

    def _gauges(self) -> None:
        m, labels = self.metrics, self.metrics.labels
        m.running.labels(**labels).set(self.running)
        m.waiting.labels(**labels).set(self.waiting)
        m.kv_usage.labels(**labels).set(min(1.0, self.kv_tokens / self.cfg.kv_cache_tokens))

    async def generate(self, prompt_tokens: int, max_tokens: int, flight: Flight | None = None,
                       emit: Callable[[int], Awaitable[None]] | None = None) -> tuple[float, float]:
        """Queue, prefill and decode one request; returns (ttft, e2e) in modelled seconds. With
        `emit`, decode is cut into STREAM_CHUNK_SECONDS chunks and emit(tokens) is awaited after each."""
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
            if flight is not None:
                flight.queued = False
            self._gauges()
        try:
            prefill = cfg.service_seconds(prompt_tokens, 0)
            await asyncio.sleep(prefill / cfg.time_scale)
            ttft = (time.monotonic() - start) * cfg.time_scale
            decode = cfg.service_seconds(prompt_tokens, max_tokens, self.running) - prefill
            chunks = max(1, math.ceil(decode / STREAM_CHUNK_SECONDS)) if emit else 1
            sent = 0
            for i in range(1, chunks + 1):
                await asyncio.sleep(decode / chunks / cfg.time_scale)
                if emit is not None:
                    tokens = max_tokens * i // chunks - sent
                    sent += tokens
                    await emit(tokens)
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


async def _until_cut(work: Awaitable[Any], flight: Flight | None) -> bool:
    """Run `work` unless the request's pod stops first (then `work` is cancelled); True when cut."""
    task = asyncio.ensure_future(work)
    if flight is None:
        await task
        return False
    cut = asyncio.ensure_future(flight.cut.wait())
    done, _ = await asyncio.wait({task, cut}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, cut):
        pending.cancel()
    if task in done:
        task.result()
        return False
    return True


def _abort(request: web.Request) -> None:
    """The stopped pod's connection ends mid-answer, as a killed engine's does."""
    if request.transport is not None:
        request.transport.close()


def _completion_id() -> str:
    return f"cmpl-{uuid.uuid4().hex[:12]}"


async def _whole(request: web.Request, engine: Engine, body: dict[str, Any], max_tokens: int,
                 flight: Flight | None) -> web.StreamResponse:
    handler = request.path
    prompt_tokens = _prompt_tokens(body)
    if await _until_cut(engine.generate(prompt_tokens, max_tokens, flight), flight):
        _abort(request)
        return web.Response(status=500)
    engine.metrics.http_done(handler, 200)
    chat = handler.endswith("chat/completions")
    text = "ok " * max_tokens
    choice = {"index": 0, "finish_reason": "length",
              **({"message": {"role": "assistant", "content": text}} if chat else {"text": text})}
    return web.json_response({
        "id": _completion_id(), "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()), "model": engine.model, "choices": [choice],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": max_tokens,
                  "total_tokens": prompt_tokens + max_tokens},
    })


async def _stream(request: web.Request, engine: Engine, body: dict[str, Any], max_tokens: int,
                  flight: Flight | None) -> web.StreamResponse:
    """Server-Sent Events as vLLM's OpenAI server sends them: `data: <chunk>` per chunk, then `data: [DONE]`."""
    chat = request.path.endswith("chat/completions")
    ident, kind = _completion_id(), "chat.completion.chunk" if chat else "text_completion"
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)

    async def emit(tokens: int) -> None:
        text = "ok " * tokens
        choice = {"index": 0, **({"delta": {"content": text}} if chat else {"text": text})}
        chunk = {"id": ident, "object": kind, "created": int(time.time()), "model": engine.model, "choices": [choice]}
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

    if await _until_cut(engine.generate(_prompt_tokens(body), max_tokens, flight, emit), flight):
        _abort(request)
        return response
    engine.metrics.http_done(request.path, 200)
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


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
        flight = engine.pods.admit() if engine.pods is not None else None
        if engine.pods is not None and flight is None:
            engine.metrics.http_done(handler, 503)
            return web.json_response({"error": {"message": "no serving pod", "type": "unavailable"}}, status=503)
        try:
            return await (_stream if body.get("stream") else _whole)(request, engine, body, max_tokens, flight)
        finally:
            if flight is not None and engine.pods is not None:
                engine.pods.done(flight)

    async def pod_metrics(request: web.Request) -> web.Response:
        text = engine.pods.exposition(request.match_info["pod"], engine.signals) if engine.pods is not None else None
        if text is None:
            return web.Response(status=404, text="no such pod")
        return web.Response(text=text, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def pods_get(_: web.Request) -> web.Response:
        pods = engine.pods
        return web.json_response(None if pods is None else {
            "serving": pods.serving, "inFlight": {pod: len(f) for pod, f in pods.flights.items()}})

    async def pods_set(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            serving, present = [str(p) for p in body["serving"]], [str(p) for p in body["present"]]
        except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
            return web.json_response({"error": f"want {{serving: [...], present: [...]}}: {exc}"}, status=400)
        return web.json_response({"cut": engine.set_pods(serving, present)})

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
            await engine.configure(await request.json())
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
    app.router.add_get("/admin/pods", pods_get)
    app.router.add_post("/admin/pods", pods_set)
    app.router.add_get("/pods/{pod}/metrics", pod_metrics)
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
