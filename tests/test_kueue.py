"""The Kubernetes Job is ready for Kueue: it names a LocalQueue in Kueue's label, its requests
are what Kueue counts against a ClusterQueue's quota, and it still passes the schema check."""

from __future__ import annotations

import pytest
import yaml

from advisor.emit import job_manifest, render_kubernetes
from advisor.emit.kubernetes import DEFAULT_KUEUE_QUEUE, KUEUE_QUEUE_LABEL
from advisor.request import JobSpec, Request
from simulator.pool import load_pool

kubernetes_validate = pytest.importorskip("kubernetes_validate")
CHTC = load_pool("chtc")
REQUEST = Request(request_cpus=4, request_memory_mb=6144, request_disk_mb=20480, request_gpus=2,
                  gpus_minimum_capability=8.0)


def test_job_names_a_local_queue_and_passes_the_schema():
    doc = yaml.safe_load(render_kubernetes(REQUEST, JobSpec(name="train", executable="run.sh"),
                                           CHTC))
    assert doc["metadata"]["labels"][KUEUE_QUEUE_LABEL] == DEFAULT_KUEUE_QUEUE
    # The queue label is the Job's, not the pods' (Kueue reads it from the Job).
    assert KUEUE_QUEUE_LABEL not in doc["spec"]["template"]["metadata"]["labels"]
    res = doc["spec"]["template"]["spec"]["containers"][0]["resources"]
    # What Kueue counts: requests, and limits where a request is missing (the GPUs).
    counted = {**res["limits"], **res["requests"]}
    assert counted == {"cpu": "4", "memory": "6144Mi", "ephemeral-storage": "20480Mi",
                       "nvidia.com/gpu": "2"}
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_the_queue_can_be_named_and_is_a_valid_label_value():
    job = JobSpec(name="train", executable="run.sh", extra={"kueue_queue": "Batch_GPU"})
    doc = job_manifest(REQUEST, job, CHTC)
    value = doc["metadata"]["labels"][KUEUE_QUEUE_LABEL]
    assert value == "batch-gpu"
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
