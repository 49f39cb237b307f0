"""Training loops driven by frameworks, profiled unmodified (tests/fixtures/scripts/): a PyTorch
Lightning ``Trainer``, a Hugging Face ``Trainer`` on a tiny BERT built from a config, and a
two-rank DistributedDataParallel run started with ``torch.multiprocessing.spawn`` (gloo, CPU),
of which rank 0 is profiled. Each: exact parameters, FLOPs within 10% of FlopCounterMode on
the same model and batch, the right batch size.

Lightning and transformers are optional (``pip install -e '.[frameworks]'``); without them
those tests are skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from profiler_fixtures import load_module
from torch.utils.flop_counter import FlopCounterMode

from advisor.profiler import profile_script

SCRIPTS = Path(__file__).resolve().parent / "fixtures" / "scripts"


def _script_module(name: str):
    return load_module(SCRIPTS / f"{name}.py")


def _train_step_flops(model: torch.nn.Module, loss_of) -> float:
    """FlopCounterMode's count of one forward + backward (+ optimizer step: no FLOPs)."""
    with FlopCounterMode(display=False) as counter:
        loss_of(model).backward()
    return float(counter.get_total_flops())


# -- PyTorch Lightning ------------------------------------------------------------------------
L_ROWS, L_F, L_H, L_C, L_BS = 1024, 32, 64, 4, 64


@pytest.fixture(scope="module")
def lightning_profile(tmp_path_factory):
    pytest.importorskip("lightning")
    args = ["--rows", str(L_ROWS), "--features", str(L_F), "--hidden", str(L_H),
            "--classes", str(L_C), "--batch-size", str(L_BS)]
    return profile_script(SCRIPTS / "lightning_classifier.py", args, steps=2, warmup=1,
                          cwd=tmp_path_factory.mktemp("lightning"))


def test_lightning_trainer_is_profiled_unmodified(lightning_profile):
    p = lightning_profile
    mod = _script_module("lightning_classifier")
    model = mod.Classifier(L_F, L_H, L_C, 1e-3)
    assert p["parameters"] == sum(q.numel() for q in model.parameters())
    assert p["training_loop"]["framework"] == "PyTorch Lightning"
    assert p["optimizers"] == ["Adam"] and p["models"] == ["Classifier"]
    x, y = torch.randn(L_BS, L_F), torch.randint(0, L_C, (L_BS,))
    expected = _train_step_flops(model, lambda m: m.training_step((x, y), 0))
    assert abs(p["flops_per_step"] - expected) / expected < 0.10, (p["flops_per_step"], expected)
    assert p["batch_size"] == L_BS
    assert p["steps_per_epoch"] == L_ROWS // L_BS
    assert p["steps_measured"] == 2


# -- Hugging Face Trainer ---------------------------------------------------------------------
HF = {"rows": 256, "seq": 32, "vocab": 500, "hidden": 32, "layers": 2, "heads": 2, "labels": 3}
HF_BS = 16


@pytest.fixture(scope="module")
def hf_profile(tmp_path_factory):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    args = [a for k, v in HF.items() for a in (f"--{k}", str(v))] + ["--batch-size", str(HF_BS)]
    return profile_script(SCRIPTS / "hf_trainer_bert.py", args, steps=2, warmup=1,
                          cwd=tmp_path_factory.mktemp("hf"))


def test_hugging_face_trainer_is_profiled_unmodified(hf_profile):
    p = hf_profile
    mod = _script_module("hf_trainer_bert")
    model = mod.build(HF["vocab"], HF["hidden"], HF["layers"], HF["heads"], HF["seq"],
                      HF["labels"])
    assert p["parameters"] == model.num_parameters()
    assert p["training_loop"]["framework"] == "Hugging Face Trainer"
    assert p["models"] == ["BertForSequenceClassification"]
    ids = torch.randint(0, HF["vocab"], (HF_BS, HF["seq"]))
    labels = torch.randint(0, HF["labels"], (HF_BS,))
    model.train()
    expected = _train_step_flops(model, lambda m: m(input_ids=ids, attention_mask=torch.ones_like(
        ids), labels=labels).loss)
    assert abs(p["flops_per_step"] - expected) / expected < 0.10, (p["flops_per_step"], expected)
    assert p["batch_size"] == HF_BS
    assert p["steps_per_epoch"] == HF["rows"] // HF_BS


# -- DistributedDataParallel, two ranks -------------------------------------------------------
D_WORLD, D_ROWS, D_F, D_H, D_C, D_BS = 2, 2048, 32, 64, 4, 32


@pytest.fixture(scope="module")
def ddp_profile(tmp_path_factory):
    args = ["--world-size", str(D_WORLD), "--rows", str(D_ROWS), "--features", str(D_F),
            "--hidden", str(D_H), "--classes", str(D_C), "--batch-size", str(D_BS)]
    return profile_script(SCRIPTS / "ddp_spawn.py", args, steps=2, warmup=1,
                          cwd=tmp_path_factory.mktemp("ddp"))


def test_ddp_spawn_profiles_rank_zero_with_the_world_size(ddp_profile):
    p = ddp_profile
    model = torch.nn.Sequential(torch.nn.Linear(D_F, D_H), torch.nn.ReLU(),
                                torch.nn.Linear(D_H, D_C))
    params = sum(q.numel() for q in model.parameters())
    assert p["parameters"] == params
    assert p["models"] == ["DistributedDataParallel"]
    x, y = torch.randn(D_BS, D_F), torch.randint(0, D_C, (D_BS,))
    expected = _train_step_flops(model, lambda m: torch.nn.functional.cross_entropy(m(x), y))
    assert abs(p["flops_per_step"] - expected) / expected < 0.10, (p["flops_per_step"], expected)
    assert p["batch_size"] == D_BS  # one rank's batch
    per_rank_batches = D_ROWS // D_WORLD // D_BS
    assert p["steps_per_epoch"] == per_rank_batches
    d = p["distributed"]
    assert d["world_size"] == D_WORLD and d["rank_profiled"] == 0
    assert d["backend"] == "gloo" and d["launcher"] == "torch.multiprocessing.spawn"
    assert d["per_rank"] == {"batch_size": D_BS, "batches_per_epoch": per_rank_batches}
    assert d["global_batch_size"] == D_WORLD * D_BS
    assert d["ddp"] is True and d["gradient_allreduce_bytes_per_step"] == params * 4
