"""The four use cases of the CHTC talk get the verdicts the talk gives them, with numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.assess import assess
from advisor.cli import main
from advisor.workload import load_workload, workload_from_dict
from simulator.pool import load_pool

WORKLOADS = Path(__file__).resolve().parents[1] / "examples" / "workloads"


def verdict(name, pool="chtc"):
    return assess(load_workload(WORKLOADS / name), load_pool(pool))


def test_use_case_1_pdfs_htc_able_with_batching_and_gpu_vs_cpu():
    a = verdict("1_cosmos_pdfs.yaml")
    assert a.verdict == "htc-able"
    batching = a.facts["batching"]
    assert 100 <= batching["items_per_job"] <= 2000
    assert batching["jobs"] * batching["items_per_job"] >= 18_000_000
    cmp = a.facts["cpu_vs_gpu"]
    assert cmp["ratio"] > 1  # GPUs finish the 18 M PDFs sooner
    text = " ".join(a.reasons)
    assert "GPU vs CPU" in text and "batch" in text


def test_use_case_1_not_on_the_ospool_because_data_stays_on_campus():
    a = verdict("1_cosmos_pdfs.yaml", "ospool")
    assert a.verdict == "not-a-fit"
    assert any("may not leave campus" in r for r in a.reasons)


def test_use_case_2_many_architectures_needs_checkpointing_with_staging_advice():
    a = verdict("2_many_architectures.yaml")
    assert a.verdict == "htc-able-with-checkpointing"
    assert any("osdf:///chtc/staging" in adv for adv in a.advice)
    assert any("4 GPUs" in r or "hold 4" in r for r in a.reasons)
    assert verdict("2_many_architectures.yaml", "ospool").verdict == "htc-able-with-checkpointing"


def test_use_case_3_foundation_model_not_a_fit_with_reasons_and_alternatives():
    a = verdict("3_foundation_model.yaml")
    assert a.verdict == "not-a-fit"
    failed = {c.rule for c in a.checks if c.status == "fail"}
    assert {"nodes", "gpu_memory", "data"} <= failed
    assert any("cluster" in adv for adv in a.advice)


def test_use_case_4_catdog_htc_able():
    assert verdict("4_catdog.yaml").verdict == "htc-able"
    assert verdict("4_catdog.yaml", "ospool").verdict == "htc-able"


def base(**per_task):
    pt = {"gpu_hours": 2, "gpu_memory_gb": 8, "memory_gb": 8}
    pt.update(per_task)
    return {"name": "t", "kind": "training", "tasks": 10, "per_task": pt}


def test_task_longer_than_every_tier_without_checkpointing_is_not_a_fit():
    w = workload_from_dict({**base(gpu_hours=2000), "resumable": False})
    assert assess(w, load_pool("chtc")).verdict == "not-a-fit"
    w = workload_from_dict(base(gpu_hours=2000))
    assert assess(w, load_pool("chtc")).verdict == "htc-able-with-checkpointing"


def test_memory_fit_flips_at_the_largest_gpu():
    pool = load_pool("chtc")
    # 141 GB H200: 127 GB × 1.1 + 0.5 = 140.2 fits; 128 GB does not.
    assert assess(workload_from_dict(base(gpu_memory_gb=127)), pool).verdict != "not-a-fit"
    assert assess(workload_from_dict(base(gpu_memory_gb=128)), pool).verdict == "not-a-fit"


def test_cli_json_and_human(capsys):
    assert main(["assess", str(WORKLOADS / "3_foundation_model.yaml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "not-a-fit" and data["reasons"]
    assert main(["assess", str(WORKLOADS / "1_cosmos_pdfs.yaml")]) == 0
    assert "htc-able" in capsys.readouterr().out


BAD = {
    "zero tasks": ({"tasks": 0}, "tasks"),
    "negative gpu hours": ({"per_task": {"gpu_hours": -1}}, "per_task.gpu_hours"),
    "absurd memory": ({"per_task": {"gpu_hours": 1, "memory_gb": 1e9}}, "per_task.memory_gb"),
    "unknown gpu": ({"per_task": {"gpu_hours": 1, "reference_gpu": "A100"}}, "per_task.reference_gpu"),
    "misspelled key": ({"per_task": {"gpu_hour": 1}}, "per_task.gpu_hour"),
    "no work": ({"per_task": {"memory_gb": 4}}, "per_task.gpu_hours"),
    "gpus zero with gpu work": ({"per_task": {"gpu_hours": 1, "gpus": 0}}, "per_task.gpus"),
    "profile and hours": ({"per_task": {"gpu_hours": 1, "profile": "x.json", "steps": 3}}, "per_task.gpu_hours"),
    "bad kind": ({"kind": "trainig"}, "kind"),
    "text tasks": ({"tasks": "many"}, "tasks"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_workload_exit_2_naming_the_field(tmp_path, capsys, case):
    import yaml
    patch, field = BAD[case]
    doc = {"name": "bad", "kind": "training", "tasks": 3, "per_task": {"gpu_hours": 1}}
    for k, v in patch.items():
        doc[k] = v
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(doc))
    code = main(["assess", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and json.loads(out)["field"].startswith(field)  # the error as JSON
    assert f"{field} = " in err and "To fix" in err and "Traceback" not in err
