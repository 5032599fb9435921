"""Subcommands of `autoglm` that belong to this package (see autoglm_operator.cli.main)."""
from __future__ import annotations

import argparse
import sys

import yaml

from autoglm_operator.api.capabilities import Capabilities, MissingCapability
from autoglm_operator.api.crd import crd_yaml
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.cli import rollout as rollout_commands
from autoglm_operator.render.desired import desired_objects

EXIT_INVALID = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands; each sets `func(args) -> int`."""
    render = subparsers.add_parser(
        "render",
        help="print the manifests the operator would apply for an AutoGLMDeployment (no cluster needed)",
    )
    render.add_argument("-f", "--filename", required=True, help="AutoGLMDeployment YAML file, or - for stdin")
    render.add_argument(
        "--capabilities",
        type=_capabilities,
        default=Capabilities(),
        help=f"optional APIs the target cluster serves (the operator discovers them), comma-separated, any of: "
             f"{', '.join(Capabilities.names())} ('-' for '_' accepted: gateway-api); default: none",
    )
    render.set_defaults(func=run_render)

    crd = subparsers.add_parser("crd", help="print the AutoGLMDeployment CustomResourceDefinition")
    crd.set_defaults(func=run_crd)

    op = subparsers.add_parser("operator", help="run the operator that reconciles AutoGLMDeployments (kopf)")
    op.add_argument(
        "-n", "--namespace", dest="namespaces", action="append", default=[],
        help="namespace to watch, repeatable (kopf glob patterns such as 'ml-*' allowed); default: all namespaces",
    )
    op.add_argument("--resync-seconds", type=float, default=300.0,
                    help="re-check every resource this often, correcting drift nobody reported (default 300)")
    op.add_argument("--discovery-seconds", type=float, default=60.0,
                    help="re-check which of KEDA/Istio/KubeEdge/Gateway API/InferencePool the cluster serves this often (default 60)")
    op.add_argument("--metrics-port", type=int, default=8080, help="port of the Prometheus /metrics endpoint, 0 for none")
    op.add_argument("--health-port", type=int, default=8081, help="port of the liveness endpoint /healthz, 0 for none")
    op.add_argument("--peering", metavar="NAME", default=None,
                    help="run as one of several replicas coordinated through the kopf peering object NAME "
                         "(needs crds/kopf-peering.yaml); default: standalone")
    op.add_argument("--priority", type=int, default=0,
                    help="peering priority: the highest-priority replica works, the others wait (default 0)")
    op.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    op.add_argument("--log-format", choices=["json", "plain"], default="json", help="log line format (default json)")
    op.set_defaults(func=run_operator)

    rollout_commands.register(subparsers)


def _capabilities(text: str) -> Capabilities:
    """--capabilities' type: argparse then blames the flag (exit 2) with the valid names."""
    try:
        return Capabilities.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run_render(args: argparse.Namespace) -> int:
    try:
        with (sys.stdin if args.filename == "-" else open(args.filename, encoding="utf-8")) as stream:
            cr = yaml.safe_load(stream)
        objects = desired_objects(cr or {}, args.capabilities)
    except OSError as err:  # a missing or unreadable file: one line, as for an invalid one
        print(f"autoglm render: cannot read {args.filename}: {err.strerror}", file=sys.stderr)
        return EXIT_INVALID
    except MissingCapability as err:
        print(f"autoglm render: {args.filename} needs what --capabilities does not list ({', '.join(err.needs)}): {err}",
              file=sys.stderr)
        return EXIT_INVALID
    except (InvalidSpec, yaml.YAMLError) as err:
        # Every error on its own line, as `kubectl apply` lists them (InvalidSpec joins them with newlines).
        errors = str(err).splitlines()
        if len(errors) == 1:
            print(f"autoglm render: invalid AutoGLMDeployment in {args.filename}: {err}", file=sys.stderr)
        else:
            print(f"autoglm render: invalid AutoGLMDeployment in {args.filename}:", *(f"* {e}" for e in errors),
                  sep="\n", file=sys.stderr)
        return EXIT_INVALID
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False, width=120))
    return 0


def run_crd(args: argparse.Namespace) -> int:
    sys.stdout.write(crd_yaml())
    return 0


def run_operator(args: argparse.Namespace) -> int:
    from autoglm_operator.runtime.run import Options, run  # kopf is imported only by the command that needs it

    run(
        Options(
            namespaces=args.namespaces,
            resync_seconds=args.resync_seconds,
            discovery_seconds=args.discovery_seconds,
            metrics_port=args.metrics_port,
            health_port=args.health_port,
            peering=args.peering,
            priority=args.priority,
            log_level=args.log_level,
            log_format=args.log_format,
        )
    )
    return 0
