"""Starting, checking and stopping the environment's background processes.

Each service runs in its own process group with its log in the environment directory, so `down`
(from any shell) can stop it and everything it spawned, and a failure shows the log's tail. Each
also carries its checkout's mark in its environment (config.OWNER_VARIABLE), inherited by its
children, so the stragglers of one checkout can be found without touching anyone else's.
"""
from __future__ import annotations

import fcntl
import functools
import os
import random
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Callable

from autoglm_testenv import config


class TestenvError(RuntimeError):
    """A problem the user can fix; printed without a stack trace."""

    __test__ = False  # not a pytest test class despite the name


LISTEN_PORTS = range(20000, 32000)  # below Linux's ephemeral range (32768-60999) for outgoing connections
# Every port handed out is locked in one file shared by every process on the machine
# (environments, test workers, the docs tests' `make` runs): a port is free to bind until its
# server starts, seconds later, and in that gap another process's bind check passes too. Seen: two
# environments starting side by side (make test on 2 workers) both gave 31004 to a server, and one
# failed to start with "address already in use". The lock is a POSIX record lock on the byte at
# offset `port`: one open file however many ports a process holds (a lock file per port cost a
# file descriptor each, and a test session hands out over a thousand), dropped by the kernel when
# the process exits, by which time the server holds the port itself. Per user: another user's
# file would not open for writing.
PORT_LOCKS = Path(tempfile.gettempdir()) / f"autoglm-testenv-ports-{os.getuid()}.lock"
_reserved: set[int] = set()


def free_port() -> int:
    """A port outside the ephemeral range (a port the kernel chose by binding to 0 is one it may
    also give an outgoing connection before our server binds it), bindable now and reserved
    against every other process on the machine that asks here (PORT_LOCKS)."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.choice(LISTEN_PORTS)
        if port in _reserved or not _reserve(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # bound by a server: stays reserved here, so it is not tried again
        return port
    raise TestenvError(f"no free port in {LISTEN_PORTS.start}-{LISTEN_PORTS.stop - 1} on 127.0.0.1")


@functools.cache
def _port_locks() -> IO[bytes]:
    """PORT_LOCKS, opened once and never closed: closing any descriptor of it drops all our locks."""
    return open(PORT_LOCKS, "ab")


def _reserve(port: int) -> bool:
    """True if this process now holds `port`'s lock (no other live process does)."""
    try:
        fcntl.lockf(_port_locks(), fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
    except OSError:
        return False
    _reserved.add(port)
    return True


def ensure_port_free(port: int, service: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise TestenvError(
                f"{service}: port 127.0.0.1:{port} is already in use ({exc.strerror}); "
                f"stop whatever listens there (`ss -ltnp 'sport = :{port}'`) or pick another port"
            ) from None


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> int:
    """Start one service in the background and return its pid (also its process-group id)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, config.OWNER_VARIABLE: str(config.checkout_state_dir()), **(env or {})},
        )
    return proc.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as dead
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def stop(*pids: int, grace: float = 10.0) -> None:
    """SIGTERM the process groups, then SIGKILL whatever is left after `grace` seconds. The groups
    shut down side by side, so stopping an environment takes its slowest service's time, not the
    sum of all of them."""
    left = list(pids)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in list(left):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):  # gone already
                left.remove(pid)
        deadline = time.monotonic() + wait
        while True:
            left = [pid for pid in left if alive(pid)]
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.1)


def owned_by(owner: str) -> list[int]:
    """Pids of the live processes whose environment has OWNER_VARIABLE=`owner` exactly.

    Read from /proc/<pid>/environ (Linux), the environment a process started with. Another
    user's processes are unreadable (or, to root, name that user's own cache), zombies have an
    empty environment, and this process itself is left out.
    """
    wanted = f"{config.OWNER_VARIABLE}={owner}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            variables = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # another user's process, or one that exited meanwhile
            continue
        if wanted in variables:
            found.append(int(entry.name))
    return sorted(found)


def stop_owned_by(owner: str, grace: float = 10.0) -> list[int]:
    """SIGTERM every process `owned_by(owner)`, SIGKILL whatever is left after `grace` seconds;
    returns the pids found. Stragglers may belong to no process group we know, so each is signalled."""
    first = owned_by(owner)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        left = owned_by(owner)
        for pid in left:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = owned_by(owner)
    return first


def wait_until(
    what: str, check: Callable[[], bool], timeout: float, pid: int | None = None, log: Path | None = None
) -> None:
    """Poll `check` until it holds; fail early, with the service's log, if its process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not alive(pid):
            raise TestenvError(f"{what}: the process exited during start-up. Last log lines:\n{log_tail(log) if log else ''}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - any error while polling means "not ready yet"
            pass
        time.sleep(0.2)
    raise TestenvError(f"{what}: not ready after {timeout:.0f}s. Last log lines:\n{log_tail(log) if log else ''}")


def http_ok(url: str, token: str | None = None) -> bool:
    """A 2xx answer from `url`. Only readiness is asked here, so the certificates of the
    controller-manager and scheduler health ports (self-signed by them) are not verified."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(req, timeout=2, context=ctx) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError):
        return False
