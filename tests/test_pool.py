from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator.errors import ConfigError
from simulator.pool import load_pool
from simulator.shipped import shipped_path

DOMAIN_GPU_LAB = {"P100-PCIE-16GB": 4, "RTX-2080-Ti": 8, "A100-SXM4-40GB": 8, "A100-SXM4-80GB": 32,
                  "L40": 30, "L40S": 16, "H100-SXM5-80GB": 8, "H200": 16}


def test_chtc_gpu_lab_inventory_and_tiers():
    pool = load_pool("chtc")
    assert pool.shared_gpus == 122
    assert pool.gpus_by_type(include_owned=False) == DOMAIN_GPU_LAB
    owned = [s for s in pool.slots if s.backfill_only]
    assert sum(s.count for s in owned) == 150
    assert all(s.time_to_eviction is not None for s in owned)
    assert all(s.time_to_eviction is None for s in pool.slots if not s.backfill_only)
    tiers = {t.name: t for t in pool.tiers}
    assert [tiers[n].max_hours for n in ("short", "medium", "long")] == [12, 24, 168]
    assert pool.default_tier.name == "medium"
    assert tiers["short"].per_user_limit(pool.shared_gpus) == 81   # 2/3 of 122
    assert tiers["medium"].per_user_limit(pool.shared_gpus) == 40  # 1/3 of 122
    assert tiers["long"].per_user_limit(pool.shared_gpus) == 4
    assert pool.cpu_slots is not None and pool.cpu_slots.count >= 1000
    assert pool.tier_attribute == "+GPUJobLength"
    assert any("assum" in a.lower() for a in pool.assumptions)
    l40 = next(s for s in pool.slots if s.gpu == "L40")
    assert l40.gpu_memory_gb == 45 and l40.capability == 8.9


def test_ospool_tiers_fit_table_and_eviction_everywhere():
    pool = load_pool("ospool")
    assert {t.name: t.max_hours for t in pool.tiers} == {"Medium": 20, "Long": 40}
    assert pool.default_tier.name == "Medium"
    assert all(s.time_to_eviction is not None for s in pool.slots)
    assert pool.fit_table["walltime_hours"]["ok"] == 20
    assert pool.fit_table["gpus"]["ok"] == 1
    assert pool.tier_attribute == "+JobDurationCategory"


def test_inline_pool_defaults_and_tier_lookup():
    pool = load_pool({"name": "mmc", "slots": [{"gpu": "A100-SXM4-80GB", "count": 8}]})
    assert pool.total_gpus == 8 and pool.tiers == () and pool.default_tier is None
    with pytest.raises(ConfigError) as err:
        load_pool("chtc").tier("shrot")
    assert "short" in err.value.suggestions


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(shipped_path("pool", "chtc").read_text())
    mutate(data)
    p = tmp_path / "pool.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _set(path, value):
    def mutate(d):
        node = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return mutate


BAD_POOLS = {
    "unknown gpu": (_set(["slots", 0, "gpu"], "A100"), "slots[0].gpu", "A100-SXM4-40GB"),
    "negative count": (_set(["slots", 1, "count"], -4), "slots[1].count", None),
    "fractional count": (_set(["slots", 1, "count"], 2.5), "slots[1].count", None),
    "text cpus": (_set(["slots", 2, "cpus"], "many"), "slots[2].cpus", None),
    "misspelled key": (_set(["slots", 0, "cuont"], 3), "slots[0].cuont", "count"),
    "gpu memory above datasheet": (_set(["slots", 0, "gpu_memory_gb"], 99), "slots[0].gpu_memory_gb", None),
    "zero tier hours": (_set(["tiers", 0, "max_hours"], 0), "tiers[0].max_hours", None),
    "share above one": (_set(["tiers", 0, "per_user_share"], 1.5), "tiers[0].per_user_share", None),
    "two limits": (_set(["tiers", 2, "per_user_share"], 0.5), "tiers[2].per_user_share", None),
    "two defaults": (_set(["tiers", 0, "default"], True), "tiers", None),
    "bad distribution": (_set(["eviction", "owned", "time_to_eviction"], {"dist": "exponentail", "mean": 8}),
                         "eviction.owned.time_to_eviction.dist", "exponential"),
    "negative mean": (_set(["eviction", "owned", "time_to_eviction"], {"dist": "exponential", "mean": -1}),
                      "eviction.owned.time_to_eviction.mean", None),
    "no slots": (_set(["slots"], []), "slots", None),
    "unknown top key": (_set(["tires"], []), "tires", "tiers"),
    "bad eviction class": (_set(["eviction", "owner"], None), "eviction.owner", "owned"),
}


@pytest.mark.parametrize("case", sorted(BAD_POOLS))
def test_bad_pool_names_field_value_and_fix(tmp_path, case):
    mutate, field, suggestion = BAD_POOLS[case]
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_pool(path)
    assert err.value.field == field
    assert str(path) in str(err.value) and "To fix" in str(err.value)
    if suggestion:
        assert suggestion in err.value.suggestions


def test_malformed_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nslots: [\n  - gpu: L40\n")
    with pytest.raises(ConfigError) as err:
        load_pool(bad)
    assert "line" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_pool(tmp_path / "nope.yaml")
    assert "no such file" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_pool("osp00l")
    assert "ospool" in err.value.suggestions
