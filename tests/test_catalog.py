from __future__ import annotations

from pathlib import Path

import pytest

from simulator.catalog import DTYPES, load_catalog
from simulator.errors import ConfigError
from simulator.shipped import catalog_path, shipped_path

REQUIRED = ["GTX-1080-Ti", "P100-PCIE-16GB", "V100-PCIE-16GB", "V100-SXM2-32GB", "T4",
            "RTX-2080-Ti", "Quadro-RTX-6000", "RTX-3090", "RTX-4090", "A10", "A40", "RTX-A6000",
            "A100-SXM4-40GB", "A100-SXM4-80GB", "L4", "L40", "L40S", "H100-PCIE-80GB",
            "H100-SXM5-80GB", "H200"]


def test_shipped_catalog_has_every_required_gpu_with_a_source():
    cat = load_catalog()
    assert set(REQUIRED) <= set(cat.names)
    assert cat.reference.name == "A100-SXM4-80GB"
    for g in cat:
        assert g.source
        assert g.fp32_tflops > 0 and g.bandwidth_gbs > 0 and g.memory_gb > 0


def test_datasheet_figures_and_precision_gates():
    cat = load_catalog()
    a100 = cat.get("A100-SXM4-80GB")
    assert (a100.capability, a100.memory_gb, a100.bandwidth_gbs) == (8.0, 80, 2039)
    assert a100.peak_tflops("bf16") == 312 and a100.peak_tflops("tf32") == 156
    assert a100.peak_tflops("fp8") is None
    v100 = cat.get("V100-SXM2-32GB")
    assert v100.peak_tflops("bf16") is None and v100.peak_tflops("tf32") is None
    h100 = cat.get("H100-SXM5-80GB")
    assert h100.peak_tflops("fp8") == 1979 and h100.bandwidth_gbs == 3350
    # bf16 and tf32 exist only from capability 8.0; fp8 only from 8.9.
    for g in cat:
        if g.capability < 8.0:
            assert g.bf16_tflops is None and g.tf32_tflops is None
        if g.capability < 8.9:
            assert g.fp8_tflops is None


@pytest.mark.parametrize("alias, name", [
    ("NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB"),
    ("Tesla P100-PCIE-16GB", "P100-PCIE-16GB"),
    ("NVIDIA H100 80GB HBM3", "H100-SXM5-80GB"),
    ("NVIDIA GeForce RTX 2080 Ti", "RTX-2080-Ti"),
    ("nvidia l40s", "L40S"),
    ("a100 sxm4 40gb", "A100-SXM4-40GB"),
])
def test_aliases_resolve(alias, name):
    assert load_catalog().get(alias).name == name


def test_near_miss_suggests():
    with pytest.raises(ConfigError) as err:
        load_catalog().get("A100")
    assert err.value.suggestions == ["A100-SXM4-40GB", "A100-SXM4-80GB"]
    assert "Did you mean 'A100-SXM4-40GB' or 'A100-SXM4-80GB'?" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_catalog().get("L40X")
    assert "L40" in err.value.suggestions


def test_peaks_fall_back_to_the_next_precision_down():
    cat = load_catalog()
    assert cat.get("H100-SXM5-80GB").effective_peak("bf16") == (pytest.approx(989), "bf16")
    # no bf16 on a V100: the work runs at fp16 on its tensor cores
    assert cat.get("V100-SXM2-32GB").peak_tflops("bf16") is None
    assert cat.get("V100-SXM2-32GB").effective_peak("bf16")[1] == "fp16"
    assert cat.get("P100-PCIE-16GB").effective_peak("tf32") == (pytest.approx(9.3), "fp32")
    with pytest.raises(ConfigError):
        cat.get("T4").peak_tflops("int4")
    assert set(DTYPES) == {"fp32", "tf32", "fp16", "bf16", "fp8"}


def _with_rows(tmp_path: Path, edit) -> Path:
    src = catalog_path().read_text().splitlines()
    lines = edit(src)
    p = tmp_path / "gpus.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


BAD_CATALOGS = {
    "negative memory": (lambda ls: [ls[0], ls[1].replace(",11,484,", ",-11,484,")] + ls[2:], "memory_gb"),
    "text capability": (lambda ls: [ls[0], ls[1].replace(",6.1,", ",six,")] + ls[2:], "capability"),
    "duplicate name": (lambda ls: ls + [ls[1]], "name"),
    "duplicate alias": (lambda ls: ls + [ls[2].replace("P100-PCIE-16GB,", "P100-COPY,", 1)], "aliases"),
    "missing column": (lambda ls: [ls[0].replace(",bandwidth_gbs", "")] + [r for r in ls[1:]], "columns"),
    "no reference": (lambda ls: [ls[0]] + [r.replace(",yes,", ",,") for r in ls[1:]], "reference"),
    "two references": (lambda ls: [ls[0]] + [r.replace(",2021,,", ",2021,yes,") for r in ls[1:]], "reference"),
    "no source": (lambda ls: [ls[0], ls[1].rsplit(",", 1)[0] + ","] + ls[2:], "source"),
    "absurd year": (lambda ls: [ls[0], ls[1].replace(",2017,", ",1917,")] + ls[2:], "release_year"),
}


@pytest.mark.parametrize("case", sorted(BAD_CATALOGS))
def test_bad_catalog_is_refused_naming_the_field(tmp_path, case):
    edit, field = BAD_CATALOGS[case]
    path = _with_rows(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        load_catalog(path)
    assert field in err.value.field or field in str(err.value)
    assert str(path) in str(err.value)
    assert "To fix" in str(err.value)


def test_training_speed_lies_between_bandwidth_and_compute_ratios():
    cat = load_catalog()
    assert cat.training_speed("A100-SXM4-80GB") == pytest.approx(1.0)
    for name in ("H100-SXM5-80GB", "L40", "RTX-2080-Ti", "P100-PCIE-16GB"):
        g = cat.get(name)
        ref = cat.reference
        compute = g.effective_peak("tf32")[0] / ref.effective_peak("tf32")[0]
        bandwidth = g.bandwidth_gbs / ref.bandwidth_gbs
        assert min(compute, bandwidth) <= cat.training_speed(name) <= max(compute, bandwidth)
    # An L40 is not 4.6× an A100 for training (that is the fp32 CUDA-core ratio).
    assert cat.training_speed("L40") < 1.0
    assert cat.get("RTX-2080-Ti").effective_peak("bf16") == (53.8, "fp16")


def test_training_speed_against_published_throughputs():
    """The default speed model reproduces published GPU-to-GPU training speed ratios."""
    import itertools

    import numpy as np
    import pandas as pd

    cat = load_catalog()
    data = pd.read_csv(shipped_path("benchmark", "gpu_throughput"))
    data["origin"] = data["source"].str.slice(0, 60)
    precision = {"fp32_ngc_tf32": "tf32", "fp32": "tf32", "tf32": "tf32", "amp_fp16": "fp16"}
    errors = []
    for (_, prec, _), group in data.groupby(["model", "precision", "origin"]):
        rows = list(group.itertuples())
        for a, b in itertools.combinations(rows, 2):
            predicted = (cat.training_speed(a.gpu, precision[prec])
                         / cat.training_speed(b.gpu, precision[prec]))
            errors.append(abs(predicted / (a.throughput / b.throughput) - 1))
    assert len(errors) >= 100
    assert np.median(errors) <= 0.20
