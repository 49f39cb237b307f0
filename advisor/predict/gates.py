"""Capability and build gates: can this GPU run the workload as profiled?

Feature gates (NVIDIA compute capability):
* bfloat16 needs 8.0 (Ampere); FP8 needs 8.9 (Ada/Hopper) — the workload cannot run as
  profiled below these: blocking.
* torch.compile (Triton) needs 7.0: blocking.
* TF32 and flash attention need 8.0: below it PyTorch silently uses FP32 math and the
  mem-efficient/math SDPA kernels — the job runs, slower and (for attention) with more memory;
  a note, not a block.

Build gate: the user's torch build must contain kernels for the GPU. A build's arch list
(`torch.cuda.get_arch_list()`, recorded in the profile) holds `sm_XY` (binary: runs on
capability X.Y' with Y' >= Y, same major) and `compute_XY` (PTX: JIT-compiles for any
capability >= X.Y). The list is empty for a CPU-only build and also for a CUDA build profiled
where CUDA was unavailable; then the build is read from the version suffix (`+cu126`) or
`environment.cuda`, and failing both the torch version's default PyPI CUDA build is assumed (and
said):

| torch | default PyPI build | architectures | source |
|---|---|---|---|
| < 2.8 | CUDA 12.6 | sm_50 – sm_90 | PyTorch release matrix (docs/DOMAIN.md §5) |
| 2.8 – 2.9 | CUDA 12.8 | sm_70 – sm_120 | pytorch build_cuda.sh, 2.8 + cu128 arch list |
| 2.10 | CUDA 12.8 | sm_75 – sm_120 | pytorch/pytorch#172352 (sm_70 dropped from 12.8) |
| 2.11 – 2.14 | CUDA 13.x | sm_75 – sm_120 | pytorch/pytorch#177975, #190355 |
| >= 2.15 | CUDA 13.x | sm_75 – sm_120; no 12.6 wheels | dev-discuss "CUDA 12.6 wheels will no longer be published from PyTorch 2.15" |

Older GPUs (5.0–7.0) are served by the CUDA 12.6 wheels
(`pip install torch --index-url https://download.pytorch.org/whl/cu126`) up to torch 2.14.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from advisor.predict.profile_input import ProfileView
from simulator.catalog import GpuSpec

BF16_MIN = 8.0
TF32_MIN = 8.0
FLASH_MIN = 8.0
MEM_EFFICIENT_MIN = 7.5
FP8_MIN = 8.9
COMPILE_MIN = 7.0
TENSOR_CORE_MIN = 7.0      # fp16 tensor cores (Volta); below, half precision runs on CUDA cores
CU126_ARCHES = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
CU126_HINT = ("a CUDA 12.6 build of torch <= 2.14 (pip install 'torch<2.15' --index-url "
              "https://download.pytorch.org/whl/cu126), which covers sm_50–sm_90")


@dataclass(frozen=True)
class GateResult:
    runnable: bool
    blockers: tuple[str, ...]      # reasons it cannot run as profiled
    notes: tuple[str, ...]         # it runs, differently
    build_only: bool               # only the torch build stands in the way
    assumed_build: str | None      # what was assumed about the build, if anything


def torch_version(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    m = re.match(r"\s*(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


MODERN_ARCHES = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")


def default_build(version: tuple[int, int] | None) -> tuple[str, tuple[str, ...]]:
    """The default PyPI CUDA build of a torch version: (description, arch list)."""
    if version is None or version >= (2, 11):
        return "the default CUDA 13.x build (sm_75 and newer)", MODERN_ARCHES
    if version >= (2, 10):
        return "the default CUDA 12.8 build (sm_75 and newer)", MODERN_ARCHES
    if version >= (2, 8):
        return "the default CUDA 12.8 build (sm_70 and newer)", ("sm_70", *MODERN_ARCHES)
    return "the default CUDA 12.6 build (sm_50–sm_90)", CU126_ARCHES


def cuda_build(cuda: tuple[int, int], version: tuple[int, int] | None) -> tuple[str, tuple[str, ...]]:
    """The architectures of a named CUDA build (`+cu126`, `environment.cuda = "12.8"`)."""
    if cuda >= (13, 0):
        return f"a CUDA {cuda[0]}.{cuda[1]} build (sm_75 and newer)", MODERN_ARCHES
    if cuda >= (12, 8):
        if version is not None and version >= (2, 10):
            return f"a CUDA {cuda[0]}.{cuda[1]} build (sm_75 and newer)", MODERN_ARCHES
        return f"a CUDA {cuda[0]}.{cuda[1]} build (sm_70 and newer)", ("sm_70", *MODERN_ARCHES)
    return f"a CUDA {cuda[0]}.{cuda[1]} build (sm_50–sm_90)", CU126_ARCHES


def assumed_build(torch_text: str | None, cuda_text: str | None) -> tuple[str, tuple[str, ...]]:
    """What a profile without an arch list says about its build. `torch.cuda.get_arch_list()`
    is empty whenever CUDA is unavailable, so a CUDA build profiled on a CPU machine looks the
    same as a CPU-only build: the `+cuXYZ` suffix or `environment.cuda` tells them apart."""
    version = torch_version(torch_text)
    m = re.search(r"\+cu(\d+)(\d)\b", torch_text or "")
    if m:
        return cuda_build((int(m.group(1)), int(m.group(2))), version)
    m = re.match(r"\s*(\d+)\.(\d+)", cuda_text or "")
    if m:
        return cuda_build((int(m.group(1)), int(m.group(2))), version)
    return default_build(version)


def _cc(arch: str) -> tuple[str, int, int] | None:
    m = re.fullmatch(r"(sm|compute)_(\d+)([a-z]?)", arch.strip())
    if not m:
        return None
    digits = m.group(2)
    return m.group(1), int(digits[:-1]), int(digits[-1])


def build_supports(arch_list: tuple[str, ...] | list[str], capability: float) -> bool:
    """True when a build with `arch_list` has kernels that run on `capability`."""
    major, minor = int(capability), int(round((capability - int(capability)) * 10))
    for a in arch_list:
        parsed = _cc(a)
        if parsed is None:
            continue
        kind, amaj, amin = parsed
        if kind == "sm" and amaj == major and amin <= minor:
            return True
        if kind == "compute" and (amaj, amin) <= (major, minor):
            return True
    return False


def _arch_name(capability: float) -> str:
    return f"sm_{int(round(capability * 10))}"


def check(view: ProfileView, gpu: GpuSpec) -> GateResult:
    cap = gpu.capability
    blockers: list[str] = []
    notes: list[str] = []
    dtypes = view.dtypes_used()
    if "bfloat16" in dtypes and cap < BF16_MIN:
        blockers.append(f"uses bfloat16, which needs capability >= {BF16_MIN} ({gpu.name} is {cap}); "
                        "switch to float16 autocast with a GradScaler to run here")
    if any(d.startswith("float8") for d in dtypes) and cap < FP8_MIN:
        blockers.append(f"uses FP8, which needs capability >= {FP8_MIN} ({gpu.name} is {cap})")
    if view.compiled and cap < COMPILE_MIN:
        blockers.append(f"uses torch.compile (Triton), which needs capability >= {COMPILE_MIN} "
                        f"({gpu.name} is {cap})")
    tensor_f32 = any(view.op_classes[c].flops.get("float32", 0) > 0 for c in ("matmul", "conv", "attention"))
    if tensor_f32 and (view.tf32_matmul or view.tf32_cudnn) and cap < TF32_MIN:
        notes.append(f"no TF32 below {TF32_MIN}: float32 matmul/conv run on CUDA cores")
    if view.uses_sdpa and cap < FLASH_MIN:
        kernel = "mem-efficient" if cap >= MEM_EFFICIENT_MIN else "math (materialises the S×S scores)"
        notes.append(f"no flash attention below {FLASH_MIN}: SDPA uses the {kernel} kernel")

    assumed: str | None = None
    arch = tuple(view.arch_list)
    if not arch:
        desc, arch = assumed_build(view.torch_version, view.cuda_version)
        assumed = (f"the profile records no GPU architectures for its torch "
                   f"{view.torch_version or '(unknown version)'} build (CPU-only, or CUDA unavailable "
                   f"where it was profiled); assumed {desc}")
    build_only = False
    if not build_supports(arch, cap):
        version = torch_version(view.torch_version)
        hint = CU126_HINT if cap >= 5.0 and cap <= 9.0 else "a torch build compiled for this architecture"
        if version is not None and version >= (2, 15) and cap < 7.5:
            hint = ("torch <= 2.14 with CUDA 12.6 (pip install 'torch<2.15' --index-url "
                    "https://download.pytorch.org/whl/cu126): torch 2.15 dropped GPUs below 7.5")
        built = "assumed build" if assumed else "torch build"
        blockers.append(f"the {built} has no kernels for {_arch_name(cap)} ({gpu.name}); "
                        f"it would run with {hint}")
        build_only = len(blockers) == 1
    return GateResult(not blockers, tuple(blockers), tuple(notes), build_only, assumed)
