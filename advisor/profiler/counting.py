"""Per-step accounting by dispatch: FLOPs by dtype, bytes moved, kernels, peak live tensor bytes.

A `StepCounter` is a `TorchDispatchMode` switched on for one dedicated optimizer step (never the
timed ones: dispatching every aten op through Python costs far more than the op on small models).
It sees every aten op below autograd, forward and backward, after autocast has chosen dtypes.

* FLOPs come from `torch.utils.flop_counter.flop_registry`, so the count follows the same
  convention as `FlopCounterMode`: matmul, convolution and attention kernels are counted (2·M·N·K
  for a matmul), element-wise ops are not (their cost is the bytes they move). Ops with a
  CompositeImplicitAutograd decomposition are decomposed first, as `FlopCounterMode` does.
  One addition: the CPU flash-attention kernels, which the registry lacks (so `FlopCounterMode`
  counts 0 for attention on a CPU), are counted with the formula of the GPU kernels.
* Bytes of an op are the bytes of its tensor inputs plus outputs; views move nothing.
* Live bytes: each storage is counted once, from the first op that produces (or the baseline that
  holds) it until its `StorageImpl` is freed; a C++ weak reference tells us when (Python wrappers
  die earlier than storages saved for backward, so Python finalizers would under-count).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import flop_registry, sdpa_backward_flop_count, sdpa_flop_count

OP_CLASSES = ("matmul", "conv", "attention", "other")

_MATMUL = {"mm", "addmm", "bmm", "baddbmm", "_scaled_mm", "_int_mm", "matmul", "dot", "mv",
           "addmv", "addbmm", "linear"}

_aten = torch.ops.aten
# Ops that launch no kernel: metadata and aliasing (views are detected by their schema).
_NO_KERNEL = {_aten.detach.default, _aten.alias.default, _aten.lift_fresh.default,
              _aten._unsafe_view.default, _aten.empty_like.default, _aten.empty.memory_format,
              _aten.empty_strided.default, _aten.new_empty.default,
              _aten.new_empty_strided.default}
_METADATA = {_aten.is_contiguous.default, _aten.is_contiguous.memory_format,
             _aten.is_strides_like_format.default, _aten.is_non_overlapping_and_dense.default,
             _aten.size.default, _aten.sym_size.default, _aten.stride.default,
             _aten.sym_stride.default, _aten.storage_offset.default,
             _aten.sym_storage_offset.default, _aten.numel.default, _aten.sym_numel.default,
             _aten.dim.default, torch.ops.prim.layout.default}


def _cpu_sdpa(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    return sdpa_flop_count(query.shape, key.shape, value.shape)


def _cpu_sdpa_backward(grad_out: Any, query: Any, key: Any, value: Any, *args: Any,
                       **kwargs: Any) -> int:
    return sdpa_backward_flop_count(grad_out.shape, query.shape, key.shape, value.shape)


_GATES = {4: "LSTM", 3: "GRU", 1: "RNN"}


def _rnn_layer_flops(x_shape: Any, w_ih_shape: Any, w_hh_shape: Any, batch_first: bool) -> int:
    """One direction of one recurrent layer over a sequence: the two gate GEMMs per time step,
    2·B·(I + H)·G·H FLOPs (G·H rows of the stacked gate weights: 4H LSTM, 3H GRU, H RNN)."""
    if len(x_shape) == 3:
        steps, batch = (x_shape[1], x_shape[0]) if batch_first else (x_shape[0], x_shape[1])
    else:  # (S, F): unbatched
        steps, batch = x_shape[0], 1
    gh, inp = w_ih_shape
    hid = w_hh_shape[1]
    return 2 * steps * batch * gh * (inp + hid)


def _mkldnn_rnn_layer(input: Any, weight0: Any, weight1: Any, *args: Any, **kwargs: Any) -> int:
    # aten::mkldnn_rnn_layer(input, weight0=w_ih, weight1=w_hh, ..., batch_first, train)
    batch_first = bool(args[-2]) if len(args) >= 2 and isinstance(args[-2], bool) else False
    return _rnn_layer_flops(input.shape, weight0.shape, weight1.shape, batch_first)


def _mkldnn_rnn_layer_backward(input: Any, weight1: Any, weight2: Any, *args: Any,
                               **kwargs: Any) -> int:
    # gradients of the input and of both weights: twice the forward GEMMs
    batch_first = False
    for a in args:
        if isinstance(a, bool):
            batch_first = a  # the last bool before `workspace` is batch_first
    return 2 * _rnn_layer_flops(input.shape, weight1.shape, weight2.shape, batch_first)


def _cudnn_rnn_flops(input: Any, weight: Any, weight_stride0: int, *args: Any,
                     backward: bool = False) -> int:
    # aten::_cudnn_rnn(input, weight[], weight_stride0, weight_buf, hx, cx, mode, hidden_size,
    #                  proj_size, num_layers, batch_first, dropout, train, bidirectional, ...)
    rest = list(args)
    try:
        mode, hidden, num_layers = int(rest[3]), int(rest[4]), int(rest[6])
        batch_first, bidir = bool(rest[7]), bool(rest[10])
    except (IndexError, TypeError, ValueError):
        return 0
    gates = {2: 4, 3: 3}.get(mode, 1)  # cuDNN modes: 0 relu, 1 tanh, 2 LSTM, 3 GRU
    dirs = 2 if bidir else 1
    shape = input.shape
    total = 0
    inp = shape[-1]
    for layer in range(num_layers):
        layer_in = inp if layer == 0 else hidden * dirs
        total += dirs * _rnn_layer_flops(shape, (gates * hidden, layer_in),
                                         (gates * hidden, hidden), batch_first)
    return 2 * total if backward else total


def _cudnn_rnn(input: Any, weight: Any, weight_stride0: int, *args: Any, **kwargs: Any) -> int:
    return _cudnn_rnn_flops(input, weight, weight_stride0, *args)


def _cudnn_rnn_backward(input: Any, weight: Any, weight_stride0: int, *args: Any,
                        **kwargs: Any) -> int:
    # as the forward's, with output, grad_output, grad_hy, grad_cy after cx
    rest = tuple(args[:3]) + tuple(args[7:])
    return _cudnn_rnn_flops(input, weight, weight_stride0, *rest, backward=True)


# Kernels torch's registry does not know, counted with the formula of their GPU siblings, and
# fused recurrent kernels (oneDNN on a CPU, cuDNN on a GPU), counted analytically: FlopCounterMode
# sees neither, though they hold all of an LSTM's GEMMs.
_EXTRA_FORMULAS: dict[str, Any] = {
    "_scaled_dot_product_flash_attention_for_cpu": _cpu_sdpa,
    "_scaled_dot_product_flash_attention_for_cpu_backward": _cpu_sdpa_backward,
    "mkldnn_rnn_layer": _mkldnn_rnn_layer,
    "mkldnn_rnn_layer_backward": _mkldnn_rnn_layer_backward,
    "_cudnn_rnn": _cudnn_rnn,
    "_cudnn_rnn_backward": _cudnn_rnn_backward,
}
_RNN_KERNELS = {"mkldnn_rnn_layer", "mkldnn_rnn_layer_backward", "_cudnn_rnn",
                "_cudnn_rnn_backward"}


def scale_summary(summary: dict[str, Any], factor: int) -> dict[str, Any]:
    """A `StepCounter.summary()` of one call (one closure) times the calls a step made; the
    peak live bytes are not scaled (the calls run one after the other)."""
    out = dict(summary)
    out["flops_per_step"] = summary["flops_per_step"] * factor
    out["flops_by_dtype"] = {k: v * factor for k, v in summary["flops_by_dtype"].items()}
    out["op_classes"] = {c: {"flops": {k: v * factor for k, v in d["flops"].items()},
                             "bytes": int(d["bytes"] * factor),
                             "kernels": int(d["kernels"] * factor)}
                         for c, d in summary["op_classes"].items()}
    out["bytes_per_step"] = int(summary["bytes_per_step"] * factor)
    out["kernels_per_step"] = int(summary["kernels_per_step"] * factor)
    return out


def op_class(name: str) -> str:
    """Which kind of kernel an aten op name is: matmul, conv, attention or other."""
    if "attention" in name:
        return "attention"
    if "conv" in name:
        return "conv"
    if name in _MATMUL or name in _RNN_KERNELS:
        return "matmul"
    return "other"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class LiveBytes:
    """Bytes of distinct live storages on one device kind, with their peak.

    Storages are keyed by their `StorageImpl` address and watched through C++ weak references,
    so a storage kept alive only by autograd (a tensor saved for backward) still counts.
    """

    def __init__(self, device_type: str = "cpu") -> None:
        self.device_type = device_type
        self._live: dict[int, tuple[Any, int]] = {}  # cdata -> (weak ref handle, nbytes)
        self.current = 0
        self.peak = 0
        self.baseline = 0

    def add(self, t: torch.Tensor) -> bool:
        """Count the storage behind `t` if not yet counted. True when it was new."""
        if t.device.type != self.device_type or t.is_sparse or t.is_nested:
            return False
        try:
            st = t.untyped_storage()
        except (RuntimeError, NotImplementedError):
            return False
        key = st._cdata
        if key in self._live:
            return False
        nbytes = st.nbytes()
        self._live[key] = (st._weak_ref(), nbytes)
        self.current += nbytes
        if self.current > self.peak:
            self.peak = self.current
        return True

    def add_baseline(self, tensors: Iterable[torch.Tensor]) -> None:
        for t in tensors:
            self.add(t)
        self.baseline = self.current
        self.peak = self.current

    def sweep(self) -> None:
        """Forget storages that have been freed."""
        expired = torch.UntypedStorage._expired
        free = torch.UntypedStorage._free_weak_ref
        gone = [k for k, (ref, _) in self._live.items() if expired(ref)]
        for k in gone:
            ref, nbytes = self._live.pop(k)
            free(ref)
            self.current -= nbytes

    def close(self) -> None:
        free = torch.UntypedStorage._free_weak_ref
        for ref, _ in self._live.values():
            free(ref)
        self._live.clear()


class StepCounter(TorchDispatchMode):
    """Counts FLOPs (by dtype and kind of op), bytes, kernels and peak live bytes while active."""

    def __init__(self, track_memory_on: str | None = "cpu") -> None:
        super().__init__()
        self.flops: dict[str, dict[str, float]] = {c: defaultdict(float) for c in OP_CLASSES}
        self.bytes: dict[str, int] = dict.fromkeys(OP_CLASSES, 0)
        self.kernels: dict[str, int] = dict.fromkeys(OP_CLASSES, 0)
        self.op_counts: dict[str, int] = defaultdict(int)
        self.live = LiveBytes(track_memory_on) if track_memory_on else None

    # -- dispatch ---------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _METADATA or isinstance(func, torch._ops.HigherOrderOperator):
            return func(*args, **kwargs)
        packet = func._overloadpacket
        if packet not in flop_registry:
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        live = self.live
        if live is not None:
            live.sweep()  # frees since the last op; allocations happen only inside ops
        out = func(*args, **kwargs)
        # Only functional ops allocate: a view or an in-place op returns an existing storage,
        # which is either counted already or not ours (say, a view into a whole data set
        # that stays in host memory).
        if live is not None and not func.is_view and not func._schema.is_mutable:
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    live.add(t)
        self._account(func, packet, args, kwargs, out)
        return out

    def _account(self, func: Any, packet: Any, args: Any, kwargs: Any, out: Any) -> None:
        name = packet.__name__
        if func.is_view or func in _NO_KERNEL:
            return
        cls = op_class(name)
        self.kernels[cls] += 1
        self.op_counts[name] += 1
        moved = 0
        first_dtype = None
        for t in tree_leaves((args, kwargs)):
            if isinstance(t, torch.Tensor):
                moved += _nbytes(t)
                if first_dtype is None:
                    first_dtype = t.dtype
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                moved += _nbytes(t)
                if first_dtype is None:
                    first_dtype = t.dtype
        self.bytes[cls] += moved
        formula = flop_registry.get(packet) or _EXTRA_FORMULAS.get(name)
        if formula is not None:
            flops = formula(*args, **kwargs, out_val=out)
            if flops:
                key = dtype_name(first_dtype) if first_dtype is not None else "unknown"
                self.flops[cls][key] += float(flops)

    # -- results ----------------------------------------------------------------------------
    def flops_by_dtype(self) -> dict[str, float]:
        total: dict[str, float] = defaultdict(float)
        for per in self.flops.values():
            for k, v in per.items():
                total[k] += v
        return dict(total)

    def total_flops(self) -> float:
        return float(sum(self.flops_by_dtype().values()))

    def summary(self) -> dict[str, Any]:
        classes = {c: {"flops": dict(self.flops[c]), "bytes": int(self.bytes[c]),
                       "kernels": int(self.kernels[c])} for c in OP_CLASSES}
        out: dict[str, Any] = {
            "flops_per_step": self.total_flops(),
            "flops_by_dtype": self.flops_by_dtype(),
            "op_classes": classes,
            "bytes_per_step": int(sum(self.bytes.values())),
            "kernels_per_step": int(sum(self.kernels.values())),
            "uses_sdpa": self.kernels["attention"] > 0,
        }
        if self.live is not None:
            out["peak_live_bytes"] = int(self.live.peak)
            out["baseline_live_bytes"] = int(self.live.baseline)
        return out

    def close(self) -> None:
        if self.live is not None:
            self.live.close()
