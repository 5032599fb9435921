"""The `autoglm` command: one entry point whose subcommands live beside the code they drive."""
from __future__ import annotations

import argparse
import sys

from autoglm_operator.cli import commands as operator_commands
from autoglm_predictor.cli import commands as predictor_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autoglm", description="Run GLM-family LLM inference on Kubernetes, scaled ahead of demand."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    operator_commands.register(sub)
    predictor_commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
