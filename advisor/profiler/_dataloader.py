"""The DataLoader as the measuring hooks see it: time and main-thread CPU in ``__next__``, the
worker processes, and what the batches are (batch size, shape, batches per epoch).

`install(rec)` wraps ``_BaseDataLoaderIter.__next__`` (every DataLoader, including subclasses
that frameworks such as Lightning and accelerate build) and accumulates into the
`_hooks.Recorder`: ``wait_acc`` (wall time waiting), ``load_cpu_acc`` (the main thread's CPU
time fetching), ``fetch_acc``, ``worker_pids`` and one `loader_info` per data set.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.utils.data.dataloader as dl_mod
from torch.utils._pytree import tree_leaves


def first_tensor(obj: Any) -> torch.Tensor | None:
    """The first tensor in a batch (a tensor, a tuple, a dict of tensors...)."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, dict) or (hasattr(obj, "values") and hasattr(obj, "keys")):
        try:
            obj = list(obj.values())  # a dict, or a dict-like batch (transformers' BatchEncoding)
        except Exception:
            return None
    try:
        leaves = tree_leaves(obj)
    except Exception:
        return None
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor):
            return leaf
    return None


def loader_info(it: Any, batch: Any) -> dict[str, Any]:
    """What one loader's batches are, from its iterator and its first batch."""
    first = first_tensor(batch)
    try:
        length: int | None = len(it)
    except TypeError:
        length = None
    sampler_bs = getattr(it._index_sampler, "batch_size", None)
    shape = list(first.shape) if first is not None and first.dim() else None
    size: int | None
    if isinstance(sampler_bs, int) and sampler_bs > 0:
        size, source = sampler_bs, "DataLoader batch_size"
    else:
        size = shape[0] if shape else None
        source = "the loader's batches, dimension 0"
    replicas = getattr(getattr(it._index_sampler, "sampler", None), "num_replicas", None)
    info = {"fetches": 0, "num_workers": int(it._num_workers),
            "pin_memory": bool(it._pin_memory), "batch_size": size, "shape": shape,
            "size_source": source, "length": length}
    if isinstance(replicas, int) and replicas > 1:
        info["sampler_replicas"] = replicas  # a DistributedSampler: this rank's share
    return info


def install(rec: Any) -> None:
    """Time every DataLoader's ``__next__`` into `rec` (a `_hooks.Recorder`)."""
    orig_next = dl_mod._BaseDataLoaderIter.__next__

    def __next__(it: Any) -> Any:
        t0 = time.perf_counter()
        c0 = time.thread_time()
        try:
            batch = orig_next(it)
        finally:
            rec.wait_acc += time.perf_counter() - t0
            rec.load_cpu_acc += time.thread_time() - c0
            rec.fetch_acc += 1
        workers = getattr(it, "_workers", None)
        if workers and id(workers) not in rec._worker_lists:
            rec._worker_lists.add(id(workers))
            rec.worker_pids.update(w.pid for w in workers if w.pid)
        info = rec.loaders.get(id(it._dataset))
        if info is None:
            info = loader_info(it, batch)
            rec.loaders[id(it._dataset)] = info
        info["fetches"] += 1
        counter = rec.counter
        if counter is not None and counter.live is not None:
            for t in tree_leaves(batch):
                if isinstance(t, torch.Tensor):
                    counter.live.add(t)
        return batch

    dl_mod._BaseDataLoaderIter.__next__ = __next__  # type: ignore[method-assign,assignment]
