"""Hostile Kafka records through `records.decode`, with hypothesis.

Whatever a producer puts on the topic - any bytes, truncated or deeply nested JSON, wrong schema
versions and types, NaN, infinities, huge or negative numbers, odd keys - `decode` returns a record
whose numbers are finite, non-negative and bounded, or raises RecordError with a reason from a
small fixed set (the reason is a metric label, so it must not grow with the input).
"""
from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import RECORD_FIELDS, hostile_records

from autoglm_predictor.pipeline.records import MAX_VALUE, OPTIONAL_FIELDS, LoadRecord, RecordError, decode

NOW = 1_700_000_000
REASONS = {"empty", "too-large", "not-json", "not-object", "wrong-version", "bad-deployment", "key-mismatch",
           "unaligned-ts", *(f"bad-{name}" for name in ("ts", "step", "load", *OPTIONAL_FIELDS))}
HOSTILE = settings(max_examples=500, deadline=None, derandomize=True, database=None)


def _sane(number: float | None) -> bool:
    return number is None or (isinstance(number, float) and math.isfinite(number) and 0 <= number <= MAX_VALUE)


@HOSTILE
@given(raw=hostile_records("ml/glm", NOW))
def test_hostile_records_decode_to_sane_numbers_or_a_bounded_reason(raw):
    key, value = raw
    try:
        record = decode(key, value, NOW)
    except RecordError as error:
        assert error.reason in REASONS, error.reason
        assert str(error).strip()
        return
    assert isinstance(record, LoadRecord)
    assert all(_sane(getattr(record, name)) for name in ("load", *OPTIONAL_FIELDS))
    assert record.ts % record.step == 0 and 0 <= record.ts <= NOW + 300


@given(version=st.sampled_from([True, 1.0, "1", [1], None, 2]))
def test_only_the_integer_schema_version_is_accepted(version):
    value = json.dumps({"v": version, "deployment": "ml/glm", "ts": NOW - NOW % 15, "step": 15, "load": 1}).encode()
    try:
        decode(None, value, NOW)
    except RecordError as error:
        assert error.reason == "wrong-version"
    else:
        raise AssertionError(f"v={version!r} accepted")


def test_the_shared_strategy_names_every_record_field():
    assert set(RECORD_FIELDS) == {"v", *LoadRecord.__dataclass_fields__}
