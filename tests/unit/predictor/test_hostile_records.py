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

from autoglm_predictor.records import MAX_RECORD_BYTES, MAX_VALUE, OPTIONAL_FIELDS, LoadRecord, RecordError, decode

NOW = 1_700_000_000
REASONS = {"empty", "too-large", "not-json", "not-object", "wrong-version", "bad-deployment", "key-mismatch",
           "unaligned-ts", *(f"bad-{name}" for name in ("ts", "step", "load", *OPTIONAL_FIELDS))}
HOSTILE = settings(max_examples=500, deadline=None, derandomize=True, database=None)

NUMBERS = st.one_of(
    st.floats(), st.integers(), st.integers(min_value=10**300, max_value=10**400), st.just(-0.0),
    st.sampled_from([1e308, 10**400, -(10**400), -1, 0, MAX_VALUE, MAX_VALUE * 2, True, None, "12", "NaN", [], {}]),
)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
DEPLOYMENTS = st.one_of(st.just("ml/glm"), st.from_regex(r"[a-z0-9]{1,5}/[a-z0-9]{1,5}", fullmatch=True),
                        st.text(max_size=80), st.just("ml/" + "a" * 64), st.just("../etc"), ANY_JSON)


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[bytes | None, bytes]:
    """A plausible record with some fields replaced by hostile values, as JSON text (NaN allowed)."""
    step = draw(st.sampled_from([1, 15, 60]) | NUMBERS)
    ts = NOW - NOW % 15
    data = {"v": 1, "deployment": "ml/glm", "ts": ts, "step": step, "load": 1.0}
    for name in draw(st.lists(st.sampled_from(["v", "deployment", "ts", "step", "load", *OPTIONAL_FIELDS]), max_size=4)):
        data[name] = draw(DEPLOYMENTS if name == "deployment" else NUMBERS | ANY_JSON)
    text = json.dumps(data)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]  # truncated
    key = draw(st.one_of(st.none(), st.just(str(data["deployment"]).encode()), st.binary(max_size=90)))
    return key, text.encode()


def _one_bad_number(field: str, value: object) -> tuple[bytes, bytes]:
    data = {"v": 1, "deployment": "ml/glm", "ts": NOW - NOW % 15, "step": 15, "load": 1.0, field: value}
    return b"ml/glm", json.dumps(data).encode()


RAW = st.one_of(
    st.tuples(st.none() | st.binary(max_size=40), st.none() | st.binary(max_size=200)),
    near_valid(),
    st.builds(_one_bad_number, st.sampled_from(["load", "ts", "step", *OPTIONAL_FIELDS]), NUMBERS),
    st.integers(1, MAX_RECORD_BYTES // 2).map(lambda depth: (None, ("[" * depth + "]" * depth).encode())),
    st.integers(1, MAX_RECORD_BYTES // 8).map(lambda depth: (None, ('{"a":' * depth + "1" + "}" * depth).encode())),
)


def _sane(number: float | None) -> bool:
    return number is None or (isinstance(number, float) and math.isfinite(number) and 0 <= number <= MAX_VALUE)


@HOSTILE
@given(raw=RAW)
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
