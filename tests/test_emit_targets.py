"""The Kubernetes Job (validated against the Kubernetes OpenAPI schema shipped by
kubernetes-validate) and the Slurm batch script (bash syntax, directives)."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from advisor.emit import job_manifest, render_kubernetes, render_slurm
from advisor.request import DataFile, JobSpec, Request
from simulator.pool import load_pool

kubernetes_validate = pytest.importorskip("kubernetes_validate")

CHTC = load_pool("chtc")
CKPT = Request(request_cpus=4, request_memory_mb=6144, request_disk_mb=20480, request_gpus=2,
               gpus_minimum_capability=8.6, gpus_minimum_memory_mb=20480, job_length="short",
               is_resumable=True, checkpoint_interval_minutes=90)
PLAIN = Request(request_cpus=1, request_memory_mb=4096, request_disk_mb=10240, request_gpus=1,
                gpus_minimum_capability=8.0, job_length="long")
MANY = JobSpec(name="Sweep_Run 1", executable="train.sh", arguments='--lr 0.1 --tag "a b"',
               inputs=(DataFile("data.tar", 2.0),), container_image="docker://pytorch/pytorch:2.5.1",
               queue=50, extra={"max_failed_indexes": 5, "parallelism": 20})
ONE = JobSpec(name="one", executable="/usr/bin/python3", arguments="eval.py")


def validate(doc: dict) -> None:
    version = kubernetes_validate.latest_version()
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("request_, job", [(CKPT, MANY), (PLAIN, ONE), (CKPT, ONE), (PLAIN, MANY),
                                            (Request(request_gpus=0), JobSpec(name="cpu"))])
def test_kubernetes_job_is_valid(request_, job):
    doc = yaml.safe_load(render_kubernetes(request_, job, CHTC))
    assert doc == job_manifest(request_, job, CHTC)
    validate(doc)
    assert doc["apiVersion"] == "batch/v1" and doc["kind"] == "Job"
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
    pod = doc["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    limits = pod["containers"][0]["resources"]["limits"]
    if request_.request_gpus:
        assert limits["nvidia.com/gpu"] == str(request_.request_gpus)
    else:
        assert "nvidia.com/gpu" not in limits


def test_a_broken_manifest_is_caught_by_the_validator():
    doc = job_manifest(CKPT, MANY, CHTC)
    doc["spec"]["completionMode"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(doc)


def test_indexed_job_with_checkpoint_policy():
    doc = job_manifest(CKPT, MANY, CHTC)
    spec = doc["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == 50 and spec["parallelism"] == 20
    assert spec["backoffLimitPerIndex"] == 3 and spec["maxFailedIndexes"] == 5
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onExitCodes": {"containerName": "main",
                                                            "operator": "In", "values": [85]}}
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == "pytorch/pytorch:2.5.1"
    res = container["resources"]
    assert res["requests"] == {"cpu": "4", "memory": "6144Mi", "ephemeral-storage": "20480Mi"}
    assert res["limits"]["nvidia.com/gpu"] == "2"
    assert "timeout --kill-after=120s 90m ./train.sh" in container["command"][2]
    assert "exit 85" in container["command"][2]
    assert container["args"] == ["--lr", "0.1", "--tag", "a b"]
    assert doc["metadata"]["annotations"]["advisor/gpus-minimum-capability"] == "8.6"
    terms = spec["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    # capability >= 8.6: major > 8, or major 8 and minor > 5; each with the memory floor
    assert terms[0]["matchExpressions"][0] == {"key": "nvidia.com/gpu.compute.major",
                                               "operator": "Gt", "values": ["8"]}
    assert {"key": "nvidia.com/gpu.compute.minor", "operator": "Gt", "values": ["5"]} in terms[1]["matchExpressions"]
    assert all({"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["20479"]}
               in t["matchExpressions"] for t in terms)


def test_single_job_without_checkpointing():
    spec = job_manifest(PLAIN, ONE, CHTC)["spec"]
    assert "completionMode" not in spec and spec["completions"] == 1 and spec["backoffLimit"] == 3
    assert all("onExitCodes" not in r for r in spec["podFailurePolicy"]["rules"])
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"] == ["/usr/bin/python3"] and container["args"] == ["eval.py"]
    assert "volumes" not in spec["template"]["spec"]
    terms = spec["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "nvidia.com/gpu.compute.major", "operator": "Gt",
                                            "values": ["7"]}]}]


# --- Slurm ----------------------------------------------------------------------------------

def directives(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("#SBATCH "):
            opt = line.split(None, 1)[1]
            key, _, value = opt.partition("=")
            assert key not in out, f"{key} twice"
            out[key] = value
    return out


def bash_syntax_ok(text: str, tmp_path) -> bool:
    path = tmp_path / "job.sbatch"
    path.write_text(text)
    return subprocess.run(["bash", "-n", str(path)]).returncode == 0


def test_slurm_array_with_checkpointing(tmp_path):
    text = render_slurm(CKPT, MANY, CHTC)
    assert text.startswith("#!/bin/bash\n")
    assert bash_syntax_ok(text, tmp_path)
    d = directives(text)
    assert d["--gres"] == "gpu:2"
    assert d["--mem"] == "6144M"
    assert d["--cpus-per-task"] == "4"
    assert d["--time"] == "0-12:00:00"     # CHTC short tier
    assert re.fullmatch(r"\d+-\d\d:\d\d:\d\d", d["--time"])
    assert d["--array"] == "0-49"
    assert "--requeue" in d
    assert d["--signal"] == "B:TERM@120"
    assert "%A_%a" in d["--output"]
    assert "./checkpoint_wrapper.sh" in text and 'kill -TERM "$child"' in text
    assert "scontrol requeue" in text
    # a constraint suggestion is a comment, never an active directive
    assert "--constraint" not in d and "##SBATCH --constraint" in text


def test_slurm_single_job(tmp_path):
    text = render_slurm(PLAIN, ONE, CHTC)
    assert bash_syntax_ok(text, tmp_path)
    d = directives(text)
    assert d["--time"] == "7-00:00:00"     # CHTC long tier: 168 h
    assert "--array" not in d and "--requeue" not in d and "--signal" not in d
    assert d["--gres"] == "gpu:1" and d["--mem"] == "4096M"
    assert "srun /usr/bin/python3 eval.py" in text


def test_slurm_time_from_job_limit(tmp_path):
    job = JobSpec(name="t", max_runtime_hours=1.51)
    d = directives(render_slurm(Request(), job, CHTC))
    assert d["--time"] == "0-01:31:00"
