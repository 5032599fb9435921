"""hack/testenv up | down | status | kubeconfig | env  (see docs/testenv.md)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from autoglm_testenv import config
from autoglm_testenv.env import Env, current, down, up_shared
from autoglm_testenv.procs import TestenvError


def _up(_: argparse.Namespace) -> int:
    running = current()
    if running is not None:
        print(running.describe())
        print("testenv: already up (run `hack/testenv down` first for a fresh one)")
        return 0
    t0 = time.monotonic()
    env = up_shared()
    print(env.describe())
    print(f"testenv: all services ready in {time.monotonic() - t0:.1f}s")
    return 0


def _down(_: argparse.Namespace) -> int:
    pointer = config.state_pointer()
    if not pointer.exists():
        print("testenv: nothing to stop")
        return 0
    try:
        env = Env.load(Path(pointer.read_text().strip()))
    except (OSError, ValueError, TypeError):
        print("testenv: the last environment's state is gone; nothing to stop")
    else:
        down(env)
        print(f"testenv: stopped and removed {env.root}")
    pointer.unlink(missing_ok=True)
    return 0


def _running() -> Env:
    env = current()
    if env is None:
        raise TestenvError("not running (start it with `hack/testenv up`)")
    return env


def _status(_: argparse.Namespace) -> int:
    print(_running().describe())
    return 0


def _kubeconfig(_: argparse.Namespace) -> int:
    print(_running().kubeconfig)
    return 0


def _env(_: argparse.Namespace) -> int:
    """Shell exports, for `eval "$(hack/testenv env)"`."""
    env = _running()
    bins = config.binaries()
    print(f"export KUBECONFIG={env.kubeconfig}")
    print(f"export AUTOGLM_KAFKA_BOOTSTRAP={env.kafka_bootstrap}")
    print(f"export AUTOGLM_PROMETHEUS_URL={env.prometheus_url}")
    print(f"export PATH={bins.kubectl.parent}:{bins.helm.parent}:$PATH")
    return 0


def _build(_: argparse.Namespace) -> int:
    from autoglm_testenv.env import ensure_built

    bins = ensure_built()
    print(f"testenv: all tools present under {config.cache_dir()} (kubectl: {bins.kubectl})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/testenv", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, func, text in (
        ("up", _up, "build what is missing, start everything, wait until ready"),
        ("down", _down, "stop everything and delete its data"),
        ("status", _status, "what runs where"),
        ("kubeconfig", _kubeconfig, "print the kubeconfig path"),
        ("env", _env, "print shell exports (eval \"$(hack/testenv env)\")"),
        ("build", _build, "only build/fetch the tools into the cache"),
    ):
        sub.add_parser(name, help=text).set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TestenvError as exc:
        print(f"testenv: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
