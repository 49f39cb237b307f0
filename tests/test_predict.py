"""The per-GPU predictor: roofline scaling, input and overhead floors, gates, memory, calibration."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_predict_profiles import make_profile

from advisor.errors import InputError
from advisor.predict import BOUNDS, predict_fit, predict_gpu
from advisor.predict.gates import assumed_build, build_supports, check, default_build
from advisor.predict.input_pipeline import input_model
from advisor.predict.memory import CUDA_CONTEXT_GB, GIB
from advisor.predict.profile_input import ProfileView
from simulator.catalog import load_catalog
from simulator.pool import load_pool

CATALOG = load_catalog()
# every GPU the default (CUDA 13, sm_75+) build in make_profile() can run
MODERN = [g for g in CATALOG if g.capability >= 7.5]


def compute_bound_fp32(**kw: object) -> dict:
    return make_profile(op_classes={"matmul": {"flops": {"float32": 1e14}, "bytes": 1e6, "kernels": 10}}, **kw)


def test_input_bound_profile_is_predicted_equal_on_all_gpus() -> None:
    # 4 workers, the loop waited 0.9 of a 1 s step: the loader makes a step's data in 4 s of CPU
    # time → 1 s per step with 4 workers; the GPU work is tiny.
    p = make_profile(data_wait_s={"median": 0.9, "p90": 1.0},
                     op_classes={"matmul": {"flops": {"float32": 1e9}, "bytes": 1e6, "kernels": 10}})
    preds = [predict_gpu(p, g, catalog=CATALOG) for g in CATALOG]
    times = {x.predicted_step_time_s for x in preds}
    assert len(times) == 1 and times.pop() == pytest.approx(1.0)
    assert all(x.bound == "input" for x in preds)
    assert all(x.speedup == pytest.approx(1.0) for x in preds)
    assert all(x.cpus_to_feed >= 5 for x in preds)  # 4 CPU-s per step / tiny compute + main


def test_input_floor_with_no_workers_is_the_measured_wait() -> None:
    p = make_profile(dataloader={"num_workers": 0}, data_wait_s={"median": 0.5, "p90": 0.6},
                     op_classes={"matmul": {"flops": {"float32": 1e9}, "bytes": 1e6, "kernels": 10}})
    x = predict_gpu(p, CATALOG.get("H100-SXM5-80GB"), catalog=CATALOG)
    assert x.bound == "input" and x.predicted_step_time_s == pytest.approx(0.5)
    assert x.input_time_s == pytest.approx(0.5)


def test_cpus_to_feed_formula() -> None:
    view = ProfileView.from_dict(make_profile(dataloader={"num_workers": 0}, data_wait_s={"median": 0.3}))
    m = input_model(view)
    assert m.production_s == pytest.approx(0.3)
    assert m.cpus_needed(0.1) == 4      # ceil(0.3 / 0.1) + 1 main process
    assert m.cpus_needed(1.0) == 2
    # never more than the script can use as written (num_workers + 1); the advice names the change
    assert m.cpus_to_feed(0.1) == 1
    assert m.advice(0.1) == "set num_workers=3 in the DataLoader to use 4 CPUs (it has 0: 1 usable)"
    assert m.advice(1.0) is None  # 0.3 s of loading under a 1 s step: it keeps up as written
    assert input_model(ProfileView.from_dict(make_profile())).cpus_to_feed(0.1) == 1  # no loading


def test_compute_bound_fp32_matmul_scales_with_fp32_peak() -> None:
    p = compute_bound_fp32()
    ref = CATALOG.get("A100-SXM4-80GB")
    t_ref = predict_gpu(p, ref, catalog=CATALOG).predicted_step_time_s
    for g in MODERN:
        x = predict_gpu(p, g, catalog=CATALOG)
        assert x.bound == "compute"
        assert t_ref / x.predicted_step_time_s == pytest.approx(g.fp32_tflops / ref.fp32_tflops, rel=1e-3)
        assert x.speedup == pytest.approx(g.fp32_tflops / ref.fp32_tflops, rel=1e-3)


def test_tf32_enabled_matmul_scales_with_tf32_peak_where_available() -> None:
    p = compute_bound_fp32(precision={"tf32_matmul": True})
    a100 = predict_gpu(p, CATALOG.get("A100-SXM4-80GB"), catalog=CATALOG).predicted_step_time_s
    h100 = predict_gpu(p, CATALOG.get("H100-SXM5-80GB"), catalog=CATALOG).predicted_step_time_s
    t4 = predict_gpu(p, CATALOG.get("T4"), catalog=CATALOG)
    assert a100 / h100 == pytest.approx(495 / 156, rel=1e-3)
    assert any("TF32" in r for r in t4.reasons)       # below 8.0: FP32 CUDA cores
    assert a100 / t4.predicted_step_time_s == pytest.approx(0.75 * 8.1 / (0.60 * 156), rel=1e-3)


def test_fp32_matmul_ignores_tf32_unless_enabled_but_conv_uses_it_by_default() -> None:
    conv = make_profile(op_classes={"matmul": {"flops": {}, "bytes": 0, "kernels": 0},
                                    "conv": {"flops": {"float32": 1e14}, "bytes": 1e6, "kernels": 10}})
    a100 = predict_gpu(conv, CATALOG.get("A100-SXM4-80GB"), catalog=CATALOG).predicted_step_time_s
    l40s = predict_gpu(conv, CATALOG.get("L40S"), catalog=CATALOG).predicted_step_time_s
    assert a100 / l40s == pytest.approx(183 / 156, rel=1e-3)   # TF32 peaks (cuDNN default on)


def test_bandwidth_bound_profile_scales_with_bandwidth() -> None:
    p = make_profile(op_classes={"matmul": {"flops": {"float32": 1e9}, "bytes": 1e6, "kernels": 1},
                                 "other": {"flops": {}, "bytes": 1e12, "kernels": 10}})
    a = predict_gpu(p, CATALOG.get("A100-SXM4-80GB"), catalog=CATALOG)
    h = predict_gpu(p, CATALOG.get("H200"), catalog=CATALOG)
    assert a.bound == h.bound == "memory_bandwidth"
    assert a.predicted_step_time_s / h.predicted_step_time_s == pytest.approx(4800 / 2039, rel=1e-2)


def test_many_tiny_kernels_are_overhead_bound_and_equal_everywhere() -> None:
    p = make_profile(op_classes={"matmul": {"flops": {"float32": 1e6}, "bytes": 1e3, "kernels": 5000}})
    preds = [predict_gpu(p, g, catalog=CATALOG) for g in MODERN]
    assert all(x.bound == "overhead" for x in preds)
    assert len({round(x.predicted_step_time_s, 12) for x in preds}) == 1


def test_bf16_profile_is_not_runnable_below_8_0() -> None:
    p = make_profile(precision={"autocast_dtype": "bfloat16"},
                     op_classes={"matmul": {"flops": {"bfloat16": 1e14}, "bytes": 1e6, "kernels": 10}})
    for g in CATALOG:
        x = predict_gpu(p, g, catalog=CATALOG)
        if g.capability < 8.0:
            assert not x.runnable, g.name
            assert any("bfloat16" in r and "8.0" in r for r in x.reasons)
            assert x.predicted_step_time_s > 0   # still predicted (as fp16 / fp32)
        else:
            assert x.runnable, (g.name, x.reasons)


def test_fp8_needs_8_9_and_compile_needs_7_0() -> None:
    fp8 = make_profile(op_classes={"matmul": {"flops": {"float8_e4m3fn": 1e14}, "bytes": 1e6, "kernels": 10}})
    assert not predict_gpu(fp8, CATALOG.get("A100-SXM4-80GB"), catalog=CATALOG).runnable
    assert predict_gpu(fp8, CATALOG.get("L40S"), catalog=CATALOG).runnable
    compiled = make_profile(precision={"compiled": True},
                            environment={"arch_list": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_90"]})
    p100 = predict_gpu(compiled, CATALOG.get("P100-PCIE-16GB"), catalog=CATALOG)
    assert not p100.runnable and any("torch.compile" in r for r in p100.reasons)
    assert predict_gpu(compiled, CATALOG.get("V100-SXM2-32GB"), catalog=CATALOG).runnable


def test_build_gate_cpu_only_build_assumes_default_cuda_build() -> None:
    p = make_profile(environment={"torch": "2.13.0+cpu", "cuda": None, "arch_list": []})
    v100 = predict_gpu(p, CATALOG.get("V100-PCIE-16GB"), catalog=CATALOG)
    assert not v100.runnable and v100.build_only
    assert any("cu126" in r and "sm_70" in r for r in v100.reasons)
    assert v100.predicted_step_time_s > 0 and v100.fits
    assert predict_gpu(p, CATALOG.get("T4"), catalog=CATALOG).runnable
    gate = check(ProfileView.from_dict(p), CATALOG.get("T4"))
    assert gate.assumed_build and "CPU-only" in gate.assumed_build
    old = make_profile(environment={"torch": "2.6.0+cpu", "cuda": None, "arch_list": []})
    assert predict_gpu(old, CATALOG.get("P100-PCIE-16GB"), catalog=CATALOG).runnable


@pytest.mark.parametrize(("torch_text", "cuda", "sm_60", "sm_70", "sm_75"), [
    ("2.13.0+cu126", None, True, True, True),     # legacy CUDA 12.6 wheels
    ("2.9.0+cu128", None, False, True, True),
    ("2.10.0+cu128", None, False, False, True),
    ("2.13.0", "13.0", False, False, True),        # PyPI wheel, no suffix: environment.cuda
    ("2.13.0+cpu", None, False, False, True),      # CPU-only: the version's default build
    ("2.6.0+cpu", None, True, True, True),
])
def test_assumed_build_from_suffix_or_cuda(torch_text: str, cuda: str | None, sm_60: bool,
                                           sm_70: bool, sm_75: bool) -> None:
    _, arch = assumed_build(torch_text, cuda)
    assert (build_supports(arch, 6.0), build_supports(arch, 7.0), build_supports(arch, 7.5)) == (sm_60, sm_70, sm_75)


def test_build_gate_torch_2_15_cannot_serve_pre_turing() -> None:
    p = make_profile(environment={"torch": "2.15.0+cu130", "arch_list": ["sm_75", "sm_80", "sm_90"]})
    x = predict_gpu(p, CATALOG.get("V100-SXM2-32GB"), catalog=CATALOG)
    assert not x.runnable and any("2.15" in r for r in x.reasons)


@pytest.mark.parametrize(("arch", "cap", "ok"), [
    (["sm_80"], 8.6, True),          # same major, lower minor: binary compatible
    (["sm_86"], 8.0, False),
    (["sm_80", "sm_90"], 7.5, False),
    (["compute_80"], 9.0, True),     # PTX JIT-compiles forward
    (["sm_90"], 10.0, False),
    (["sm_75", "sm_120"], 12.0, True),
])
def test_build_supports(arch: list[str], cap: float, ok: bool) -> None:
    assert build_supports(arch, cap) is ok


def test_default_builds_by_torch_version() -> None:
    assert "sm_50" in default_build((2, 6))[1]
    assert "sm_70" in default_build((2, 9))[1] and "sm_70" not in default_build((2, 10))[1]
    assert "sm_70" not in default_build((2, 13))[1]


def test_memory_fit_flips_at_the_right_gpu_memory_size() -> None:
    p = make_profile(peak_memory_bytes={"device": 16 * 1024**3})
    x = predict_gpu(p, CATALOG.get("A100-SXM4-80GB"), catalog=CATALOG)
    need = x.predicted_memory_gb
    # 16 GiB tensors + 20 % margin (CPU-measured) + workspace + 0.5 GB context
    assert need == pytest.approx(16 * 1.2 + CUDA_CONTEXT_GB, abs=0.05)
    a100 = CATALOG.get("A100-SXM4-80GB")
    assert predict_gpu(p, a100, catalog=CATALOG, usable_memory_gb=need + 0.01).fits
    below = predict_gpu(p, a100, catalog=CATALOG, usable_memory_gb=need - 0.01)
    assert not below.fits and below.bound == "does_not_fit"
    assert any("needs" in r for r in below.reasons)
    # across the catalog: 24 GB cards fit, 16 GB cards do not
    assert predict_gpu(p, CATALOG.get("RTX-3090"), catalog=CATALOG).fits
    assert not predict_gpu(p, CATALOG.get("T4"), catalog=CATALOG).fits


def test_gpu_measured_peak_gets_the_smaller_margin() -> None:
    p = make_profile(device={"kind": "cuda", "name": "NVIDIA A100-SXM4-80GB", "capability": 8.0},
                     peak_memory_bytes={"device": 10 * 1024**3})
    x = predict_gpu(p, CATALOG.get("H100-SXM5-80GB"), catalog=CATALOG)
    assert x.predicted_memory_gb == pytest.approx(10 * 1.1 + CUDA_CONTEXT_GB, abs=0.06)


def test_attention_materialises_scores_below_7_5() -> None:
    att = {"flops": {"float16": 12 * 64 * 1e9}, "bytes": 1e6, "kernels": 24}   # B·H·S² = 1e9 elements
    p = make_profile(precision={"uses_sdpa": True, "autocast_dtype": "float16"},
                     op_classes={"matmul": {"flops": {"float16": 1e12}}, "attention": att},
                     environment={"arch_list": ["sm_60", "sm_70", "sm_75", "sm_80", "sm_90"]})
    v100 = predict_gpu(p, CATALOG.get("V100-SXM2-32GB"), catalog=CATALOG)
    t4 = predict_gpu(p, CATALOG.get("T4"), catalog=CATALOG)
    extra = v100.memory_breakdown_gb["attention"]
    assert extra == pytest.approx(1e9 * 2 * 2 / GIB, rel=1e-6)       # 2 matrices × fp16
    assert t4.memory_breakdown_gb["attention"] == 0.0
    assert any("flash" in r for r in v100.reasons)


def test_attention_allowance_skipped_when_measured_with_the_math_kernel() -> None:
    att = {"flops": {"float16": 12 * 64 * 1e9}, "bytes": 1e6, "kernels": 24}
    kw = {"precision": {"uses_sdpa": True, "autocast_dtype": "float16"},
          "op_classes": {"matmul": {"flops": {"float16": 1e12}}, "attention": att},
          "environment": {"arch_list": ["sm_60", "sm_70", "sm_75", "sm_80", "sm_90"]}}
    on_v100 = make_profile(device={"kind": "cuda", "name": "Tesla V100-SXM2-32GB", "capability": 7.0}, **kw)
    on_a100 = make_profile(device={"kind": "cuda", "name": "NVIDIA A100-SXM4-80GB", "capability": 8.0}, **kw)
    p100 = CATALOG.get("P100-PCIE-16GB")
    assert predict_gpu(on_v100, p100, catalog=CATALOG).memory_breakdown_gb["attention"] == 0.0
    assert predict_gpu(on_a100, p100, catalog=CATALOG).memory_breakdown_gb["attention"] > 0.0


def test_calibration_on_the_measuring_gpu() -> None:
    base = compute_bound_fp32()
    a100 = CATALOG.get("A100-SXM4-80GB")
    t_default = predict_gpu(base, a100, catalog=CATALOG).predicted_step_time_s
    measured = make_profile(device={"kind": "cuda", "name": "NVIDIA A100-SXM4-80GB", "capability": 8.0},
                            step_time_s={"median": 2 * t_default, "p10": 2 * t_default, "p90": 2 * t_default},
                            op_classes=base["op_classes"])
    on_a100 = predict_gpu(measured, a100, catalog=CATALOG)
    assert on_a100.predicted_step_time_s == pytest.approx(2 * t_default, rel=1e-6)
    h100 = CATALOG.get("H100-SXM5-80GB")
    t_h_default = predict_gpu(base, h100, catalog=CATALOG).predicted_step_time_s
    assert predict_gpu(measured, h100, catalog=CATALOG).predicted_step_time_s == pytest.approx(2 * t_h_default)
    report = predict_fit(measured, load_pool("chtc"), CATALOG)
    assert "calibrated on A100-SXM4-80GB" in report.calibration


def test_cpu_profile_says_it_uses_default_efficiencies() -> None:
    report = predict_fit(make_profile(), load_pool("chtc"), CATALOG)
    assert "not calibrated" in report.calibration and "default" in report.calibration


def test_cpu_profile_with_cuda_autocast_is_costed_in_half_precision() -> None:
    p = compute_bound_fp32(precision={"autocast_dtype": "float16"})
    a100 = predict_gpu(p, CATALOG.get("A100-SXM4-80GB"), catalog=CATALOG)
    assert a100.predicted_step_time_s == pytest.approx(1e14 / (0.60 * 312e12), rel=0.01)


def test_precision_read_from_profiler_fields() -> None:
    view = ProfileView.from_dict(make_profile(precision={"autocast_dtype": None, "autocast": {"cuda": "bfloat16"},
                                                         "float32_matmul_precision": "high"}))
    assert view.autocast_dtype == "bfloat16" and view.tf32_matmul
    plain = ProfileView.from_dict(make_profile(precision={"float32_matmul_precision": "highest"}))
    assert plain.autocast_dtype is None and not plain.tf32_matmul


def test_predict_fit_rows_sorted_with_pool_counts() -> None:
    pool = load_pool("chtc")
    report = predict_fit(make_profile(), pool, CATALOG)
    times = [r.predicted_step_time_s for r in report.rows]
    assert times == sorted(times)
    counts = pool.gpus_by_type()
    assert {r.gpu: r.count for r in report.rows} == counts
    shared = pool.gpus_by_type(include_owned=False)
    for r in report.rows:
        assert r.shared_count == shared.get(r.gpu, 0)
        assert r.shared_count + r.backfill_count == r.count
        assert r.bound in BOUNDS
    assert report.reference_gpu == CATALOG.reference.name
    assert report.limits


def test_profile_without_counts_is_refused_naming_the_field() -> None:
    p = make_profile()
    del p["op_classes"]
    p["flops_per_step"] = None
    p["flops_by_dtype"] = {}
    with pytest.raises(InputError) as exc:
        predict_gpu(p, CATALOG.get("A100-SXM4-80GB"), catalog=CATALOG)
    assert exc.value.field == "op_classes"


def test_bad_values_name_the_field() -> None:
    with pytest.raises(InputError) as exc:
        ProfileView.from_dict(make_profile(op_classes={"matmul": {"bytes": -1}}))
    assert exc.value.field == "op_classes.matmul.bytes"
    with pytest.raises(InputError) as exc:
        ProfileView.from_dict(make_profile(dataloader={"num_workers": "four"}))
    assert exc.value.field == "dataloader.num_workers"


@settings(max_examples=40, deadline=None)
@given(flops=st.floats(1e6, 1e16), nbytes=st.floats(0, 1e13), kernels=st.integers(0, 20000),
       wait=st.floats(0, 1.0), workers=st.integers(0, 16))
def test_invariants(flops: float, nbytes: float, kernels: int, wait: float, workers: int) -> None:
    p = make_profile(op_classes={"matmul": {"flops": {"float32": flops}, "bytes": nbytes, "kernels": kernels}},
                     data_wait_s={"median": wait}, dataloader={"num_workers": workers})
    more = make_profile(op_classes={"matmul": {"flops": {"float32": 2 * flops}, "bytes": nbytes,
                                               "kernels": kernels}},
                        data_wait_s={"median": wait}, dataloader={"num_workers": workers})
    for name in ("T4", "A100-SXM4-80GB", "H200"):
        g = CATALOG.get(name)
        x = predict_gpu(p, g, catalog=CATALOG)
        assert x.predicted_step_time_s >= x.input_time_s
        assert x.predicted_step_time_s >= x.predicted_compute_time_s > 0 or flops == 0
        assert x.cpus_to_feed >= 1 and math.isfinite(x.speedup or 0.0)
        assert predict_gpu(more, g, catalog=CATALOG).predicted_step_time_s >= x.predicted_step_time_s
