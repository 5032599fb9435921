"""A missing prerequisite fails with what is missing and how to fix it, not a stack trace."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from autoglm_testenv import config, procs

BASH = shutil.which("bash") or "/bin/bash"


def _run_build(target: str, tmp_path: Path, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(config.BUILD_SCRIPT), target],
        capture_output=True, text=True, timeout=120,
        env={"HOME": str(tmp_path), "PATH": path, "AUTOGLM_CACHE": str(tmp_path / "cache"), **env},
    )


def _path_without(tmp_path: Path, *names: str) -> str:
    """A PATH holding symlinks to the usual tools except `names`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("python3", "sed", "awk", "grep", "date", "cut", "mkdir", "cp", "chmod", "touch", "mv", "go", "java", "mvn"):
        found = shutil.which(tool)
        if found and tool not in names and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_missing_go_says_so(tmp_path: Path) -> None:
    result = _run_build("etcd", tmp_path, _path_without(tmp_path, "go"))
    assert result.returncode != 0
    assert "no Go toolchain on PATH" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_java_says_so(tmp_path: Path) -> None:
    result = _run_build("kafka", tmp_path, _path_without(tmp_path, "java"))
    assert result.returncode != 0
    assert "no Java on PATH" in result.stderr


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain to reach the (unreachable) proxy")
def test_unreachable_registry_says_so(tmp_path: Path) -> None:
    result = _run_build(
        "crds", tmp_path, _path_without(tmp_path),
        GOPROXY="http://127.0.0.1:9", GOMODCACHE=str(tmp_path / "mod"), GOFLAGS="", GOPATH=str(tmp_path / "gopath"),
    )
    assert result.returncode != 0
    assert "cannot download Go module istio.io/api" in result.stderr
    assert "Go module proxy reachable" in result.stderr


def test_port_in_use_says_which_and_how_to_find_it() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(procs.TestenvError, match=rf"kafka: port 127.0.0.1:{port} is already in use.*ss -ltnp"):
            procs.ensure_port_free(port, "kafka")


def test_testenv_cli_reports_errors_without_traceback(tmp_path: Path) -> None:
    hack = config.HACK_DIR
    result = subprocess.run(
        [sys.executable, "-m", "autoglm_testenv", "status"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**os.environ, "PYTHONPATH": str(hack), "AUTOGLM_CACHE": str(tmp_path / "empty-cache")},
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "testenv: error: not running (start it with `hack/testenv up`)"
