"""Pure helpers of the operator benchmark (bench.py): reading /proc, histogram quantiles, the table.

Kept apart from the I/O so the arithmetic the results rest on is unit-tested.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from prometheus_client.parser import text_string_to_metric_families

Buckets = list[tuple[float, float]]  # (upper bound "le", cumulative count), ascending, +Inf last


def cpu_seconds(stat_text: str, ticks_per_second: int) -> float:
    """User + system CPU time of a process from its /proc/PID/stat line.

    The command name (field 2) may hold spaces and parentheses, so fields are counted from the
    last ')'; utime and stime are fields 14 and 15 of the whole line."""
    fields = stat_text[stat_text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


def peak_rss_mb(status_text: str, field: str = "VmHWM") -> float:
    """The process's peak resident set (VmHWM in /proc/PID/status; VmRSS: the current one) in MiB."""
    for line in status_text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no {field} line in the status text (not a /proc/PID/status of a live process?)")


def histogram_buckets(metrics_text: str, name: str) -> Buckets:
    """The cumulative buckets of the histogram `name` (its base name, without _bucket) in a /metrics page."""
    buckets = [
        (float(sample.labels["le"]), sample.value)
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == f"{name}_bucket"
    ]
    return sorted(buckets)


def counter_total(metrics_text: str, name: str) -> float:
    """Sum of every series of the counter `name` (its base name) in a /metrics page."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == f"{name}_total"
    )


def bucket_delta(after: Buckets, before: Buckets) -> Buckets:
    """What was observed between two scrapes of the same histogram."""
    earlier = dict(before)
    return [(le, count - earlier.get(le, 0.0)) for le, count in after]


def histogram_quantile(buckets: Buckets, q: float) -> float | None:
    """The q-quantile by linear interpolation inside the bucket that holds it, as PromQL's
    histogram_quantile does (its upper bound when it falls in +Inf: the largest finite bound).
    None when nothing was observed."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower_bound
            if count == lower_count:
                return le
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = le, count
    return lower_bound


def ratio(ours: float | None, floor: float | None) -> float | None:
    if ours is None or not floor:
        return None
    return round(ours / floor, 2)


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table (readable as plain text too): None shows as '-', floats with 3 significant digits."""
    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    lines = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(line[i]) for line in lines)]) for i, h in enumerate(header)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    return "\n".join(out)
