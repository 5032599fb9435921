"""The traces shipped in predictor/autoglm_predictor/traces: intact, byte-reproducible, and read by `load_trace` like
the originals they were compressed from (numbers from the trace collection's README and from
`sha256sum` of the uncompressed originals; derivation in predictor/autoglm_predictor/traces/README.md)."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from autoglm_predictor import traces as sample_traces
from autoglm_predictor.cli.commands import DEFAULT_TRACE
from autoglm_predictor.forecast.series import load_trace

REPO = Path(__file__).resolve().parents[4]

# sha256 of each original uncompressed CSV: decompressing gives it back byte for byte.
ORIGINAL_SHA256 = {
    sample_traces.NASA_PER_MINUTE: "a526b75ac7b45ac7ed45e5145e684ead0f04317600daf9afcdff7afc3af17a9e",
    sample_traces.AZURE_CODE_PER_SECOND: "bbaee65423ef6534fa02a819e803cfc7ca8c74897b7389c8e7c76c581c0b3dc8",
    sample_traces.AZURE_CONV_PER_SECOND: "822c606baa1c408fcce257307ad5b2f47cea76563b40c44e65ca9cbfe2812659",
}


@pytest.mark.parametrize("path", ORIGINAL_SHA256, ids=lambda p: p.name)
def test_decompresses_to_the_original_csv(path: Path) -> None:
    assert hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == ORIGINAL_SHA256[path]


@pytest.mark.parametrize("path", ORIGINAL_SHA256, ids=lambda p: p.name)
def test_gzip_header_has_no_name_or_time(path: Path) -> None:
    """`gzip -n` leaves out the file name (FLG.FNAME, bit 3) and writes MTIME 0 (RFC 1952 section
    2.3), so recompressing the same CSV gives the same bytes."""
    header = path.read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] & 0x08 == 0
    assert header[4:8] == b"\0\0\0\0"


def test_nasa_per_minute() -> None:
    series = load_trace(sample_traces.NASA_PER_MINUTE)
    assert len(series) == 89_280
    assert series.sum() == 3_461_603
    assert series.isna().sum() == 7_210  # the two outages: missing, not zero
    assert series.max() == 405
    assert series.quantile(0.99) == 130
    assert str(series.index[0]) == "1995-07-01 00:00:00"  # local wall-clock time (-04:00 dropped)
    assert str(series.index[-1]) == "1995-08-31 23:59:00"


@pytest.mark.parametrize(("path", "rows", "requests", "start"), [
    (sample_traces.AZURE_CODE_PER_SECOND, 3_437, 8_819, "2023-11-16 18:17:03"),
    (sample_traces.AZURE_CONV_PER_SECOND, 3_503, 19_366, "2023-11-16 18:15:46"),
], ids=["code", "conv"])
def test_azure_per_second(path: Path, rows: int, requests: int, start: str) -> None:
    series = load_trace(path)
    assert (len(series), series.sum(), str(series.index[0])) == (rows, requests, start)
    assert load_trace(path, "context_tokens").sum() > load_trace(path, "generated_tokens").sum() > 0


def test_paths_are_inside_the_package_and_the_backtest_defaults_to_nasa() -> None:
    for path in ORIGINAL_SHA256:
        assert path.parent == REPO / "predictor" / "autoglm_predictor" / "traces"
    assert DEFAULT_TRACE == str(sample_traces.NASA_PER_MINUTE)
