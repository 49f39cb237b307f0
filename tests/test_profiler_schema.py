"""The profile loader: good files load, bad ones raise InputError naming the field."""

from __future__ import annotations

import copy
import json

import pytest

from advisor.errors import InputError
from advisor.profiler.schema import (
    SCHEMA_VERSION,
    build_command_profile,
    build_torch_profile,
    load_profile,
    validate_profile,
    write_profile,
)

RESULTS = {
    "intervals_s": [0.10, 0.11, 0.12, 0.09, 0.10],
    "data_wait_s": [0.01, 0.01, 0.02, 0.01, 0.01],
    "backward_calls": [2, 2, 2, 2, 2],
    "fetches": [2, 2, 2, 2, 2],
    "loaders": [{"fetches": 14, "num_workers": 2, "pin_memory": False, "batch_size": 32,
                 "length": 100}],
    "module_input_batch": 32,
    "counted": {"flops_per_step": 1e9, "flops_by_dtype": {"float32": 1e9},
                "op_classes": {c: {"flops": {}, "bytes": 0, "kernels": 0}
                               for c in ("matmul", "conv", "attention", "other")},
                "bytes_per_step": 1e6, "kernels_per_step": 10, "peak_live_bytes": 5000,
                "uses_sdpa": False},
    "device": {"kind": "cpu", "name": "test cpu", "capability": None, "memory_gb": None},
    "environment": {"python": "3.11.7", "torch": "2.13.0", "cuda": None, "arch_list": []},
    "parameters": 100, "trainable_parameters": 100, "parameter_bytes": 400,
    "gradient_bytes": 400, "optimizer_state_bytes": 800, "checkpoint_bytes": 2000,
    "max_rss_bytes": 10**8, "warmup_steps_run": 3, "flops_counted_on_step": 3,
}


def good() -> dict:
    return build_torch_profile(copy.deepcopy(RESULTS), script="train.py", args=["--x"],
                               warmup=3, host_peak_rss=2 * 10**8, data=None)


def test_built_profile_has_the_core_keys_and_derived_figures():
    p = validate_profile(good())
    assert p["schema_version"] == SCHEMA_VERSION
    assert p["step_time_s"]["median"] == pytest.approx(0.10)
    assert p["data_wait_fraction"] == pytest.approx(0.1)
    assert p["micro_batches_per_step"] == 2
    assert p["steps_per_epoch"] == 50  # 100 batches / 2 micro-batches per step
    assert p["batch_size"] == 32
    assert p["peak_memory_bytes"] == {
        "device": 5000, "host": 2 * 10**8,
        "breakdown": {"parameters": 400, "gradients": 400, "optimizer_state": 800,
                      "activations": 3400},
        "device_method": "peak live tensor bytes on the counted step"}


def test_round_trip_through_a_file(tmp_path):
    path = write_profile(good(), tmp_path / "profiles" / "p.json")
    assert load_profile(path)["flops_per_step"] == 1e9
    assert not [f for f in path.parent.iterdir() if f.name != "p.json"]  # no temp files left


@pytest.mark.parametrize("mutate, field", [
    (lambda p: p.pop("flops_per_step"), "flops_per_step"),
    (lambda p: p["step_time_s"].pop("p90"), "step_time_s.p90"),
    (lambda p: p.__setitem__("parameters", -5), "parameters"),
    (lambda p: p["peak_memory_bytes"].__setitem__("device", -1), "peak_memory_bytes.device"),
    (lambda p: p.__setitem__("schema_version", 99), "schema_version"),
    (lambda p: p.__setitem__("flops_per_step", "lots"), "flops_per_step"),
    (lambda p: p.__setitem__("parameters", None), "parameters"),
    (lambda p: p["device"].__setitem__("kind", "gpu"), "device.kind"),
    (lambda p: p.__setitem__("data_wait_fraction", 1.5), "data_wait_fraction"),
])
def test_bad_files_name_the_field(tmp_path, mutate, field):
    p = good()
    mutate(p)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(p))
    with pytest.raises(InputError) as info:
        load_profile(path)
    assert info.value.field == field
    assert str(path) in str(info.value)
    assert "To fix" in str(info.value)


def test_missing_key_suggests_the_near_name(tmp_path):
    p = good()
    p["flops_per_stp"] = p.pop("flops_per_step")
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(p))
    with pytest.raises(InputError) as info:
        load_profile(path)
    assert "flops_per_stp" in info.value.suggestions


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_profile(bad)
    with pytest.raises(InputError, match="no such file"):
        load_profile(tmp_path / "absent.json")


def test_command_profile_may_leave_torch_fields_null():
    results = {"task": {"wall_s": 2.0, "cpu_s": 1.5, "peak_rss_bytes": 1000,
                        "bytes_written": 10, "exit_code": 0}, "cpu_name": "cpu"}
    p = build_command_profile(results, command="python x.py", host_peak_rss=2000,
                              gpu_memory_bytes=None,
                              environment={"python": "3.11", "torch": None})
    validate_profile(p)
    assert p["task"]["peak_rss_bytes"] == 2000
    assert p["flops_per_step"] is None
    torch_mode = dict(p, mode="torch")
    with pytest.raises(InputError):
        validate_profile(torch_mode)
