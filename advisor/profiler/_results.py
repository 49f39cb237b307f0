"""The end-of-run summary of the loop, the batch, the input pipeline and the machine's load.

`loop_facts(recorder)` turns what `_hooks.Recorder` gathered at step boundaries into profile
keys (docs/PROFILE_SCHEMA.md): ``training_loop``, ``batch_layout``, ``input_pipeline`` and
``contention`` (merged into the profile as they are), the batch decision and the host PSS.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from advisor.profiler import _ddp, _facts, _loop, _procstat

# Training frameworks whose trainer drives the loop, by a module that only their trainer loads.
FRAMEWORKS = (("lightning.pytorch.trainer.trainer", "PyTorch Lightning"),
              ("pytorch_lightning.trainer.trainer", "PyTorch Lightning"),
              ("transformers.trainer", "Hugging Face Trainer"),
              ("accelerate.accelerator", "Hugging Face accelerate"))


def framework() -> str | None:
    """The framework whose trainer runs the loop, if one was imported."""
    return next((name for mod, name in FRAMEWORKS if mod in sys.modules), None)


def loop_facts(rec: Any) -> dict[str, Any]:
    """What the profile says beyond the step times: the loop, the batch, the input pipeline,
    the machine's load (`extra`, merged into the profile), and the host memory."""
    loader = max(rec.loaders.values(), key=lambda d: d.get("fetches", 0)) \
        if rec.loaders else None
    batch = _loop.decide_batch(loader, rec.module_input, rec.seq_first)
    loop: dict[str, Any] = {"style": rec.style}
    if framework() is not None:
        loop["framework"] = framework()
    if rec.style == "closure" and rec.closure_per_step:
        calls = sorted(rec.closure_per_step)
        loop["closure_calls_per_step"] = calls[len(calls) // 2]
    extra: dict[str, Any] = {"training_loop": loop}
    if batch is not None:
        extra["batch_layout"] = {"dim": batch["dim"], "shape": batch.get("shape"),
                                 "source": batch.get("source")}
    out: dict[str, Any] = {"extra": extra, "batch": batch}
    grads = [p.grad for p in rec._opt_params() if p.grad is not None]
    dist = _ddp.facts(rec, batch, list(rec.modules.values()),
                      _facts.unique_nbytes(grads) if grads else None)
    if dist is not None:
        extra["distributed"] = dist
    readings, times = rec.readings, rec.reading_times
    steps = len(readings) - 1
    if steps >= 1 and readings[0].main_cpu_s is not None:
        workers = loader["num_workers"] if loader else 0
        w_cpu = [(b.workers_cpu_s or 0.0) - (a.workers_cpu_s or 0.0)
                 for a, b in zip(readings, readings[1:], strict=False)]
        main_load = rec.load_cpu[:steps]
        per_step = sorted(w + m for w, m in zip(w_cpu, main_load, strict=False))
        if loader is not None:
            extra["input_pipeline"] = {
                "cpu_s_per_step": per_step[len(per_step) // 2] if per_step else 0.0,
                "worker_cpu_s_per_step": sum(w_cpu) / steps,
                "main_cpu_s_per_step": (sum(main_load) / len(main_load)
                                        if main_load else 0.0),
                "num_workers": workers,
                "method": "CPU time of the DataLoader worker processes (/proc) + the main "
                          "thread's CPU time in DataLoader.__next__, per measured step"}
        wall = times[-1] - times[0]
        wanted = min(len(rec.cpus), torch.get_num_threads() + workers)
        contention = _procstat.classify(readings[0], readings[-1], wall, len(rec.cpus),
                                        float(wanted))
        main_cpu = (readings[-1].main_cpu_s or 0.0) - (readings[0].main_cpu_s or 0.0)
        contention["process_cpu_s_per_step"] = main_cpu / steps
        if contention["disturbed"]:
            step_cpu = main_cpu / steps / max(wanted, 1)
            contention["step_time_cpu_based_s"] = step_cpu
        extra["contention"] = contention
    if rec.pss_peak is not None:
        out["host_bytes"] = rec.pss_peak
        out["host_method"] = ("peak of Σ PSS (proportional set size) of the main process "
                              "and its DataLoader workers, or the main process's peak RSS "
                              "if larger")
    return out
