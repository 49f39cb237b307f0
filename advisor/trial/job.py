"""One job of a submit file, as the execute point receives it: the queue statement expanded for
process N, every path resolved against the submit side, every value in its final form.

The file is read with `advisor.check.submitfile` (nothing in it runs: command includes and
`queue ... from CMD |` are removed first). Relative paths, `queue ... from FILE` and
`matching` patterns are taken from `initialdir`, or the submit file's folder when it has none
(condor_submit uses the folder it runs in; one runs it next to the file).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from advisor.check.submitfile import SubmitFile, read_submit_file
from advisor.errors import InputError
from advisor.trial.syntax import (
    SyntaxProblem,
    is_url,
    parse_arguments,
    parse_environment,
    parse_remaps,
    split_list,
    truthy,
)
from simulator.request import BARE_UNIT_MB, parse_quantity

CLUSTER_ID = 1                 # a trial has no schedd to number clusters: $(Cluster) is 1
DEFAULT_MEMORY_MB = 128.0      # HTCondor's request_memory when the file has none (docs/DOMAIN.md)
DEFAULT_DISK_MIN_KB = 1024.0 * 1024.0   # request_disk default: max(1 GiB, 1.25 x input size)
_QUEUE_REST = re.compile(r"^(?P<vars>.*?)\s*\b(?P<kind>in|from|matching)\b\s*(?P<src>.*)$",
                         re.I | re.S)


@dataclass(frozen=True)
class InputFile:
    entry: str          # as written in transfer_input_files
    source: Path        # the local file or folder copied into the sandbox
    line: int | None
    contents_only: bool = False   # `dir/`: the folder's contents, not the folder


@dataclass
class Job:
    """Process `process` of the submit file, ready to run."""

    submit_path: Path
    base_dir: Path
    process: int
    jobs_in_queue: int
    executable: Path
    transfer_executable: bool
    arguments: list[str]
    environment: dict[str, str]
    getenv: str
    inputs: list[InputFile]
    outputs: list[str] | None          # None: transfer_output_files absent (new files come back)
    remaps: dict[str, str]
    preserve_relative_paths: bool
    when_to_transfer_output: str
    checkpoint_exit_code: int | None
    checkpoint_files: list[str] | None  # None: absent (the output files make the checkpoint)
    request_memory_mb: float
    request_memory_default: bool
    request_disk_kb: float
    request_disk_default: bool
    request_cpus: int
    request_gpus: int
    container_image: str | None
    stdout_name: str | None
    stderr_name: str | None
    lines: dict[str, int | None] = field(default_factory=dict)
    item: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def line_of(self, command: str) -> str:
        line = self.lines.get(command)
        return f"line {line}" if line else command


def _bad(sf: SubmitFile, command: str, value: object, problem: str, fix: str) -> InputError:
    line = sf.line(command)
    where = f"line {line}: {command}" if line else command
    return InputError(where, value, problem, fix, source=sf.path)


def _queue_items(sf: SubmitFile, base: Path) -> tuple[int, list[dict[str, str]], int]:
    """(count per item, items, line) of the first queue statement."""
    if not sf.queue_lines:
        raise InputError("queue", None, "the file has no queue statement, so it submits no job.",
                         "end the file with `queue` (or `queue N`).", source=sf.path)
    line, args = sf.queue_lines[0]
    if "|" in args:
        raise InputError(f"line {line}: queue", args, "takes its items from a command's output; "
                         "a trial never runs commands from a submit file.",
                         "write the items into a file and use `queue VARS from FILE`.",
                         source=sf.path)
    words = args.split(None, 1)
    count_text, rest = "1", args
    if words and words[0].lower() not in ("in", "from", "matching") and (
            words[0].isdigit() or words[0].startswith("$(")):
        count_text, rest = words[0], (words[1] if len(words) > 1 else "")
    if count_text.startswith("$("):
        sf.submit["_trial_queue_count"] = count_text
        count_text = str(sf.submit.expand("_trial_queue_count")).strip()
    if not count_text.isdigit():
        raise InputError(f"line {line}: queue", args, "the job count is not a whole number.",
                         "write `queue N` with N a number.", source=sf.path)
    count = int(count_text)
    if not rest.strip():
        return count, [{}], line
    m = _QUEUE_REST.match(rest)
    if not m:
        raise InputError(f"line {line}: queue", args, "is not `queue [N] [VARS in|from|matching "
                         "...]`.", "see condor_submit's queue statement.", source=sf.path)
    variables, kind, source = m.group("vars"), m.group("kind").lower(), m.group("src").strip()
    if kind == "matching":
        words = source.split()
        only = words[0].lower() if words and words[0].lower() in ("files", "dirs") else None
        found: list[str] = []
        for pattern in words[1:] if only else words:
            for hit in sorted(glob.glob(str(base / pattern))):
                if (only == "files" and not os.path.isfile(hit)) or (
                        only == "dirs" and not os.path.isdir(hit)):
                    continue
                found.append(os.path.relpath(hit, base))
        name = (split_list(variables) or ["Item"])[0]
        return count, [{name: f} for f in found], line
    if kind == "from" and not source.startswith("("):
        path = (base / source).resolve()
        if not path.is_file():
            raise InputError(f"line {line}: queue", args, f"reads its items from {path}, which does "
                             "not exist.", "create the item file next to the submit file (or fix "
                             "its name).", source=sf.path)
        sf.submit.setQArgs(f"{variables} from {path}".strip())
    try:
        items = [dict(i) for i in (sf.submit.itemdata() or [])]
    except (ValueError, RuntimeError, OSError) as exc:
        raise InputError(f"line {line}: queue", args, f"its items cannot be read ({exc}).",
                         "check the queue statement's syntax.", source=sf.path) from None
    return count, items, line


def _quantity(sf: SubmitFile, command: str, bare_unit_mb: float) -> float | None:
    """A request in MiB, or None when absent; an expression or a bad unit is an InputError."""
    text = sf.value(command)
    if text is None:
        return None
    q = parse_quantity(text, bare_unit_mb)
    if q is None or q.mb is None:
        raise _bad(sf, command, text, "is not a size the trial can enforce (a number with an "
                   "optional unit K, M, G or T).", f"write e.g. `{command} = 4GB`.")
    return q.mb


def _expand_for(sf: SubmitFile, process: int, step: int, index: int, item: dict[str, str]) -> None:
    values = {"Process": process, "ProcId": process, "Cluster": CLUSTER_ID,
              "ClusterId": CLUSTER_ID, "Step": step, "ItemIndex": index, "Row": index, "Node": 0}
    for name, value in {**values, **item}.items():
        sf.submit[name] = str(value)


def _inputs(sf: SubmitFile, base: Path, stage: dict[str, Path]) -> list[InputFile]:
    line = sf.line("transfer_input_files")
    out: list[InputFile] = []
    for entry in split_list(sf.value("transfer_input_files")):
        if is_url(entry):
            if entry in stage:
                out.append(InputFile(entry, stage[entry], line))
                continue
            local = Path(entry[len("file://"):]) if entry.startswith("file://") else None
            if local is not None and local.exists():
                out.append(InputFile(entry, local, line))
                continue
            raise _bad(sf, "transfer_input_files", entry,
                       "is a URL this machine cannot fetch (the pool's execute points read it "
                       "from OSDF or /staging).",
                       f"give a local copy: advisor trial ... --stage '{entry}=LOCALPATH'.")
        path = base / entry
        if not path.exists():
            raise _bad(sf, "transfer_input_files", entry,
                       f"does not exist ({path}); condor_submit would refuse the job.",
                       "create it, fix the name, or remove it from transfer_input_files.")
        out.append(InputFile(entry, path, line, contents_only=entry.endswith("/") and path.is_dir()))
    return out


def _int_value(sf: SubmitFile, command: str, default: int) -> int:
    text = sf.value(command)
    if text is None or not text.strip():
        return default
    try:
        return int(float(text))
    except ValueError:
        raise _bad(sf, command, text, "is not a whole number.", f"write `{command} = 1`.") from None


def read_job(path: str | Path, process: int = 0, stage: dict[str, Path] | None = None) -> Job:
    """Process `process` of the submit file at `path` (InputError, exit 2, when it cannot run)."""
    sf = read_submit_file(path)
    submit_path = Path(path).resolve()
    base = submit_path.parent
    initialdir = sf.value("initialdir") or sf.value("initial_dir")
    if initialdir:
        base = (base / initialdir).resolve()
        if not base.is_dir():
            raise _bad(sf, "initialdir", initialdir, f"is not a folder ({base}).",
                       "create the folder or fix initialdir.")
    count, items, qline = _queue_items(sf, base)
    total = count * len(items)
    if process >= total:
        raise InputError("--job", process, f"the queue statement (line {qline}) makes {total} "
                         f"job(s), numbered 0 to {total - 1}." if total else
                         f"the queue statement (line {qline}) makes no job.",
                         f"give --job between 0 and {max(total - 1, 0)}.", source=sf.path)
    index, step = divmod(process, count)
    item = items[index]
    _expand_for(sf, process, step, index, item)

    executable = sf.value("executable")
    if not executable:
        raise InputError("executable", None, "the file names no executable.",
                         "add `executable = run.sh`.", source=sf.path)
    transfer_exe = truthy(sf.value("transfer_executable"), True)
    exe_path = base / executable if transfer_exe else Path(executable)
    if not exe_path.is_file():
        raise _bad(sf, "executable", executable, f"is not a file ({exe_path}).",
                   "fix the path, or create the script next to the submit file.")
    try:
        arguments = parse_arguments(sf.value("arguments") or sf.value("args") or "")
    except SyntaxProblem as exc:
        raise _bad(sf, "arguments", sf.value("arguments"), str(exc),
                   'write arguments = "--a 1 --b \'two words\'" (new syntax).') from None
    try:
        environment = parse_environment(sf.value("environment") or sf.value("env") or "")
    except SyntaxProblem as exc:
        raise _bad(sf, "environment", sf.value("environment"), str(exc),
                   'write environment = "A=1 B=\'two words\'" (new syntax).') from None
    try:
        remaps = parse_remaps(sf.value("transfer_output_remaps"))
    except SyntaxProblem as exc:
        raise _bad(sf, "transfer_output_remaps", sf.value("transfer_output_remaps"), str(exc),
                   'write transfer_output_remaps = "model.pt = /staging/me/model.pt".') from None
    when = (sf.value("when_to_transfer_output") or "ON_EXIT").strip().upper()
    if when not in ("ON_EXIT", "ON_EXIT_OR_EVICT", "ON_SUCCESS"):
        raise _bad(sf, "when_to_transfer_output", when, "is not ON_EXIT, ON_EXIT_OR_EVICT or "
                   "ON_SUCCESS.", "write `when_to_transfer_output = ON_EXIT_OR_EVICT`.")
    ckpt_code = sf.value("checkpoint_exit_code")
    checkpoint_exit_code = _int_value(sf, "checkpoint_exit_code", 0) if ckpt_code else None
    memory = _quantity(sf, "request_memory", BARE_UNIT_MB["request_memory"])
    disk_mb = _quantity(sf, "request_disk", BARE_UNIT_MB["request_disk"])
    inputs = _inputs(sf, base, stage or {})
    outputs_text = sf.value("transfer_output_files")
    checkpoint_text = sf.value("transfer_checkpoint_files")
    lines = {key: sf.line(key) for key in (
        "executable", "arguments", "environment", "transfer_input_files", "transfer_output_files",
        "transfer_checkpoint_files", "checkpoint_exit_code", "request_memory", "request_disk",
        "when_to_transfer_output", "transfer_output_remaps", "container_image")}
    lines["queue"] = qline
    job = Job(
        submit_path=submit_path, base_dir=base, process=process, jobs_in_queue=total,
        executable=exe_path, transfer_executable=transfer_exe, arguments=arguments,
        environment=environment, getenv=(sf.value("getenv") or "false").strip(),
        inputs=inputs,
        outputs=split_list(outputs_text) if outputs_text is not None else None,
        remaps=remaps, preserve_relative_paths=truthy(sf.value("preserve_relative_paths"), False),
        when_to_transfer_output=when, checkpoint_exit_code=checkpoint_exit_code,
        checkpoint_files=split_list(checkpoint_text) if checkpoint_text is not None else None,
        request_memory_mb=memory if memory is not None else DEFAULT_MEMORY_MB,
        request_memory_default=memory is None,
        request_disk_kb=disk_mb * 1024.0 if disk_mb is not None else 0.0,
        request_disk_default=disk_mb is None,
        request_cpus=_int_value(sf, "request_cpus", 1), request_gpus=_int_value(sf, "request_gpus", 0),
        container_image=sf.value("container_image") or None,
        stdout_name=sf.value("output"), stderr_name=sf.value("error"),
        lines=lines, item=item)
    for entry in (job.outputs or []) + (job.checkpoint_files or []):
        if os.path.isabs(entry) or ".." in Path(entry).parts:
            command = "transfer_output_files" if entry in (job.outputs or []) else "transfer_checkpoint_files"
            raise _bad(sf, command, entry, "is not a path inside the job's sandbox.",
                       "name files relative to the sandbox (e.g. `output`).")
    if job.container_image and job.container_image in (stage or {}):
        job.container_image = str((stage or {})[job.container_image])
    if sf.findings:
        job.notes += [f"line {f.line}: {f.message}" for f in sf.findings if f.line]
    return job
