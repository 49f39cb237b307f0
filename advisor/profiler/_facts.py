"""Facts of the profiled run that are read once, at the end: device, environment, the model.

Used by `_hooks.Recorder`; kept apart so the hooks module stays about measuring steps.
"""

from __future__ import annotations

import io
import os
import platform
from typing import Any

import torch

from advisor.profiler.counting import dtype_name


def unique_nbytes(tensors: Any) -> int:
    seen: set[int] = set()
    total = 0
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            continue
        st = t.untyped_storage()
        if st._cdata not in seen:
            seen.add(st._cdata)
            total += st.nbytes()
    return total


def device_facts(device_type: str, cpu_name: str) -> dict[str, Any]:
    if device_type == "cuda":
        idx = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        return {"kind": "cuda", "name": props.name,
                "capability": float(f"{props.major}.{props.minor}"),
                "memory_gb": round(props.total_memory / 2**30, 2)}
    return {"kind": device_type, "name": cpu_name if device_type == "cpu" else device_type,
            "capability": None, "memory_gb": None}


def environment_facts() -> dict[str, Any]:
    cuda = torch.version.cuda
    try:
        arch = torch.cuda.get_arch_list() if torch.cuda.is_available() or cuda else []
    except Exception:
        arch = []
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": cuda, "arch_list": list(arch),
            "platform": f"{platform.system()}-{platform.machine()}",
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def cuda_context_bytes(device_type: str) -> int | None:
    if device_type != "cuda":
        return None
    try:
        free, total = torch.cuda.mem_get_info()
        ctx = total - free - torch.cuda.memory_reserved()
        if 50 * 2**20 <= ctx <= 4 * 2**30:
            return int(ctx)
    except Exception:
        pass
    return 500 * 2**20


def model_facts(models: list[torch.nn.Module], opt_params: list[torch.Tensor],
                optimizers: list[Any], opt_state: list[torch.Tensor], compiled: bool,
                optimizer_names: list[str]) -> dict[str, Any]:
    """Parameters, gradient/optimizer bytes and the checkpoint size of what was trained."""
    if models:
        params: dict[int, torch.Tensor] = {}
        for m in models:
            for p in m.parameters():
                params.setdefault(id(p), p)
        all_params = list(params.values())
    else:
        all_params = opt_params
    trainable = [p for p in opt_params if p.requires_grad]
    grads = [p.grad for p in opt_params if p.grad is not None]
    facts: dict[str, Any] = {
        "parameters": int(sum(p.numel() for p in all_params)),
        "trainable_parameters": int(sum(p.numel() for p in trainable)),
        "param_dtype": dtype_name(all_params[0].dtype) if all_params else None,
        "parameter_bytes": unique_nbytes(all_params),
        "gradient_bytes": unique_nbytes(grads) if grads else unique_nbytes(trainable),
        "optimizer_state_bytes": unique_nbytes(opt_state),
        "models": [type(m).__name__ for m in models],
        "optimizers": optimizer_names,
        "compiled": compiled or any(type(m).__name__ == "OptimizedModule" for m in models),
    }
    try:
        state: dict[str, Any] = {}
        if len(models) == 1:
            state["model"] = models[0].state_dict()
        elif models:
            state["model"] = {str(i): m.state_dict() for i, m in enumerate(models)}
        else:
            state["model"] = [p.detach() for p in opt_params]
        opts = [o.state_dict() for o in optimizers]
        if opts:
            state["optim"] = opts[0] if len(opts) == 1 else opts
        buf = io.BytesIO()
        torch.save(state, buf)
        facts["checkpoint_bytes"] = buf.tell()
    except Exception as exc:  # a model that cannot be saved: say so, do not fail
        facts["checkpoint_bytes"] = None
        facts["checkpoint_error"] = f"{type(exc).__name__}: {exc}"
    return facts
