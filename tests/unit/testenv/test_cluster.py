"""The API server's command line is a function of the environment's directory and ports only, so
`Env.start_apiserver` after a fault test brings back the same server: same etcd, port and keys."""
from __future__ import annotations

from pathlib import Path

from autoglm_testenv.cluster import apiserver_argv

PORTS = {"etcd": 2379, "apiserver": 6443}


def _flags(argv: list[str]) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in argv[1:])


def test_a_restart_runs_the_same_command_line() -> None:
    root = Path("/env")
    assert apiserver_argv(Path("/bin/kube-apiserver"), root, PORTS) == apiserver_argv(Path("/bin/kube-apiserver"), root, PORTS)


def test_it_keeps_the_port_the_etcd_and_the_credentials_of_the_environment() -> None:
    argv = apiserver_argv(Path("/bin/kube-apiserver"), Path("/env"), PORTS)
    flags = _flags(argv)
    assert argv[0] == "/bin/kube-apiserver"
    assert flags["secure-port"] == "6443" and flags["etcd-servers"] == "http://127.0.0.1:2379"
    for key in ("tls-cert-file", "tls-private-key-file", "token-auth-file", "service-account-key-file",
                "service-account-signing-key-file", "audit-policy-file"):
        assert flags[key].startswith("/env/pki/"), key
    assert flags["audit-log-path"] == "/env/logs/audit.log", "one audit log across restarts"
