import socket

from autoglm_testenv import procs


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    ports = [procs.free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(p in procs.LISTEN_PORTS and p < 32768 for p in ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", ports[0]))
