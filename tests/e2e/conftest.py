"""Fixtures for tests against the real local environment (see docs/testenv.md).

The session starts the cluster, Kafka and Prometheus once and stops them at the end, even when
tests fail. If `hack/testenv up` already runs one, it is reused and left running (a fast loop for
developers; AUTOGLM_TESTENV_REUSE=0 forces a fresh one). A missing component fails every e2e test
with its reason; nothing is mocked.

Under pytest-xdist (`make e2e` runs `-n 2 --dist loadgroup`) the workers share that one
environment: the first worker to need it starts it, the others attach, the last to finish stops
it. Tests that would disturb a test running beside them are kept apart: an `xdist_group` runs its
tests one after another on one worker (pipeline_support.PREDICTIVE), and the `exclusive` mark
runs a test while no other e2e test runs (`cluster_turn`). docs/testenv.md has the list.
"""
from __future__ import annotations

import fcntl
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from pipeline_support import PREDICTIVE
from prometheus_client.parser import text_string_to_metric_families

import autoglm_testenv
from autoglm_testenv import components, config, procs

PREDICTIVE_FIXTURES = {"pipeline", "predictive_deployment"}  # tests using them join the PREDICTIVE group


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group marks (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PREDICTIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(PREDICTIVE)


def _run_dir(factory: pytest.TempPathFactory) -> Path:
    """The folder all xdist workers of this pytest run share: the base temp of the controller,
    whose `popen-gw<N>` children are the workers' own (pytest-xdist sets each worker's --basetemp
    there). Without xdist, the run's own base temp."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _flock(path: Path, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
    """flock(2) on `path` for the block; the kernel drops it when the file closes, also on a crash."""
    with path.open("a") as handle:
        fcntl.flock(handle, mode)
        yield


@pytest.fixture(scope="session")
def testenv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[autoglm_testenv.Env]:
    """The session's environment, one for all xdist workers: under a lock, the first worker starts
    it and names its state file in `testenv.json`, the others load that; a count of the workers
    using it lets the last one stop it."""
    existing = autoglm_testenv.current() if os.environ.get("AUTOGLM_TESTENV_REUSE", "1") != "0" else None
    if existing is not None:
        yield existing
        return
    shared = _run_dir(tmp_path_factory)
    pointer, users = shared / "testenv.json", shared / "testenv.users"
    with _flock(shared / "testenv.lock"):
        if pointer.exists():
            env = autoglm_testenv.Env.load(Path(pointer.read_text()))
        else:
            try:
                env = autoglm_testenv.up()
            except autoglm_testenv.TestenvError as exc:
                pytest.fail(f"the test environment could not start: {exc}", pytrace=False)
            env.save()
            pointer.write_text(str(env.state_file))
        users.write_text(str(int(users.read_text()) + 1 if users.exists() else 1))
    try:
        yield env
    finally:
        with _flock(shared / "testenv.lock"):
            left = int(users.read_text()) - 1
            users.write_text(str(left))
            if left == 0:
                autoglm_testenv.down(env)
                pointer.unlink()


@pytest.fixture(autouse=True)
def cluster_turn(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every e2e test holds a shared flock on `cluster.lock` from its setup to its teardown; an
    `exclusive` test holds it exclusively. Taking it through `cluster.gate` queues the tests: an
    exclusive test waiting for the running ones keeps new ones from starting meanwhile (flock alone
    lets shared holders overtake a waiting exclusive one for ever). Under `--dist loadgroup` it
    also checks that pytest-xdist really grouped the test."""
    if (getattr(request.config.option, "loadgroup", False)  # set on xdist workers under --dist loadgroup
            and request.node.get_closest_marker("xdist_group") and "@" not in request.node.nodeid):
        pytest.fail("pytest-xdist did not put this test in its xdist_group (no @group suffix on its id): with this "
                    "pytest it would run beside the tests it must not (pytest-dev/pytest-xdist#1386)", pytrace=False)
    mode = fcntl.LOCK_EX if request.node.get_closest_marker("exclusive") else fcntl.LOCK_SH
    shared = _run_dir(tmp_path_factory)
    with (shared / "cluster.lock").open("a") as turn:
        with _flock(shared / "cluster.gate"):
            fcntl.flock(turn, mode)
        yield


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


@pytest.fixture(scope="session")
def autoglm_crd(testenv: autoglm_testenv.Env) -> None:
    """The AutoGLMDeployment CRD from crds/, as `make crd` generates it (without kopf's peering CRDs:
    their presence changes how every operator process in the tests runs)."""
    crd = config.REPO_DIR / "crds" / "autoglm.io_autoglmdeployments.yaml"
    testenv.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    testenv.wait_crds_established()


@dataclass
class OperatorProcess:
    """`autoglm operator` as a subprocess acting as its own ServiceAccount `user`, so its writes are
    the audit log's entries for that user."""

    namespace: str
    user: str
    kubeconfig: Path
    log_dir: Path
    name: str = "operator"
    extra_args: tuple[str, ...] = ()
    metrics_port: int = field(default_factory=procs.free_port)
    health_port: int = field(default_factory=procs.free_port)
    pid: int = 0
    siblings: list[OperatorProcess] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> None:
        argv = [str(Path(sys.executable).parent / "autoglm"), "operator", f"--namespace={self.namespace}",
                "--resync-seconds=2", f"--metrics-port={self.metrics_port}", f"--health-port={self.health_port}",
                "--log-format=plain", *self.extra_args]
        self.pid = procs.start(self.name, argv, self.log_dir, {"KUBECONFIG": str(self.kubeconfig)})
        health = f"http://127.0.0.1:{self.health_port}/healthz"
        procs.wait_until(f"{self.name} liveness endpoint", lambda: procs.http_ok(health), 30, self.pid, self.log)

    def stop(self) -> None:
        if self.pid:  # never 0: stopping process group 0 would stop the test run itself
            procs.stop(self.pid)

    def sibling(self, name: str, *extra_args: str) -> OperatorProcess:
        """Another (not yet started) operator with the same identity, stopped with this one."""
        other = OperatorProcess(self.namespace, self.user, self.kubeconfig, self.log_dir, name, extra_args)
        self.siblings.append(other)
        return other

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels` (0 when none)."""
        text = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )


@pytest.fixture
def operator(testenv: autoglm_testenv.Env, namespace: str, autoglm_crd: None, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator watching `namespace` with the Helm chart's RBAC for it (peering allowed), resyncing every 2 s.

    At the end it deletes the namespace's AutoGLMDeployments while still running, so the operator
    deletes their cluster-scoped NodeGroups itself before the next test (the garbage collector would
    too, once the namespace is gone: they are owned by it).
    """
    release = f"op-{uuid.uuid4().hex[:6]}"
    identity = components.chart_identities(testenv, release, namespace, [namespace], tmp_path, peering=True)["operator"]
    process = OperatorProcess(namespace, identity.user, identity.kubeconfig, tmp_path)
    process.start()
    try:
        yield process
    finally:
        running = [p for p in (process, *process.siblings) if p.pid and procs.alive(p.pid)]
        if running:
            testenv.kubectl("delete", "autoglmdeployments", "--all", "-n", namespace, "--timeout=30s", check=False)
        for p in (process, *process.siblings):
            p.stop()
            print(f"--- {p.name} log (last lines) ---\n{procs.log_tail(p.log, 400)}")
        testenv.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}",
                        "--wait=false", check=False)
