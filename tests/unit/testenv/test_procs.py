import socket
import time

from autoglm_testenv import procs


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    ports = [procs.free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(p in procs.LISTEN_PORTS and p < 32768 for p in ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", ports[0]))


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
