"""The profiler's public functions (re-exported lazily by `advisor.profiler`)."""

from __future__ import annotations

import os
import platform
import shlex
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from advisor.check.secrets import SecretArg, redact, scrub_args, secret_file_help, secret_values
from advisor.errors import DomainFailure, InputError
from advisor.profiler import runner
from advisor.profiler._text import strip_ansi
from advisor.profiler.datafiles import data_source
from advisor.profiler.schema import (
    SCHEMA_VERSION,
    build_command_profile,
    build_torch_profile,
    load_profile,
    validate_profile,
    write_profile,
)

# A run that shows no training step in this share of --timeout is stopped and told why.
NO_STEP_FRACTION = 0.5

__all__ = ["SCHEMA_VERSION", "default_output_path", "load_profile", "measure_bare_steps",
           "profile_command", "profile_script", "validate_profile", "write_profile"]


def _check_common(timeout_s: float, memory_limit_gb: float | None) -> int:
    if not timeout_s or timeout_s <= 0:
        raise InputError("--timeout", timeout_s, "must be a positive number of seconds.",
                         "give e.g. --timeout 600")
    limit = runner.default_memory_limit_gb() if memory_limit_gb is None else memory_limit_gb
    if limit <= 0:
        raise InputError("--memory-limit-gb", memory_limit_gb, "must be positive.",
                         "give e.g. --memory-limit-gb 8")
    return int(limit * 2**30)


def _check_script(script: str | Path, cwd: Path) -> None:
    full = cwd / script
    if not full.is_file():
        suggestions = [p.name for p in full.parent.glob("*.py")] if full.parent.is_dir() else []
        from advisor.errors import nearest
        raise InputError("SCRIPT", str(script), "no such file.",
                         "give the path of your training script, relative to this directory",
                         suggestions=nearest(Path(script).name, suggestions))


def default_output_path(script_or_command: str, cwd: str | Path | None = None) -> Path:
    """profiles/<stem>.json (under `cwd` if given): the script's stem, or the command's
    script (its first *.py word) or program."""
    words = shlex.split(script_or_command) if " " in script_or_command else [script_or_command]
    chosen = next((w for w in words[1:] if w.endswith(".py")), None) if len(words) > 1 else None
    stem = Path(chosen or words[0]).stem or "profile"
    return (Path(cwd) if cwd else Path()) / "profiles" / f"{stem}.json"


def _so_far(outcome: runner.ChildOutcome) -> dict[str, Any]:
    res = outcome.results or {}
    intervals = res.get("intervals_s") or []
    seen: dict[str, Any] = {"optimizer_steps_seen": res.get("steps_seen", 0),
                            "steps_measured": len(intervals),
                            "wall_s": round(outcome.wall_s, 2),
                            "peak_rss_bytes": int(max(outcome.peak_rss_bytes,
                                                      res.get("max_rss_bytes", 0) or 0))}
    if intervals:
        seen["step_time_s_median"] = float(np.median(intervals))
    counted = res.get("counted") or {}
    if counted.get("flops_per_step"):
        seen["flops_per_step"] = counted["flops_per_step"]
    if res.get("parameters"):
        seen["parameters"] = res["parameters"]
    return seen


def _fail(message: str, outcome: runner.ChildOutcome, **extra: Any) -> DomainFailure:
    details = {"measured_so_far": _so_far(outcome),
               "output_tail": [redact(strip_ansi(line)) for line in outcome.output_tail],
               **extra}
    err = details.get("script_error")
    if isinstance(err, dict):  # the script's own message and traceback may echo a secret
        details["script_error"] = {k: ([redact(str(x)) for x in v] if isinstance(v, list)
                                       else redact(v) if isinstance(v, str) else v)
                                   for k, v in err.items()}
    message = redact(message)
    return DomainFailure(message, details)


def _hidden(exc: DomainFailure, values: list[str]) -> DomainFailure:
    """`exc` with each secret value of the arguments masked (the script may print its argv)."""
    def clean(x: Any) -> Any:
        if isinstance(x, str):
            for v in values:
                x = x.replace(v, "***")
            return x
        if isinstance(x, list):
            return [clean(i) for i in x]
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        return x
    return DomainFailure(clean(str(exc)), clean(exc.details)) if values else exc


def _raise_for_outcome(outcome: runner.ChildOutcome, what: str, timeout_s: float,
                       limit_bytes: int) -> None:
    if outcome.memory_exceeded:
        raise _fail(f"{what} used more than {limit_bytes / 2**30:.1f} GiB of memory and was "
                    "stopped. To fix: make it use less (a smaller batch), or raise "
                    "--memory-limit-gb if this machine has the memory.", outcome,
                    reason="memory_limit")
    if outcome.disk_exceeded:
        gib = runner.disk_limit_bytes() / 2**30
        raise _fail(f"{what} wrote more than {gib:.3g} GiB to disk and was stopped. To fix: "
                    "make it write less while profiling (fewer checkpoints or logs), or raise "
                    "--disk-limit-gb.", outcome, reason="disk_limit")
    if outcome.timed_out and not (outcome.results or {}).get("steps_seen"):
        raise _fail(f"{what} showed no training step within the {timeout_s:g} s timeout and was "
                    "stopped. To fix: profile it as a whole with --command \"python SCRIPT "
                    "ARGS\", or raise --timeout if it prepares data for longer before training.",
                    outcome, reason="no_steps")
    if outcome.timed_out:
        raise _fail(f"{what} did not finish within the {timeout_s:g} s timeout and was stopped. "
                    "To fix: raise --timeout, or lower --steps/--warmup.", outcome,
                    reason="timeout")
    res = outcome.results
    if res is None:
        rc = outcome.returncode
        how = f"was killed by signal {-rc}" if rc is not None and rc < 0 else f"exited ({rc})"
        hint = " (signal 9 is often the system running out of memory)" if rc == -9 else ""
        raise _fail(f"{what} {how} before reporting anything{hint}.", outcome, reason="died")
    err = res.get("error")
    if err and err.get("type") == "NoTrainingStep":
        raise _fail(f"{what}: {err.get('message')}", outcome, reason="no_steps")
    if err:
        where = f" at {err['location']}" if err.get("location") else ""
        msg = err.get("message") or ""
        raise _fail(f"{what} raised {err['type']}{where}: {msg}".rstrip(": "), outcome,
                    reason="error", script_error=err)


def _secret_warnings(found: list[SecretArg], what: str) -> list[str]:
    """What to tell the user about secrets kept out of the profile (values masked)."""
    if not found:
        return []
    listed = ", ".join(f"{s.where} ({s.masked}) -> {s.placeholder}" for s in found)
    return [f"{what} holds secrets, which were NOT stored in the profile: {listed}. Command-line "
            "arguments are visible to other users (ps, the job ClassAd, shell history): prefer "
            "letting the script read the secret from a file or an environment variable. "
            "`advisor recommend -o` writes a run.sh that reads each from a file: "
            + secret_file_help([s.name for s in found])]


def _environment_without_torch() -> dict[str, Any]:
    try:
        torch_version: str | None = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    return {"python": platform.python_version(), "torch": torch_version, "cuda": None,
            "arch_list": [], "platform": f"{platform.system()}-{platform.machine()}"}


def profile_script(script: str | Path, args: list[str] | tuple[str, ...] = (), *, steps: int = 20,
                   warmup: int = 3, timeout_s: float = 600.0,
                   memory_limit_gb: float | None = None,
                   cwd: str | Path | None = None) -> dict[str, Any]:
    """Run `script` unmodified with `args`; return its WorkloadProfile (a dict)."""
    cwd_path = Path(cwd or os.getcwd())
    _check_script(script, cwd_path)
    if steps < 1:
        raise InputError("--steps", steps, "must be at least 1.", "give e.g. --steps 20")
    if warmup < 0:
        raise InputError("--warmup", warmup, "must not be negative.", "give e.g. --warmup 3")
    limit = _check_common(timeout_s, memory_limit_gb)
    config = {"mode": "torch", "script": str(script), "args": list(args), "steps": int(steps),
              "warmup": int(warmup), "no_step_s": NO_STEP_FRACTION * timeout_s}
    outcome = runner.run_child(config, cwd=cwd_path, timeout_s=timeout_s,
                               memory_limit_bytes=limit)
    try:
        _raise_for_outcome(outcome, f"the script {script}", timeout_s, limit)
    except DomainFailure as exc:
        raise _hidden(exc, secret_values(list(args))) from None
    res = outcome.results or {}
    intervals = res.get("intervals_s") or []
    warnings: list[str] = []
    if not intervals:
        if res.get("steps_seen", 0) == 0:
            raise _fail(f"{script} ended without an optimizer step: nothing to profile. To fix: "
                        "profile a torch training loop, or use --command for other work.",
                        outcome, reason="no_steps")
        raise _fail(f"{script} ended after {res['steps_seen']} optimizer steps, before a "
                    f"measured step (warm-up and counting take {res['warmup_steps_run']}). "
                    "To fix: lower --warmup, or give the script more steps (epochs, data).",
                    outcome, reason="too_few_steps")
    if len(intervals) < steps:
        warnings.append(f"{res.get('finished_early') or 'the script ended'} after "
                        f"{len(intervals)} measured steps of the {steps} asked for.")
    stored_args, secrets = scrub_args(list(args))  # secrets never reach the profile
    warnings.extend(_secret_warnings(secrets, "the script's arguments"))
    data = data_source(res.get("data_seen"), stored_args, str(cwd_path))
    profile = build_torch_profile(res, script=str(script), args=stored_args, warmup=warmup,
                                  host_peak_rss=outcome.peak_rss_bytes, data=data)
    contention = (res.get("extra") or {}).get("contention") or {}
    if contention.get("disturbed"):
        warnings.append(f"the measurement was disturbed: {contention.get('reason')}. Step times "
                        "are inflated; the loader's figures are CPU time (less affected). "
                        "Profile again on a quiet machine for reliable step times.")
    if res.get("checkpoint_error"):
        warnings.append(f"checkpoint size unknown: {res['checkpoint_error']}")
    profile["wall_s"] = round(outcome.wall_s, 3)
    profile["warnings"] = warnings
    return validate_profile(profile)


def measure_bare_steps(script: str | Path, args: list[str] | tuple[str, ...] = (), *,
                       steps: int = 20, warmup: int = 3, timeout_s: float = 600.0,
                       cwd: str | Path | None = None) -> list[float]:
    """Step-to-step intervals with only the step-boundary hook installed (for benchmarks)."""
    cwd_path = Path(cwd or os.getcwd())
    _check_script(script, cwd_path)
    limit = _check_common(timeout_s, None)
    config = {"mode": "torch", "script": str(script), "args": list(args), "steps": int(steps),
              "warmup": int(warmup), "bare": True}
    outcome = runner.run_child(config, cwd=cwd_path, timeout_s=timeout_s,
                               memory_limit_bytes=limit)
    _raise_for_outcome(outcome, f"the script {script}", timeout_s, limit)
    return list((outcome.results or {}).get("intervals_s") or [])


def profile_command(command: str | list[str], *, timeout_s: float = 600.0,
                    memory_limit_gb: float | None = None,
                    cwd: str | Path | None = None) -> dict[str, Any]:
    """Measure one task run as a whole: wall and CPU time, peak RSS, bytes written, GPU memory."""
    cwd_path = Path(cwd or os.getcwd())
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    text = command if isinstance(command, str) else shlex.join(command)
    stored, secrets = scrub_args(argv)  # secrets never reach the profile nor a message
    if secrets:
        text = shlex.join(stored)
    if not argv:
        raise InputError("--command", command, "is empty.", 'give e.g. --command "python run.py"')
    limit = _check_common(timeout_s, memory_limit_gb)
    outcome = runner.run_child({"mode": "command", "command": argv}, cwd=cwd_path,
                               timeout_s=timeout_s, memory_limit_bytes=limit)
    try:
        _raise_for_outcome(outcome, f"the command {text!r}", timeout_s, limit)
    except DomainFailure as exc:
        raise _hidden(exc, secret_values(argv)) from None
    res = outcome.results or {}
    profile = build_command_profile(res, command=text, host_peak_rss=outcome.peak_rss_bytes,
                                    gpu_memory_bytes=outcome.gpu_memory_bytes,
                                    environment=_environment_without_torch())
    profile["wall_s"] = round(outcome.wall_s, 3)
    profile["warnings"] = _secret_warnings(secrets, "the command")
    return validate_profile(profile)
