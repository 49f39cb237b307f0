"""The shipped examples run on their own, and the shipped profiles load and say what they should."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.profiler import load_profile

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
PROFILES = REPO / "profiles"
SHIPPED = ["mlp_tabular", "cnn_catdog", "transformer_lm", "batch_inference"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_loads(name):
    path = PROFILES / f"{name}.json"
    profile = load_profile(path)
    text = path.read_text()
    assert str(Path.home()) + "/" not in text and "/work/" not in text  # no absolute paths
    if name == "batch_inference":
        assert profile["mode"] == "command"
        assert profile["task"]["wall_s"] > 0 and profile["task"]["bytes_written"] > 0
    else:
        assert profile["mode"] == "torch"
        assert profile["script"] == f"examples/{name}.py"
        assert profile["flops_per_step"] > 0 and profile["parameters"] > 0
        assert profile["steps_measured"] == 20 and profile["warmup_steps"] == 3
        assert profile["data"] and profile["data"]["bytes"] > 0


def test_shipped_profiles_record_what_each_example_exercises():
    mlp = json.loads((PROFILES / "mlp_tabular.json").read_text())
    assert mlp["micro_batches_per_step"] == 2
    cnn = json.loads((PROFILES / "cnn_catdog.json").read_text())
    assert cnn["dataloader"]["num_workers"] == 2 and cnn["data"]["files"] == 400
    assert cnn["op_classes"]["conv"]["kernels"] > 0
    lm = json.loads((PROFILES / "transformer_lm.json").read_text())
    assert lm["precision"]["autocast_dtype"] == "bfloat16" and lm["precision"]["uses_sdpa"]


def test_make_catdog_images_writes_the_chtc_layout(tmp_path):
    spec = importlib.util.spec_from_file_location("mk", EXAMPLES / "make_catdog_images.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    root = mk.make_images(tmp_path / "catdog", per_class=3, size=16)
    assert sorted(p.name for p in root.iterdir()) == ["cat", "dog"]
    assert len(list((root / "cat").glob("*.png"))) == 3
    assert not (tmp_path / "catdog.partial").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name, args", [
    ("mlp_tabular", ["--rows", "512", "--epochs", "1"]),
    ("cnn_catdog", ["--per-class", "16", "--epochs", "1", "--num-workers", "0"]),
    ("transformer_lm", ["--tokens", "2000"]),
    ("batch_inference", ["--shards", "2", "--rows", "256"]),
])
def test_example_runs_on_its_own(tmp_path, name, args):
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data").is_dir()
