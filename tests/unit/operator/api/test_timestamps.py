"""Time at the edges: RFC 3339 status fields and epoch seconds become aware UTC datetimes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from autoglm_operator.api.timestamps import format_time, from_epoch, parse_time

NOON = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["2025-03-01T12:00:00Z", "2025-03-01T12:00:00+00:00", "2025-03-01T13:00:00+01:00",
                                  "2025-03-01T12:00:00"])
def test_parse_time_gives_aware_utc_whatever_the_offset(text: str) -> None:
    moment = parse_time(text)
    assert moment == NOON and moment.tzinfo is timezone.utc


def test_format_time_writes_whole_seconds_in_utc_with_z() -> None:
    assert format_time(NOON + timedelta(microseconds=900_000)) == "2025-03-01T12:00:00Z"
    assert format_time(NOON.astimezone(timezone(timedelta(hours=-5)))) == "2025-03-01T12:00:00Z"
    assert parse_time(format_time(NOON)) == NOON


def test_from_epoch_is_aware_utc() -> None:
    assert from_epoch(1000.0) == datetime(1970, 1, 1, 0, 16, 40, tzinfo=timezone.utc)
    assert from_epoch(NOON.timestamp()) == NOON


@pytest.mark.parametrize("text", ["", "yesterday", "2025-13-01T00:00:00Z"])
def test_parse_time_refuses_what_is_not_a_timestamp(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)
