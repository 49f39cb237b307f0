"""List the GPU catalog: capability, memory, bandwidth, dense peak TFLOPS by precision, sources.

Example: advisor gpus --json
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from advisor.output import CommandResult
from simulator.catalog import DTYPES, load_catalog

HELP = "list the GPU catalog (datasheet figures with sources)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", metavar="CSV", default=None,
                        help="a catalog CSV to read instead of the shipped one (simulator/data/gpus.csv)")


def run(args: argparse.Namespace) -> CommandResult:
    catalog = load_catalog(args.catalog)
    rows: list[dict[str, Any]] = []
    for g in catalog:
        rows.append({
            "name": g.name, "aliases": list(g.aliases), "capability": g.capability,
            "memory_gb": g.memory_gb, "bandwidth_gbs": g.bandwidth_gbs,
            **{f"{p}_tflops": g.peak_tflops(p) for p in DTYPES},
            "release_year": g.release_year, "reference": g.reference, "source": g.source,
        })
    data = {"reference": catalog.reference.name, "gpus": rows}

    def render(console: Console) -> None:
        table = Table(title=f"GPU catalog ({len(rows)} GPUs; reference: {catalog.reference.name})",
                      caption="Dense peak TFLOPS from datasheets (no sparsity); – : not supported.")
        for col in ("GPU", "CC", "memory GB", "GB/s", "FP32", "TF32", "FP16", "BF16", "FP8", "year"):
            table.add_column(col, justify="left" if col == "GPU" else "right")
        for r in sorted(rows, key=lambda r: (r["capability"], r["name"])):
            def f(v: float | None) -> str:
                return "–" if v is None else f"{v:g}"
            name = r["name"] + (" (ref)" if r["reference"] else "")
            table.add_row(name, f"{r['capability']:.1f}", f(r["memory_gb"]), f(r["bandwidth_gbs"]),
                          *(f(r[f"{p}_tflops"]) for p in DTYPES), str(r["release_year"]))
        console.print(table)

    return CommandResult(data, render)
