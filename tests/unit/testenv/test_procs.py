import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from autoglm_testenv import procs

HACK = Path(__file__).resolve().parents[3] / "hack"


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    ports = [procs.free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(p in procs.LISTEN_PORTS and p < 32768 for p in ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", ports[0]))


def test_a_port_another_process_was_handed_is_not_handed_out_until_it_exits() -> None:
    """Two environments start side by side (make test on 2 workers): neither may give a server a
    port the other picked and has not bound yet. 1,000 picks each from 12,000 ports would share
    about 80 without the machine-wide reservation."""
    program = ("import sys; from autoglm_testenv import procs; "
               "print(*[procs.free_port() for _ in range(1000)], flush=True); sys.stdin.read()")
    other = subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(HACK)})
    try:
        theirs = {int(port) for port in other.stdout.readline().split()}
        ours = {procs.free_port() for _ in range(1000)}
    finally:
        other.communicate("")  # closes its stdin: it exits
    assert len(theirs) == 1000 and not theirs & ours
    assert procs._reserve(min(theirs))  # the kernel dropped its locks when it exited


def test_stop_ends_process_groups_side_by_side_killing_those_that_ignore_sigterm(tmp_path) -> None:
    # SIG_IGN is inherited across exec, so the whole group (bash and its sleep) ignores SIGTERM.
    stubborn = [procs.start(f"stubborn-{i}", ["bash", "-c", "trap '' TERM; sleep 60"], tmp_path) for i in range(2)]
    polite = procs.start("polite", ["sleep", "60"], tmp_path)
    started = time.monotonic()
    procs.stop(*stubborn, polite, grace=2.0)
    took = time.monotonic() - started
    assert not any(procs.alive(pid) for pid in (*stubborn, polite))
    # One grace period for both stubborn groups (one after the other would take two).
    assert 2.0 <= took < 4.0, took
