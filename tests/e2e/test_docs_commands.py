"""The commands README.md, docs/*.md and the chart's NOTES tell readers to type, run for real
(issue 13: the README's install check failed with NotFound, because nothing ever ran it).

Each shell block with commands VERIFIED marks Run (tests/docs_commands.py) runs in order, like a
reader's shell: bash in the checkout's root, the environment carried from one command to the next
(so `eval "$(hack/testenv env)"` holds), the README's own names and namespaces. A command's `needs`
(documented commands it relies on that the block does not show) run first. A non-zero exit, or a
command still running after COMMAND_TIMEOUT (a `kubectl wait` that never sees its condition), fails
the test. The chart's NOTES are the ones the README's `helm install` really prints.

Every block gets a fresh local environment of its own: the commands run in a scratch copy of this
checkout, and `hack/testenv` keeps one environment per checkout, so the documented `hack/testenv
up` / `down` start and stop that copy's environment, never the shared one; the fixed names the docs
use (release `autoglm`, namespaces `autoglm-system` and `ml`) collide with nothing. kwok runs no
container image, so where a command creates the operator Deployment the test runs that
Deployment's own command line locally, as its ServiceAccount, in its place. The file takes about
5 minutes on 2 cores, most of it starting and stopping those environments (15-25 s each).
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from docs_commands import HELM_INSTALL, REPO, VERIFIED, Block, Run, documents, helm_notes, markdown_blocks, notes_block, problems

from autoglm_testenv import config, procs

# One worker runs the module (pytest-xdist --dist loadgroup): one checkout copy, one block's environment at a time.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("docs-commands")]

COMMAND_TIMEOUT = 300.0  # seconds; warm `hack/testenv up` takes 15-30 s, a model Ready under kwok about 10 s
RUN_BLOCKS = [block for path in documents() for block in markdown_blocks(path)
              if any(isinstance(VERIFIED.get(c.text), Run) for c in block.commands)]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of this checkout's files (tracked and new, as they are now) with its .venv linked in.
    Its own path gives it its own `hack/testenv` state (config.checkout_state_dir)."""
    root = tmp_path_factory.mktemp("docs-commands") / "autoglm"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        if os.path.lexists(REPO / rel):  # a tracked file deleted in the working tree is left out
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, root / rel, follow_symlinks=False)
    (root / ".venv").symlink_to(REPO / ".venv")
    if config.state_pointer(root) == config.state_pointer(REPO):
        pytest.fail("hack/testenv in a copy of the checkout would use this checkout's environment", pytrace=False)
    yield root
    subprocess.run([str(root / "hack" / "testenv"), "down", "--force"], cwd=root, check=False, timeout=120)
    shutil.rmtree(config.checkout_state_dir(root), ignore_errors=True)  # the copy's state under the cache


class Shell:
    """Documented commands run one at a time, in a checkout, with the environment a reader's
    shell would carry; started operator stand-ins and the environment are stopped by `close`."""

    def __init__(self, checkout: Path, log_dir: Path) -> None:
        self.checkout, self.log_dir = checkout, log_dir
        inherited = {k: v for k, v in os.environ.items()
                     if k not in ("KUBECONFIG", "PYTHONPATH") and not (k.startswith("AUTOGLM_") and k != "AUTOGLM_CACHE")}
        # As after `source .venv/bin/activate`: the docs call `autoglm` and `python` from the venv.
        self.env = {**inherited, "PATH": f"{checkout / '.venv' / 'bin'}{os.pathsep}{inherited.get('PATH', '')}"}
        self.done: set[str] = set()  # Run commands run since the environment started
        self.operators: list[tuple[int, Path]] = []

    def ensure(self, text: str, source: str) -> subprocess.CompletedProcess[str]:
        """Run the VERIFIED Run command `text`, after those of its needs not run yet."""
        how = VERIFIED[text]
        assert isinstance(how, Run), f"{source}: `{text}` is not a Run entry of tests/docs_commands.py"
        for need in how.needs:
            if need not in self.done:
                self.ensure(need, source if source.startswith("needed by") else f"needed by {source}")
        for given in how.given:
            self.execute(given, f"given for {source}")
        if text.startswith("hack/testenv down"):
            self.stop_operators()
        result = self.execute(text, source)
        self.done.add(text)
        if text.startswith("hack/testenv down"):
            self.done.clear()
        if how.operator:
            self.start_operator()
        return result

    def execute(self, text: str, source: str, echo: bool = True) -> subprocess.CompletedProcess[str]:
        """`text` in bash (errexit, nounset, pipefail); fails the test on a non-zero exit or a timeout.
        `echo` prints its output too (off for the stand-in's own queries: a token, a Deployment)."""
        env_file = self.log_dir / "shell.env"
        script = f"set -euo pipefail\n{text}\nenv -0 > {shlex.quote(str(env_file))}\n"
        proc = subprocess.Popen(["bash", "-c", script], cwd=self.checkout, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"{source}: `{text}` still ran after {COMMAND_TIMEOUT:.0f} s:\n{out}{err}", pytrace=False)
        print(f"$ {text}    # {source}, exit {proc.returncode}\n{out if echo else ''}{err}")
        if proc.returncode != 0:
            pytest.fail(f"{source}: `{text}` exited {proc.returncode}:\n{out}{err}", pytrace=False)
        self.env = dict(entry.split("=", 1) for entry in env_file.read_text().split("\0") if "=" in entry)
        return subprocess.CompletedProcess(text, proc.returncode, out, err)

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.execute(shlex.join(["kubectl", *args, "-o", "json"]), "operator stand-in", echo=False).stdout)

    def start_operator(self) -> None:
        """Run the operator Deployment's container args locally, as its ServiceAccount (ports
        moved to free ones), and wait for its liveness endpoint."""
        [deployment] = self.kubectl_json("get", "deploy", "-A", "-l", "app.kubernetes.io/component=operator")["items"]
        namespace = deployment["metadata"]["namespace"]
        pod = deployment["spec"]["template"]["spec"]
        account, container = pod["serviceAccountName"], pod["containers"][0]
        token = self.execute(shlex.join(["kubectl", "create", "token", account, "-n", namespace, "--duration=2h"]),
                             "operator stand-in", echo=False).stdout.strip()
        kubeconfig = yaml.safe_load(Path(self.env["KUBECONFIG"]).read_text())
        kubeconfig["users"] = [{"name": account, "user": {"token": token}}]
        for context in kubeconfig["contexts"]:
            context["context"].update(user=account, namespace=namespace)
        path = self.log_dir / f"{account}.kubeconfig"
        path.write_text(json.dumps(kubeconfig))
        health = procs.free_port()
        argv = [str(Path(sys.executable).parent / "autoglm"), *container["args"],
                f"--metrics-port={procs.free_port()}", f"--health-port={health}"]
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        name = f"stand-in-{deployment['metadata']['name']}"
        pid = procs.start(name, argv, self.log_dir, {**env, "POD_NAME": name, "KUBECONFIG": str(path)})
        log = self.log_dir / f"{name}.log"
        self.operators.append((pid, log))
        procs.wait_until(f"{name} liveness endpoint", lambda: procs.http_ok(f"http://127.0.0.1:{health}/healthz"),
                         60, pid, log)

    def stop_operators(self) -> None:
        for pid, log in self.operators:
            procs.stop(pid)
            print(f"--- {log.name} (last lines) ---\n{procs.log_tail(log, 60)}")
        self.operators.clear()

    def close(self) -> None:
        """Stop the stand-ins and whatever environment the block left running."""
        self.stop_operators()
        down = subprocess.run([str(self.checkout / "hack" / "testenv"), "down"], cwd=self.checkout, env=self.env, capture_output=True,
                              text=True, timeout=120)
        print(f"$ hack/testenv down    # cleanup, exit {down.returncode}\n{down.stdout}{down.stderr}")


@pytest.fixture
def shell(checkout: Path, tmp_path: Path) -> Iterator[Shell]:
    running = Shell(checkout, tmp_path)
    try:
        yield running
    finally:
        running.close()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[b.source for b in RUN_BLOCKS])
def test_documented_block_runs(block: Block, shell: Shell) -> None:
    for command in block.commands:
        if isinstance(VERIFIED.get(command.text), Run):
            shell.ensure(command.text, command.source)


@pytest.mark.timeout(900)
def test_notes_of_the_readme_install_run(shell: Shell) -> None:
    """The NOTES the README's `helm install` prints: every command listed, its references right, the
    runnable ones run in order on the cluster it just installed into."""
    install = shell.ensure(HELM_INSTALL, "README.md, the install that prints the NOTES")
    notes = notes_block(helm_notes(install.stdout), "NOTES of `helm install autoglm`")
    assert notes.commands, f"the NOTES show no command:\n{install.stdout}"
    unlisted = [c.text for c in notes.commands if c.text not in VERIFIED]
    assert unlisted == [], (f"NOTES commands neither run nor listed: {unlisted}; add them to VERIFIED in "
                            "tests/docs_commands.py exactly as rendered")
    assert {c.text: problems(c.text) for c in notes.commands if problems(c.text)} == {}
    for command in notes.commands:
        if isinstance(VERIFIED[command.text], Run):
            shell.ensure(command.text, command.source)
