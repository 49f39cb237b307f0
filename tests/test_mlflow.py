"""`--mlflow [URI]` on profile, recommend and whatif: runs logged to a local store (SQLite, a
file store) and to `mlflow server` on 127.0.0.1, read back with the MLflow client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVER_START_S = 90.0


def advisor(*args: str, cwd: Path | None = None, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run([sys.executable, "-m", "advisor.cli", *args], capture_output=True,
                          text=True, cwd=cwd or REPO, env={**env, "MPLBACKEND": "Agg"},
                          timeout=timeout)


@pytest.fixture(scope="module")
def mlflow():
    return pytest.importorskip("mlflow", reason="the [mlflow] extra is not installed")


def artifacts(mlflow, uri: str, run_id: str) -> set[str]:
    client = mlflow.MlflowClient(tracking_uri=uri)
    names = set()
    for f in client.list_artifacts(run_id):
        if f.is_dir:
            names |= {g.path for g in client.list_artifacts(run_id, f.path)}
        else:
            names.add(f.path)
    return names


def test_without_the_flag_mlflow_is_not_imported():
    code = ("import sys; from advisor.cli import main; "
            "rc = main(['whatif', 'mmc', '--vary', 'pool.slots.A100.count=+2', '-r', '1', "
            "'--workers', '0', '--json']); "
            "sys.stderr.write(repr(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "MPLBACKEND": "Agg"}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().endswith("[]"), r.stderr[-300:]
    assert "mlflow" not in json.loads(r.stdout)


def test_recommend_links_to_its_profile_run_in_a_sqlite_store(mlflow, tmp_path):
    from advisor import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    prof = tmp_path / "cnn.json"
    prof.write_text((REPO / "profiles" / "cnn_catdog.json").read_text())
    prun = tracking.log_profile(uri, json.loads(prof.read_text()), prof)["run_id"]
    r = advisor("recommend", str(prof), "--replications", "1", "--json", "--mlflow", uri,
                cwd=tmp_path)   # MLflow puts a SQLite store's artifacts in ./mlruns
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads(r.stdout)
    run = mlflow.MlflowClient(tracking_uri=uri).get_run(rec["mlflow"]["run_id"])
    assert run.data.tags["advisor.profile_run_id"] == prun
    assert run.data.tags["advisor.profile_sha256"] == tracking.sha256_file(prof)
    assert run.data.metrics["expected.time_to_results_hours.p90"] == pytest.approx(
        rec["expected"]["time_to_results_hours"]["p90"])


@pytest.mark.slow   # profiles a script (torch) first: about a minute here
def test_profile_then_recommend_in_sqlite_store_are_linked(mlflow, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    prof = tmp_path / "cnn.json"
    r = advisor("profile", str(REPO / "examples" / "cnn_catdog.py"), "--steps", "3",
                "--warmup", "1", "-o", str(prof), f"--mlflow={uri}", "--json", "--",
                "--data-dir", str(tmp_path / "catdog"), "--per-class", "40",
                "--num-workers", "0", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    prun = json.loads(r.stdout)["mlflow"]["run_id"]
    pr = mlflow.MlflowClient(tracking_uri=uri).get_run(prun)
    assert pr.data.tags["advisor.command"] == "profile"
    assert pr.data.metrics["step_time_s.median"] > 0
    assert pr.data.metrics["flops_per_step"] > 0
    assert pr.data.params["device_kind"] == "cpu"
    assert "files/cnn.json" in artifacts(mlflow, uri, prun)

    out = tmp_path / "job"
    r = advisor("recommend", str(prof), "-o", str(out), "--replications", "1", "--json",
                "--mlflow", uri, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads(r.stdout)
    run = mlflow.MlflowClient(tracking_uri=uri).get_run(rec["mlflow"]["run_id"])
    assert run.data.tags["advisor.profile_run_id"] == prun          # linked to its profile
    assert run.data.tags["advisor.profile_sha256"] == pr.data.tags["advisor.profile_sha256"]
    assert run.data.metrics["request_memory_mb"] == rec["request"]["request_memory_mb"]


def test_whatif_in_a_file_store(mlflow, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")   # as advisor.tracking sets it
    uri = (tmp_path / "mlruns").as_uri()
    r = advisor("whatif", "mmc", "--vary", "pool.slots.A100.count=+2", "-r", "2",
                "--workers", "0", "--json", "--mlflow", uri)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(r.stdout)
    run = mlflow.MlflowClient(tracking_uri=uri).get_run(data["mlflow"]["run_id"])
    assert run.data.params["scenario"] == "mmc" and run.data.params["replications"] == "2"
    m = data["metrics"][0]
    assert run.data.metrics[f"baseline.{m}.mean"] == pytest.approx(
        data["baseline"]["summary"][m]["mean"])
    variant = data["variants"][0]["name"]
    key = next(k for k in run.data.metrics if k.endswith(f".difference.{m}.mean"))
    assert key.startswith(variant[:10].replace("=", "_"))
    assert "whatif.json" in artifacts(mlflow, uri, run.info.run_id)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(mlflow, tmp_path_factory) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 at a free port, with its own SQLite store and artifact
    folder; stopped (its process group, by PID) afterwards."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'store.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited ({proc.returncode}): "
                            f"{(root / 'server.log').read_text()[-1500:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not up in {SERVER_START_S:g} s: "
                            f"{(root / 'server.log').read_text()[-1500:]}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(15)
        log.close()


def test_recommend_logged_to_a_server_holds_request_and_expected_time(mlflow, mlflow_server,
                                                                      tmp_path):
    out = tmp_path / "job"
    r = advisor("recommend", "profiles/cnn_catdog.json", "-o", str(out), "--replications", "1",
                "--json", "--mlflow", mlflow_server)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads(r.stdout)
    mlflow.set_tracking_uri(mlflow_server)
    run = mlflow.get_run(rec["mlflow"]["run_id"])
    m, req = run.data.metrics, rec["request"]
    assert m["request_gpus"] == req["request_gpus"] and m["request_cpus"] == req["request_cpus"]
    assert m["request_memory_mb"] == req["request_memory_mb"]
    assert m["expected.time_to_results_hours.mean"] == pytest.approx(
        rec["expected"]["time_to_results_hours"]["mean"])
    assert run.data.params["pool"] == "chtc" and run.data.params["verdict"] == rec["verdict"]
    assert run.data.tags["advisor.profile_sha256"]
    names = artifacts(mlflow, mlflow_server, run.info.run_id)
    assert {"recommendation.json", "files/run.sh", "files/cnn_catdog.sub"} <= names


def test_unreachable_server_fails_before_the_work(mlflow, tmp_path):
    port = _free_port()     # nothing listens there
    r = advisor("recommend", "profiles/cnn_catdog.json", "--mlflow", f"http://127.0.0.1:{port}",
                timeout=120)
    assert r.returncode == 1
    assert "MLflow tracking store" in r.stderr and "mlflow server" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_uri_that_is_not_one_is_a_usage_error(tmp_path):
    r = advisor("whatif", "mmc", "--vary", "pool.slots.A100.count=+2", "--mlflow=nonsense")
    assert r.returncode == 2
    assert "--mlflow" in r.stderr and "sqlite:///mlflow.db" in r.stderr
