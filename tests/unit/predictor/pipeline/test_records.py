import json
import math

import pytest

from autoglm_predictor.pipeline.records import MAX_RECORD_BYTES, LoadRecord, RecordError, decode, encode

NOW = 1_700_000_000


def raw(**changes):
    data = {"v": 1, "deployment": "ml/glm-chat", "ts": NOW - NOW % 15, "step": 15, "load": 12.5, **changes}
    return json.dumps(data).encode()


def test_round_trip():
    record = LoadRecord(deployment="ml/glm", ts=NOW - NOW % 15, step=15, load=3.0, queue_depth=1.0)
    assert decode(record.key, encode(record), NOW) == record


def test_missing_load_is_an_explicit_gap():
    assert decode(b"ml/glm-chat", raw(load=None), NOW).load is None


@pytest.mark.parametrize("value, key, reason", [
    (None, None, "empty"),
    (b"x" * (MAX_RECORD_BYTES + 1), None, "too-large"),
    (b"\xff\xfe", None, "not-json"),
    (b'{"v":1,"load":NaN}', None, "not-json"),
    (b"[1,2]", None, "not-object"),
    (raw(v=2), None, "wrong-version"),
    (raw(deployment="../etc"), None, "bad-deployment"),
    (raw(), b"other/key", "key-mismatch"),
    (raw(load=1e300), None, "bad-load"),
    (raw(load=-1), None, "bad-load"),
    (raw(load="12"), None, "bad-load"),
    (raw(load=True), None, "bad-load"),
    (raw(ts=NOW + 3600 - (NOW + 3600) % 15), None, "bad-ts"),
    (raw(ts=NOW - NOW % 15 + 1), None, "unaligned-ts"),
    (raw(ts=1.5), None, "bad-ts"),
    (raw(step=0), None, "bad-step"),
    (raw(queue_depth=math.inf).replace(b"Infinity", b"1e999"), None, "bad-queue_depth"),
    (raw()[:20], None, "not-json"),
])
def test_hostile_records_are_rejected_with_a_reason(value, key, reason):
    with pytest.raises(RecordError) as caught:
        decode(key, value, NOW)
    assert caught.value.reason == reason
