"""Replay a request trace against OpenAI-compatible endpoints at a chosen speed-up.

Each trace step (a minute of the NASA trace, a second of the Azure LLM ones) lasts
step/speedup real seconds and carries round(value x scale) requests, spread at random inside it;
fractions carry over so the total is kept. Missing steps (gaps in the logs) send nothing. Request
sizes are fixed or sampled from an Azure LLM trace's (context, generated) token pairs. Requests go
round-robin over the targets, like a Service would spread them. Bounded in time and concurrency.

    python -m autoglm_testenv.loadgen --trace predictor/autoglm_predictor/traces/nasa_http_1995_per_minute.csv.gz \\
        --start 1995-07-03T06:00 --speedup 60 --scale 0.2 --duration 120 --target http://127.0.0.1:8000
"""
from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pandas as pd

from autoglm_predictor.forecast.series import load_trace

CHARS_PER_TOKEN = 4


@dataclass
class Stats:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    dropped: int = 0  # not sent because the concurrency bound was reached
    skipped_steps: int = 0  # trace steps with no coverage
    latencies: list[float] = field(default_factory=list)

    def summary(self) -> str:
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
        return (f"sent {self.sent}, ok {self.ok}, failed {self.failed}, dropped {self.dropped}, "
                f"skipped steps {self.skipped_steps}, latency p50 {p50:.2f}s p99 {p99:.2f}s")


def token_mix(path: Path, token_scale: float) -> list[tuple[int, int]]:
    """(prompt, generated) token pairs from an Azure LLM raw trace, shrunk by `token_scale`."""
    frame = pd.read_csv(path, usecols=["ContextTokens", "GeneratedTokens"])
    return [(max(1, int(c * token_scale)), max(1, int(g * token_scale)))
            for c, g in frame.itertuples(index=False)]


def step_counts(values: Iterable[float], scale: float) -> Iterator[int | None]:
    """Requests sent in each trace step: value x scale, the fractions carried over to the next
    step so the total is kept; None for a gap (no coverage: nothing sent, the carry waits)."""
    carry = 0.0
    for value in values:
        if math.isnan(value):
            yield None
            continue
        carry += value * scale
        count = int(carry)
        carry -= count
        yield count


def window(series: pd.Series, start: str | None, steps: int | None) -> pd.Series:
    if start is not None:
        series = series[series.index >= pd.Timestamp(start)]
    if steps is not None:
        series = series.iloc[:steps]
    if series.empty:
        raise SystemExit("loadgen: the chosen window of the trace is empty")
    return series


async def replay(
    series: pd.Series, targets: list[str], speedup: float, scale: float, duration: float,
    sizes: list[tuple[int, int]], concurrency: int = 256, progress: bool = True,
) -> Stats:
    step_seconds = (series.index[1] - series.index[0]).total_seconds() / speedup if len(series) > 1 else 1.0
    stats = Stats()
    bound = asyncio.Semaphore(concurrency)
    rng = random.Random(0)
    started = time.monotonic()
    deadline = started + duration
    tasks: set[asyncio.Task[None]] = set()
    timeout = aiohttp.ClientTimeout(total=max(30.0, duration))

    async with aiohttp.ClientSession(timeout=timeout) as session:
        async def one(url: str, prompt: int, gen: int) -> None:
            t0 = time.monotonic()
            try:
                async with session.post(url, json={"model": "any", "prompt": "x" * (prompt * CHARS_PER_TOKEN),
                                                   "max_tokens": gen}) as resp:
                    await resp.read()
                    if resp.status == 200:
                        stats.ok += 1
                        stats.latencies.append(time.monotonic() - t0)
                    else:
                        stats.failed += 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                stats.failed += 1
            finally:
                bound.release()

        for i, ((ts, value), count) in enumerate(zip(series.items(), step_counts(series, scale))):
            step_start = started + i * step_seconds
            if step_start >= deadline:
                break
            if count is None:
                stats.skipped_steps += 1
                continue
            for at in sorted(rng.uniform(0, step_seconds) for _ in range(count)):
                await asyncio.sleep(max(0.0, step_start + at - time.monotonic()))
                if bound.locked():
                    stats.dropped += 1
                    continue
                await bound.acquire()
                prompt, gen = sizes[rng.randrange(len(sizes))]
                url = targets[stats.sent % len(targets)]
                stats.sent += 1
                task = asyncio.create_task(one(url, prompt, gen))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(max(0.0, step_start + step_seconds - time.monotonic()))
            if progress:
                print(f"loadgen: {ts} trace={value:.0f} sent={stats.sent} ok={stats.ok} failed={stats.failed}",
                      flush=True)
        if tasks:
            await asyncio.wait(tasks, timeout=max(1.0, deadline + 30 - time.monotonic()))
    return stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autoglm_testenv.loadgen", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trace", required=True, type=Path, help="timestamp,<count> CSV (NASA, Azure per-second, any)")
    p.add_argument("--column", default=None, help="count column (default: requests or value)")
    p.add_argument("--target", action="append", required=True, help="engine base URL; repeat for several")
    p.add_argument("--path", default="/v1/completions")
    p.add_argument("--start", default=None, help="first trace timestamp to replay")
    p.add_argument("--steps", type=int, default=None, help="number of trace steps to replay")
    p.add_argument("--speedup", type=float, default=60.0, help="trace seconds per real second")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every count")
    p.add_argument("--duration", type=float, default=120.0, help="stop after this many real seconds")
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--token-mix", type=Path, default=None, help="Azure LLM raw CSV to sample request sizes from")
    p.add_argument("--token-scale", type=float, default=0.01, help="shrink sampled token counts")
    p.add_argument("--concurrency", type=int, default=256)
    args = p.parse_args(argv)
    if args.speedup <= 0 or args.scale < 0 or args.duration <= 0:
        p.error("--speedup and --duration must be > 0 and --scale >= 0")
    series = window(load_trace(args.trace, args.column), args.start, args.steps)
    sizes = token_mix(args.token_mix, args.token_scale) if args.token_mix else [(args.prompt_tokens, args.max_tokens)]
    targets = [t.rstrip("/") + args.path for t in args.target]
    stats = asyncio.run(replay(series, targets, args.speedup, args.scale, args.duration, sizes, args.concurrency))
    print(f"loadgen: done: {stats.summary()}")
    return 0 if stats.ok > 0 or stats.sent == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
