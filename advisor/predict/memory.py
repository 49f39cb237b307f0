"""Device memory a GPU needs for the profiled step.

    predicted = (tensor peak + workspace allowance + attention allowance) × (1 + margin)
                + CUDA context

* Tensor peak: `peak_memory_bytes.device` — the allocator's peak on CUDA, or the peak of live
  tensor bytes measured on a CPU (what a GPU would hold).
* Margin for what tensor counts miss (caching-allocator rounding and fragmentation, kernels'
  temporaries): 10 % of a CUDA allocator peak, 20 % of a CPU live-tensor peak (it never saw the
  caching allocator).
* CUDA context: 0.5 GB, the top of the 300–500 MB the context, cuBLAS/cuDNN handles and loaded
  kernel images take beyond the allocator's counters (docs/DOMAIN.md §5).
* Per-generation allowance:
  - cuBLAS workspace: PyTorch's default per handle is 4096 KiB×2 + 16 KiB×8 (≈8.1 MiB) below
    Hopper and 4096 KiB×8 (32 MiB) on 9.0+ (`CUBLAS_WORKSPACE_CONFIG` defaults).
  - cuDNN convolution workspace: the fastest algorithms ask for scratch space; 256 MiB is
    allowed when the step runs convolutions (measured on a GPU, it is already in the peak).
  - Attention: below 7.5 there is neither a flash (8.0+) nor a mem-efficient (7.5+ here) SDPA
    kernel, so attention materialises the B×H×S×S scores and keeps the probabilities for
    backward. Their size is estimated from the attention FLOPs: a training step costs about
    12·B·H·S²·D FLOPs (forward 4·B·H·S²·D, backward twice that), so B·H·S² ≈ flops/(12·D) with
    head dim D = 64 assumed; two such matrices (scores, probabilities) of the attention dtype are
    held per layer until backward. Not applied when the profile was measured on a GPU that
    already used the math kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.predict.gates import MEM_EFFICIENT_MIN
from advisor.predict.profile_input import ProfileView
from simulator.catalog import GpuSpec

GIB = 1024**3
GB = GIB  # the catalog and pools count memory_gb in GiB (memory_mb = memory_gb × 1024)
MIB = 1024**2
CUDA_CONTEXT_GB = 0.5
MARGIN_CUDA = 0.10
MARGIN_CPU = 0.20
CUBLAS_WORKSPACE_BYTES = {"pre_hopper": int(4096 * 1024 * 2 + 16 * 1024 * 8), "hopper": 4096 * 1024 * 8}
CUDNN_WORKSPACE_BYTES = 256 * MIB
ASSUMED_HEAD_DIM = 64
ATTENTION_MATRICES_KEPT = 2
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@dataclass(frozen=True)
class MemoryEstimate:
    """Predicted device memory in GB (GiB, as `memory_gb` in the catalog and pools) and its parts."""

    tensors_gb: float
    workspace_gb: float
    attention_gb: float
    margin_gb: float
    context_gb: float
    margin_fraction: float
    notes: tuple[str, ...]

    @property
    def total_gb(self) -> float:
        return self.tensors_gb + self.workspace_gb + self.attention_gb + self.margin_gb + self.context_gb



def attention_materialised_bytes(view: ProfileView) -> float:
    """Bytes of the S×S score and probability matrices the math SDPA path would keep."""
    att = view.op_classes["attention"]
    if att.total_flops <= 0:
        return 0.0
    elems = att.total_flops / (12.0 * ASSUMED_HEAD_DIM)
    dominant = max(att.flops.items(), key=lambda kv: kv[1])[0] if att.flops else "float32"
    return elems * DTYPE_BYTES.get(dominant, 4) * ATTENTION_MATRICES_KEPT


def predict_memory(view: ProfileView, gpu: GpuSpec, measuring_capability: float | None = None) -> MemoryEstimate:
    notes: list[str] = []
    tensors = view.peak_device_bytes
    workspace = CUBLAS_WORKSPACE_BYTES["hopper" if gpu.capability >= 9.0 else "pre_hopper"]
    if view.op_classes["conv"].kernels > 0 and not view.measured_on_gpu:
        workspace += CUDNN_WORKSPACE_BYTES
        notes.append("256 MiB allowed for cuDNN convolution workspace")
    attention = 0.0
    if view.uses_sdpa and gpu.capability < MEM_EFFICIENT_MIN:
        already = measuring_capability is not None and measuring_capability < MEM_EFFICIENT_MIN
        if not already:
            attention = attention_materialised_bytes(view)
            if attention > 0:
                notes.append(f"+{attention / GB:.2f} GB: no flash/mem-efficient attention below {MEM_EFFICIENT_MIN:g}, "
                             f"the S×S scores are materialised (head dim {ASSUMED_HEAD_DIM} assumed)")
    margin_fraction = MARGIN_CUDA if view.measured_on_gpu else MARGIN_CPU
    margin = (tensors + workspace + attention) * margin_fraction
    return MemoryEstimate(
        tensors_gb=tensors / GB,
        workspace_gb=workspace / GB,
        attention_gb=attention / GB,
        margin_gb=margin / GB,
        context_gb=CUDA_CONTEXT_GB,
        margin_fraction=margin_fraction,
        notes=tuple(notes),
    )
