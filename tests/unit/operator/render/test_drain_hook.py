"""The preStop drain hook (render/drain_hook.py) as pure code, and once as the command the pod runs."""
from __future__ import annotations

import hashlib
import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from autoglm_operator.render.drain_hook import in_flight, next_step
from autoglm_operator.render.workload import DRAIN_HOOK_SOURCE, _program, drain_hook

VLLM = ["vllm:num_requests_running", "vllm:num_requests_waiting"]
EXPOSITION = """# HELP vllm:num_requests_running Requests in the batch
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="glm",engine="0"} 3.0
vllm:num_requests_running{model_name="glm",engine="1"} 1.0
vllm:num_requests_waiting{model_name="glm"} 2.0
vllm:num_requests_running_total 99
vllm:kv_cache_usage_perc{model_name="glm"} 0.5
"""


def test_in_flight_adds_the_running_and_waiting_samples_only():
    assert in_flight(EXPOSITION, VLLM) == 6.0


def test_in_flight_reads_unlabelled_samples_and_timestamps():
    assert in_flight("tgi_batch_current_size 2 1700000000000\ntgi_queue_size 0\n",
                     ["tgi_batch_current_size", "tgi_queue_size"]) == 2.0


def test_in_flight_is_none_without_the_gauges_and_zero_when_they_read_zero():
    assert in_flight("# nothing\nother 1\n", VLLM) is None
    assert in_flight('vllm:num_requests_running{a="x y}"} 0\n', VLLM) == 0.0


@pytest.mark.parametrize(("requests", "gone", "now", "step"), [
    (0.0, False, 0.0, "drained"),
    (2.0, False, 5.0, "wait"),
    (None, False, 5.0, "wait"),  # unknown is not drained
    (2.0, False, 10.0, "budget"),
    (None, False, 11.0, "budget"),
    (None, True, 0.0, "gone"),
])
def test_next_step(requests, gone, now, step):
    assert next_step(requests, gone, now, deadline=10.0) == step


@pytest.fixture
def engine_metrics() -> Iterator[tuple[str, list[float]]]:
    """A /metrics server whose running gauge reads the list's first value."""
    running = [2.0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = f"vllm:num_requests_running{{model_name=\"glm\"}} {running[0]}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics", running
    server.shutdown()


# sha256 of the default vLLM instance's preStop command, its arguments joined by NUL.
PINNED_COMMAND_SHA256 = "fe4d8288ffbffe7b0358dee1b42dae2d8c0ec95c4a0a3fb5d310e7798a8a8e34"


def test_the_rendered_command_is_pinned(make_instance):
    command = drain_hook(make_instance())
    assert command is not None
    digest = hashlib.sha256("\0".join(command).encode()).hexdigest()
    assert digest == PINNED_COMMAND_SHA256, (
        "the engine container's preStop command changed: it is part of every engine pod template, so the "
        "next operator upgrade rolls every engine pod (one model reload per pod). If that is intended, set "
        f"PINNED_COMMAND_SHA256 = {digest!r} and say so in docs/operations.md's upgrade notes "
        "(## Upgrades). A comment or docstring edit alone cannot cause this (they are not rendered); another "
        "Python version's ast.unparse can: the operator image's Python (hack/images/Dockerfile) is the one that counts."
    )


def test_comments_and_docstrings_are_not_rendered():
    plain = "import sys\n\ndef main():\n    return 0\nsys.exit(main())\n"
    documented = ('"""Module."""\nimport sys  # why\n\n# note\ndef main():\n    """Doc."""\n'
                  "    return 0  # zero\nsys.exit(main())\n")
    assert _program(documented) == _program(plain)
    assert '"""' not in DRAIN_HOOK_SOURCE and "Kubernetes" not in DRAIN_HOOK_SOURCE


def _hook(url: str, budget: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", DRAIN_HOOK_SOURCE, "0", str(budget), url, *VLLM],
                            stdout=subprocess.PIPE, text=True)


def test_the_rendered_command_runs_and_returns_on_an_idle_engine(make_instance, engine_metrics):
    url, running = engine_metrics
    running[0] = 0.0
    command = drain_hook(make_instance())
    assert command is not None
    program, metrics = command[2], command[6:]
    done = subprocess.run([sys.executable, "-c", program, "0", command[4], url, *metrics],
                          capture_output=True, text=True, timeout=10, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "drain: drained (0.0 in flight)\n", "")


def test_the_rendered_hook_returns_once_the_engine_drains(engine_metrics):
    url, running = engine_metrics
    hook = _hook(url, 60)
    time.sleep(1.5)
    assert hook.poll() is None, "requests were running: the hook must wait"
    running[0] = 0.0
    out, _ = hook.communicate(timeout=10)
    assert hook.returncode == 0 and "drained" in out


def test_the_rendered_hook_returns_at_its_budget(engine_metrics):
    url, _ = engine_metrics
    out, _ = _hook(url, 1).communicate(timeout=10)
    assert "budget (2.0 in flight)" in out


def test_the_rendered_hook_returns_when_the_engine_is_gone():
    out, _ = _hook("http://127.0.0.1:9/metrics", 60).communicate(timeout=10)
    assert "gone" in out
