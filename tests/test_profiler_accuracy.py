"""Accuracy of the profiler against analytic counts and torch's own counters, on the shipped
examples and a ResNet-style fixture run unmodified in a child process (tiny data, few steps);
and what `fit` and `recommend` make of the ResNet-style profile."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from profiler_fixtures import load_module
from torch.utils.flop_counter import FlopCounterMode

from advisor.profiler import profile_script

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = Path(__file__).resolve().parent / "fixtures" / "scripts"


def load_example(name: str):
    return load_module(EXAMPLES / f"{name}.py")


# MLP: 64 features, 8 hidden layers of 256, 10 classes, batch 128, 2 micro-batches, SGD+momentum.
F_IN, H, LAYERS, C, B, ACCUM = 64, 256, 8, 10, 128, 2
MLP_ARGS = ["--data-dir", "data/tab", "--rows", "2048", "--features", str(F_IN), "--hidden",
            str(H), "--layers", str(LAYERS), "--classes", str(C), "--batch-size", str(B),
            "--accum-steps", str(ACCUM), "--epochs", "2"]


@pytest.fixture(scope="module")
def mlp_profile(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("mlp")
    return profile_script(EXAMPLES / "mlp_tabular.py", MLP_ARGS, steps=3, warmup=2, cwd=cwd)


def mlp_shapes() -> list[tuple[int, int]]:
    return [(F_IN, H)] + [(H, H)] * (LAYERS - 1) + [(H, C)]


def test_mlp_flops_equal_the_analytic_count(mlp_profile):
    s = sum(i * o for i, o in mlp_shapes())
    first = F_IN * H  # no gradient is computed for the input batch
    per_micro = 2 * B * s + 2 * B * s + 2 * B * (s - first)  # forward, weight grads, input grads
    assert mlp_profile["flops_per_step"] == ACCUM * per_micro
    assert mlp_profile["flops_by_dtype"] == {"float32": ACCUM * per_micro}
    assert mlp_profile["op_classes"]["matmul"]["flops"]["float32"] == ACCUM * per_micro


def test_mlp_parameters_batch_and_accumulation(mlp_profile):
    params = sum(i * o + o for i, o in mlp_shapes())
    assert mlp_profile["parameters"] == params
    assert mlp_profile["trainable_parameters"] == params
    assert mlp_profile["batch_size"] == B
    assert mlp_profile["micro_batches_per_step"] == ACCUM
    assert mlp_profile["steps_per_epoch"] == 2048 // B // ACCUM
    assert mlp_profile["steps_measured"] == 3
    assert mlp_profile["flops_counted_on_step"] == 2
    assert mlp_profile["data"] == {"path": "data/tab", "bytes": pytest.approx(
        mlp_profile["data"]["bytes"]), "files": 1}
    assert mlp_profile["optimizers"] == ["SGD"]


def test_mlp_peak_tensor_memory_is_within_15_percent_of_analytic(mlp_profile):
    params = sum(i * o + o for i, o in mlp_shapes())
    static = 3 * params * 4  # parameters, gradients, momentum buffers (fp32)
    # Saved for backward per micro-batch: the input, each ReLU output (the next Linear's input),
    # the log-softmax output, and the int64 targets.
    activations = B * (F_IN + LAYERS * H + C) * 4 + B * 8
    analytic = static + activations
    measured = mlp_profile["peak_memory_bytes"]["device"]
    assert abs(measured - analytic) / analytic < 0.15, (measured, analytic)
    breakdown = mlp_profile["peak_memory_bytes"]["breakdown"]
    assert breakdown["parameters"] == params * 4
    assert breakdown["optimizer_state"] == params * 4
    assert mlp_profile["peak_memory_bytes"]["host"] > measured


def test_mlp_checkpoint_is_within_5_percent_of_torch_save(mlp_profile):
    mlp = load_example("mlp_tabular")
    model = mlp.build_model(F_IN, H, LAYERS, C)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model(torch.randn(4, F_IN)).sum().backward()
    opt.step()
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "optim": opt.state_dict()}, buf)
    expected = buf.tell()
    assert abs(mlp_profile["checkpoint_bytes"] - expected) / expected < 0.05


@pytest.mark.slow  # conv FLOPs and num_workers=2: test_resnet_style_script_with_two_workers
def test_cnn_flops_match_flop_counter_mode_within_1_percent(tmp_path):
    batch, width = 16, 8
    prof = profile_script(EXAMPLES / "cnn_catdog.py",
                          ["--data-dir", "imgs", "--per-class", "32", "--batch-size", str(batch),
                           "--width", str(width), "--epochs", "3", "--num-workers", "2"],
                          steps=3, warmup=2, cwd=tmp_path)
    cnn = load_example("cnn_catdog")
    model = cnn.SmallCNN(width)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 2, (batch,))
    with FlopCounterMode(display=False) as counter:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    expected = counter.get_total_flops()
    assert abs(prof["flops_per_step"] - expected) / expected < 0.01
    assert prof["op_classes"]["conv"]["flops"]["float32"] > 0.5 * expected
    assert prof["parameters"] == sum(p.numel() for p in model.parameters())
    assert prof["batch_size"] == batch
    assert prof["dataloader"]["num_workers"] == 2
    assert prof["data"]["path"] == "imgs" and prof["data"]["files"] == 64
    assert prof["steps_per_epoch"] == 64 // batch
    assert 0 <= prof["data_wait_fraction"] <= 1
    buf = io.BytesIO()
    model(x).sum().backward()
    opt.step()
    torch.save({"model": model.state_dict(), "optim": opt.state_dict()}, buf)
    assert abs(prof["checkpoint_bytes"] - buf.tell()) / buf.tell() < 0.05


@pytest.mark.slow  # attention on the CPU kernel: test_profiler_memory; autocast: test_profiler_autocast
def test_transformer_precision_and_attention(tmp_path):
    prof = profile_script(EXAMPLES / "transformer_lm.py",
                          ["--data-dir", "tok", "--tokens", "4000", "--batch-size", "4"],
                          steps=2, warmup=2, cwd=tmp_path)
    assert prof["precision"]["autocast_dtype"] == "bfloat16"
    assert prof["precision"]["param_dtype"] == "float32"
    assert prof["precision"]["uses_sdpa"] is True
    assert prof["flops_by_dtype"].get("bfloat16", 0) > 0
    assert prof["op_classes"]["attention"]["flops"]  # counted on the CPU kernel too
    assert prof["optimizers"] == ["AdamW"]


def test_input_bound_loop_reports_its_data_wait(tmp_path):
    (tmp_path / "slow_input.py").write_text(
        "import time, torch\n"
        "from torch.utils.data import DataLoader, Dataset\n"
        "class Slow(Dataset):\n"
        "    def __len__(self): return 10_000\n"
        "    def __getitem__(self, i):\n"
        "        time.sleep(0.005)\n"
        "        return torch.randn(8)\n"
        "model = torch.nn.Linear(8, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.01)\n"
        "for x in DataLoader(Slow(), batch_size=8):\n"
        "    opt.zero_grad(); model(x).sum().backward(); opt.step()\n")
    prof = profile_script("slow_input.py", steps=5, warmup=1, cwd=tmp_path)
    assert prof["data_wait_s"]["median"] >= 8 * 0.005
    assert prof["data_wait_fraction"] > 0.5
    assert prof["batch_size"] == 8 and prof["steps_per_epoch"] == 1250


# resnet_synthetic.py: residual blocks with batch norm, synthetic images, num_workers=2
R_IMAGES, R_SIZE, R_WIDTH, R_CLASSES, R_BS = 256, 32, 8, 10, 32


@pytest.fixture(scope="module")
def resnet_profile(tmp_path_factory):
    args = ["--images", str(R_IMAGES), "--size", str(R_SIZE), "--width", str(R_WIDTH),
            "--classes", str(R_CLASSES), "--batch-size", str(R_BS), "--num-workers", "2"]
    return profile_script(SCRIPTS / "resnet_synthetic.py", args, steps=2, warmup=1,
                          cwd=tmp_path_factory.mktemp("resnet"))


def test_resnet_style_script_with_two_workers(resnet_profile):
    p = resnet_profile
    mod = load_module(SCRIPTS / "resnet_synthetic.py")
    model = mod.ResNetSmall(R_WIDTH, R_CLASSES)
    x, y = torch.randn(R_BS, 3, R_SIZE, R_SIZE), torch.randint(0, R_CLASSES, (R_BS,))
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    expected = counter.get_total_flops()
    assert abs(p["flops_per_step"] - expected) / expected < 0.10
    assert p["parameters"] == sum(q.numel() for q in model.parameters())
    assert p["batch_size"] == R_BS and p["steps_per_epoch"] == R_IMAGES // R_BS
    assert p["dataloader"]["num_workers"] == 2
    assert p["input_pipeline"]["num_workers"] == 2


def test_resnet_style_fit_and_recommendation(resnet_profile, tmp_path):
    from advisor.predict import predict_fit
    from advisor.profiler import write_profile
    from advisor.recommend import recommend
    from advisor.workload import load_workload_or_profile
    from simulator.pool import load_pool
    rows = {r.gpu: r for r in predict_fit(resnet_profile, load_pool("chtc")).rows}
    h100, a100 = rows["H100-SXM5-80GB"], rows["A100-SXM4-80GB"]
    # the GPU's own work: the H100 is faster, whatever floor the host's dispatch sets
    assert 0 < h100.kernel_time_s < a100.kernel_time_s
    assert h100.predicted_compute_time_s <= a100.predicted_compute_time_s
    for r in (h100, a100):
        assert r.predicted_compute_time_s == pytest.approx(max(r.kernel_time_s,
                                                               r.dispatch_floor_s))
        assert r.cpus_to_feed <= 3  # 2 workers + the main process: all the script can use
    path = write_profile(resnet_profile, tmp_path / "resnet.json")
    rec = recommend(load_workload_or_profile(path, steps=200), "chtc", replications=1)
    assert rec.sizing is not None and rec.sizing.request_cpus <= 3
