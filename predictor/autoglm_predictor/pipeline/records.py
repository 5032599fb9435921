"""The Kafka record the collector publishes and the predictor consumes (schema version 1).

One record = one deployment at one step-aligned instant. `deployment` + `ts` identify a sample,
so a record delivered twice, late or out of order changes nothing (the history dedupes by ts).
Everything read from the topic is untrusted: `decode` either returns a record whose numbers are
finite, non-negative and bounded, or raises `RecordError` with a short reason used as a metric
label, so a hostile producer can neither crash the predictor nor poison a floor.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass

SCHEMA_VERSION = 1
MAX_RECORD_BYTES = 4096
MAX_VALUE = 1e9  # far above any real load; beyond it a value is an attack or a unit error
MAX_FUTURE_SECONDS = 300  # clocks drift; a sample from further ahead is not a sample
OPTIONAL_FIELDS = ("requests_per_second", "queue_depth", "kv_cache_usage", "ttft_p95_seconds", "ready_replicas")
_NAME = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
DEPLOYMENT_KEY = re.compile(rf"{_NAME}/{_NAME}")


class RecordError(ValueError):
    """A record the predictor must not use; `reason` is a short, bounded metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class LoadRecord:
    deployment: str  # "namespace/name", also the Kafka key
    ts: int  # epoch seconds, a multiple of step
    step: int  # collector step in seconds
    load: float | None  # None: Prometheus had no sample for this instant (an explicit gap)
    requests_per_second: float | None = None
    queue_depth: float | None = None
    kv_cache_usage: float | None = None
    ttft_p95_seconds: float | None = None
    ready_replicas: float | None = None

    @property
    def key(self) -> bytes:
        return self.deployment.encode()


def encode(record: LoadRecord) -> bytes:
    return json.dumps({"v": SCHEMA_VERSION, **asdict(record)}, separators=(",", ":"), allow_nan=False).encode()


def decode(key: bytes | None, value: bytes | None, now: float) -> LoadRecord:
    """Validate one raw Kafka record; `now` bounds how far in the future `ts` may lie."""
    if value is None:
        raise RecordError("empty", "record has no value (tombstone)")
    if len(value) > MAX_RECORD_BYTES:
        raise RecordError("too-large", f"{len(value)} bytes > {MAX_RECORD_BYTES}")
    try:
        data = json.loads(value, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, _NonFinite, RecursionError) as error:
        # RecursionError: 4 KB of "[" nests deeper than Python's recursion limit.
        raise RecordError("not-json", str(error)[:120]) from None
    if not isinstance(data, dict):
        raise RecordError("not-object", f"top level is {type(data).__name__}")
    if type(data.get("v")) is not int or data["v"] != SCHEMA_VERSION:  # true == 1 in Python
        raise RecordError("wrong-version", f"v={str(data.get('v'))[:20]!r}, expected {SCHEMA_VERSION}")
    deployment = data.get("deployment")
    if not isinstance(deployment, str) or not DEPLOYMENT_KEY.fullmatch(deployment):
        raise RecordError("bad-deployment", f"deployment={str(deployment)[:80]!r}")
    if key is not None and key != deployment.encode():
        raise RecordError("key-mismatch", f"key {key[:80]!r} != deployment {deployment!r}")
    step = _integer(data, "step", 1, 86400)
    ts = _integer(data, "ts", 0, int(now) + MAX_FUTURE_SECONDS)
    if ts % step:
        raise RecordError("unaligned-ts", f"ts={ts} is not a multiple of step={step}")
    return LoadRecord(deployment=deployment, ts=ts, step=step, load=_number(data, "load"),
                      **{name: _number(data, name) for name in OPTIONAL_FIELDS})


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> float:
    raise _NonFinite(f"{name} is not a number")


def _integer(data: dict, name: str, low: int, high: int) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"bad-{name}", f"{name}={str(value)[:40]!r} is not an integer")
    if not low <= value <= high:
        raise RecordError(f"bad-{name}", f"{name}={value} outside [{low}, {high}]")
    return value


def _number(data: dict, name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"bad-{name}", f"{name}={str(value)[:40]!r} is not a number")
    if isinstance(value, int) and not 0 <= value <= MAX_VALUE:  # float() of a 400-digit integer overflows
        raise RecordError(f"bad-{name}", f"{name}={str(value)[:40]} outside [0, {MAX_VALUE:g}]")
    value = float(value)
    if not math.isfinite(value) or not 0 <= value <= MAX_VALUE:
        raise RecordError(f"bad-{name}", f"{name}={value} outside [0, {MAX_VALUE:g}]")
    return value
