"""Subcommands of `autoglm` that belong to this package (see autoglm_operator.cli)."""
from __future__ import annotations

import argparse
import sys

import yaml

from autoglm_operator.crd import crd_yaml
from autoglm_operator.rbac import manifests
from autoglm_operator.render import Capabilities, desired_objects
from autoglm_operator.schema import InvalidSpec

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
        default="",
        help="optional APIs the target cluster serves, comma-separated: keda,istio,kubeedge (default: none)",
    )
    render.set_defaults(func=run_render)

    crd = subparsers.add_parser("crd", help="print the AutoGLMDeployment CustomResourceDefinition")
    crd.set_defaults(func=run_crd)

    rbac = subparsers.add_parser("rbac", help="print the operator's ServiceAccount, ClusterRole and binding")
    rbac.add_argument("--namespace", default="autoglm-system", help="namespace of the operator's ServiceAccount")
    rbac.set_defaults(func=run_rbac)

    op = subparsers.add_parser("operator", help="run the operator that reconciles AutoGLMDeployments (kopf)")
    op.add_argument(
        "-n", "--namespace", dest="namespaces", action="append", default=[],
        help="namespace to watch, repeatable (kopf glob patterns such as 'ml-*' allowed); default: all namespaces",
    )
    op.add_argument("--resync-seconds", type=float, default=300.0,
                    help="re-check every resource this often, correcting drift nobody reported (default 300)")
    op.add_argument("--discovery-seconds", type=float, default=60.0,
                    help="re-check which of KEDA/Istio/KubeEdge the cluster serves this often (default 60)")
    op.add_argument("--metrics-address", default="0.0.0.0:9090",
                    help="host:port serving Prometheus /metrics; empty disables (default 0.0.0.0:9090)")
    op.add_argument("--health-address", default="0.0.0.0:8080",
                    help="host:port serving the liveness probe /healthz; empty disables (default 0.0.0.0:8080)")
    op.add_argument("--peering", metavar="NAME", default=None,
                    help="run as one of several replicas coordinated through the kopf peering object NAME "
                         "(needs crds/kopf-peering.yaml); default: standalone")
    op.add_argument("--priority", type=int, default=0,
                    help="peering priority: the highest-priority replica works, the others wait (default 0)")
    op.add_argument("--log-format", choices=["json", "plain"], default="json", help="log line format (default json)")
    op.add_argument("--verbose", action="store_true", help="debug logging")
    op.set_defaults(func=run_operator)


def run_render(args: argparse.Namespace) -> int:
    try:
        with (sys.stdin if args.filename == "-" else open(args.filename, encoding="utf-8")) as stream:
            cr = yaml.safe_load(stream)
        objects = desired_objects(cr or {}, Capabilities.parse(args.capabilities))
    except (InvalidSpec, yaml.YAMLError) as err:
        print(f"autoglm render: invalid AutoGLMDeployment in {args.filename}: {err}", file=sys.stderr)
        return EXIT_INVALID
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False, width=120))
    return 0


def run_crd(args: argparse.Namespace) -> int:
    sys.stdout.write(crd_yaml())
    return 0


def run_rbac(args: argparse.Namespace) -> int:
    sys.stdout.write(yaml.safe_dump_all(manifests(args.namespace), sort_keys=False, width=120))
    return 0


def run_operator(args: argparse.Namespace) -> int:
    from autoglm_operator.run import Options, run  # kopf is imported only by the command that needs it

    run(
        Options(
            namespaces=args.namespaces,
            resync_seconds=args.resync_seconds,
            discovery_seconds=args.discovery_seconds,
            metrics_address=args.metrics_address,
            health_address=args.health_address,
            peering=args.peering,
            priority=args.priority,
            log_format=args.log_format,
            verbose=args.verbose,
        )
    )
    return 0
