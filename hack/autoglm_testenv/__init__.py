"""Local test environment for AutoGLM: a real Kubernetes control plane (kwok nodes), Kafka and
Prometheus on 127.0.0.1, plus a simulated inference engine and a trace-replaying load generator."""
from autoglm_testenv.env import Env, current, down, up
from autoglm_testenv.procs import TestenvError

__all__ = ["Env", "TestenvError", "current", "down", "up"]
