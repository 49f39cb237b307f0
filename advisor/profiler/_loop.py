"""Training-loop styles beyond `torch.optim`, and what the batch is, for the measuring hooks.

* Manual updates (no optimizer: ``p.data.add_(p.grad, alpha=-lr)`` or ``p -= lr * p.grad``
  under ``no_grad``): the leaves a backward reached are found from its autograd graph once
  (their ``AccumulateGrad`` nodes); after each backward a cheap fingerprint of them is taken
  (version counters, data pointers and a few sampled values of the largest ones, since an
  update through ``.data`` bumps no version counter). When the next forward of the model, or
  the next backward, finds the fingerprint changed, the parameters were updated: one step
  (backward + update) ended there. Gradient accumulation without an update changes nothing.
* Closure optimizers (LBFGS): one step is one ``optimizer.step(closure)``, whatever number of
  closure calls it makes. The counted step counts ONE closure call under the dispatch mode and
  multiplies by the calls the step made, so counting costs about one closure, not twenty.
* The batch: a DataLoader's ``batch_size``; without one, the model's input, on the dimension a
  ``batch_first=False`` RNN or attention module takes as the batch (sequence-first data), and
  the batches per epoch from the tensor the input is a slice of.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from advisor.profiler._text import strip_ansi

__all__ = ["strip_ansi"]

MAX_GRAPH_NODES = 200_000
FINGERPRINT_TENSORS = 32
FINGERPRINT_SAMPLES = 8


def graph_leaves(roots: Any) -> list[torch.Tensor]:
    """Leaf tensors a backward from `roots` accumulates gradients into (one graph walk)."""
    if isinstance(roots, torch.Tensor):
        roots = [roots]
    stack = [t.grad_fn for t in roots if isinstance(t, torch.Tensor) and t.grad_fn is not None]
    seen: set[int] = set()
    leaves: dict[int, torch.Tensor] = {}
    while stack and len(seen) < MAX_GRAPH_NODES:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        var = getattr(fn, "variable", None)
        if isinstance(var, torch.Tensor):
            leaves.setdefault(id(var), var)
        stack.extend(nxt for nxt, _ in fn.next_functions if nxt is not None)
    return list(leaves.values())


class ParamWatch:
    """Tells whether parameters changed since the last `snapshot` (a manual update)."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        self.params = params
        big = sorted(params, key=lambda p: -p.numel())[:FINGERPRINT_TENSORS]
        self._sampled = [(p, torch.linspace(0, p.numel() - 1, min(FINGERPRINT_SAMPLES,
                                                                    p.numel())).long())
                         for p in big if p.numel() > 0]
        self._prev: Any = None

    def _fingerprint(self) -> Any:
        from torch.utils._python_dispatch import _disable_current_modes
        meta = tuple((p._version, p.data_ptr()) for p in self.params)
        with _disable_current_modes(), torch.no_grad():
            vals = [p.detach().reshape(-1)[idx].float() for p, idx in self._sampled]
            sample = torch.cat(vals) if vals else torch.zeros(0)
        return meta, sample

    def snapshot(self) -> None:
        self._prev = self._fingerprint()

    def changed(self) -> bool:
        if self._prev is None:
            return False
        meta, sample = self._fingerprint()
        if meta != self._prev[0]:
            return True
        return bool(sample.numel() != self._prev[1].numel() or
                    not torch.equal(sample, self._prev[1]))


def find_closure(args: tuple, kwargs: dict) -> tuple[Callable | None, str | int | None]:
    """The closure passed to ``optimizer.step`` and where it was (kwarg name or position);
    `args` as the step hooks get them, the optimizer first."""
    if callable(kwargs.get("closure")):
        return kwargs["closure"], "closure"
    if len(args) > 1 and callable(args[1]):
        return args[1], 1
    return None, None


def with_closure(args: tuple, kwargs: dict, where: str | int, fn: Callable) -> tuple[tuple, dict]:
    if where == "closure":
        return args, {**kwargs, "closure": fn}
    assert isinstance(where, int)
    return (*args[:where], fn, *args[where + 1:]), kwargs


def _first_tensor_shape(obj: Any) -> list[int] | None:
    from torch.utils._pytree import tree_leaves
    try:
        leaves = tree_leaves(obj)
    except Exception:
        return None
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor) and leaf.dim():
            return list(leaf.shape)
    return None


def seq_first_batch(module: torch.nn.Module, args: Any) -> dict[str, Any] | None:
    """The batch of a sequence-first module call: ``batch_first=False`` RNN / attention."""
    if getattr(module, "batch_first", None) is not False:
        return None
    shape = _first_tensor_shape(args[:1] if isinstance(args, tuple) else args)
    if not shape or len(shape) < 3:  # (S, F) is an unbatched call
        return None
    return {"size": int(shape[1]), "dim": 1, "shape": shape,
            "source": f"{type(module).__name__}(batch_first=False) input (sequence, batch, ...)"}


def sliced_from(t: torch.Tensor) -> dict[str, Any] | None:
    """If `t` is a slice along one dimension of a larger tensor (``data[i:i+n]``), that
    dimension, its length and the number of such slices in the larger tensor."""
    base = t._base
    if base is None or base.dim() != t.dim() or base.numel() <= t.numel():
        return None
    diff = [d for d in range(t.dim()) if base.shape[d] != t.shape[d]]
    if len(diff) != 1 or t.shape[diff[0]] == 0:
        return None
    d = diff[0]
    return {"dim": d, "of": int(base.shape[d]), "slice": int(t.shape[d]),
            "slices": -(-int(base.shape[d]) // int(t.shape[d]))}


def decide_batch(loader: dict[str, Any] | None, model_input: dict[str, Any] | None,
                 seq_first: dict[str, Any] | None) -> dict[str, Any] | None:
    """{"size", "dim", "shape", "source", "batches_per_epoch"} of the batch, or None."""
    if loader is not None and loader.get("batch_size"):
        size = int(loader["batch_size"])
        shape = loader.get("shape")
        dim = 0
        if shape and size in shape:
            dim = shape.index(size)
        if seq_first and shape and len(shape) > 1 and shape[1] == seq_first["size"] \
                and shape[0] != size:
            dim = 1
        return {"size": size, "dim": dim, "shape": shape, "source": loader.get("size_source"),
                "batches_per_epoch": loader.get("length")}
    if model_input is None:
        return None
    shape = model_input.get("shape")
    sliced = model_input.get("sliced")
    if seq_first is not None:
        out = dict(seq_first)
        out["shape"] = shape or seq_first["shape"]
        if shape and len(shape) > 1 and shape[1] == seq_first["size"]:
            out["dim"] = 1
    elif shape:
        out = {"size": int(shape[0]), "dim": 0, "shape": shape, "source": "the model's input, "
               "dimension 0"}
    else:
        return None
    out["batches_per_epoch"] = None
    if sliced is not None and sliced["dim"] != out["dim"]:
        # data[i:i+bptt] of a (tokens, batch) tensor: slices along the sequence
        out["batches_per_epoch"] = sliced["slices"]
    elif sliced is not None and sliced["slice"] == out["size"]:
        out["batches_per_epoch"] = sliced["slices"]  # x[i:i+bs] of an in-memory data set
    return out


class NoStepWatchdog:
    """Stops a run that shows no training step within `limit_s`, saying what it saw."""

    def __init__(self, limit_s: float, on_timeout: Callable[[str], None],
                 seen: Callable[[], dict[str, int]]) -> None:
        self.limit_s = limit_s
        self.on_timeout = on_timeout
        self.seen = seen
        self.t0 = time.monotonic()
        self.stepped = False
        self._thread = threading.Thread(target=self._run, name="advisor-no-step", daemon=True)

    def start(self) -> None:
        if self.limit_s > 0:
            self._thread.start()

    def stop(self) -> None:
        """Another process measures (a spawned rank 0): never fire here."""
        self.stepped = True

    def _run(self) -> None:
        while not self.stepped:
            left = self.limit_s - (time.monotonic() - self.t0)
            if left <= 0:
                break
            time.sleep(min(left, 0.5))
        if self.stepped:
            return
        s = self.seen()
        if s["backward"] == 0:
            why = (f"{s['forward']} forward passes of a model and no backward: it does not look "
                   "like a training loop")
        else:
            why = (f"{s['backward']} backward passes but no optimizer.step() and no parameter "
                   "update after them")
        self.on_timeout(
            f"no training step was seen within {self.limit_s:g} s ({why}). A step is an "
            "optimizer.step(), or a backward followed by an update of the parameters. To fix: "
            "profile it as a whole with --command \"python SCRIPT ARGS\" (wall time, CPU, "
            "memory), or raise --timeout if the script prepares data for longer before training")
