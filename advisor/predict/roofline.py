"""Per-op-class roofline: how long one optimizer step takes on a GPU.

For each op class c (matmul, conv, attention, other) of a profile:

    t_c = Σ_dtype flops_c,d / (η_c,kind · peak_mode(d))  +  bytes_c / (η_bw · bandwidth)
          + kernels_c · per-kernel GPU overhead
    gpu_time = Σ_c t_c
    step_compute = max(gpu_time, kernels · host dispatch cost)      (launch-overhead floor)

`gpu_time` (``kernel_time_s`` in `fit`'s rows) is what differs between GPU models; the dispatch
floor is the host's (Python and the dispatcher launching each kernel) and is the same on every
GPU. A small model whose step is all launches is floor-bound everywhere: its compute time is
then equal on an A100 and an H100 while its kernel time still shows which GPU is faster.

Why a sum of the compute and memory terms of a class rather than their max: a class aggregates
many kernels, and most single kernels are dominated by one side (a large GEMM by its math, a
batch-norm or a small 1×1 convolution by its traffic). For such a mix Σ_op max(c_op, m_op) ≈
Σ c + Σ m, whereas max(Σ c, Σ m) would assume every kernel overlaps the two perfectly. The
benchmark agreed: the additive form predicted published GPU-to-GPU ratios better (see below).

`mode(d)` is the arithmetic the GPU actually uses for dtype d in class c, following PyTorch's
defaults: float32 matmuls run on CUDA cores unless the script enabled TF32
(`torch.backends.cuda.matmul.allow_tf32` / `set_float32_matmul_precision("high")`), float32
convolutions run as TF32 by default on 8.0+ (`torch.backends.cudnn.allow_tf32 = True`),
float16/bfloat16 matmul/conv/attention run on tensor cores (7.0+ for fp16, 8.0+ for bf16),
FP8 on 8.9+. Element-wise work ("other") is bandwidth-bound and costed by its bytes.

Default efficiencies (η) and why — all are fractions of the *datasheet dense* peak:

* matmul on tensor cores 0.60, on CUDA cores 0.75: large cuBLAS GEMMs reach 70–90 % of peak,
  but training shapes (thin layers, backward transposes, tails) average lower; CUDA-core SGEMM
  is the most mature kernel and stays close to its peak.
* conv on tensor cores 0.45, CUDA cores 0.60: cuDNN convolutions in training (with the
  backward data/weight passes and NCHW↔NHWC transposes) run below GEMM efficiency.
* attention (SDPA kernels) 0.45 / 0.50: flash/mem-efficient kernels reach ~35–70 % of peak in
  their papers' forward+backward measurements; the math fallback is a pair of batched GEMMs.
* other (element-wise, norms, optimizer) 0.50 of peak FLOPs — rarely matters; its bytes rule.
* bandwidth η_bw 0.50 of the datasheet bandwidth, applied to the bytes the profile counts
  (inputs + outputs of each op once). Large element-wise kernels reach 70–90 % of the
  datasheet figure, but a training step also runs many small tensors (late layers, biases,
  optimizer on small parameters) and multi-pass kernels (batch-norm reads its input twice
  forward and backward; softmax/layer-norm likewise), so the traffic per counted byte is
  higher. 0.5 was chosen against the benchmark's 2023 float32/TF32 groups (0.4–0.7 tried);
  its mixed-precision groups and the 2020 Turing/Pascal results were not used to choose it.
* FP32 peaks of GeForce/workstation Ampere and Ada (8.6, 8.9) count a second FP32 datapath
  shared with INT32 (GA102 whitepaper); FP32 CUDA-core work may reach less of it there than
  the η above. Not corrected (no published FP32-only training figure to calibrate it on).
* per-kernel GPU overhead 3 µs (launch latency plus ramp-up/tail of a kernel); host dispatch
  8 µs per aten op in eager mode (Python + dispatcher + launch), 2 µs when torch.compile'd.

These defaults are used as they stand for a profile measured on a CPU; a profile measured on a
GPU calibrates them (`calibrate.py`). `benchmarks/predictor_accuracy.py` reports how well the
model predicts published per-GPU throughputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from advisor.predict.gates import BF16_MIN, FP8_MIN, TENSOR_CORE_MIN
from advisor.predict.profile_input import HALF_DTYPES, OP_CLASSES, ProfileView
from simulator.catalog import GpuSpec

COMPUTE_EFFICIENCY: Mapping[str, Mapping[str, float]] = {
    "matmul": {"tensor": 0.60, "simt": 0.75},
    "conv": {"tensor": 0.45, "simt": 0.60},
    "attention": {"tensor": 0.45, "simt": 0.50},
    "other": {"tensor": 0.50, "simt": 0.50},
}
BANDWIDTH_EFFICIENCY = 0.50
GPU_KERNEL_OVERHEAD_S = 3e-6
DISPATCH_S_EAGER = 8e-6
DISPATCH_S_COMPILED = 2e-6
TENSOR_MODES = ("tf32", "fp16", "bf16", "fp8")
# Bytes of optimizer traffic per parameter that stay float32 under autocast (read param, grad,
# one or two state tensors; write param and state): used when halving activation bytes.
OPTIMIZER_BYTES_PER_PARAM = 20.0


@dataclass(frozen=True)
class Efficiencies:
    """The knobs of the model; `time_scale` and `overhead_scale` come from calibration."""

    compute: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: COMPUTE_EFFICIENCY)
    bandwidth: float = BANDWIDTH_EFFICIENCY
    kernel_overhead_s: float = GPU_KERNEL_OVERHEAD_S
    dispatch_s: float = DISPATCH_S_EAGER
    time_scale: float = 1.0        # multiplies the roofline time (calibrated on a measuring GPU)
    source: str = "documented defaults (advisor/predict/roofline.py)"

    def scaled(self, time_scale: float = 1.0, dispatch_scale: float = 1.0, source: str = "") -> Efficiencies:
        return replace(self, time_scale=self.time_scale * time_scale,
                       dispatch_s=self.dispatch_s * dispatch_scale, source=source or self.source)


DEFAULT_EFFICIENCIES = Efficiencies()


@dataclass(frozen=True)
class ClassTime:
    op_class: str
    compute_s: float
    memory_s: float
    overhead_s: float
    modes: tuple[str, ...]

    @property
    def time_s(self) -> float:
        return self.compute_s + self.memory_s + self.overhead_s

    @property
    def compute_bound(self) -> bool:
        return self.compute_s >= self.memory_s


@dataclass(frozen=True)
class RooflineResult:
    """Predicted time of one optimizer step on one GPU, without the input pipeline."""

    gpu: str
    gpu_time_s: float               # Σ per-class roofline (× calibration scale)
    dispatch_floor_s: float         # kernels × host dispatch cost
    classes: tuple[ClassTime, ...]
    notes: tuple[str, ...]

    @property
    def step_s(self) -> float:
        return max(self.gpu_time_s, self.dispatch_floor_s)

    @property
    def bound(self) -> str:
        """What most of the step is spent on: kernel launches (the host dispatch floor or the
        per-kernel overheads), arithmetic, or memory traffic."""
        if self.dispatch_floor_s >= self.gpu_time_s:
            return "overhead"
        compute = sum(c.compute_s for c in self.classes)
        memory = sum(c.memory_s for c in self.classes)
        overhead = sum(c.overhead_s for c in self.classes)
        if overhead > max(compute, memory):
            return "overhead"
        return "compute" if compute >= memory else "memory_bandwidth"


@dataclass(frozen=True)
class EffectiveWork:
    """Per-class FLOPs by dtype and bytes as they will run on a GPU (after autocast remap)."""

    flops: Mapping[str, Mapping[str, float]]
    bytes: Mapping[str, float]
    kernels: Mapping[str, int]
    notes: tuple[str, ...]


def effective_work(view: ProfileView) -> EffectiveWork:
    """The work a GPU will see. A CPU-measured profile of a script that autocasts on CUDA only
    recorded float32 FLOPs: its matmul/conv/attention FLOPs move to the autocast dtype and the
    activation bytes halve (optimizer traffic stays float32)."""
    flops = {c: dict(view.op_classes[c].flops) for c in OP_CLASSES}
    nbytes = {c: float(view.op_classes[c].bytes) for c in OP_CLASSES}
    kernels = {c: int(view.op_classes[c].kernels) for c in OP_CLASSES}
    notes: list[str] = []
    ac = view.autocast_dtype
    tensor_classes = ("matmul", "conv", "attention")
    if (ac in HALF_DTYPES and not view.measured_on_gpu
            and not any(flops[c].get(ac, 0.0) > 0 for c in tensor_classes)):
        moved = False
        for c in tensor_classes:
            f32 = flops[c].pop("float32", 0.0)
            if f32 > 0:
                flops[c][ac] = flops[c].get(ac, 0.0) + f32
                nbytes[c] *= 0.5
                moved = True
        if moved:
            opt = min(nbytes["other"], OPTIMIZER_BYTES_PER_PARAM * view.parameters)
            nbytes["other"] = opt + 0.5 * (nbytes["other"] - opt)
            notes.append(f"the profile ran without autocast on the {view.device_kind}; its float32 "
                         f"matmul/conv/attention FLOPs are taken as {ac} on the GPU and activation "
                         "bytes are halved (optimizer traffic stays float32).")
    return EffectiveWork(flops, nbytes, kernels, tuple(notes))


def math_mode(op_class: str, dtype: str, gpu: GpuSpec, view: ProfileView) -> tuple[str, str | None]:
    """The catalog precision (fp32, tf32, fp16, bf16, fp8) that `dtype` work of `op_class` runs
    at on `gpu`, and a note when it differs from what the profile asked for."""
    tensor_op = op_class in ("matmul", "conv", "attention")
    if dtype == "float32" or not tensor_op:
        if dtype == "float32" and tensor_op and gpu.tf32_tflops:
            if op_class == "conv" and view.tf32_cudnn:
                return "tf32", None
            if op_class in ("matmul", "attention") and view.tf32_matmul:
                return "tf32", None
        return "fp32", None
    if dtype == "float16":
        if gpu.fp16_tflops and gpu.capability >= TENSOR_CORE_MIN:
            return "fp16", None
        return "fp32", f"no fp16 tensor cores on {gpu.name} ({gpu.capability}): fp16 runs at the FP32 rate at best"
    if dtype == "bfloat16":
        if gpu.bf16_tflops and gpu.capability >= BF16_MIN:
            return "bf16", None
        if gpu.fp16_tflops and gpu.capability >= TENSOR_CORE_MIN:
            return "fp16", f"no bf16 on {gpu.name}: time assumes the script switches to fp16 autocast"
        return "fp32", f"no bf16 on {gpu.name}: time assumes float32"
    if dtype.startswith("float8"):
        if gpu.fp8_tflops and gpu.capability >= FP8_MIN:
            return "fp8", None
        alt = "bf16" if gpu.bf16_tflops else ("fp16" if gpu.fp16_tflops and gpu.capability >= TENSOR_CORE_MIN else "fp32")
        return alt, f"no FP8 on {gpu.name}: time assumes {alt}"
    if dtype == "float64":
        return "fp32", "float64 work is costed at the FP32 rate (an optimistic bound on most GPUs)"
    return "fp32", None


def _efficiency(eff: Efficiencies, op_class: str, mode: str, gpu: GpuSpec) -> float:
    kind = "tensor" if (mode in TENSOR_MODES and gpu.capability >= TENSOR_CORE_MIN) else "simt"
    return eff.compute[op_class][kind]


def roofline(view: ProfileView, gpu: GpuSpec, eff: Efficiencies = DEFAULT_EFFICIENCIES,
             work: EffectiveWork | None = None) -> RooflineResult:
    """Predicted step time of the profile's work on `gpu` (no input pipeline)."""
    work = work or effective_work(view)
    notes: list[str] = list(work.notes)
    classes: list[ClassTime] = []
    bw = gpu.bandwidth_gbs * 1e9 * eff.bandwidth
    for c in OP_CLASSES:
        compute_s = 0.0
        modes: list[str] = []
        for dtype, f in work.flops[c].items():
            if f <= 0:
                continue
            mode, note = math_mode(c, dtype, gpu, view)
            if note and note not in notes:
                notes.append(note)
            peak = gpu.peak_tflops(mode) or gpu.fp32_tflops
            compute_s += f / (_efficiency(eff, c, mode, gpu) * peak * 1e12)
            modes.append(f"{dtype}→{mode}")
        memory_s = work.bytes[c] / bw if bw > 0 else 0.0
        classes.append(ClassTime(c, compute_s * eff.time_scale, memory_s * eff.time_scale,
                                 work.kernels[c] * eff.kernel_overhead_s * eff.time_scale, tuple(modes)))
    gpu_time = sum(ct.time_s for ct in classes)
    dispatch = view.kernels_per_step * (DISPATCH_S_COMPILED if view.compiled else eff.dispatch_s)
    if view.compiled and eff.dispatch_s != DISPATCH_S_EAGER:
        dispatch = view.kernels_per_step * eff.dispatch_s * DISPATCH_S_COMPILED / DISPATCH_S_EAGER
    return RooflineResult(gpu.name, gpu_time, dispatch, tuple(classes), tuple(notes))
