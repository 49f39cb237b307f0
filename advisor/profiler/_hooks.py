"""The measuring hooks installed in the child before the user's script runs.

Step boundaries are the global optimizer post-step hooks of the first optimizer that steps
(the primary one; others, as in a GAN, run inside its steps). Numbering optimizer steps 1, 2, ...:

* step 1 is always warm-up (it has no start boundary); warm-up is ``max(K, 1)`` steps;
* one step is counted with the dispatch mode of `counting` (FLOPs, bytes, kernels, live tensor
  bytes): the last warm-up step when there are at least two, else an extra step 2;
* the next N steps are timed, interval from one post-hook to the next, with only cheap hooks on:
  a clock read, a DataLoader ``__next__`` timer and a ``backward`` call counter.

After the last timed step the results are written and `StopProfiling` is raised out of
``optimizer.step()`` to end the script.
"""

from __future__ import annotations

import gc
import io
import json
import os
import platform
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
import torch.optim.optimizer as optim_mod
import torch.utils.data.dataloader as dl_mod
from torch.utils._pytree import tree_leaves

from advisor.profiler.counting import StepCounter, dtype_name


class StopProfiling(BaseException):
    """Raised from the optimizer hook to stop the user's script once measured."""


def _first_tensor(obj: Any) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, dict):
        obj = list(obj.values())
    try:
        leaves = tree_leaves(obj)
    except Exception:
        return None
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor):
            return leaf
    return None


def _unique_nbytes(tensors: Any) -> int:
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


class Recorder:
    """Holds every measurement of one run and the hooks that take them."""

    def __init__(self, cfg: dict, run_dir: Path, watch: Any) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.watch = watch
        self.bare = bool(cfg.get("bare", False))
        self.warmup = max(int(cfg["warmup"]), 1)
        self.count_step = self.warmup if self.warmup >= 2 else 2
        self.first_measured = max(self.warmup, self.count_step) + 1
        self.last_step = self.first_measured + int(cfg["steps"]) - 1
        self.n = 0
        self.primary: Any = None
        self.optimizers: list[Any] = []
        self.t_prev = 0.0
        self.t_start = time.perf_counter()
        self.intervals: list[float] = []
        self.waits: list[float] = []
        self.micro: list[int] = []
        self.fetches_per_step: list[int] = []
        self.wait_acc = 0.0
        self.backward_acc = 0
        self.fetch_acc = 0
        self.loaders: dict[int, dict[str, Any]] = {}
        self.modules: dict[int, torch.nn.Module] = {}
        self.module_input_batch: int | None = None
        self._depth = 0
        self._module_hooks: list[Any] = []
        self.counter: StepCounter | None = None
        self.counted: dict[str, Any] | None = None
        self.autocast: dict[str, str] = {}
        self.autocast_requested: dict[str, str] = {}
        self.grad_scaler = False
        self.compiled = False
        self.device_type = "cpu"
        self.device_cpu_name = ""
        self.done = False

    # -- installation ------------------------------------------------------------------------
    def install(self) -> None:
        optim_mod.register_optimizer_step_pre_hook(self._pre_step)
        optim_mod.register_optimizer_step_post_hook(self._post_step)
        if self.bare:
            return
        self._patch_dataloader()
        self._patch_backward()
        self._patch_precision()
        self._module_hooks = [
            torch.nn.modules.module.register_module_forward_pre_hook(self._module_pre),
            torch.nn.modules.module.register_module_forward_hook(self._module_post),
        ]

    def _patch_dataloader(self) -> None:
        rec = self
        orig_next = dl_mod._BaseDataLoaderIter.__next__

        def __next__(it: Any) -> Any:
            t0 = time.perf_counter()
            try:
                batch = orig_next(it)
            finally:
                rec.wait_acc += time.perf_counter() - t0
                rec.fetch_acc += 1
            info = rec.loaders.get(id(it._dataset))
            if info is None:
                info = rec._loader_info(it, batch)
                rec.loaders[id(it._dataset)] = info
            info["fetches"] += 1
            if rec.counter is not None:
                for t in tree_leaves(batch):
                    if isinstance(t, torch.Tensor) and rec.counter.live is not None:
                        rec.counter.live.add(t)
            return batch

        dl_mod._BaseDataLoaderIter.__next__ = __next__  # type: ignore[method-assign,assignment]

    def _loader_info(self, it: Any, batch: Any) -> dict[str, Any]:
        first = _first_tensor(batch)
        try:
            length: int | None = len(it)
        except TypeError:
            length = None
        sampler_bs = getattr(it._index_sampler, "batch_size", None)
        return {"fetches": 0, "num_workers": int(it._num_workers),
                "pin_memory": bool(it._pin_memory),
                "batch_size": int(first.shape[0]) if first is not None and first.dim() else
                sampler_bs, "length": length}

    def _patch_backward(self) -> None:
        rec = self
        orig = torch.autograd.backward

        def backward(*args: Any, **kwargs: Any) -> Any:
            rec.backward_acc += 1
            return orig(*args, **kwargs)

        torch.autograd.backward = backward

    def _patch_precision(self) -> None:
        rec = self
        ac = torch.amp.autocast_mode.autocast
        orig_enter = ac.__enter__

        def __enter__(self: Any) -> Any:
            if getattr(self, "_enabled", False):
                rec.autocast[str(self.device)] = dtype_name(self.fast_dtype)
            return orig_enter(self)

        ac.__enter__ = __enter__  # type: ignore[method-assign]
        orig_ac_init = ac.__init__

        def ac_init(self: Any, device_type: str, dtype: Any = None, enabled: bool = True,
                    *args: Any, **kwargs: Any) -> None:
            # Record what the script *asks* for: torch.autocast("cuda", ...) on a machine
            # without CUDA disables itself (with a warning), but on the pool's GPUs it will run.
            if enabled and str(device_type) not in rec.autocast:
                default = torch.float16 if str(device_type) == "cuda" else torch.bfloat16
                rec.autocast_requested[str(device_type)] = dtype_name(dtype or default)
            orig_ac_init(self, device_type, dtype, enabled, *args, **kwargs)

        ac.__init__ = ac_init  # type: ignore[method-assign]
        gs = torch.amp.grad_scaler.GradScaler
        orig_init = gs.__init__

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            orig_init(self, *args, **kwargs)
            if getattr(self, "_enabled", False):
                rec.grad_scaler = True

        gs.__init__ = __init__  # type: ignore[method-assign]
        orig_compile = torch.compile

        def compile(*args: Any, **kwargs: Any) -> Any:
            rec.compiled = True
            return orig_compile(*args, **kwargs)

        torch.compile = compile

    # -- module discovery (first step only) -------------------------------------------------
    def _module_pre(self, module: torch.nn.Module, args: Any) -> None:
        self._depth += 1
        if self._depth == 1:
            self.modules.setdefault(id(module), module)
            if self.module_input_batch is None:
                t = _first_tensor(args)
                if t is not None and t.dim():
                    self.module_input_batch = int(t.shape[0])

    def _module_post(self, module: torch.nn.Module, args: Any, out: Any) -> None:
        self._depth = max(0, self._depth - 1)

    # -- step hooks ---------------------------------------------------------------------------
    def _pre_step(self, opt: Any, args: Any, kwargs: Any) -> None:
        if not any(o is opt for o in self.optimizers):
            self.optimizers.append(opt)
        if self.primary is None:
            self.primary = opt
            params = [p for g in opt.param_groups for p in g["params"]]
            if params:
                self.device_type = params[0].device.type

    def _sync(self) -> None:
        if self.device_type == "cuda":
            torch.cuda.synchronize()
        elif self.device_type == "mps":
            torch.mps.synchronize()

    def _post_step(self, opt: Any, args: Any, kwargs: Any) -> None:
        if opt is not self.primary:
            return
        if self.done:
            raise StopProfiling()
        self._sync()
        t_end = time.perf_counter()
        self.n += 1
        n = self.n
        if n == 1:
            for h in self._module_hooks:
                h.remove()
            self._module_hooks = []
        if self.first_measured <= n <= self.last_step:
            self.intervals.append(t_end - self.t_prev)
            self.waits.append(self.wait_acc)
            self.micro.append(self.backward_acc)
            self.fetches_per_step.append(self.fetch_acc)
        if not self.bare:
            if n == self.count_step:
                self._stop_counting()
            if n == self.count_step - 1:
                self._start_counting()
        if n >= self.last_step:
            self.done = True
            self.write(complete=True)
            raise StopProfiling()
        self.wait_acc = 0.0
        self.backward_acc = 0
        self.fetch_acc = 0
        self._sync()
        self.t_prev = time.perf_counter()

    def _start_counting(self) -> None:
        track = None if self.device_type == "cuda" else self.device_type  # CUDA: allocator
        counter = StepCounter(track_memory_on=track)
        if counter.live is not None:
            counter.live.add_baseline(self._static_tensors())
        if self.device_type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        self.counter = counter
        counter.__enter__()

    def _stop_counting(self) -> None:
        counter = self.counter
        if counter is None:
            return
        counter.__exit__(None, None, None)
        self.counter = None
        self.counted = counter.summary()
        self.counted["backward_calls"] = self.backward_acc
        self.counted["fetches"] = self.fetch_acc
        if self.device_type == "cuda":
            self.counted["cuda_peak_allocated"] = int(torch.cuda.max_memory_allocated())
            self.counted["cuda_peak_reserved"] = int(torch.cuda.max_memory_reserved())
        counter.close()

    # -- what the model is --------------------------------------------------------------------
    def _opt_params(self) -> list[torch.Tensor]:
        seen: dict[int, torch.Tensor] = {}
        for opt in self.optimizers:
            for g in opt.param_groups:
                for p in g["params"]:
                    seen.setdefault(id(p), p)
        return list(seen.values())

    def _models(self) -> list[torch.nn.Module]:
        ids = {id(p) for p in self._opt_params()}
        return [m for m in self.modules.values() if any(id(p) in ids for p in m.parameters())]

    def _opt_state_tensors(self) -> list[torch.Tensor]:
        out = []
        for opt in self.optimizers:
            for st in opt.state.values():
                for v in st.values():
                    if isinstance(v, torch.Tensor):
                        out.append(v)
        return out

    def _static_tensors(self) -> list[torch.Tensor]:
        tensors = list(self._opt_params())
        tensors += [p.grad for p in tensors if p.grad is not None]
        tensors += self._opt_state_tensors()
        for m in self._models():
            tensors += list(m.parameters()) + list(m.buffers())
        return tensors

    def _model_facts(self) -> dict[str, Any]:
        models = self._models()
        opt_params = self._opt_params()
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
            "parameter_bytes": _unique_nbytes(all_params),
            "gradient_bytes": _unique_nbytes(grads) if grads else _unique_nbytes(trainable),
            "optimizer_state_bytes": _unique_nbytes(self._opt_state_tensors()),
            "models": [type(m).__name__ for m in models],
            "optimizers": [type(o).__name__ for o in self.optimizers],
            "compiled": self.compiled or any(type(m).__name__ == "OptimizedModule"
                                             for m in models),
        }
        try:
            state: dict[str, Any] = {}
            if len(models) == 1:
                state["model"] = models[0].state_dict()
            elif models:
                state["model"] = {str(i): m.state_dict() for i, m in enumerate(models)}
            else:
                state["model"] = [p.detach() for p in opt_params]
            opts = [o.state_dict() for o in self.optimizers]
            state["optim"] = opts[0] if len(opts) == 1 else opts
            buf = io.BytesIO()
            torch.save(state, buf)
            facts["checkpoint_bytes"] = buf.tell()
        except Exception as exc:  # a model that cannot be saved: say so, do not fail
            facts["checkpoint_bytes"] = None
            facts["checkpoint_error"] = f"{type(exc).__name__}: {exc}"
        return facts

    def _precision(self) -> dict[str, Any]:
        # Autocast entered for a device that is absent here (e.g. "cuda" on a laptop) is
        # disabled by torch; the script still asks for it, and it applies on the pool's GPUs.
        per_device = {**self.autocast_requested, **self.autocast}
        autocast = self.autocast.get(self.device_type)
        if autocast is None and per_device:
            autocast = per_device.get("cuda") or next(iter(per_device.values()))
        return {"autocast_dtype": autocast, "autocast": per_device,
                "autocast_requested": dict(self.autocast_requested),
                "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "grad_scaler": self.grad_scaler}

    def _device(self) -> dict[str, Any]:
        if self.device_type == "cuda":
            idx = torch.cuda.current_device()
            props = torch.cuda.get_device_properties(idx)
            return {"kind": "cuda", "name": props.name,
                    "capability": float(f"{props.major}.{props.minor}"),
                    "memory_gb": round(props.total_memory / 2**30, 2)}
        return {"kind": self.device_type, "name": self.device_cpu_name if
                self.device_type == "cpu" else self.device_type, "capability": None,
                "memory_gb": None}

    def _environment(self) -> dict[str, Any]:
        cuda = torch.version.cuda
        try:
            arch = torch.cuda.get_arch_list() if torch.cuda.is_available() or cuda else []
        except Exception:
            arch = []
        return {"python": platform.python_version(), "torch": torch.__version__,
                "cuda": cuda, "arch_list": list(arch),
                "platform": f"{platform.system()}-{platform.machine()}",
                "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}

    def _cuda_context(self) -> int | None:
        if self.device_type != "cuda":
            return None
        try:
            free, total = torch.cuda.mem_get_info()
            ctx = total - free - torch.cuda.memory_reserved()
            if 50 * 2**20 <= ctx <= 4 * 2**30:
                return int(ctx)
        except Exception:
            pass
        return 500 * 2**20

    # -- results ------------------------------------------------------------------------------
    def snapshot(self, light: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "steps_seen": self.n,
            "warmup_steps_run": self.first_measured - 1,
            "flops_counted_on_step": None if self.bare else self.count_step,
            "intervals_s": self.intervals,
            "data_wait_s": self.waits,
            "backward_calls": self.micro,
            "fetches": self.fetches_per_step,
            "loaders": list(self.loaders.values()),
            "module_input_batch": self.module_input_batch,
            "counted": self.counted,
            "device_type": self.device_type,
            "elapsed_s": time.perf_counter() - self.t_start,
            "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
        if self.bare:
            return data
        try:
            data["device"] = self._device()
            data["environment"] = self._environment()
            data["precision"] = self._precision()
            data["data_seen"] = {"reads": sorted(self.watch.reads)[:2000],
                                 "listed": sorted(self.watch.listed)[:2000],
                                 "worker_dirs": sorted(self.watch.worker_dirs())[:2000]}
            if self.primary is not None and not light:
                data.update(self._model_facts())
            if self.device_type == "cuda":
                data["cuda_peak_allocated"] = int(torch.cuda.max_memory_allocated())
                data["cuda_context_bytes"] = self._cuda_context()
        except Exception as exc:  # partial facts beat none
            data["facts_error"] = f"{type(exc).__name__}: {exc}"
        return data

    def write(self, complete: bool, error: dict | None = None,
              finished_early: str | None = None, light: bool = False) -> None:
        """Write results.json. `light`: from a signal handler, which may have interrupted any
        op, so no model serialization and no leaving the dispatch mode."""
        was_on = self.watch.on
        self.watch.on = False
        if self.counter is not None and not light:  # never save under the dispatch mode
            self._stop_counting()
        if not light:
            gc.collect()
        data = self.snapshot(light)
        data["complete"] = complete
        data["error"] = error
        data["finished_early"] = finished_early
        path = self.run_dir / "results.json"
        tmp = path.with_name(".results.json.tmp")
        with open(tmp, "w") as fh:
            json.dump(data, fh, default=str)
        os.replace(tmp, path)
        self.watch.on = was_on

    def finish_early(self, how: str) -> None:
        if not self.done:
            self.write(complete=False, finished_early=how)

    def fail(self, kind: str, message: str, exc: BaseException | None,
             light: bool = False) -> None:
        script = os.path.abspath(self.cfg["script"])
        location = None
        tb_lines: list[str] = []
        if exc is not None:
            frames = list(traceback.extract_tb(exc.__traceback__))
            user = [f for f in frames if os.path.abspath(f.filename) == script]
            if user:  # from the script's own first frame on: runpy and the advisor are noise
                frames = frames[frames.index(user[0]):]
            if user:
                location = f"{self.cfg['script']}:{user[-1].lineno}"
            tb_lines = traceback.format_exception_only(type(exc), exc)[-1:]
            frames_txt = traceback.format_list(frames[-4:])
            tb_lines = [ln.rstrip() for chunk in frames_txt + tb_lines for ln in chunk.splitlines()]
        try:
            self.write(complete=False, error={"type": kind, "message": message,
                                              "location": location, "traceback": tb_lines},
                       light=light)
        except Exception:
            sys.stderr.write(f"advisor: could not record the failure: {kind}: {message}\n")
