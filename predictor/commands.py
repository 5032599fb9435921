"""Subcommands of `autoglm` that belong to this package (see autoglm_operator.cli)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands; each sets `func(args) -> int`."""
