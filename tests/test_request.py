"""One `Request` for every part that speaks of a job's resources, and its unit rules."""

from __future__ import annotations

import importlib

import pytest

from advisor.check.matching import job_request
from advisor.check.submitfile import parse_submit_text
from advisor.emit.htcondor import resource_lines
from simulator.errors import ConfigError
from simulator.request import (
    BARE_UNIT_MB,
    Request,
    gib_to_mib,
    kib_to_mib,
    mib_to_gib,
    mib_to_kib,
    parse_quantity,
)
from simulator.scenario import Scenario


def test_one_request_class_everywhere() -> None:
    users = ("advisor.request", "advisor.check.matching", "advisor.emit.common",
             "advisor.emit.htcondor", "advisor.emit.kubernetes", "advisor.emit.slurm",
             "advisor.logs.recommend", "advisor.recommend.explain", "advisor.recommend.jobfiles",
             "simulator", "simulator.scenario",
             "simulator.matchmaking")
    for name in users:
        assert importlib.import_module(name).Request is Request, name


@pytest.mark.parametrize(("text", "command", "mb", "unit"), [
    ("6144MB", "request_memory", 6144, "MB"),
    ("6144", "request_memory", 6144, ""),             # a bare request_memory is MiB
    ("16g", "request_memory", 16 * 1024, "G"),        # any case, powers of 2
    ("2048", "request_disk", 2, ""),                  # a bare request_disk is KiB
    ("20GB", "request_disk", 20 * 1024, "GB"),
    ("1T", "request_disk", 1024**2, "T"),
    ("512K", "request_memory", 0.5, "K"),
    ("24", "gpus_minimum_memory", 24, ""),            # MiB, like request_memory
])
def test_quantities_with_and_without_units(text: str, command: str, mb: float, unit: str) -> None:
    q = parse_quantity(text, BARE_UNIT_MB[command])
    assert q is not None and q.mb == pytest.approx(mb) and q.unit == unit
    assert q.bare == (unit == "")


def test_quantity_expression_and_unknown_unit() -> None:
    q = parse_quantity("MY.Memory * 2", 1.0)
    assert q is not None and q.mb is None and not q.bare
    assert parse_quantity("4 GiB", 1.0) is None       # HTCondor knows K/M/G/T(B) only


def test_conversions_are_powers_of_two_and_exact() -> None:
    assert gib_to_mib(1.5) == 1536 and mib_to_gib(1536) == 1.5
    assert kib_to_mib(2048) == 2 and mib_to_kib(2) == 2048
    for gb in (0.1, 0.3, 7.77, 80.0):
        assert mib_to_gib(gib_to_mib(gb)) == gb


def test_the_simulators_words_read_the_same_request() -> None:
    r = Request.from_gb(gpus=2, cpus=8, memory_gb=0.3, gpu_memory_gb=24, disk_gb=50,
                        min_capability=8.0, job_length="long", is_resumable=True)
    assert (r.request_gpus, r.request_cpus, r.request_memory_mb) == (2, 8, 0.3 * 1024)
    assert r.gpus_minimum_memory_mb == 24576 and isinstance(r.gpus_minimum_memory_mb, int)
    assert r.request_disk_mb == 51200 and r.gpus_minimum_capability == 8.0
    assert (r.gpus, r.cpus, r.memory_gb, r.gpu_memory_gb, r.disk_gb, r.min_capability) == (
        2, 8, 0.3, 24.0, 50.0, 8.0)
    floorless = Request.from_gb()
    assert floorless.gpus_minimum_capability is None and floorless.gpus_minimum_memory_mb is None
    assert floorless.min_capability == 0.0 and floorless.gpu_memory_gb == 0.0


def test_to_dict_keeps_the_json_contract() -> None:
    d = Request(request_memory_mb=6144.0).to_dict()
    assert list(d) == ["request_cpus", "request_memory_mb", "request_disk_mb", "request_gpus",
                       "gpus_minimum_capability", "gpus_minimum_memory_mb", "job_length",
                       "is_resumable", "checkpoint_interval_minutes", "gpus_maximum_capability"]
    assert d["request_memory_mb"] == 6144 and isinstance(d["request_memory_mb"], int)
    assert Request(retry_request_memory_mb=8192).to_dict()["retry_request_memory_mb"] == 8192


def test_scenario_request_keys_unchanged() -> None:
    s = Scenario.from_dict({"pool": "chtc", "workload": {
        "tasks": 2, "work_hours": 1, "request": {"gpus": 1, "cpus": 4, "memory_gb": 12,
                                                 "gpu_memory_gb": 20, "disk_gb": 30,
                                                 "min_capability": 7.5}}})
    r = s.workload.request
    assert isinstance(r, Request)
    assert (r.request_cpus, r.request_memory_mb, r.request_disk_mb) == (4, 12288, 30720)
    assert (r.gpus_minimum_memory_mb, r.gpus_minimum_capability) == (20480, 7.5)
    with pytest.raises(ConfigError) as exc:
        Scenario.from_dict({"pool": "chtc", "workload": {
            "tasks": 2, "work_hours": 1, "request": {"request_memory_mb": 4096}}})
    assert exc.value.field == "workload.request.request_memory_mb"


def test_check_reads_a_submit_file_into_the_request() -> None:
    sub = parse_submit_text("executable = run.sh\nrequest_gpus = 1\nrequest_memory = 16GB\n"
                            "request_disk = 2097152\ngpus_minimum_memory = 20480\n"
                            "request_cpus = $(cpus)\nqueue\n", "job.sub")
    req = job_request(sub)
    assert isinstance(req.request, Request)
    assert req.request.request_memory_mb == 16384
    assert req.request.request_disk_mb == 2048               # 2,097,152 KiB
    assert req.given("gpus_minimum_memory_mb") == 20480
    assert req.given("request_cpus") is None                 # an expression: not a number
    assert req.given("gpus_minimum_capability") is None      # not in the file
    plain = job_request(parse_submit_text("executable = run.sh\nqueue\n", "cpu.sub"))
    assert plain.gpus == 0 and plain.given("request_cpus") == 1   # HTCondor's defaults


def test_resource_lines_are_the_submit_files() -> None:
    r = Request(request_cpus=2, request_memory_mb=6144, retry_request_memory_mb=12288,
                request_disk_mb=20480, request_gpus=1, gpus_minimum_memory_mb=24576)
    every = ("request_cpus", "request_memory_mb", "retry_request_memory_mb", "request_disk_mb",
             "request_gpus", "gpus_minimum_memory_mb")
    assert resource_lines(r, every) == [
        "request_cpus = 2", "request_memory = 6144MB", "retry_request_memory = 12288MB",
        "request_disk = 20GB", "request_gpus = 1", "gpus_minimum_memory = 24576MB"]
    assert resource_lines(r, ("request_memory_mb",)) == ["request_memory = 6144MB"]
    assert resource_lines(Request(request_gpus=0, gpus_minimum_memory_mb=1024),
                          ("request_gpus", "gpus_minimum_memory_mb")) == []  # a CPU job
