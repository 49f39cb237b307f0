"""The Kubernetes Job (batch/v1): the same request for a cluster with NVIDIA's device plugin.

Many tasks become an Indexed Job (`completionMode: Indexed`, one index per HTCondor
`$(Process)`, `backoffLimitPerIndex`). Exit code 85 (checkpoint taken) is not a failure: the
podFailurePolicy ignores it, so Kubernetes starts a new pod that resumes from the checkpoint on
the persistent volume. A minimum GPU capability or memory becomes a node affinity on the labels
NVIDIA's GPU Feature Discovery publishes (`nvidia.com/gpu.compute.major`, ...).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from advisor.emit.common import (
    CHECKPOINT_EXIT_CODE,
    CHECKPOINT_GRACE_SECONDS,
    EVICTION_GRACE_SECONDS,
    OUTPUT_DIR,
    TIMEOUT_EXIT_CODE,
    check_job,
    check_request,
    dns_name,
    program_path,
    safe_name,
    timeout_duration,
)
from advisor.emit.quote import comment, shell_quote, split_words
from advisor.request import JobSpec, Request
from simulator.pool import Pool

CONTAINER = "main"
CHECKPOINT_MOUNT = "/checkpoints"
IMAGE_PLACEHOLDER = "REPLACE-WITH-YOUR-IMAGE:latest"
DEFAULT_BACKOFF = 3
# Kueue (e.g. CERN's batch service): the Job names its namespace's LocalQueue in this label;
# Kueue suspends it on creation and admits it when the ClusterQueue's quota covers what the pod
# requests (limits count where requests are missing, so the GPU limit is the GPU request).
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
DEFAULT_KUEUE_QUEUE = "user-queue"      # Kueue's documented example name: set yours


def manifest_file_name(job: JobSpec) -> str:
    return f"{safe_name(job.name)}.job.yaml"


def _image(job: JobSpec) -> str:
    """The OCI image: the HTCondor file's image, or the registry image its `.sif` was built from
    (`JobSpec.extra["oci_image"]`), so both targets run the same software."""
    image = job.container_image or IMAGE_PLACEHOLDER
    source = job.extra.get("oci_image")
    if isinstance(source, str) and source and (image.endswith(".sif") or "://" in image
                                               and not image.startswith(("docker://", "oci://"))):
        image = source
    for prefix in ("docker://", "oci://"):
        if image.startswith(prefix):
            image = image[len(prefix):]
    if image.endswith(".sif") or image.startswith(("osdf://", "file://", "/")):
        return IMAGE_PLACEHOLDER  # an Apptainer image: Kubernetes needs an OCI image
    return image


def _capability_affinity(minimum: float) -> list[dict[str, Any]]:
    """Node selector terms (ORed) for compute capability >= minimum on GFD labels."""
    major = int(minimum)
    minor = int(round((minimum - major) * 10))
    terms = [{"matchExpressions": [
        {"key": "nvidia.com/gpu.compute.major", "operator": "Gt", "values": [str(major - 1 if minor == 0 else major)]}]}]
    if minor > 0:
        terms.append({"matchExpressions": [
            {"key": "nvidia.com/gpu.compute.major", "operator": "In", "values": [str(major)]},
            {"key": "nvidia.com/gpu.compute.minor", "operator": "Gt", "values": [str(minor - 1)]}]})
    return terms


def job_manifest(request: Request, job: JobSpec, pool: Pool) -> dict[str, Any]:
    """The batch/v1 Job as a plain mapping (what `render_kubernetes` dumps)."""
    check_request(request)
    check_job(job, request)
    name = dns_name(job.name)
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "advisor"}
    annotations = {"advisor/source-pool": pool.name}
    if request.gpus_minimum_capability is not None:
        annotations["advisor/gpus-minimum-capability"] = f"{request.gpus_minimum_capability:.1f}"
    if request.gpus_minimum_memory_mb is not None:
        annotations["advisor/gpus-minimum-memory-mb"] = str(request.gpus_minimum_memory_mb)
    if request.checkpoint_interval_minutes is not None:
        annotations["advisor/checkpoint-interval-minutes"] = f"{request.checkpoint_interval_minutes:g}"

    resources = {
        "cpu": str(request.request_cpus),
        "memory": f"{request.request_memory_mb}Mi",
        "ephemeral-storage": f"{request.request_disk_mb}Mi",
    }
    limits: dict[str, str] = dict(resources)
    if request.request_gpus > 0:
        limits["nvidia.com/gpu"] = str(request.request_gpus)

    program = program_path(job.executable)
    args = split_words(job.arguments, "arguments") if job.arguments else []
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": _image(job),
        "resources": {"requests": resources, "limits": limits},
    }
    env = [{"name": "ADVISOR_ITEMS_PER_JOB", "value": str(job.items_per_job)},
           {"name": "ADVISOR_OUTPUT_DIR", "value": OUTPUT_DIR}]
    if request.checkpoints or job.extra.get("resumes"):
        env.append({"name": "ADVISOR_CHECKPOINT_DIR", "value": CHECKPOINT_MOUNT})
    if request.checkpoints:
        interval = timeout_duration(request.checkpoint_interval_minutes or 0)
        script = (f"timeout --kill-after={CHECKPOINT_GRACE_SECONDS}s {interval} "
                  f"{shell_quote(program)} \"$@\"; s=$?; "
                  f"[ $s -eq {TIMEOUT_EXIT_CODE} ] && exit {CHECKPOINT_EXIT_CODE}; exit $s")
        container["command"] = ["/bin/bash", "-c", script, program]
        container["args"] = args
        container["volumeMounts"] = [{"name": "checkpoints", "mountPath": CHECKPOINT_MOUNT}]
        env.append({"name": "CHECKPOINT_DIR", "value": CHECKPOINT_MOUNT})
    else:
        container["command"] = [program]
        if args:
            container["args"] = args
    container["env"] = env

    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        # as on HTCondor: SIGTERM, then this long to save the checkpoint before SIGKILL
        "terminationGracePeriodSeconds": EVICTION_GRACE_SECONDS,
    }
    if request.request_gpus > 0:
        pod_spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        expressions: list[dict[str, Any]] = []
        if request.gpus_minimum_memory_mb is not None:
            expressions.append({"key": "nvidia.com/gpu.memory", "operator": "Gt",
                                "values": [str(request.gpus_minimum_memory_mb - 1)]})
        terms: list[dict[str, Any]] = []
        if request.gpus_minimum_capability is not None:
            terms = _capability_affinity(request.gpus_minimum_capability)
            for t in terms:
                t["matchExpressions"].extend(copy.deepcopy(expressions))
        elif expressions:
            terms = [{"matchExpressions": expressions}]
        if terms:
            pod_spec["affinity"] = {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}
    if request.checkpoints:
        claim = str(job.extra.get("checkpoint_claim") or f"{name}-checkpoints")
        pod_spec["volumes"] = [{"name": "checkpoints", "persistentVolumeClaim": {"claimName": claim}}]

    rules: list[dict[str, Any]] = [
        # Preempted or evicted pods (node drain, higher-priority work) are not the job's fault.
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    ]
    if request.checkpoints:
        rules.insert(0, {"action": "Ignore", "onExitCodes": {
            "containerName": CONTAINER, "operator": "In", "values": [CHECKPOINT_EXIT_CODE]}})

    spec: dict[str, Any] = {}
    if job.queue > 1:
        parallelism = int(job.extra.get("parallelism") or job.queue)
        spec.update({
            "completionMode": "Indexed",
            "completions": job.queue,
            "parallelism": max(1, min(parallelism, job.queue)),
            "backoffLimitPerIndex": DEFAULT_BACKOFF,
        })
        if job.extra.get("max_failed_indexes") is not None:
            spec["maxFailedIndexes"] = int(job.extra["max_failed_indexes"])
    else:
        spec.update({"completions": 1, "parallelism": 1, "backoffLimit": DEFAULT_BACKOFF})
    spec["podFailurePolicy"] = {"rules": rules}
    spec["template"] = {"metadata": {"labels": dict(labels)}, "spec": pod_spec}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "annotations": annotations, "labels": {
            **labels, KUEUE_QUEUE_LABEL: dns_name(str(job.extra.get("kueue_queue")
                                                      or DEFAULT_KUEUE_QUEUE))}},
        "spec": spec,
    }


def render_kubernetes(request: Request, job: JobSpec, pool: Pool) -> str:
    """The Job as YAML with a comment header; `kubectl apply -f` it."""
    doc = job_manifest(request, job, pool)
    header = [
        comment(f"# Kubernetes Job for {job.name}, written by advisor (the request chosen for pool "
                f"{pool.name!r}, translated)."),
        "# GPUs come from NVIDIA's device plugin (nvidia.com/gpu); the node affinity, when present,",
        "# uses GPU Feature Discovery labels: drop it if your cluster does not publish them.",
    ]
    header.append(f"# Kueue: label {KUEUE_QUEUE_LABEL} names the LocalQueue (kubectl get "
                  "localqueues); its ClusterQueue must cover cpu, memory, ephemeral-storage and")
    header.append("# nvidia.com/gpu, or drop the requests it does not cover. Without Kueue the "
                  "label does nothing.")
    if job.queue > 1:
        header.append(f"# Indexed Job: {job.queue} tasks; $JOB_COMPLETION_INDEX = 0..{job.queue - 1} "
                      "(HTCondor's $(Process)); backoffLimitPerIndex needs Kubernetes >= 1.29.")
    if request.checkpoints:
        header.append(f"# Checkpointing: exit {CHECKPOINT_EXIT_CODE} means 'checkpoint taken': the "
                      "podFailurePolicy ignores it and a new pod resumes from the files in")
        header.append(f"# {CHECKPOINT_MOUNT} (a PersistentVolumeClaim you create; keep one "
                      "subdirectory per $JOB_COMPLETION_INDEX).")
    if any(f.path == "secrets" for f in job.inputs):
        header.append("# run.sh reads secret arguments from files in secrets/: create a Secret from them "
                      "(kubectl create secret generic NAME --from-file=secrets/) and mount it there.")
    if _image(job) == IMAGE_PLACEHOLDER:
        header.append("# Set the container image: Kubernetes needs an OCI image with the program in it.")
    body = yaml.dump(doc, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False, width=100)
    return "\n".join(header) + "\n" + body


class _NoAliasDumper(yaml.SafeDumper):
    """Plain YAML without &anchors/*aliases, which some tools and readers trip over."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
