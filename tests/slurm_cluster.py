"""A one-node Slurm cluster for tests: munged, slurmctld and slurmd started as root with a
generated configuration in a temporary directory, stopped by PID afterwards.

    from slurm_cluster import SlurmCluster, slurm_cluster_fixture   # the fixture `slurm`

    with SlurmCluster.start(tmp) as cluster:
        job = cluster.sbatch(["job.sbatch"], cwd=tmp)
        cluster.wait(job, timeout_s=60)

Everything lives under the temporary directory: the munge key and socket, slurm.conf, the
controller's state, the node's spool, the job-completion log and the daemons' logs. The client
commands find the cluster through SLURM_CONF (`cluster.env`). Accounting without a database:
`JobAcctGatherType=jobacct_gather/linux` samples the jobs' memory and CPU, and
`JobCompType=jobcomp/filetxt` keeps one line per finished job; `sacct` needs slurmdbd for the
per-step figures, so `cluster.accounting(job)` reads the jobs' figures from `sstat` while they
run and from `scontrol show job` once they end (see advisor.logs.slurm).

When the cluster cannot start (the packages are missing, not root, a daemon fails), `start`
raises `Unavailable` with the reason; the fixture turns it into a skipped test.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue", "sinfo")
PARTITION = "debug"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# The node as declared: at least MIN_CPUS CPUs (an emitted request asks for a few; this machine
# may have fewer cores, so `config_overrides` makes Slurm take the declared node as it is) and
# FAKE_GPUS count-only GPUs (a GRES without device files: `--gres=gpu:1` is accepted and
# scheduled; the job sees no GPU and the program runs on the CPU).
MIN_CPUS = 8
FAKE_GPUS = 1
CONFIG = """\
ClusterName=advisortest
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket},cred_expire=10
StateSaveLocation={state}
SlurmdSpoolDir={spool}/%n
SlurmctldPidFile={run}/slurmctld.pid
SlurmdPidFile={run}/slurmd.pid
SlurmctldLogFile={logs}/slurmctld.log
SlurmdLogFile={logs}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={logs}/jobcomp.txt
MinJobAge=600
KillWait=5
InactiveLimit=0
Waittime=0
MessageTimeout=10
SchedulerParameters=sched_interval=2,bf_interval=2
TmpFS={tmpfs}
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName={host} CPUs={cpus} RealMemory={memory_mb} TmpDisk={tmp_mb} Gres=gpu:{gpus} State=UNKNOWN
PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


class Unavailable(RuntimeError):
    """The cluster cannot be started here; the message says why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _memory_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise Unavailable("/proc/meminfo has no MemTotal")


def missing() -> str | None:
    """Why the cluster cannot start here, or None."""
    absent = [b for b in BINARIES if shutil.which(b) is None]
    if absent:
        return (f"Slurm/munge not installed ({', '.join(absent)} missing): "
                "apt-get install slurm-wlm munge")
    if os.geteuid() != 0:
        return "the one-node Slurm cluster needs root (slurmd runs jobs as their user)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no 'munge' user (the munge package creates it)"
    return None


@dataclass
class SlurmCluster:
    root: Path
    host: str
    cpus: int
    memory_mb: int
    conf: Path
    env: dict[str, str]
    pids: dict[str, int] = field(default_factory=dict)

    # --- start and stop ------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def start(cls, root: Path) -> Iterator[SlurmCluster]:
        why = missing()
        if why:
            raise Unavailable(why)
        cluster = cls._configure(Path(root))
        try:
            cluster._start_munge()
            cluster._start_daemon("slurmctld", ["slurmctld", "-D", "-f", str(cluster.conf)])
            cluster._start_daemon("slurmd", ["slurmd", "-D", "-f", str(cluster.conf)])
            cluster._wait_idle()
            yield cluster
        finally:
            cluster.stop()

    @classmethod
    def _configure(cls, root: Path) -> SlurmCluster:
        host = socket.gethostname().split(".")[0]
        munge = root / "munge"
        for d in ("state", "spool", "run", "logs", "tmpfs", "munge"):
            (root / d).mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        cpus = max(MIN_CPUS, os.cpu_count() or 1)
        memory = max(256, _memory_mb() - 1024)     # leave the system some room
        tmp_mb = shutil.disk_usage(root / "tmpfs").free // 2**20
        conf = root / "slurm.conf"
        conf.write_text(CONFIG.format(
            host=host, ctld_port=_free_port(), slurmd_port=_free_port(),
            munge_socket=munge / "munge.socket", state=root / "state", spool=root / "spool",
            run=root / "run", logs=root / "logs", tmpfs=root / "tmpfs", cpus=cpus,
            memory_mb=memory, tmp_mb=tmp_mb, gpus=FAKE_GPUS, partition=PARTITION))
        (root / "gres.conf").write_text(f"NodeName={host} Name=gpu File=/dev/null\n")
        env = {**os.environ, "SLURM_CONF": str(conf)}
        return cls(root=root, host=host, cpus=cpus, memory_mb=memory, conf=conf, env=env)

    def _start_munge(self) -> None:
        munge = self.root / "munge"
        user = pwd.getpwnam("munge")
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chown(munge, user.pw_uid, user.pw_gid)
        munge.chmod(0o700)
        os.chown(key, user.pw_uid, user.pw_gid)
        key.chmod(0o400)
        cmd = ["munged", "--foreground", f"--key-file={key}", f"--socket={munge / 'munge.socket'}",
               f"--pid-file={munge / 'munged.pid'}", f"--log-file={munge / 'munged.log'}",
               f"--seed-file={munge / 'munged.seed'}", "--num-threads=2", "--force"]

        def as_munge() -> None:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

        self._spawn("munged", cmd, preexec_fn=as_munge)
        self._until(lambda: (munge / "munge.socket").exists(), "munged to open its socket",
                    munge / "munged.log")

    def _start_daemon(self, name: str, cmd: list[str]) -> None:
        self._spawn(name, cmd)

    def _spawn(self, name: str, cmd: list[str], **kw: object) -> None:
        log = open(self.root / "logs" / f"{name}.stdout", "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True, **kw)  # type: ignore[call-overload]
        log.close()
        self.pids[name] = proc.pid
        self._procs = getattr(self, "_procs", {})
        self._procs[name] = proc

    def _until(self, ready, what: str, log: Path) -> None:  # noqa: ANN001
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for name, proc in getattr(self, "_procs", {}).items():
                if proc.poll() is not None:
                    raise Unavailable(f"{name} exited with {proc.returncode} while waiting for "
                                      f"{what}: {self._tail(name)}")
            if ready():
                return
            time.sleep(0.2)
        raise Unavailable(f"timed out after {START_TIMEOUT_S:g} s waiting for {what} "
                          f"(see {log}): {self._tail()}")

    def _tail(self, name: str | None = None) -> str:
        logs = self.root / "logs"
        names = [name] if name else list(getattr(self, "_procs", {}))
        text = []
        for n in names:
            for p in (logs / f"{n}.log", logs / f"{n}.stdout", self.root / "munge" / f"{n}.log"):
                if p.is_file() and p.stat().st_size:
                    text.append(f"[{p.name}] " + " | ".join(p.read_text(errors="replace")
                                                            .strip().splitlines()[-4:]))
        return "; ".join(text) or "no log output"

    def _wait_idle(self) -> None:
        def idle() -> bool:
            r = self.run(["sinfo", "-h", "-N", "-o", "%T"], check=False)
            return r.returncode == 0 and r.stdout.strip().rstrip("*") in ("idle", "mixed")

        self._until(idle, f"node {self.host} to be idle in Slurm", self.root / "logs")

    def stop(self) -> None:
        """Stop the daemons this cluster started, by PID: SIGTERM, then SIGKILL."""
        procs = getattr(self, "_procs", {})
        if procs.get("slurmctld") is not None and procs["slurmctld"].poll() is None:
            self.run(["scancel", "--full", "--quiet", "--user", "root"], check=False, timeout=10)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        self._stop_job_steps()

    def _stop_job_steps(self) -> None:
        """Cancel what still runs, then stop the job step daemons (slurmstepd outlives slurmd
        and starts its own session): ours are those whose environment names our slurm.conf."""
        mine = f"SLURM_CONF={self.conf}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes()
                if not cmd.startswith(b"slurmstepd"):
                    continue
                env = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if mine in env:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    # --- using it ------------------------------------------------------------------------------

    def run(self, cmd: list[str], *, check: bool = True, cwd: Path | None = None,
            timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=cwd,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
        return r

    def sbatch(self, args: list[str], cwd: Path) -> str:
        """Submit; the job id."""
        r = self.run(["sbatch", "--parsable", *args], cwd=cwd)
        return r.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job -o` as a dict ({} once Slurm forgot the job)."""
        from advisor.logs.slurm import parse_scontrol

        r = self.run(["scontrol", "show", "job", "-o", job_id], check=False)
        if r.returncode != 0:
            return {}
        jobs = parse_scontrol(r.stdout)
        return jobs[0] if jobs else {}

    def wait(self, job_id: str, timeout_s: float, states: tuple[str, ...] = (
            "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
            "BOOT_FAIL", "DEADLINE", "PREEMPTED")) -> dict[str, str]:
        """Poll until the job reaches one of `states`; its record."""
        deadline = time.monotonic() + timeout_s
        info: dict[str, str] = {}
        while time.monotonic() < deadline:
            info = self.job(job_id)
            if info.get("JobState") in states:
                return info
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} did not reach {states} in {timeout_s:g} s: "
                             f"{info.get('JobState')} ({info.get('Reason')}); "
                             f"{self._tail('slurmctld')}")

    def jobcomp(self) -> str:
        p = self.root / "logs" / "jobcomp.txt"
        return p.read_text() if p.is_file() else ""


@pytest.fixture(scope="module", name="slurm")
def slurm_cluster_fixture() -> Iterator[SlurmCluster]:
    """A running one-node Slurm cluster (module scope: started once per test file); skips with
    the reason when it cannot start here."""
    # Not under pytest's own temporary folder: its parents are private to root, and munged
    # runs as the munge user, who must reach its key and socket.
    root = Path(tempfile.mkdtemp(prefix="advisor-slurm-"))
    try:
        with SlurmCluster.start(root) as cluster:
            yield cluster
    except Unavailable as exc:
        pytest.skip(f"no local Slurm cluster: {exc}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
