"""The software a job runs in: a container image with a pinned tag, and the torch build inside it
matched to the job's GPU capability floor.

CHTC's execute points have Python 3.9 and no torch (docs/DOMAIN.md, "What HTCondor actually
does"), so every job runs in a container. The pool file names one default image per torch build
(`containers:`). The CUDA 13 builds (the default on the package index) have kernels from sm_75 on;
the CUDA 12.6 builds from sm_50 (`advisor.predict.gates`): the image's build sets the lowest
capability the job may match, and the floor written into the submit file is never below it.

Large campaigns take the image as an Apptainer `.sif` from the pool's OSDF area (CHTC:
`osdf:///chtc/staging/NETID/NAME.sif`): OSDF caches it by name near the execute points, where
each job would otherwise pull the image from its registry. OSDF caches by name, so a rebuilt
image needs a new name. A workload's own image with `:latest` (or no tag) is always frozen into
a named `.sif`: a moving tag can change between the jobs of one campaign.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from advisor.emit.common import safe_name
from advisor.predict.gates import CU126_ARCHES, MODERN_ARCHES, torch_version
from simulator.pool import Pool

# Above this many jobs the image comes from OSDF as a .sif: each job start otherwise pulls it from
# the registry (Docker Hub rate-limits anonymous pulls per address, docs.docker.com/docker-hub/usage),
# and an 8 GB image times hundreds of starts is terabytes of pulls; OSDF caches one copy by name.
SIF_CAMPAIGN_JOBS = 100
# The wider CUDA 12.6 build is chosen when the GPUs only it can use are at least this share of the
# GPUs the job fits on; below it the default CUDA 13 build loses too little to be worth the older torch.
WIDE_BUILD_SHARE = 0.10
NEW_BUILD, WIDE_BUILD = "cuda13", "cuda12.6"
# When the pool file names no image for a build (constants, same sources as the shipped pool files:
# hub.docker.com/r/pytorch/pytorch tags).
FALLBACK_IMAGES = {NEW_BUILD: "docker://pytorch/pytorch:2.9.1-cuda13.0-cudnn9-runtime",
                   WIDE_BUILD: "docker://pytorch/pytorch:2.8.0-cuda12.6-cudnn9-runtime"}
# The last torch with CUDA 12.6 wheels (gates.py: "CUDA 12.6 wheels will no longer be published
# from PyTorch 2.15").
LAST_WIDE_TORCH = (2, 14)


def _arch_floor(arches: tuple[str, ...]) -> float:
    caps = [int(a[3:]) / 10 for a in arches if re.fullmatch(r"sm_\d+", a)]
    return min(caps)


BUILD_FLOOR = {NEW_BUILD: _arch_floor(MODERN_ARCHES), WIDE_BUILD: _arch_floor(CU126_ARCHES)}


@dataclass(frozen=True)
class Build:
    """The torch build a job's image carries and the capability floor it needs."""

    key: str                  # NEW_BUILD / WIDE_BUILD
    floor: float
    reason: str


def build_floor(pool: Pool, key: str) -> float:
    entry = pool.containers.get(key) or {}
    return float(entry.get("min_capability") or BUILD_FLOOR[key])


def default_image(pool: Pool, key: str) -> tuple[str, str]:
    """(image, source) of the pool's default image for a build."""
    entry = pool.containers.get(key) or {}
    if entry.get("image"):
        return str(entry["image"]), str(entry.get("source") or f"pool {pool.name}")
    return FALLBACK_IMAGES[key], "advisor.emit.container.FALLBACK_IMAGES (hub.docker.com/r/pytorch/pytorch)"


def choose_build(pool: Pool, needed: float | None, gpus_by_capability: dict[float, int],
                 torch_text: str | None = None) -> Build:
    """The torch build for a job that needs capability `needed` (precision, features) and fits on
    `gpus_by_capability` (capability → GPUs of the pool it fits on)."""
    new_floor, wide_floor = build_floor(pool, NEW_BUILD), build_floor(pool, WIDE_BUILD)
    total = sum(gpus_by_capability.values())
    only_wide = sum(n for c, n in gpus_by_capability.items() if wide_floor <= c < new_floor)
    version = torch_version(torch_text)
    if needed is not None and needed >= new_floor:
        return Build(NEW_BUILD, max(needed, new_floor),
                     f"the job needs capability {needed:g}, which the default CUDA 13 build covers")
    if version is not None and version > LAST_WIDE_TORCH:
        return Build(NEW_BUILD, new_floor, f"torch {torch_text} has no CUDA 12.6 build: it needs "
                     f"capability >= {new_floor:g}")
    if total and only_wide / total >= WIDE_BUILD_SHARE:
        return Build(WIDE_BUILD, max(needed or 0.0, wide_floor),
                     f"{only_wide} of the {total} GPUs the job fits on are older than {new_floor:g}: "
                     f"the CUDA 12.6 build (capability >= {wide_floor:g}) keeps them")
    lost = f"; it leaves out {only_wide} of {total} GPUs (older than {new_floor:g})" if only_wide else ""
    return Build(NEW_BUILD, max(needed or 0.0, new_floor),
                 f"the default CUDA 13 build of torch needs capability >= {new_floor:g}{lost}")


@dataclass(frozen=True)
class Image:
    """What `container_image` says, and how to make it."""

    value: str                # the submit file's container_image
    note: str                 # why this image, where it comes from
    build_steps: tuple[str, ...] = ()   # commands that make the .sif (empty for a registry image)


def _pinned(image: str) -> bool:
    tail = image.rsplit("/", 1)[-1]
    return "@sha256:" in image or (":" in tail and not tail.endswith(":latest"))


def _sif_url(pool: Pool, file_name: str, user: str | None) -> str:
    """The OSDF URL of a file in the user's area, from the pool's OSDF data rule."""
    for rule in pool.data_rules:
        m = re.search(r"(osdf://\S+)", rule.how)
        if m:
            url = m.group(1).rstrip(",;)").replace("FILE", file_name)
            return url.replace("NETID", user).replace("USER", user) if user else url
    return file_name   # no OSDF on this pool: the .sif travels with transfer_input_files


def job_image(pool: Pool, jobs: int, own: str | None, build: Build | None,
              user: str | None = None) -> Image:
    """The container image for a campaign of `jobs` jobs: the workload's own (`own`) or the pool's
    default for `build`; a `.sif` on OSDF for large campaigns and for unpinned images."""
    if own:
        source = own if "://" in own else f"docker://{own}"
        if own.endswith(".sif") or own.startswith(("osdf://", "file://", "/")):
            return Image(own, "your Apptainer image")
        if _pinned(own) and jobs <= SIF_CAMPAIGN_JOBS:
            return Image(source, "the workload's image, pinned by its tag")
        stem = safe_name(re.sub(r"^[a-z]+://", "", own).split("@")[0].rsplit(":", 1)[0].replace("/", "-"))
        sif = f"{stem}-v1.sif"
        why = ("its tag moves (:latest or none), so it is frozen into a named .sif"
               if not _pinned(own) else f"{jobs:,} jobs > {SIF_CAMPAIGN_JOBS}: served from OSDF as a .sif")
    else:
        assert build is not None
        image, src = default_image(pool, build.key)
        if jobs <= SIF_CAMPAIGN_JOBS:
            return Image(image, f"the pool's default image for the {build.key} torch build ({src}): {build.reason}")
        source = image
        tag = image.rsplit(":", 1)[-1]
        sif = f"pytorch-{safe_name(tag)}.sif"
        why = (f"{jobs:,} jobs > {SIF_CAMPAIGN_JOBS}: the pool's {build.key} image ({src}) served from "
               f"OSDF as a .sif; {build.reason}")
    url = _sif_url(pool, sif, user)
    steps = (f"apptainer build {sif} {source}",
             f"copy {sif} to the folder behind {url.rsplit('/', 1)[0]}/ (OSDF caches by name: "
             "a rebuilt image needs a new name, e.g. -v2.sif)")
    return Image(url, why, steps)


__all__ = ["BUILD_FLOOR", "Build", "Image", "NEW_BUILD", "SIF_CAMPAIGN_JOBS", "WIDE_BUILD",
           "WIDE_BUILD_SHARE", "build_floor", "choose_build", "default_image", "job_image"]
