"""Prometheus with a 1 s scrape interval and file-based discovery, so tests add 127.0.0.1 targets
by dropping a JSON file into the targets directory (Prometheus watches it; no reload needed)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from autoglm_testenv import procs

SCRAPE_INTERVAL = "1s"


def config(targets_dir: Path, self_port: int) -> str:
    return "\n".join(
        [
            "global:",
            f"  scrape_interval: {SCRAPE_INTERVAL}",
            f"  evaluation_interval: {SCRAPE_INTERVAL}",
            "scrape_configs:",
            "  - job_name: prometheus",
            "    static_configs:",
            f"      - targets: ['127.0.0.1:{self_port}']",
            "  - job_name: autoglm-testenv",
            "    file_sd_configs:",
            f"      - files: ['{targets_dir}/*.json']",
            "        refresh_interval: 1s",
            "",
        ]
    )


def start(binary: Path, root: Path, port: int) -> tuple[int, Path]:
    conf = root / "prometheus"
    targets = conf / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    cfg = conf / "prometheus.yml"
    cfg.write_text(config(targets, port))
    pid = procs.start(
        "prometheus",
        [
            str(binary), f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={conf / 'data'}", "--web.enable-lifecycle", "--storage.tsdb.retention.time=1d",
        ],
        root / "logs",
    )
    return pid, targets


def add_target(targets_dir: Path, name: str, address: str, labels: dict[str, str] | None = None) -> Path:
    """Scrape `address` (host:port on 127.0.0.1) as target `name`; returns the file to delete to stop."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"target name {name!r} must be a plain file name")
    if not address.startswith(("127.", "localhost:")):
        raise ValueError(f"only loopback targets are allowed here, got {address!r}")
    path = targets_dir / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [address], "labels": {"instance_name": name, **(labels or {})}}]))
    tmp.rename(path)  # atomic, so Prometheus never reads half a file
    return path
