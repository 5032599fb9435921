"""Prometheus with a 1 s scrape interval and file-based discovery, so tests add 127.0.0.1 targets
by dropping a JSON file into the targets directory (Prometheus watches it; no reload needed).
Rule files (the chart's alerting and recording rules) go into `rules/` beside the config and take
effect after a reload (`load_rules`)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import requests
import yaml

from autoglm_testenv import procs

SCRAPE_INTERVAL = "1s"


def _rule_files(conf: Path) -> str:
    return f"rule_files:\n  - '{conf / 'rules'}/*.yml'\n"


def config(targets_dir: Path, self_port: int) -> str:
    return "\n".join(
        [
            "global:",
            f"  scrape_interval: {SCRAPE_INTERVAL}",
            f"  evaluation_interval: {SCRAPE_INTERVAL}",
            _rule_files(targets_dir.parent).rstrip("\n"),
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


def load_rules(targets_dir: Path, url: str, name: str, text: str, timeout: float = 30.0) -> Path:
    """Evaluate the rule file `text` in the running Prometheus at `url` (whose targets directory is
    `targets_dir`) as `rules/<name>.yml`, and return once Prometheus lists every group of it;
    returns the file, which `unload_rules` removes. An environment started before rule files
    existed gets `rule_files` added to its config first. The reload is Prometheus' own
    POST /-/reload (it runs with --web.enable-lifecycle); a rule file it refuses fails here with
    Prometheus' reason, not later as missing series."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"rule file name {name!r} must be a plain file name")
    conf = targets_dir.parent
    cfg = conf / "prometheus.yml"
    if "rule_files:" not in cfg.read_text():
        cfg.write_text(_rule_files(conf) + cfg.read_text())
    (conf / "rules").mkdir(exist_ok=True)
    path = conf / "rules" / f"{name}.yml"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.rename(path)
    _reload(url)
    wanted = {g["name"] for g in yaml.safe_load(text)["groups"]}

    def loaded() -> bool:
        groups = requests.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        return wanted <= {g["name"] for g in groups if g["file"] == str(path)}

    procs.wait_until(f"Prometheus evaluating {sorted(wanted)}", loaded, timeout)
    return path


def unload_rules(url: str, path: Path) -> None:
    path.unlink(missing_ok=True)
    _reload(url)


def _reload(url: str) -> None:
    resp = requests.post(f"{url}/-/reload", timeout=30)
    if resp.status_code != 200:
        raise RuntimeError(f"Prometheus refused the reload ({resp.status_code}): {resp.text.strip()}")
