"""The engine pod's preStop hook: wait until the engine has no request in flight, then let it stop.

Kubernetes stops a pod in this order (kubelet "Pod termination" and "Container hooks"): the pod
gets a deletionTimestamp, the endpoint controllers take it out of the Service's ready endpoints
(and so out of Istio's, the Gateway's and the InferencePool's picker's backends) while, at the same
time, kubelet runs the container's preStop hook; only when the hook returns does kubelet send
SIGTERM, and at terminationGracePeriodSeconds after the deletion it sends SIGKILL. The two run in
parallel, so the hook first waits SETTLE seconds for the endpoint removal to reach the proxies
(requests may still arrive until then), and then polls the engine's own /metrics on localhost until
the engine reports no running and no queued request (the gauges of its engine profile, api.engines
`Signals.running` and `.waiting`: vLLM `vllm:num_requests_running` and `vllm:num_requests_waiting`,
SGLang `sglang:num_running_reqs` and `sglang:num_queue_reqs`, TGI `tgi_batch_current_size` and
`tgi_queue_size`) or its BUDGET seconds end. A queued request counts: it is a stream that has not
started yet, and SIGTERM would cut it all the same.

The operator renders this file's code into the command (`python3 -c <program> SETTLE BUDGET URL
METRIC...`, render/workload.py): the vLLM, SGLang and TGI images all ship python3, while curl or
wget is not guaranteed, so the hook uses only the standard library and no operator code. The
program is this module without its docstrings and comments (ast.unparse), so editing them changes no
pod; a code change changes every engine pod template, and so rolls every engine pod on the next
operator upgrade (tests/unit/operator/render/test_drain_hook.py pins the command).

Exit: always 0 (a failing hook only makes kubelet log an event and stop the container anyway).
An engine that refuses the connection has stopped serving: nothing is left to wait for. An answer
without the gauges (an engine starting, or metrics off) is not "drained": the hook waits for the
budget then, on the safe side.
"""
from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

# The settle time the operator renders (and the retirement of a revision waits, rollout/canary.py):
# Kubernetes removes the pod from the endpoints at the same time as kubelet starts this hook, not
# before, and kube-proxy and the mesh or gateway proxies follow within seconds; 5 s is the customary
# preStop sleep for that alone.
SETTLE_SECONDS = 5
POLL_SECONDS = 1.0
TIMEOUT_SECONDS = 2.0  # one scrape of the engine's /metrics


def in_flight(exposition: str, metrics: list[str]) -> float | None:
    """The sum of the samples of `metrics` in a Prometheus text exposition (format 0.0.4:
    `name{labels} value [timestamp]` or `name value [timestamp]` per line), or None when none of them
    is there. Requests in flight: the running and waiting gauges added up."""
    total, seen = 0.0, False
    for line in exposition.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, _, rest = line.partition("{")
            value = rest.rpartition("}")[2].split()
        else:
            name, *value = line.split()
        if name.strip() in metrics and value:
            try:
                total += float(value[0])
            except ValueError:
                continue
            seen = True
    return total if seen else None


def next_step(requests: float | None, engine_gone: bool, now: float, deadline: float) -> str:
    """What the hook does after one poll: "drained" (no request in flight), "gone" (the engine
    stopped serving), "budget" (the deadline passed with requests in flight or unknown) or "wait"."""
    if engine_gone:
        return "gone"
    if requests == 0:
        return "drained"
    return "budget" if now >= deadline else "wait"


def poll(url: str, metrics: list[str]) -> tuple[float | None, bool]:
    """(requests in flight or None, whether the engine refused the connection)."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:
            return in_flight(answer.read().decode("utf-8", "replace"), metrics), False
    except urllib.error.URLError as exc:
        return None, isinstance(exc.reason, ConnectionRefusedError)
    except OSError:
        return None, False


def main(argv: list[str]) -> int:
    settle, budget, url, metrics = float(argv[0]), float(argv[1]), argv[2], argv[3:]
    time.sleep(settle)
    deadline = time.monotonic() + budget
    while True:
        requests, gone = poll(url, metrics)
        step = next_step(requests, gone, time.monotonic(), deadline)
        if step != "wait":
            print(f"drain: {step} ({requests} in flight)", flush=True)
            return 0
        time.sleep(max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
