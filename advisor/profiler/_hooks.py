"""The measuring hooks installed in the child before the user's script runs.

Step boundaries are the global optimizer post-step hooks of the first optimizer that steps
(the primary one; others, as in a GAN, run inside its steps). Without an optimizer, a backward
followed by an update of the parameters is a step, ended at the next forward (or backward) that
finds the parameters changed (`_loop.ParamWatch`). A closure optimizer (LBFGS) steps once per
``step(closure)``. Numbering steps 1, 2, ...:

* step 1 is always warm-up (it has no start boundary); warm-up is ``max(K, 1)`` steps;
* one step is counted with the dispatch mode of `counting` (FLOPs, bytes, kernels, live tensor
  bytes): the last warm-up step when there are at least two, else an extra step 2;
* the next N steps are timed, interval from one post-hook to the next, with only cheap hooks on:
  a clock read, a DataLoader ``__next__`` timer and a ``backward`` call counter. Between two
  timed intervals (outside both) the CPU time of the process and of the DataLoader workers, the
  machine's load and the tree's PSS are read (`_procstat`).

After the last timed step the results are written and `StopProfiling` is raised out of
``optimizer.step()`` (or the forward/backward that ended a manual step) to end the script.
A watchdog thread stops a run that shows no step within ``no_step_s`` and says why.

Beside this module: `_dataloader` (the DataLoader timer and what a batch is), `_precision`
(autocast, GradScaler, torch.compile), `_loop` (manual updates, closures, the batch layout),
`_ddp` (rank 0 of a ``torch.multiprocessing.spawn`` run measures; the world size), `_results`
and `_facts` (what is written at the end).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
import torch.optim.optimizer as optim_mod

from advisor.profiler import _dataloader, _ddp, _facts, _loop, _precision, _procstat, _results
from advisor.profiler.counting import StepCounter, scale_summary


class StopProfiling(BaseException):
    """Raised from a step hook to stop the user's script once measured."""


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
        self.style: str | None = None          # torch.optim | closure | manual update
        self.primary: Any = None
        self.optimizers: list[Any] = []
        self.t_prev = 0.0
        self.t_start = time.perf_counter()
        self.intervals: list[float] = []
        self.waits: list[float] = []
        self.micro: list[int] = []
        self.fetches_per_step: list[int] = []
        self.closure_per_step: list[int] = []
        self.wait_acc = 0.0
        self.load_cpu_acc = 0.0                # main-thread CPU inside DataLoader.__next__
        self.load_cpu: list[float] = []
        self.backward_acc = 0
        self.fetch_acc = 0
        self.closure_acc = 0
        self.forwards = 0
        self.backwards = 0
        self.loaders: dict[int, dict[str, Any]] = {}
        self.modules: dict[int, torch.nn.Module] = {}
        self.module_input: dict[str, Any] | None = None
        self.seq_first: dict[str, Any] | None = None
        self._depth = 0
        self._module_hooks: list[Any] = []
        self.param_watch: _loop.ParamWatch | None = None
        self.manual_pending = False
        self.counter: StepCounter | None = None
        self.count_armed = False               # closure style: count the next closure call
        self.closure_summary: dict[str, Any] | None = None
        self.counted: dict[str, Any] | None = None
        self.precision = _precision.PrecisionWatch()
        self.device_type = "cpu"
        self.device_cpu_name = ""
        self.done = False
        self.worker_pids: set[int] = set()
        self._worker_lists: set[int] = set()
        self.cpus = _procstat.cpus_allowed()
        self.readings: list[_procstat.Reading] = []
        self.reading_times: list[float] = []
        self.pss_peak: int | None = None
        self.delegated = False                 # the ranks of a spawn run measure (`_ddp`)
        self.watchdog = _loop.NoStepWatchdog(float(cfg.get("no_step_s") or 0.0), self._no_step,
                                             lambda: {"forward": self.forwards,
                                                      "backward": self.backwards})

    # -- installation ------------------------------------------------------------------------
    def install(self) -> None:
        optim_mod.register_optimizer_step_pre_hook(self._pre_step)
        optim_mod.register_optimizer_step_post_hook(self._post_step)
        self._patch_backward()
        self._module_hooks = [
            torch.nn.modules.module.register_module_forward_pre_hook(self._module_pre),
            torch.nn.modules.module.register_module_forward_hook(self._module_post),
        ]
        self.watchdog.start()
        if self.bare:
            return
        _dataloader.install(self)
        self.precision.install()
        _ddp.patch_spawn(self)

    def delegate(self, world_size: int) -> None:
        """The script spawned its ranks: rank 0 measures, this process only waits."""
        self.delegated = True
        self.cfg["world_size"] = world_size
        self.watchdog.stop()

    def _no_step(self, message: str) -> None:
        """From the watchdog thread: record why, and end the run."""
        if self.n > 0 or self.done:
            return
        self.fail("NoTrainingStep", message, None, light=True)
        os._exit(1)

    def _patch_backward(self) -> None:
        rec = self
        orig = torch.autograd.backward

        def backward(*args: Any, **kwargs: Any) -> Any:
            rec._before_backward(args[0] if args else kwargs.get("tensors"))
            out = orig(*args, **kwargs)
            rec._after_backward()
            return out

        torch.autograd.backward = backward

    # -- manual updates (no optimizer) --------------------------------------------------------
    def _manual_possible(self) -> bool:
        return self.style in (None, "manual update") and self.primary is None

    def _before_backward(self, tensors: Any) -> None:
        if self._manual_possible():
            if self.param_watch is None:
                leaves = [t for t in _loop.graph_leaves(tensors) if t.requires_grad]
                if leaves:
                    self.param_watch = _loop.ParamWatch(leaves)
            elif self.manual_pending and self.param_watch.changed():
                self._manual_boundary()  # a module-less loop: no forward hook saw it
        self.backward_acc += 1
        self.backwards += 1

    def _after_backward(self) -> None:
        if self._manual_possible() and self.param_watch is not None:
            self.param_watch.snapshot()
            self.manual_pending = True

    def _top_forward(self) -> None:
        self.forwards += 1
        if (self.manual_pending and self._manual_possible() and self.param_watch is not None
                and self.param_watch.changed()):
            self._manual_boundary()

    def _manual_boundary(self) -> None:
        self.manual_pending = False
        self.style = "manual update"
        if self.n == 0:  # keep a cheap hook on the models' own forward only
            for h in self._module_hooks:
                h.remove()
            self._module_hooks = [m.register_forward_pre_hook(
                lambda mod, args: self._top_forward()) for m in self.modules.values()]
            self._depth = 0
        self._boundary()

    # -- module discovery (first step only) -------------------------------------------------
    def _module_pre(self, module: torch.nn.Module, args: Any) -> None:
        self._depth += 1
        if self.seq_first is None:
            self.seq_first = _loop.seq_first_batch(module, args)
        if self._depth == 1:
            self.modules.setdefault(id(module), module)
            if self.module_input is None:
                t = _dataloader.first_tensor(args)
                if t is not None and t.dim():
                    self.module_input = {"shape": list(t.shape),
                                         "sliced": _loop.sliced_from(t)}
            self._top_forward()

    def _module_post(self, module: torch.nn.Module, args: Any, out: Any) -> None:
        self._depth = max(0, self._depth - 1)

    # -- step hooks ---------------------------------------------------------------------------
    def _pre_step(self, opt: Any, args: Any, kwargs: Any) -> Any:
        if self.style == "manual update":
            return None
        if not any(o is opt for o in self.optimizers):
            self.optimizers.append(opt)
        if self.primary is None:
            self.primary = opt
            self.manual_pending = False
            params = [p for g in opt.param_groups for p in g["params"]]
            if params:
                self.device_type = params[0].device.type
        if opt is not self.primary:
            return None
        closure, where = _loop.find_closure(args, kwargs)
        self.style = "closure" if closure is not None else "torch.optim"
        if closure is None or where is None:
            return None
        rec = self

        def counted_closure(*a: Any, **k: Any) -> Any:
            rec.closure_acc += 1
            if not (rec.count_armed and rec.counter is None):
                return closure(*a, **k)
            rec.count_armed = False
            rec._enter_counter()
            try:
                return closure(*a, **k)
            finally:
                counter = rec.counter
                if counter is not None:
                    counter.__exit__(None, None, None)
                    rec.counter = None
                    rec.closure_summary = counter.summary()
                    counter.close()

        return _loop.with_closure(args, kwargs, where, counted_closure)

    def _sync(self) -> None:
        if self.device_type == "cuda":
            torch.cuda.synchronize()
        elif self.device_type == "mps":
            torch.mps.synchronize()

    def _post_step(self, opt: Any, args: Any, kwargs: Any) -> None:
        if opt is not self.primary or self.style == "manual update":
            return
        self._boundary()

    def _boundary(self) -> None:
        """One training step ended here."""
        if self.done:
            raise StopProfiling()
        self._sync()
        t_end = time.perf_counter()
        self.watchdog.stepped = True
        self.n += 1
        n = self.n
        if n == 1 and self.style != "manual update":
            for h in self._module_hooks:
                h.remove()
            self._module_hooks = []
        if self.first_measured <= n <= self.last_step:
            self.intervals.append(t_end - self.t_prev)
            self.waits.append(self.wait_acc)
            self.load_cpu.append(self.load_cpu_acc)
            # closure optimizers call backward once per closure call: not micro-batches
            self.micro.append(self.backward_acc // max(self.closure_acc, 1))
            self.fetches_per_step.append(self.fetch_acc)
            self.closure_per_step.append(self.closure_acc)
        if not self.bare:
            if n == self.count_step:
                self._stop_counting()
            if n == self.count_step - 1:
                self._start_counting()
            if self.first_measured - 1 <= n <= self.last_step:
                self._read_machine()
        if n >= self.last_step:
            self.done = True
            self.write(complete=True)
            raise StopProfiling()
        self.wait_acc = 0.0
        self.load_cpu_acc = 0.0
        self.backward_acc = 0
        self.fetch_acc = 0
        self.closure_acc = 0
        self._sync()
        self.t_prev = time.perf_counter()

    def _read_machine(self) -> None:
        """CPU times, machine load and the tree's PSS, between two timed intervals."""
        pids = [p for p in self.worker_pids if os.path.exists(f"/proc/{p}")]
        self.readings.append(_procstat.read(pids, self.cpus))
        self.reading_times.append(time.perf_counter())
        pss = _procstat.tree_pss_bytes(pids)
        if pss is not None:
            self.pss_peak = max(self.pss_peak or 0, pss)

    def _enter_counter(self) -> None:
        track = None if self.device_type == "cuda" else self.device_type  # CUDA: allocator
        counter = StepCounter(track_memory_on=track)
        if counter.live is not None:
            counter.live.add_baseline(self._static_tensors())
        if self.device_type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        self.counter = counter
        counter.__enter__()

    def _start_counting(self) -> None:
        if self.style == "closure":
            self.count_armed = True  # one closure call of the next step is counted
            return
        self._enter_counter()

    def _stop_counting(self) -> None:
        counter = self.counter
        if counter is None:
            if self.closure_summary is None:
                return
            calls = max(self.closure_acc, 1)
            self.counted = scale_summary(self.closure_summary, calls)
            self.counted["closure_calls_counted"] = 1
            self.counted["closure_calls_in_step"] = calls
            self.closure_summary = None
        else:
            counter.__exit__(None, None, None)
            self.counter = None
            self.counted = counter.summary()
            counter.close()
        self.counted["backward_calls"] = self.backward_acc
        self.counted["fetches"] = self.fetch_acc
        if self.device_type == "cuda":
            self.counted["cuda_peak_allocated"] = int(torch.cuda.max_memory_allocated())
            self.counted["cuda_peak_reserved"] = int(torch.cuda.max_memory_reserved())

    # -- what the model is --------------------------------------------------------------------
    def _opt_params(self) -> list[torch.Tensor]:
        seen: dict[int, torch.Tensor] = {}
        for opt in self.optimizers:
            for g in opt.param_groups:
                for p in g["params"]:
                    seen.setdefault(id(p), p)
        if not seen and self.param_watch is not None:  # manual updates: what backward reached
            for p in self.param_watch.params:
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
        names = [type(o).__name__ for o in self.optimizers]
        if self.style == "manual update":
            names = ["manual update"]
        return _facts.model_facts(self._models(), self._opt_params(), self.optimizers,
                                  self._opt_state_tensors(), self.precision.compiled, names)

    # -- results ------------------------------------------------------------------------------
    def snapshot(self, light: bool = False) -> dict[str, Any]:
        batch_size = None
        data: dict[str, Any] = {
            "steps_seen": self.n,
            "warmup_steps_run": self.first_measured - 1,
            "flops_counted_on_step": None if self.bare else self.count_step,
            "intervals_s": self.intervals,
            "data_wait_s": self.waits,
            "backward_calls": self.micro,
            "fetches": self.fetches_per_step,
            "loaders": list(self.loaders.values()),
            "module_input_batch": batch_size,
            "counted": self.counted,
            "device_type": self.device_type,
            "elapsed_s": time.perf_counter() - self.t_start,
            "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "forwards_seen": self.forwards,
            "backwards_seen": self.backwards,
        }
        try:
            facts = _results.loop_facts(self)
            data["extra"] = facts["extra"]
            batch = facts["batch"]
            if batch is not None:
                data["module_input_batch"] = batch["size"]
                data["batches_per_epoch_from_data"] = batch.get("batches_per_epoch")
                for info in self.loaders.values():  # the layout-aware size for the loader too
                    if info.get("batch_size") is not None and batch.get("dim") == 1 \
                            and info.get("shape") and info["batch_size"] == info["shape"][0]:
                        info["batch_size"] = batch["size"]
            if facts.get("host_bytes"):
                data["host_bytes"] = int(max(facts["host_bytes"], data["max_rss_bytes"]))
                data["host_method"] = facts["host_method"]
        except Exception as exc:  # partial facts beat none
            data["loop_facts_error"] = f"{type(exc).__name__}: {exc}"
        if self.bare:
            return data
        try:
            data["device"] = _facts.device_facts(self.device_type, self.device_cpu_name)
            data["environment"] = _facts.environment_facts()
            data["precision"] = self.precision.facts(self.device_type)
            data["data_seen"] = {"reads": sorted(self.watch.reads)[:2000],
                                 "listed": sorted(self.watch.listed)[:2000],
                                 "worker_dirs": sorted(self.watch.worker_dirs())[:2000]}
            if (self.primary is not None or self.param_watch is not None) and not light:
                data.update(self._model_facts())
            if self.device_type == "cuda":
                data["cuda_peak_allocated"] = int(torch.cuda.max_memory_allocated())
                data["cuda_context_bytes"] = _facts.cuda_context_bytes(self.device_type)
        except Exception as exc:  # partial facts beat none
            data["facts_error"] = f"{type(exc).__name__}: {exc}"
        return data

    def write(self, complete: bool, error: dict | None = None,
              finished_early: str | None = None, light: bool = False) -> None:
        """Write results.json. `light`: from a signal handler, which may have interrupted any
        op, so no model serialization and no leaving the dispatch mode."""
        if self.delegated and (self.run_dir / "results.json").exists():
            return  # rank 0's record, complete or a failure, is the run's
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
        # The script's own message may be coloured (rich, click): no raw escape codes onward.
        message = _loop.strip_ansi(message)
        tb_lines = [_loop.strip_ansi(ln) for ln in tb_lines]
        try:
            self.write(complete=False, error={"type": kind, "message": message,
                                              "location": location, "traceback": tb_lines},
                       light=light)
        except Exception:
            sys.stderr.write(f"advisor: could not record the failure: {kind}: {message}\n")
