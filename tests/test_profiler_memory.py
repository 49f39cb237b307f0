"""Peak tensor memory of a profiled step against an independent tracker.

The profiler counts storages produced by functional aten ops and watches them through C++ weak
references (advisor/profiler/counting.py). The tracker here is built differently: a dispatch
mode that registers every storage an op reads or writes and a Python `weakref.finalize` on the
storage object (torch keeps that object alive exactly as long as the storage), from a baseline
of the parameters, gradients and optimizer state. Both run on the same steady-state step of the
same model (tests/fixtures/scripts/memory_models.py): the peaks must agree within 10%. Host
memory is the tree's proportional set size. The profiles (`memory_profiles`) are taken once per
session in tests/profiler_fixtures.py."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
import torch
from profiler_fixtures import load_module
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from advisor.profiler._procstat import pss_bytes, tree_pss_bytes

SCRIPT = Path(__file__).resolve().parent / "fixtures" / "scripts" / "memory_models.py"


def _models_module():
    return load_module(SCRIPT)


class LiveStorageTracker(TorchDispatchMode):
    """Bytes of live CPU storages touched since the baseline; their peak."""

    def __init__(self, baseline) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = self.peak = 0
        for t in baseline:
            self._add(t)

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key)

    def _add(self, t) -> None:
        if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
            return
        storage = t.untyped_storage()
        key = id(storage)
        if key in self.live:
            return
        self.live[key] = storage.nbytes()
        self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for t in tree_leaves((args, kwargs)):
            self._add(t)
        out = func(*args, **kwargs)
        for t in tree_leaves(out):
            self._add(t)
        return out


def tracked_peak(name: str) -> int:
    mod = _models_module()
    model, opt, x, y, loss_fn = mod.make(name)
    for _ in range(3):
        mod.train_step(model, opt, x, y, loss_fn)
    gc.collect()
    params = list(model.parameters())
    state = [v for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    baseline = params + [p.grad for p in params if p.grad is not None] + state
    baseline += list(model.buffers())
    tracker = LiveStorageTracker(baseline)
    # Holding the baseline list would keep last step's gradients alive through zero_grad()
    # (set to None) and add a gradient-sized block that the script itself does not hold.
    del baseline, params, state
    with tracker:
        mod.train_step(model, opt, x, y, loss_fn)
    return tracker.peak


@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer"])
def test_peak_tensor_memory_matches_an_independent_tracker(memory_profiles, name):
    measured = memory_profiles[name]["peak_memory_bytes"]["device"]
    expected = tracked_peak(name)
    assert abs(measured - expected) / expected < 0.10, (name, measured, expected)


def test_transformer_attention_is_counted_on_the_cpu_kernel(memory_profiles):
    p = memory_profiles["transformer"]
    assert p["precision"]["uses_sdpa"] is True
    assert p["op_classes"]["attention"]["flops"]["float32"] > 0
    assert p["optimizers"] == ["AdamW"]


def test_mlp_peak_holds_weights_momentum_activations_and_gradients(memory_profiles):
    p = memory_profiles["mlp"]
    br = p["peak_memory_bytes"]["breakdown"]
    assert br["optimizer_state"] == br["parameters"]  # one momentum buffer per parameter
    saved = 128 * (64 + 8 * 256 + 10) * 4  # inputs of each Linear and the log-softmax
    # zero_grad() frees the gradients before the forward, and backward frees the saved
    # activations as it creates gradients: the peak holds weights, momentum and one of the two.
    floor = br["parameters"] + br["optimizer_state"] + max(saved, br["gradients"])
    assert p["peak_memory_bytes"]["device"] >= floor


def test_host_memory_is_a_proportional_set_size(memory_profiles):
    own = pss_bytes()
    assert own is not None and own > 0
    assert tree_pss_bytes([]) == pytest.approx(own, rel=0.2)
    host = memory_profiles["mlp"]["peak_memory_bytes"]["host"]
    assert 50 * 2**20 < host < 4 * 2**30
