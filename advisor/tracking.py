"""MLflow tracking for `advisor profile`, `recommend` and `whatif` (`--mlflow [URI]`).

Each command logs one run in the experiment $MLFLOW_EXPERIMENT_NAME (default "gpu-pool-advisor"):
  * profile: the measured figures (step time, input wait, FLOPs, memory, checkpoint size) as
    metrics, the script, device and batch size as params, the profile JSON as an artifact;
  * recommend: the request (CPUs, memory, disk, GPUs, capability, checkpoint interval) and the
    expected times to results as metrics, the workload, pool and objective as params, the
    written files and the recommendation (JSON) as artifacts;
  * whatif: each variant's metrics (mean and 95% interval) and paired differences, the what-if
    report (JSON) as an artifact.
A profile is identified by the SHA-256 of its file (tag `advisor.profile_sha256`); a
recommendation made from that profile carries the same tag and `advisor.profile_run_id`, the
profile's run in the same store when there is one.

URI: the flag's value, else $MLFLOW_TRACKING_URI, else `sqlite:///mlflow.db` (MLflow's
recommended local store, in the working directory; its artifacts go to `mlartifacts/` beside
the database). `mlflow` is imported only when the flag is
given; without the package the flag is an error naming the extra to install.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

from advisor.errors import DomainFailure, InputError

DEFAULT_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "gpu-pool-advisor"
HTTP_TIMEOUT_S = 10         # a server that does not answer fails the command in about this long
SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")
TAG_PROFILE = "advisor.profile_sha256"
TAG_PROFILE_RUN = "advisor.profile_run_id"
TAG_COMMAND = "advisor.command"
BATCH = 1000


def add_mlflow_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                        help="log this run to MLflow (URI: a tracking server http://host:5000 or "
                             "a store such as sqlite:///mlflow.db; default $MLFLOW_TRACKING_URI, "
                             f"else {DEFAULT_URI}; write --mlflow=URI or put --mlflow last)")


def tracking_uri(value: str | None) -> str:
    uri = (value or "").strip() or os.environ.get("MLFLOW_TRACKING_URI", "") or DEFAULT_URI
    scheme = uri.split(":", 1)[0].split("+", 1)[0] if ":" in uri else ""
    if scheme not in SCHEMES and not Path(uri).is_absolute():
        raise InputError("--mlflow", uri, "is not an MLflow tracking URI.",
                         f"give e.g. {DEFAULT_URI} or http://127.0.0.1:5000 (a running "
                         "`mlflow server`).")
    if scheme == "":
        uri = Path(uri).as_uri()
    return uri


def _mlflow() -> Any:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(HTTP_TIMEOUT_S))
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")    # file: URIs the user asked for
    try:
        import mlflow
    except ImportError:
        raise InputError("--mlflow", "", "needs the mlflow package, which is not installed.",
                         "pip install 'gpu-pool-advisor[mlflow]' (or pip install mlflow).") from None
    return mlflow


def check(value: str | None) -> str:
    """The tracking URI, checked before the command's work: the package imports and the store
    answers (a server that is down is an error now, not after a long simulation)."""
    uri = tracking_uri(value)
    with _store(uri) as client:
        try:
            client.search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; all mean "unreachable"
            raise DomainFailure(f"the MLflow tracking store at {uri} cannot be used "
                                f"({_short(exc)}). To fix: start the server (mlflow server "
                                "--host 127.0.0.1 --port 5000) or give another --mlflow URI.",
                                {"field": "--mlflow", "value": uri}) from None
    return uri


@contextmanager
def _store(uri: str) -> Iterator[Any]:
    mlflow = _mlflow()
    mlflow.set_tracking_uri(uri)
    yield mlflow.MlflowClient(tracking_uri=uri)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _key(name: str) -> str:
    """An MLflow metric/param name: letters, digits, _ - . / and spaces."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)[:250]


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _log(uri: str, command: str, name: str, params: Mapping[str, Any],
         metrics: Mapping[str, Any], tags: Mapping[str, str], files: list[Path],
         report: Mapping[str, Any], report_name: str) -> dict[str, str]:
    """One run: params, metrics (finite numbers only), tags, artifacts; its ids."""
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    # MLflow prints "View run ... at: URL" on stdout, where --json output goes: to stderr.
    with _store(uri) as client, redirect_stdout(sys.stderr):
        mlflow = _mlflow()
        try:
            exp = client.get_experiment_by_name(experiment)
            exp_id = exp.experiment_id if exp else client.create_experiment(
                experiment, artifact_location=_artifacts_beside(uri))
            run = client.create_run(exp_id, run_name=name,
                                    tags={TAG_COMMAND: command, **tags})
            rid = run.info.run_id
            from mlflow.entities import Metric, Param, RunTag

            ms = [Metric(_key(k), v, 0, 0) for k, x in metrics.items()
                  if (v := _number(x)) is not None]
            ps = [Param(_key(k), str(v)[:6000]) for k, v in params.items() if v is not None]
            client.log_batch(rid, params=ps,
                             tags=[RunTag("mlflow.note.content", f"advisor {command}: {name}")])
            for i in range(0, len(ms), BATCH):      # MLflow takes at most 1000 metrics a call
                client.log_batch(rid, metrics=ms[i:i + BATCH])
            for f in files:
                client.log_artifact(rid, str(f), artifact_path="files")
            with tempfile.TemporaryDirectory() as tmp:
                p = Path(tmp) / report_name
                p.write_text(json.dumps(report, indent=2, default=str, allow_nan=True))
                client.log_artifact(rid, str(p))
            client.set_terminated(rid, "FINISHED")
        except mlflow.exceptions.MlflowException as exc:
            raise DomainFailure(f"logging to MLflow at {uri} failed ({_short(exc)}). To fix: "
                                "check the server or the store; the command's own output is "
                                "unaffected.", {"field": "--mlflow", "value": uri}) from None
    return {"run_id": rid, "experiment_id": exp_id, "tracking_uri": uri}


def _artifacts_beside(uri: str) -> str | None:
    """A local SQLite store keeps its artifacts in `mlartifacts/` beside the database (MLflow's
    default, ./mlruns, depends on where the command runs); other stores: their own default."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    db = db if db.is_absolute() else Path.cwd() / db
    return (db.parent / "mlartifacts").as_uri()


def _flatten(prefix: str, d: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(d, Mapping):
        for k, v in d.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif _number(d) is not None:
        out[prefix] = d
    return out


# --- the three commands ----------------------------------------------------------------------

PROFILE_METRICS = ("step_time_s", "data_wait_s", "data_wait_fraction", "flops_per_step",
                   "bytes_per_step", "kernels_per_step", "parameters", "peak_memory_bytes",
                   "checkpoint_bytes", "steps_per_epoch", "task")


def log_profile(uri: str, profile: Mapping[str, Any], path: str | Path) -> dict[str, str]:
    device = profile.get("device") or {}
    params = {"script": profile.get("script") or profile.get("command"),
              "mode": profile.get("mode"), "args": " ".join(map(str, profile.get("args") or [])),
              "device_kind": device.get("kind"), "device_name": device.get("name"),
              "batch_size": profile.get("batch_size"),
              "steps_measured": profile.get("steps_measured"), "profile_path": str(path)}
    metrics: dict[str, Any] = {}
    for key in PROFILE_METRICS:
        _flatten(key, profile.get(key), metrics)
    sha = sha256_file(path)
    name = Path(str(params["script"] or path)).stem
    return _log(uri, "profile", f"profile {name}", params, metrics, {TAG_PROFILE: sha},
                [Path(path)], profile, "profile.json")


def _profile_of(workload_path: str) -> Path | None:
    """The profile JSON a recommendation was made from: the file itself, or the one a workload
    YAML names in per_task.profile."""
    p = Path(workload_path)
    if p.suffix == ".json":
        return p
    try:
        import yaml

        raw = yaml.safe_load(p.read_text())
        ref = ((raw or {}).get("per_task") or {}).get("profile")
    except (OSError, ValueError, AttributeError):
        return None
    if not ref:
        return None
    q = Path(ref)
    return q if q.is_absolute() else (p.parent / q if (p.parent / q).exists() else q)


def _profile_run(uri: str, sha: str) -> str | None:
    with _store(uri) as client:
        try:
            runs = _mlflow().search_runs(search_all_experiments=True, max_results=1,
                                         filter_string=f"tags.`{TAG_PROFILE}` = '{sha}' and "
                                                       f"tags.`{TAG_COMMAND}` = 'profile'",
                                         order_by=["attributes.start_time DESC"],
                                         output_format="list")
        except Exception:  # noqa: BLE001 - no link is not a failure
            return None
    del client
    return runs[0].info.run_id if runs else None


def log_recommendation(uri: str, data: Mapping[str, Any], args: argparse.Namespace,
                       files: list[str]) -> dict[str, str]:
    req = data.get("request") or {}
    expected = data.get("expected") or {}
    params = {"workload": data.get("workload"), "workload_path": args.workload_path,
              "pool": data.get("pool"), "objective": data.get("objective"),
              "verdict": data.get("verdict"), "target": getattr(args, "target", None),
              "seed": getattr(args, "seed", None),
              "replications": getattr(args, "replications", None),
              "background_load": getattr(args, "background_load", None),
              "job_length": req.get("job_length"), "is_resumable": req.get("is_resumable")}
    metrics: dict[str, Any] = {k: v for k, v in req.items() if _number(v) is not None}
    _flatten("expected", expected, metrics)
    tags: dict[str, str] = {}
    prof = _profile_of(args.workload_path)
    if prof is not None and prof.is_file():
        tags[TAG_PROFILE] = sha256_file(prof)
        run = _profile_run(uri, tags[TAG_PROFILE])
        if run:
            tags[TAG_PROFILE_RUN] = run
    return _log(uri, "recommend", f"recommend {data.get('workload')} on {data.get('pool')}",
                params, metrics, tags, [Path(f) for f in files], data, "recommendation.json")


def log_whatif(uri: str, data: Mapping[str, Any], args: argparse.Namespace) -> dict[str, str]:
    params = {"scenario": data.get("scenario"), "scenario_arg": args.scenario,
              "pool": data.get("pool"), "replications": data.get("replications"),
              "seed": data.get("seed"), "vary": " | ".join(args.vary or []),
              "background_trace": args.background_trace}
    metrics: dict[str, Any] = {}
    shown = list(data.get("metrics") or [])      # the table's metrics, not every summary key
    base = data.get("baseline") or {}
    for m in shown:
        _flatten(f"baseline.{m}", (base.get("summary") or {}).get(m), metrics)
    for v in data.get("variants") or []:
        name = _key(str(v.get("name")))
        for m in shown:
            _flatten(f"{name}.{m}", (v.get("summary") or {}).get(m), metrics)
            _flatten(f"{name}.difference.{m}", (v.get("difference") or {}).get(m), metrics)
    return _log(uri, "whatif", f"whatif {data.get('scenario')}", params, metrics, {}, [],
                data, "whatif.json")
