"""Readers of GPU-cluster traces: one normalized table of jobs and one of GPUs.

**Jobs** (`Trace.jobs`, one row per job), whatever the input format:
`submit_s`, `start_s` (NaN: never started), `end_s` (the last moment the job was seen),
`gpus` (whole GPUs), `gpu_fraction` (the share of each GPU it held: `gpu_milli`/1000 for
GPU-sharing pods, else 1), `gpu_type` (a constraint, may be empty), `censored` (the job had
not ended when the trace ended: `end_s` is a lower bound), `state`.

Formats:

* **Alibaba cluster-trace-gpu-v2023** pod list (`openb_pod_list_*.csv`): `name, cpu_milli,
  memory_mib, num_gpu, gpu_milli, gpu_spec, qos, pod_phase, creation_time, deletion_time,
  scheduled_time` (seconds). submit = creation_time, start = scheduled_time, end =
  deletion_time. Pods whose `pod_phase` is `Running` or `Pending` had not finished when the
  trace was taken (the trace's README): they are censored, and their recorded deletion time
  is the last time they were seen.
* **Generic** CSV with a header: `submit_s, start_s, end_s, gpus[, gpu_type]` (seconds from
  any origin). An empty `start_s` means the job never started; an empty `end_s` means it was
  still running when the trace ended (censored at the trace's last timestamp). `gpus` is a
  whole number of GPUs, or a fraction below 1 for a job sharing one GPU.

**GPUs** (`Trace.nodes`): `gpu_type, gpus`, from Alibaba's node list (`sn, cpu_milli,
memory_mib, gpu, model`: one row per node) or a generic CSV with columns `gpu_type, gpus`
(one row per node or per type).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.errors import InputError

ALIBABA_COLUMNS = ("num_gpu", "gpu_milli", "pod_phase", "creation_time", "deletion_time",
                   "scheduled_time")
GENERIC_COLUMNS = ("submit_s", "start_s", "end_s", "gpus")
CENSORED_PHASES = ("Running", "Pending")
JOB_COLUMNS = ("submit_s", "start_s", "end_s", "gpus", "gpu_fraction", "gpu_type", "censored",
               "state")


@dataclass(frozen=True)
class Trace:
    """A job table (and optionally the cluster's GPUs) in the normalized form above."""

    jobs: pd.DataFrame
    nodes: pd.DataFrame | None
    source: str
    format: str  # "alibaba" or "generic"
    nodes_source: str | None = None


MAX_GPUS_PER_JOB = 1_000_000


def _read_csv(path: str | Path, what: str) -> pd.DataFrame:
    p = Path(path)
    if p.is_dir():
        raise InputError(what, str(path), "is a directory, not a file.",
                         f"give the path of the {what} CSV file.")
    if not p.is_file():
        raise InputError(what, str(path), "no such file.", f"give the path of the {what} CSV.")
    try:
        return pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            ValueError) as exc:
        raise InputError(what, str(path), f"is not a readable CSV ({exc}).",
                         "give a comma-separated file with a header row.") from None
    except OSError as exc:
        raise InputError(what, str(path), f"cannot be read ({exc.strerror or exc}).",
                         "give a file you can read.") from None


def _numeric(df: pd.DataFrame, col: str, path: str) -> pd.Series:
    values = pd.to_numeric(df[col], errors="coerce").astype(float)
    values = values.where(~np.isinf(values.to_numpy()), np.nan)  # inf is not a time or a count
    bad = values.isna() & df[col].notna() & (df[col].astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{col} (row {row + 2})", df[col].iloc[row], "is not a number.",
                         f"write {col} in seconds as a plain number.", source=path)
    return values


def _text(df: pd.DataFrame, col: str) -> pd.Series | str:
    if col not in df.columns:
        return ""
    return df[col].astype(object).where(df[col].notna(), "").astype(str)


def read_jobs(path: str | Path) -> tuple[pd.DataFrame, str]:
    """(jobs, format) from an Alibaba pod list or a generic job CSV."""
    df = _read_csv(path, "--background-trace")
    cols = set(df.columns)
    src = str(path)
    if df.empty:  # a header and no rows
        raise InputError("--background-trace", src, "holds no jobs (a header and no rows).",
                         "give a trace with jobs.")
    if set(ALIBABA_COLUMNS) <= cols:
        num = _numeric(df, "num_gpu", src)
        _check_gpus(num, src, "num_gpu")
        milli = _numeric(df, "gpu_milli", src)
        phase = df["pod_phase"].astype(str)
        jobs = pd.DataFrame({
            "submit_s": _numeric(df, "creation_time", src),
            "start_s": _numeric(df, "scheduled_time", src),
            "end_s": _numeric(df, "deletion_time", src),
            "gpus": num.fillna(0).astype(int),
            "gpu_fraction": np.where((num == 1) & (milli > 0) & (milli < 1000), milli / 1000.0, 1.0),
            "gpu_type": _text(df, "gpu_spec"),
            "censored": phase.isin(CENSORED_PHASES).to_numpy(),
            "state": phase,
        })
        fmt = "alibaba"
    elif set(GENERIC_COLUMNS) <= cols:
        g = _numeric(df, "gpus", src).fillna(0)
        if (g < 0).any():
            row = int(np.flatnonzero((g < 0).to_numpy())[0])
            raise InputError(f"gpus (row {row + 2})", g.iloc[row], "is negative.",
                             "give a GPU count (or a fraction below 1 for a shared GPU).", source=src)
        _check_gpus(g, src, "gpus")
        start = _numeric(df, "start_s", src)
        end = _numeric(df, "end_s", src)
        submit = _numeric(df, "submit_s", src)
        last = float(np.nanmax(np.concatenate([submit.to_numpy(), start.to_numpy(), end.to_numpy()])))
        censored = end.isna() & start.notna()
        jobs = pd.DataFrame({
            "submit_s": submit,
            "start_s": start,
            "end_s": end.where(~censored, last),
            "gpus": np.where(g < 1, np.where(g > 0, 1, 0), np.ceil(g)).astype(int),
            "gpu_fraction": np.where((g > 0) & (g < 1), g, 1.0),
            "gpu_type": _text(df, "gpu_type"),
            "censored": censored.to_numpy(),
            "state": np.where(start.isna(), "never-started",
                              np.where(censored, "running", "ended")),
        })
        fmt = "generic"
    else:
        raise InputError("--background-trace", src,
                         f"has neither the Alibaba pod-list columns ({', '.join(ALIBABA_COLUMNS)}) "
                         f"nor the generic ones ({', '.join(GENERIC_COLUMNS)}[, gpu_type]).",
                         "give an openb_pod_list_*.csv or a CSV with submit_s,start_s,end_s,gpus.")
    if jobs["submit_s"].isna().any():
        row = int(np.flatnonzero(jobs["submit_s"].isna().to_numpy())[0])
        raise InputError(f"submit time (row {row + 2})", None, "is missing.",
                         "every job needs its submission time.", source=src)
    started = jobs["start_s"].notna()
    bad = started & (jobs["end_s"] < jobs["start_s"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"end (row {row + 2})", jobs["end_s"].iloc[row],
                         f"is before the job's start ({jobs['start_s'].iloc[row]:g}).",
                         "check the trace's columns.", source=src)
    if jobs.empty:
        raise InputError("--background-trace", src, "holds no jobs.", "give a trace with jobs.")
    return jobs.reset_index(drop=True), fmt


def _check_gpus(values: pd.Series, src: str, col: str) -> None:
    big = values > MAX_GPUS_PER_JOB
    if big.any():
        row = int(np.flatnonzero(big.to_numpy())[0])
        raise InputError(f"{col} (row {row + 2})", values.iloc[row],
                         f"is more GPUs than any cluster has (at most {MAX_GPUS_PER_JOB:,}).",
                         "give the job's GPU count.", source=src)


def read_nodes(path: str | Path) -> pd.DataFrame:
    """GPUs per type: columns gpu_type, gpus (types with no GPUs left out)."""
    df = _read_csv(path, "--nodes")
    cols = set(df.columns)
    src = str(path)
    if {"model", "gpu"} <= cols:
        types, counts = df["model"].astype(str), _numeric(df, "gpu", src)
    elif {"gpu_type", "gpus"} <= cols:
        types, counts = df["gpu_type"].astype(str), _numeric(df, "gpus", src)
    else:
        raise InputError("--nodes", src, "has neither Alibaba's node columns (model, gpu) nor "
                         "the generic ones (gpu_type, gpus).",
                         "give an openb_node_list_*.csv or a CSV with gpu_type,gpus.")
    counts = counts.clip(lower=0, upper=MAX_GPUS_PER_JOB)
    out = (pd.DataFrame({"gpu_type": types, "gpus": counts.fillna(0)})
           .groupby("gpu_type", sort=False, as_index=False)["gpus"].sum())
    out = out[out["gpus"] > 0].reset_index(drop=True)
    out["gpus"] = out["gpus"].astype(int)
    if out.empty or not math.isfinite(float(out["gpus"].sum())):
        raise InputError("--nodes", src, "lists no GPUs.", "give the node list of a GPU cluster.")
    return out


def load_trace(pods: str | Path, nodes: str | Path | None = None) -> Trace:
    """Read a job trace and, optionally, the cluster's node list."""
    jobs, fmt = read_jobs(pods)
    node_table = read_nodes(nodes) if nodes else None
    return Trace(jobs=jobs, nodes=node_table, source=str(pods), format=fmt,
                 nodes_source=str(nodes) if nodes else None)


__all__ = ["JOB_COLUMNS", "Trace", "load_trace", "read_jobs", "read_nodes"]
