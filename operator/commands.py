"""Subcommands of `autoglm` that belong to this package (see autoglm_operator.cli)."""
from __future__ import annotations

import argparse
import sys

import yaml

from autoglm_operator.crd import crd_yaml
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
