"""The GPU catalog: one row per GPU model, with datasheet figures and their sources.

`load_catalog()` reads the shipped `simulator/data/gpus.csv` (located by simulator.shipped),
validates every value (types, ranges, unique names and aliases, exactly one reference GPU) and
resolves the names HTCondor reports (`GPUs_DeviceName`, e.g. "NVIDIA A100-SXM4-80GB") to
catalog entries. A near miss is answered with suggestions: "A100" → A100-SXM4-40GB or
A100-SXM4-80GB.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.errors import ConfigError, nearest
from simulator.files import read_text
from simulator.shipped import catalog_path
from simulator.validate import REQUIRED, number, string

DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8")
# Where a GPU lacks a precision, the work runs at the next one down (bf16 → fp16 needs AMP with a
# GradScaler, a change the user makes; tf32 → fp32 is automatic).
FALLBACK = {"fp8": ("fp8", "bf16", "fp16", "fp32"), "bf16": ("bf16", "fp16", "fp32"),
            "fp16": ("fp16", "fp32"), "tf32": ("tf32", "fp32"), "fp32": ("fp32",)}
# The typical-training-mix speed model (Catalog.training_speed), fitted to the published
# single-GPU training throughputs shipped in simulator/data/benchmarks/gpu_throughput.csv (ResNet-50 and
# BERT-base, 11 GPUs, Pascal to Hopper): the share of a reference step that scales with compute
# (the rest scales with memory bandwidth), and the fraction of the datasheet tensor-core peak that
# training reaches relative to CUDA-core fp32. Median error of predicted speed ratios over 125 GPU
# pairs: 13.7% with these values, 21.3% with a 50/50 split at datasheet peaks
# (tests/test_catalog.py::test_training_speed_against_published_throughputs).
TYPICAL_COMPUTE_SHARE = 0.3
TENSOR_CORE_EFFICIENCY = 0.35
COLUMNS = ("name", "aliases", "capability", "memory_gb", "bandwidth_gbs", "fp32_tflops",
           "tf32_tflops", "fp16_tflops", "bf16_tflops", "fp8_tflops", "release_year",
           "reference", "source")


def describe_speed_model() -> str:
    """The typical-training-mix speed model in words, from the constants `training_speed` uses:
    what every message about it prints, so the words cannot drift from the model."""
    return (f"{TYPICAL_COMPUTE_SHARE:.0%} of a step scales with compute at "
            f"{TENSOR_CORE_EFFICIENCY:.0%} of the tensor-core peak, "
            f"{1 - TYPICAL_COMPUTE_SHARE:.0%} with memory bandwidth")


@dataclass(frozen=True)
class GpuSpec:
    """Datasheet figures of one GPU model (dense tensor figures, no sparsity)."""

    name: str
    aliases: tuple[str, ...]
    capability: float
    memory_gb: float
    bandwidth_gbs: float
    fp32_tflops: float
    tf32_tflops: float | None
    fp16_tflops: float | None
    bf16_tflops: float | None
    fp8_tflops: float | None
    release_year: int
    reference: bool
    source: str

    def peak_tflops(self, precision: str) -> float | None:
        """Peak dense TFLOPS for `precision` (fp32, tf32, fp16, bf16, fp8); None if unsupported."""
        if precision not in DTYPES:
            raise ConfigError("precision", precision, f"must be one of {', '.join(DTYPES)}.",
                              suggestions=nearest(precision, DTYPES))
        value: float | None = getattr(self, f"{precision}_tflops")
        return value

    def effective_peak(self, precision: str) -> tuple[float, str]:
        """The peak TFLOPS work at `precision` gets here, and the precision it actually runs at."""
        for p in FALLBACK[precision]:
            peak = self.peak_tflops(p)
            if peak:
                return peak, p
        return self.fp32_tflops, "fp32"

    @property
    def memory_mb(self) -> int:
        return int(round(self.memory_gb * 1024))


def _norm(name: str) -> str:
    """Compare names ignoring case, spaces, dashes and underscores."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


class Catalog:
    """The GPU models, looked up by name or alias (case, spaces and dashes ignored)."""

    def __init__(self, gpus: list[GpuSpec], source: str = "catalog") -> None:
        self.source = source
        self._gpus = list(gpus)
        self._index: dict[str, GpuSpec] = {}
        for gpu in self._gpus:
            for key in (gpu.name, *gpu.aliases):
                k = _norm(key)
                other = self._index.get(k)
                if other is not None and other is not gpu:
                    raise ConfigError(f"{gpu.name}.aliases", key,
                                      f"is already a name or alias of {other.name}.",
                                      "give every name and alias to one GPU only.", source=source)
                self._index[k] = gpu
        refs = [g for g in self._gpus if g.reference]
        if len(refs) != 1:
            raise ConfigError("reference", [g.name for g in refs],
                              f"exactly one GPU must be marked as the reference; found {len(refs)}.",
                              "put `yes` in the reference column of one row.", source=source)
        self.reference = refs[0]

    def __iter__(self) -> Iterator[GpuSpec]:
        return iter(self._gpus)

    def __len__(self) -> int:
        return len(self._gpus)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _norm(name) in self._index

    @property
    def names(self) -> list[str]:
        return [g.name for g in self._gpus]

    def get(self, name: str, field: str = "gpu") -> GpuSpec:
        """The GPU called `name` (or one of its aliases); ConfigError with suggestions otherwise."""
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(field, name, "must be a GPU name from the catalog.",
                              "run `advisor gpus` to list them.")
        gpu = self._index.get(_norm(name))
        if gpu is not None:
            return gpu
        raise ConfigError(field, name, "is not a GPU in the catalog.",
                          "use a name from `advisor gpus` (or add the GPU to simulator/data/gpus.csv "
                          "with its datasheet figures and source).",
                          suggestions=self.suggest(name))

    def suggest(self, name: str) -> list[str]:
        n = _norm(name)
        hits = [g.name for g in self._gpus
                if n and any(n in _norm(k) for k in (g.name, *g.aliases))]
        if hits and len(hits) <= 4:
            return hits
        return nearest(name, self.names)

    def training_speed(self, gpu: str | GpuSpec, precision: str = "tf32",
                       reference: str | GpuSpec | None = None) -> float:
        """Throughput relative to `reference` (default: the catalog's) for a *typical training
        mix*: a share s of the reference step scales with the compute achieved at `precision`
        (with the fallback where the GPU lacks it; tensor-core peaks × TENSOR_CORE_EFFICIENCY),
        the rest with memory bandwidth: relative time = s·ref_peak/peak + (1−s)·ref_bw/bw.

        Published end-to-end speed-ups between GPU generations fall between the pure-compute and
        pure-bandwidth ratios; a measured profile (`advisor fit`) predicts per workload instead.
        """
        spec = gpu if isinstance(gpu, GpuSpec) else self.get(gpu)
        ref = self.reference if reference is None else (
            reference if isinstance(reference, GpuSpec) else self.get(reference))
        def achieved(g: GpuSpec) -> float:
            peak, used = g.effective_peak(precision)
            return peak * (TENSOR_CORE_EFFICIENCY if used != "fp32" else 1.0)

        s = TYPICAL_COMPUTE_SHARE
        rel = (s * achieved(ref) / achieved(spec)
               + (1 - s) * ref.bandwidth_gbs / spec.bandwidth_gbs)
        return 1.0 / rel


def _figure(row: dict[str, str], col: str, where: str, *, optional: bool = False,
            maximum: float, integer: bool = False, minimum: float | None = None) -> Any:
    """A datasheet figure of one row: greater than zero unless `minimum` says otherwise."""
    raw = (row.get(col) or "").strip()
    return number(raw or None, f"{where}.{col}", default=None if optional else REQUIRED,
                  minimum=minimum, exclusive_minimum=None if minimum is not None else 0,
                  maximum=maximum, integer=integer)


def parse_catalog_rows(rows: list[dict[str, str]], source: str) -> Catalog:
    gpus: list[GpuSpec] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        name = string(row.get("name") or "", f"line {i}.name").strip()
        where = f"line {i}" + (f" ({name})" if name else "")
        if not name:
            raise ConfigError(f"{where}.name", name, "is empty.", "give every GPU a name.")
        if _norm(name) in seen:
            raise ConfigError(f"{where}.name", name, f"repeats the name on line {seen[_norm(name)]}.",
                              "names must be unique; merge or rename the rows.")
        seen[_norm(name)] = i
        capability = _figure(row, "capability", where, minimum=1.0, maximum=20.0)
        ref = (row.get("reference") or "").strip().lower()
        if ref not in ("", "yes", "no", "true", "false"):
            raise ConfigError(f"{where}.reference", ref, "must be yes or empty.", "write `yes` or leave it empty.")
        source_text = string(row.get("source") or "", f"{where}.source").strip()
        if not source_text:
            raise ConfigError(f"{where}.source", source_text, "is empty: every figure needs a source.",
                              "name the datasheet or whitepaper the figures come from.")
        gpus.append(GpuSpec(
            name=name,
            aliases=tuple(a.strip() for a in (row.get("aliases") or "").split("|") if a.strip()),
            capability=capability,
            memory_gb=_figure(row, "memory_gb", where, maximum=4096),
            bandwidth_gbs=_figure(row, "bandwidth_gbs", where, maximum=100000),
            fp32_tflops=_figure(row, "fp32_tflops", where, maximum=10000),
            tf32_tflops=_figure(row, "tf32_tflops", where, optional=True, maximum=100000),
            fp16_tflops=_figure(row, "fp16_tflops", where, optional=True, maximum=100000),
            bf16_tflops=_figure(row, "bf16_tflops", where, optional=True, maximum=100000),
            fp8_tflops=_figure(row, "fp8_tflops", where, optional=True, maximum=100000),
            release_year=_figure(row, "release_year", where, minimum=1990, maximum=2100,
                                 integer=True),
            reference=ref in ("yes", "true"),
            source=source_text,
        ))
    if not gpus:
        raise ConfigError("rows", 0, "the catalog has no GPUs.", "add at least one row.")
    return Catalog(gpus, source=source)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a GPU catalog CSV (default: the shipped `simulator/data/gpus.csv`)."""
    p = Path(path) if path is not None else catalog_path()
    if path is None:
        return _default_catalog(str(p))
    return _read(p)


@functools.lru_cache(maxsize=4)
def _default_catalog(path: str) -> Catalog:
    return _read(Path(path))


def _read(p: Path) -> Catalog:
    text = read_text(p, "catalog", "give the path of a CSV with the columns of simulator/data/gpus.csv.")
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        unknown = [c for c in header if c not in COLUMNS]
        raise ConfigError("columns", missing, "required columns are missing.",
                          f"the header must be: {','.join(COLUMNS)}",
                          source=str(p), suggestions=unknown[:3])
    try:
        return parse_catalog_rows(list(reader), str(p))
    except ConfigError as exc:
        raise exc.with_source(str(p)) from None
