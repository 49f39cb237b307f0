"""What precision the profiled script asks for: autocast, GradScaler, torch.compile.

`PrecisionWatch.install()` wraps ``torch.autocast`` (entering and constructing), the
``GradScaler`` constructor and ``torch.compile`` in the child before the script runs;
`facts(device_type)` is the profile's ``precision`` section. Kept apart from `_hooks`, which
measures steps: these patches only record what the script requests.
"""

from __future__ import annotations

from typing import Any

import torch

from advisor.profiler.counting import dtype_name


class PrecisionWatch:
    """Records autocast (entered and requested), an enabled GradScaler and torch.compile."""

    def __init__(self) -> None:
        self.autocast: dict[str, str] = {}            # device -> dtype, entered and enabled
        self.autocast_requested: dict[str, str] = {}  # device -> dtype, asked for
        self.grad_scaler = False
        self.compiled = False

    def install(self) -> None:
        watch = self
        ac = torch.amp.autocast_mode.autocast
        orig_enter = ac.__enter__

        def __enter__(self: Any) -> Any:
            if getattr(self, "_enabled", False):
                watch.autocast[str(self.device)] = dtype_name(self.fast_dtype)
            return orig_enter(self)

        ac.__enter__ = __enter__  # type: ignore[method-assign]
        orig_ac_init = ac.__init__

        def ac_init(self: Any, device_type: str, dtype: Any = None, enabled: bool = True,
                    *args: Any, **kwargs: Any) -> None:
            # Record what the script *asks* for: torch.autocast("cuda", ...) on a machine
            # without CUDA disables itself (with a warning), but on the pool's GPUs it will run.
            if enabled and str(device_type) not in watch.autocast:
                default = torch.float16 if str(device_type) == "cuda" else torch.bfloat16
                watch.autocast_requested[str(device_type)] = dtype_name(dtype or default)
            orig_ac_init(self, device_type, dtype, enabled, *args, **kwargs)

        ac.__init__ = ac_init  # type: ignore[method-assign]
        gs = torch.amp.grad_scaler.GradScaler
        orig_init = gs.__init__

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            orig_init(self, *args, **kwargs)
            if getattr(self, "_enabled", False):
                watch.grad_scaler = True

        gs.__init__ = __init__  # type: ignore[method-assign]
        orig_compile = torch.compile

        def compile(*args: Any, **kwargs: Any) -> Any:
            watch.compiled = True
            return orig_compile(*args, **kwargs)

        torch.compile = compile

    def facts(self, device_type: str) -> dict[str, Any]:
        # Autocast entered for a device that is absent here (e.g. "cuda" on a laptop) is
        # disabled by torch; the script still asks for it, and it applies on the pool's GPUs.
        per_device = {**self.autocast_requested, **self.autocast}
        autocast = self.autocast.get(device_type)
        if autocast is None and per_device:
            autocast = per_device.get("cuda") or next(iter(per_device.values()))
        return {"autocast_dtype": autocast, "autocast": per_device,
                "autocast_requested": dict(self.autocast_requested),
                "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "grad_scaler": self.grad_scaler}
