"""Time inside the code is an aware UTC `datetime`; the wire formats are converted here, at the edges.

Kubernetes status fields and object timestamps are RFC 3339 strings (`status.forecast.updatedAt`,
`creationTimestamp`, the canary's `since`), written in whole seconds with a `Z`; clocks and Kafka
records give epoch seconds. Python 3.11's `datetime.fromisoformat` reads RFC 3339 (with `Z`)
itself, so no date library is needed.
"""
from __future__ import annotations

from datetime import datetime, timezone


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime; one without an offset is taken as UTC.

    Raises ValueError when `text` is not a timestamp (callers reading untrusted status decide what
    that means for them).
    """
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def format_time(moment: datetime) -> str:
    """The status fields' format: RFC 3339 in UTC, whole seconds, `Z` (what kubectl shows and sorts)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_epoch(seconds: float) -> datetime:
    """A clock reading or a Kafka record's timestamp (epoch seconds) as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, timezone.utc)
