"""advisor.logs.slots and `advisor logs --slots`: the owners' busy fraction of their own GPUs
from snapshots of a pool's slots (condor_status -json and -long), its interval, the fragment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from advisor.cli import main
from advisor.errors import InputError
from advisor.logs import analyze_logs, snapshots
from advisor.logs import slots as sl
from simulator.scenario import Scenario

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
MODERN = FIXTURES / "chtc_gpu_modern_iso.log"


# --- a small pool ----------------------------------------------------------------------------

def _machine(host: str, gpus: int, claimed: list[int], *, backfill: bool = True,
             backfill_claimed: int = 1) -> list[dict[str, Any]]:
    """A machine's slot ads: a primary partitionable slot with dynamic slots claimed by the
    owners (`claimed`: their GPUs), and (with `backfill`) a backfill partitionable slot over the
    same GPUs with one backfill job running."""
    ids = ", ".join(f"GPU-{host}-{i}" for i in range(gpus))
    common = {"MyType": "Machine", "Machine": host, "TotalGPUs": gpus, "DetectedGPUs": ids,
              "Requirements": "/Expr(START && TARGET.RequestGPUs <= GPUs)/", "Cpus": 4}
    ads = [{**common, "Name": f"slot1@{host}", "SlotType": "Partitionable",
            "PartitionableSlot": True, "State": "Unclaimed", "GPUs": max(0, gpus - sum(claimed)),
            "TotalSlotGPUs": gpus}]
    ads += [{**common, "Name": f"slot1_{i + 1}@{host}", "SlotType": "Dynamic", "DynamicSlot": True,
             "State": "Claimed", "Activity": "Busy", "GPUs": n, "TotalSlotGPUs": n,
             "RemoteOwner": "owner@lab"} for i, n in enumerate(claimed)]
    if backfill:
        ads.append({**common, "Name": f"slot2@{host}", "SlotType": "Partitionable",
                    "PartitionableSlot": True, "BackfillSlot": True, "State": "Unclaimed",
                    "GPUs": gpus - backfill_claimed, "TotalSlotGPUs": gpus})
        ads += [{**common, "Name": f"slot2_{i + 1}@{host}", "SlotType": "Dynamic",
                 "DynamicSlot": True, "BackfillSlot": True, "State": "Claimed", "GPUs": 1,
                 "TotalSlotGPUs": 1} for i in range(backfill_claimed)]
    return ads


def pool(m1_claimed: list[int], m2_claimed: list[int]) -> list[dict[str, Any]]:
    """2 owned machines with 4 GPUs each, a GPU Lab machine (8 GPUs, all claimed, no backfill
    slot: not owned) and a CPU machine without GPUs."""
    ads = _machine("m1.lab", 4, m1_claimed) + _machine("m2.lab", 4, m2_claimed)
    ads += _machine("gpulab1", 8, [8], backfill=False)
    ads.append({"MyType": "Machine", "Machine": "cpu1", "Name": "slot1@cpu1",
                "SlotType": "Partitionable", "PartitionableSlot": True, "State": "Unclaimed",
                "Cpus": 64})
    return ads


def _literal(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        if v.startswith("/Expr(") and v.endswith(")/"):
            return v[6:-2]
        return json.dumps(v)
    return str(v)


def write_json(path: Path, ads: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(ads, indent=2).replace("/Expr(", "\\/Expr(").replace(")/\"", ")\\/\""))
    return path


def write_long(path: Path, ads: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join("".join(f"{k} = {_literal(v)}\n" for k, v in ad.items())
                              for ad in ads))
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


# --- counting --------------------------------------------------------------------------------

@pytest.mark.parametrize("writer", [write_json, write_long])
def test_three_of_eight_owned_gpus_busy(tmp_path, writer):
    path = writer(tmp_path / "snap", pool([2], [1]))
    cal = sl.calibrate_slots([path])
    assert (cal.busy_gpu_snapshots, cal.owned_gpu_snapshots) == (3, 8)
    assert cal.busy_fraction == 3 / 8 and cal.owner_busy_fraction == 0.375
    snap = cal.snapshots[0]
    assert snap.format == ("json" if writer is write_json else "long")
    assert snap.owned_machines == 2 and snap.other_gpu_machines == 1  # the GPU Lab machine
    assert snap.basis == {"TotalSlotGPUs": 2}
    lo, hi = cal.ci
    assert lo < 0.375 < hi and cal.method == "Clopper-Pearson"


def test_json_and_long_agree_and_pool_over_snapshots(tmp_path):
    a = write_json(tmp_path / "a.json", pool([2], [1]))
    b = write_long(tmp_path / "b.long", pool([1, 1, 2], []))  # m1 all busy, m2 idle
    cal = sl.calibrate_slots([a, b])
    assert (cal.busy_gpu_snapshots, cal.owned_gpu_snapshots) == (3 + 4, 16)
    assert cal.busy_fraction == 7 / 16
    assert [s.busy_gpus for s in cal.snapshots] == [3, 4]
    one = sl.calibrate_slots([a])
    assert one.ci[1] - one.ci[0] > cal.ci[1] - cal.ci[0]  # more GPU-snapshots, narrower


def test_gpu_count_falls_back_to_machine_attributes(tmp_path):
    ads = [  # no primary partitionable slot in the snapshot: TotalGPUs, then DetectedGPUs
        {"Machine": "a", "Name": "slot2@a", "BackfillSlot": True, "TotalGPUs": 4, "GPUs": 4},
        {"Machine": "a", "Name": "slot1_1@a", "DynamicSlot": True, "State": "Claimed", "GPUs": 1},
        {"Machine": "b", "Name": "slot2@b", "BackfillSlot": True, "DetectedGPUs": "CUDA0, CUDA1"},
        {"Machine": "b", "Name": "slot1_1@b", "DynamicSlot": True, "State": "claimed", "Gpus": 2},
        {"Machine": "b", "Name": "slot1_1@b", "DynamicSlot": True, "State": "Claimed", "GPUs": 2},
    ]
    cal = sl.calibrate_slots([write_json(tmp_path / "s.json", ads)])
    snap = cal.snapshots[0]
    assert (snap.owned_gpus, snap.busy_gpus) == (6, 3)  # the repeated slot counted once
    assert snap.basis == {"TotalGPUs": 1, "DetectedGPUs": 1} and snap.duplicates == 1


def test_claims_beyond_the_machine_are_capped_and_reported(tmp_path):
    ads = _machine("m", 2, [2, 1])
    cal = sl.calibrate_slots([write_json(tmp_path / "s.json", ads)])
    assert cal.busy_gpu_snapshots == cal.owned_gpu_snapshots == 2
    assert cal.owner_busy_fraction == sl.OWNER_BUSY_MAX  # 1.0 is outside the scenario's range
    assert any("more GPUs in claimed slots" in w for w in cal.warnings)
    assert any("written as 0.99" in w for w in cal.warnings)


def test_json_expressions_are_evaluated(tmp_path):
    ads = _machine("m", 4, [1])
    ads[1]["GPUs"] = "/Expr(Cpus - 2)/"  # Cpus = 4
    cal = sl.calibrate_slots([write_json(tmp_path / "s.json", ads)])
    assert cal.busy_gpu_snapshots == 2


def test_long_expressions_referring_to_other_attributes(tmp_path):
    path = write_long(tmp_path / "s.long", _machine("m", 4, [1]))
    text = path.read_text().replace("BackfillSlot = true", "BackfillSlot = SlotTypeID == 2\n"
                                    "SlotTypeID = 2")
    path.write_text(text)
    cal = sl.calibrate_slots([path])
    assert (cal.busy_gpu_snapshots, cal.owned_gpu_snapshots) == (1, 4)


# --- the interval ----------------------------------------------------------------------------

@pytest.mark.parametrize("k,n", [(0, 8), (3, 8), (8, 8), (37, 120), (1, 1000)])
def test_intervals_match_scipy(k, n):
    stats = pytest.importorskip("scipy.stats")
    ref = stats.binomtest(k, n)
    lo, hi, method = sl.binomial_interval(k, n)
    exact = ref.proportion_ci(0.95, method="exact")
    assert method == "Clopper-Pearson"
    assert (lo, hi) == (pytest.approx(exact.low, abs=1e-9), pytest.approx(exact.high, abs=1e-9))
    wilson = ref.proportion_ci(0.95, method="wilson")
    wlo, whi = sl.wilson_interval(k, n)
    assert (wlo, whi) == (pytest.approx(wilson.low, abs=1e-7), pytest.approx(wilson.high, abs=1e-7))


def test_wilson_without_scipy(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    lo, hi, method = sl.binomial_interval(3, 8)
    assert method == "Wilson" and (lo, hi) == sl.wilson_interval(3, 8)
    assert lo < 3 / 8 < hi


# --- the fragment ----------------------------------------------------------------------------

def test_fragment_names_files_counts_and_interval(tmp_path):
    a = write_json(tmp_path / "monday.json", pool([2], [1]))
    cal = sl.calibrate_slots([a])
    text = sl.write_fragment(cal, tmp_path / "out" / "cal.yaml").read_text()
    assert yaml.safe_load(text) == {"owner_busy_fraction": 0.375}
    source = next(line for line in text.splitlines() if line.startswith("# source:"))
    assert "monday.json" in source and "3 of 8 GPU-snapshots" in source and "95% CI [" in source
    assert "not independent" in text and "optimistic" in text and "BackfillSlot == true" in text


def test_fragment_merges_into_a_scenario(tmp_path):
    cal = sl.calibrate_slots([write_long(tmp_path / "s.long", pool([2], [1]))])
    logs = analyze_logs([MODERN]).calibration
    frag = yaml.safe_load(sl.fragment_text(cal, logs))
    assert set(frag) == {"eviction", "workload", "owner_busy_fraction"}
    d = {"seed": 1, "replications": 2, "pool": "chtc",
         "workload": {"tasks": 10, "request": {"gpus": 1}, **frag["workload"]},
         "eviction": frag["eviction"], "owner_busy_fraction": frag["owner_busy_fraction"]}
    assert Scenario.from_dict(d).owner_busy_fraction == 0.375
    capped = sl.calibrate_slots([write_json(tmp_path / "all.json", _machine("m", 2, [2]))])
    frag = yaml.safe_load(sl.fragment_text(capped))
    d["owner_busy_fraction"] = frag["owner_busy_fraction"]
    assert Scenario.from_dict(d).owner_busy_fraction == sl.OWNER_BUSY_MAX


# --- the command -----------------------------------------------------------------------------

def test_cli_slots_alone(tmp_path, capsys):
    a = write_json(tmp_path / "a.json", pool([2], [1]))
    out_yaml = tmp_path / "cal.yaml"
    code, out, _ = run_cli(capsys, "logs", "--slots", a, "--emit-calibration", out_yaml)
    assert code == 0 and "Owners' busy fraction: 0.375" in out
    assert yaml.safe_load(out_yaml.read_text()) == {"owner_busy_fraction": 0.375}
    code, out, _ = run_cli(capsys, "logs", "--slots", a, "--json")
    d = json.loads(out)
    assert code == 0 and d["slots"]["owned_gpu_snapshots"] == 8
    assert d["slots"]["busy_gpu_snapshots"] == 3 and len(d["slots"]["ci"]) == 2


def test_cli_slots_with_an_event_log(tmp_path, capsys):
    a = write_json(tmp_path / "a.json", pool([2], [1]))
    b = write_long(tmp_path / "b.long", pool([1, 1, 2], []))
    out_yaml = tmp_path / "cal.yaml"
    code, out, _ = run_cli(capsys, "logs", MODERN, "--slots", a, b, "--emit-calibration",
                           out_yaml, "--json")
    assert code == 0
    d = json.loads(out)
    assert d["jobs_total"] > 0 and d["slots"]["busy_fraction"] == 7 / 16
    assert d["slots"]["written"] == d["calibration"]["written"] == str(out_yaml)
    frag = yaml.safe_load(out_yaml.read_text())
    assert frag["owner_busy_fraction"] == 0.438 and "time_to_eviction" in frag["eviction"]
    text = out_yaml.read_text()
    assert "HTCondor job event logs chtc_gpu_modern_iso.log" in text and "a.json, b.long" in text


def _hostile(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    bad_type = pool([2], [1])
    bad_type[1]["GPUs"] = "four"
    bad_flag = pool([2], [1])
    bad_flag[2]["BackfillSlot"] = "yes"
    bad_machine = pool([2], [1])
    bad_machine[0]["Machine"] = 5
    long_bad = write_long(tmp_path / "bad.long", pool([2], [1]))
    long_bad.write_text(long_bad.read_text().replace("GPUs = 2\n", "GPUs = 2 2\n", 1))
    files = {
        "text": ("hello, these are not slots\n", "neither JSON nor ClassAds"),
        "binary": (b"\xff\xfe\x00garbage", "not UTF-8"),
        "json_cut": ('[{"Machine": "m", "GPUs": 1},\n{"Mach', "not valid JSON"),
        "json_numbers": ("[1, 2, 3]", "not an object"),
        "json_trailing": ('[{"Machine": "m"}] []', "more after the closing"),
        "json_deep": ("[" * 100_000, "--slots"),
        "empty": ("\n\n", "is empty"),
        "event_log": (MODERN.read_text(), "job event log"),
        "long_junk_line": ('Machine = "m"\nthis is not an attribute\n', "line 2"),
        "no_machine": ('[{"Name": "slot1@x", "GPUs": 2}]', "no slot ClassAd"),
        "no_backfill": (json.dumps(_machine("g", 8, [2], backfill=False)), "no backfill slot"),
        "no_owned_gpus": ('[{"Machine": "c", "BackfillSlot": true, "Cpus": 8}]', "0 owned GPUs"),
        "repeated_attr": ('Machine = "m"\nGPUs = 1\ngpus = 2\n', "sets gpus again"),
    }
    out: dict[str, tuple[Path, str]] = {}
    for name, (content, expect) in files.items():
        p = tmp_path / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        out[name] = (p, expect)
    out["bad_type"] = (write_json(tmp_path / "t.json", bad_type), "'four' is not a number")
    out["bad_flag"] = (write_json(tmp_path / "f.json", bad_flag), "is not true or false")
    out["bad_machine"] = (write_json(tmp_path / "m.json", bad_machine), "is not a string")
    out["long_bad_value"] = (long_bad, "is not a valid ClassAd attribute")
    out["directory"] = (tmp_path, "directory")
    out["missing"] = (tmp_path / "nope.json", "no such file")
    return out


HOSTILE = ["text", "binary", "json_cut", "json_numbers", "json_trailing", "json_deep", "empty",
           "event_log", "long_junk_line", "no_machine", "no_backfill", "no_owned_gpus",
           "repeated_attr", "bad_type", "bad_flag", "bad_machine", "long_bad_value",
           "directory", "missing"]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_snapshots_exit_2_naming_the_field(tmp_path, capsys, case):
    path, expect = _hostile(tmp_path)[case]
    code, out, err = run_cli(capsys, "logs", "--slots", path, "--emit-calibration",
                             tmp_path / "never.yaml")
    assert code == 2
    assert "--slots" in err and expect in err and "To fix:" in err
    assert not (tmp_path / "never.yaml").exists()
    if case in ("no_backfill", "no_owned_gpus"):
        assert sl.NO_BACKFILL_FIX in " ".join(err.split())


def test_oversized_snapshot_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshots, "MAX_SNAPSHOT_BYTES", 1000)
    path = write_json(tmp_path / "big.json", pool([2], [1]))
    with pytest.raises(InputError) as exc:
        sl.calibrate_slots([path])
    assert exc.value.field == "--slots" and "MB a snapshot may be" in exc.value.problem


def test_hostile_json_error_document(tmp_path, capsys):
    p = tmp_path / "x.json"
    p.write_text("[oops]")
    code, out, _ = run_cli(capsys, "logs", "--slots", p, "--json")
    doc = json.loads(out)
    assert code == 2 and doc["field"] == "--slots" and doc["value"] == str(p) and doc["fix"]


def test_slots_refused_with_slurm_inputs(tmp_path, capsys):
    sacct = tmp_path / "jobs.txt"
    sacct.write_text("JobID|JobName|State|Elapsed\n1|a|COMPLETED|00:01:00\n")
    a = write_json(tmp_path / "a.json", pool([2], [1]))
    code, _, err = run_cli(capsys, "logs", sacct, "--slots", a)
    assert code == 2 and "--slots" in err
