"""Fixtures for tests against the real local environment (see docs/testenv.md).

The session starts the cluster, Kafka and Prometheus once and stops them at the end, even when
tests fail. If `hack/testenv up` already runs one, it is reused and left running (a fast loop for
developers; AUTOGLM_TESTENV_REUSE=0 forces a fresh one). A missing component fails every e2e test
with its reason; nothing is mocked.
"""
from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

import autoglm_testenv
from autoglm_testenv import procs


@pytest.fixture(scope="session")
def testenv() -> Iterator[autoglm_testenv.Env]:
    existing = autoglm_testenv.current() if os.environ.get("AUTOGLM_TESTENV_REUSE", "1") != "0" else None
    if existing is not None:
        yield existing
        return
    try:
        env = autoglm_testenv.up()
    except autoglm_testenv.TestenvError as exc:
        pytest.fail(f"the test environment could not start: {exc}", pytrace=False)
    try:
        yield env
    finally:
        autoglm_testenv.down(env)


@pytest.fixture(scope="session")
def kube(testenv: autoglm_testenv.Env) -> Any:
    """An admin kubernetes.client.ApiClient."""
    return testenv.api_client()


@pytest.fixture
def namespace(testenv: autoglm_testenv.Env, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    testenv.kubectl("create", "namespace", name)
    procs.wait_until(
        f"default ServiceAccount in {name}",
        lambda: testenv.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
        30,
    )
    yield name
    testenv.kubectl("delete", "namespace", name, "--wait=false", check=False)


@dataclass
class SimEngine:
    """One simulated engine process standing for one revision of one deployment."""

    url: str
    pid: int
    target_file: Path

    def configure(self, **changes: Any) -> dict[str, Any]:
        resp = requests.post(f"{self.url}/admin/config", json=changes, timeout=5)
        resp.raise_for_status()
        return resp.json()


@pytest.fixture
def sim_engine(testenv: autoglm_testenv.Env, tmp_path: Path) -> Iterator[Callable[..., SimEngine]]:
    """Factory: start a simulated engine that Prometheus scrapes; all are stopped after the test."""
    started: list[SimEngine] = []

    def start(namespace: str = "default", deployment: str = "glm", revision: str = "r1", **settings: Any) -> SimEngine:
        port = procs.free_port()
        argv = [sys.executable, "-m", "autoglm_testenv.engine", "--port", str(port), "--namespace", namespace,
                "--deployment", deployment, "--revision", revision]
        for key, value in settings.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(Path(autoglm_testenv.__file__).parent.parent),
                                                           os.environ.get("PYTHONPATH")]))}
        pid = procs.start(f"engine-{port}", argv, tmp_path, env)
        url = f"http://127.0.0.1:{port}"
        procs.wait_until("simulated engine", lambda: procs.http_ok(f"{url}/health"), 30, pid, tmp_path / f"engine-{port}.log")
        target = testenv.add_scrape_target(f"engine-{port}", f"127.0.0.1:{port}")
        engine = SimEngine(url=url, pid=pid, target_file=target)
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.target_file.unlink(missing_ok=True)
        procs.stop(engine.pid)
