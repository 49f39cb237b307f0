"""The checkpoint wrapper: the job's executable when it checkpoints. Runs `run.sh` for one interval;
exits 85 when the interval is over, forwards an eviction's SIGTERM.

CHTC's exit-driven checkpointing (checkpointing.md: `timeout 4h ./run.sh; [ $? -eq 124 ] && exit
85`), with what HTCondor was measured to do (docs/DOMAIN.md, "What HTCondor actually does"):

* the directories named in transfer_checkpoint_files exist before the first exit 85 (a missing
  one puts the job on hold, code 36): the wrapper creates them first;
* an eviction sends SIGTERM to the top-level process only, 600 s before SIGKILL, and bash does
  not pass a signal on to a foreground child: the program runs in the background, the wrapper
  traps SIGTERM, forwards it, waits up to EVICTION_GRACE_SECONDS and exits 143 (not 85:
  HTCondor does not complete a job that exits during a vacate, and the checkpoint written on
  SIGTERM comes back through ON_EXIT_OR_EVICT);
* at the end of an interval the wrapper asks the program to stop (SIGTERM), waits up to
  CHECKPOINT_GRACE_SECONDS (then SIGKILL) and exits 85: HTCondor saves the checkpoint files and
  restarts the job, which resumes from them.
"""

from __future__ import annotations

import math

from advisor.emit.common import (
    CHECKPOINT_EXIT_CODE,
    CHECKPOINT_GRACE_SECONDS,
    CHECKPOINT_INTERVAL_ENV,
    EVICTED_EXIT_CODE,
    EVICTION_GRACE_SECONDS,
    OUTPUT_DIR,
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
    seconds = max(1, int(math.ceil(request.checkpoint_interval_minutes * 60)))
    program = shell_quote(program_path(job.executable))
    # Directories (names without a suffix) are created here; a checkpoint *file* must be written by
    # the program before the first interval ends (an empty one would not load).
    dirs = " ".join(shell_quote(d) for d in dict.fromkeys(
        (*(f for f in job.checkpoint_files if "." not in f.rsplit("/", 1)[-1]), OUTPUT_DIR)))
    files = comment(", ".join(job.checkpoint_files))
    name, executable = comment(job.name), comment(job.executable)
    return f"""#!/bin/bash
# Checkpoint wrapper for {name}, written by advisor: HTCondor's executable.
#
# Runs {executable} for at most {interval} at a time. Then it asks the program to stop (SIGTERM,
# SIGKILL {CHECKPOINT_GRACE_SECONDS} s later): the program must have its checkpoint ({files}) on disk,
# written regularly or on SIGTERM. The wrapper then exits {CHECKPOINT_EXIT_CODE} (= checkpoint_exit_code): HTCondor
# saves the checkpoint files and starts the job again in place, and the program resumes from them.
# On an eviction HTCondor sends SIGTERM to this script only: it is passed on to the program, which
# saves its checkpoint; the wrapper exits {EVICTED_EXIT_CODE}. Any other exit status is the program's own:
# 0 when the work is done, anything else a real failure.
# Source: CHTC checkpointing.md; docs/DOMAIN.md "What HTCondor actually does".
set -u
interval_s=${{{CHECKPOINT_INTERVAL_ENV}:-{seconds}}}     # {interval}; advisor trial --checkpoint-every sets {CHECKPOINT_INTERVAL_ENV}
stop_grace_s={CHECKPOINT_GRACE_SECONDS}
evict_grace_s={EVICTION_GRACE_SECONDS}   # HTCondor sends SIGKILL 600 s after SIGTERM
# A path in transfer_checkpoint_files missing at the first exit {CHECKPOINT_EXIT_CODE} holds the job (code 36).
mkdir -p {dirs}

# Job control: the program runs in its own process group, so that the stragglers it leaves (a
# shell's children, loader workers) can be cleaned up at the end; SIGTERM goes to the program only.
set -m
{program} "$@" &
child=$!
set +m
why=
stopped_at=0
grace=0
stop() {{
    [ -n "$why" ] && return
    why=$1
    grace=$2
    stopped_at=$SECONDS
    kill -TERM "$child" 2>/dev/null || true
}}
trap 'stop evicted "$evict_grace_s"' TERM
trap 'stop interrupted "$evict_grace_s"' INT
start=$SECONDS
while kill -0 "$child" 2>/dev/null; do
    if [ -z "$why" ] && [ $((SECONDS - start)) -ge "$interval_s" ]; then
        stop interval "$stop_grace_s"
    fi
    if [ -n "$why" ] && [ $((SECONDS - stopped_at)) -ge "$grace" ]; then
        kill -KILL -- -"$child" 2>/dev/null || kill -KILL "$child" 2>/dev/null || true
    fi
    sleep 1 &
    wait $! 2>/dev/null   # returns at once when a trapped signal arrives
done
wait "$child"
status=$?
kill -KILL -- -"$child" 2>/dev/null   # what the program left running
case "$why" in
    interval)
        echo "advisor wrapper: checkpoint interval {interval} reached; exiting {CHECKPOINT_EXIT_CODE} to checkpoint" >&2
        exit {CHECKPOINT_EXIT_CODE} ;;
    evicted|interrupted)
        echo "advisor wrapper: stopped by SIGTERM (eviction); the checkpoint written on SIGTERM goes back with the output" >&2
        exit {EVICTED_EXIT_CODE} ;;
esac
exit "$status"
"""
