"""hack/testenv up | down [--force] | status | kubeconfig | env | build  (see docs/testenv.md)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from autoglm_testenv import config, procs
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


def _down(args: argparse.Namespace) -> int:
    """Stop the environment this checkout's `up` started; with --force also every other process
    this checkout's test environment started (crashed test sessions, `make bench`), and no one else's."""
    pointer = config.state_pointer()
    if pointer.exists():
        try:
            env = Env.load(Path(pointer.read_text().strip()))
        except (OSError, ValueError, TypeError):
            print("testenv: the last environment's state is gone; nothing to stop")
        else:
            down(env)
            print(f"testenv: stopped and removed {env.root}")
        pointer.unlink(missing_ok=True)
    else:
        print("testenv: no environment started by `hack/testenv up` in this checkout")
    if args.force:
        owner = config.checkout_state_dir()
        pids = procs.stop_owned_by(str(owner))
        print(f"testenv: stopped {len(pids)} other process(es) of this checkout ({config.OWNER_VARIABLE}={owner})"
              + (f": {' '.join(map(str, pids))}" if pids else ""))
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


def _commands_dir() -> Path:
    """`<checkout state dir>/bin`, holding links to kubectl, helm and this checkout's `autoglm` and
    `kubectl-autoglm` (so `kubectl autoglm ...` finds its plugin) and nothing else: putting
    .venv/bin itself on PATH would also put its python and pip before the user's."""
    bins = config.binaries()
    commands = {"kubectl": bins.kubectl, "helm": bins.helm,
                "autoglm": config.VENV_BIN / "autoglm", "kubectl-autoglm": config.VENV_BIN / "kubectl-autoglm"}
    missing = [str(target) for target in commands.values() if not target.exists()]
    if missing:
        raise TestenvError(f"missing: {', '.join(missing)} (run `make venv tools`)")
    directory = config.checkout_state_dir() / "bin"
    directory.mkdir(parents=True, exist_ok=True)
    for name, target in commands.items():
        link = directory / name
        if link.is_symlink() and link.readlink() == target:
            continue
        # New or moved (a version bump moves kubectl and helm): replaced in one rename, so a shell
        # of another `env` of this checkout never misses the command.
        fresh = directory / f".{name}.{os.getpid()}"
        fresh.unlink(missing_ok=True)
        fresh.symlink_to(target)
        fresh.replace(link)
    return directory


def _env(_: argparse.Namespace) -> int:
    """Shell exports, for `eval "$(hack/testenv env)"`."""
    env = _running()
    print(f"export KUBECONFIG={env.kubeconfig}")
    print(f"export AUTOGLM_KAFKA_BOOTSTRAP={env.kafka_bootstrap}")
    print(f"export AUTOGLM_PROMETHEUS_URL={env.prometheus_url}")
    print(f"export PATH={_commands_dir()}:$PATH")
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
        ("down", _down, "stop this checkout's environment and delete its data"),
        ("status", _status, "what runs where"),
        ("kubeconfig", _kubeconfig, "print the kubeconfig path"),
        ("env", _env, "print shell exports (eval \"$(hack/testenv env)\")"),
        ("build", _build, "only build/fetch the tools into the cache"),
    ):
        sub.add_parser(name, help=text).set_defaults(func=func)
    sub.choices["down"].add_argument("--force", action="store_true",
                                     help="also stop every other process this checkout's test environment started")
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
