"""Argument helpers shared by commands."""

from __future__ import annotations

import argparse

DEFAULT_POOL = "chtc"


def add_pool_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool", default=DEFAULT_POOL, metavar="NAME|PATH",
                        help=f"a shipped pool (chtc, ospool) or a pool YAML file (default: {DEFAULT_POOL})")
