"""The checkpoint wrapper: runs the real program under `timeout` and exits 85 when time is up.

This is CHTC's exit-driven checkpointing (checkpointing.md): `timeout 4h ./run.sh; [ $? -eq 124 ]
&& exit 85`. HTCondor sees exit code 85 (`checkpoint_exit_code`), transfers
`transfer_checkpoint_files` to the access point and starts the job again in place; the program
resumes from its checkpoint. Any other exit status is the program's own.
"""

from __future__ import annotations

from advisor.emit.common import (
    CHECKPOINT_EXIT_CODE,
    CHECKPOINT_GRACE_SECONDS,
    TIMEOUT_EXIT_CODE,
    check_job,
    check_request,
    program_path,
    timeout_duration,
)
from advisor.emit.quote import comment, shell_quote
from advisor.errors import InputError
from advisor.request import JobSpec, Request


def render_checkpoint_wrapper(request: Request, job: JobSpec) -> str:
    """A bash script that runs `job.executable` for one checkpoint interval at a time."""
    check_request(request)
    check_job(job, request)
    if request.checkpoint_interval_minutes is None:
        raise InputError("checkpoint_interval_minutes", None,
                         "is not set, so the job does not checkpoint and needs no wrapper.",
                         "set checkpoint_interval_minutes (CHTC: 60-300) to write a wrapper.")
    interval = timeout_duration(request.checkpoint_interval_minutes)
    program = shell_quote(program_path(job.executable))
    files = comment(", ".join(job.checkpoint_files))
    name, executable = comment(job.name), comment(job.executable)
    return f"""#!/bin/bash
# Checkpoint wrapper for {name}, written by advisor.
#
# Runs {executable} for at most {interval} at a time. When the time is up, `timeout` sends
# SIGTERM (and SIGKILL {CHECKPOINT_GRACE_SECONDS} s later); the program must then have its
# checkpoint ({files}) on disk, written regularly or on SIGTERM. timeout exits {TIMEOUT_EXIT_CODE} and
# this wrapper exits {CHECKPOINT_EXIT_CODE} (= checkpoint_exit_code): HTCondor saves the checkpoint files
# and starts the job again, and the program resumes from them. Any other exit status is the
# program's own: 0 when the work is done, anything else a real failure.
# Source: CHTC checkpointing.md (`timeout 4h ...; [ $? -eq 124 ] && exit 85`).

timeout --kill-after={CHECKPOINT_GRACE_SECONDS}s {interval} {program} "$@"
status=$?
if [ "$status" -eq {TIMEOUT_EXIT_CODE} ]; then
    echo "advisor wrapper: checkpoint interval {interval} reached; exiting {CHECKPOINT_EXIT_CODE} to checkpoint" >&2
    exit {CHECKPOINT_EXIT_CODE}
fi
exit "$status"
"""
