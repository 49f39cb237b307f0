"""Training-loop styles profiled unmodified (tests/fixtures/scripts/): manual parameter updates,
a closure optimizer (LBFGS), sequence-first LSTM data; and runs that never step or that fail
with coloured messages. Each script is profiled once per session; FLOPs are checked against
analytic counts. Framework-driven loops (Lightning, Hugging Face, DDP): test_profiler_frameworks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from advisor.errors import DomainFailure
from advisor.profiler import profile_script

SCRIPTS = Path(__file__).resolve().parent / "fixtures" / "scripts"

# word_lm_lstm.py: 2-layer LSTM, sequence-first (bptt, batch), manual SGD through p.data.add_
TOKENS, V, E, H, BPTT, B = 20000, 200, 32, 32, 35, 20
LM_ARGS = ["--tokens", str(TOKENS), "--vocab", str(V), "--emsize", str(E), "--nhid", str(H),
           "--bptt", str(BPTT), "--batch", str(B), "--epochs", "1"]


@pytest.fixture(scope="session")
def lm_profile(tmp_path_factory):
    return profile_script(SCRIPTS / "word_lm_lstm.py", LM_ARGS, steps=2, warmup=2,
                          cwd=tmp_path_factory.mktemp("lm"))


def test_manual_update_steps_are_found_and_lstm_flops_are_counted(lm_profile):
    p = lm_profile
    assert p["training_loop"]["style"] == "manual update"
    assert p["optimizers"] == ["manual update"]
    assert p["steps_measured"] == 2
    params = V * E + (4 * H * (E + H) + 8 * H) + (4 * H * (H + H) + 8 * H) + H * V + V
    assert p["parameters"] == params
    tokens = BPTT * B
    lstm = 2 * tokens * 4 * H * (E + H) + 2 * tokens * 4 * H * (H + H)   # the fused kernel
    decoder = 2 * tokens * H * V
    analytic = 3 * (lstm + decoder)  # forward, and backward's input and weight gradients
    assert abs(p["flops_per_step"] - analytic) / analytic < 0.10, (p["flops_per_step"], analytic)
    assert p["op_classes"]["matmul"]["flops"]["float32"] >= 3 * lstm


def test_sequence_first_batch_is_the_batch_dimension(lm_profile):
    p = lm_profile
    assert p["batch_size"] == B
    assert p["batch_layout"]["dim"] == 1
    assert p["batch_layout"]["shape"] == [BPTT, B]
    assert "batch_first=False" in p["batch_layout"]["source"]
    rows = TOKENS // B
    assert p["steps_per_epoch"] == math.ceil(rows / BPTT)


# manual_regression.py: nn.Module, `param -= lr * param.grad` under no_grad, x[i:i+bs] batches
ROWS, F, HID, BS = 2048, 16, 64, 32


@pytest.fixture(scope="session")
def regression_profile(tmp_path_factory):
    args = ["--rows", str(ROWS), "--features", str(F), "--hidden", str(HID),
            "--batch-size", str(BS)]
    return profile_script(SCRIPTS / "manual_regression.py", args, steps=3, warmup=2,
                          cwd=tmp_path_factory.mktemp("reg"))


@pytest.mark.slow  # the manual-update style is checked on word_lm_lstm.py in the default run
def test_manual_update_under_no_grad(regression_profile):
    p = regression_profile
    assert p["training_loop"]["style"] == "manual update"
    assert p["parameters"] == F * HID + HID + HID + 1
    assert p["batch_size"] == BS
    assert p["steps_per_epoch"] == ROWS // BS
    # forward 2·B·(F·H + H), backward: weight grads the same, input grads of the hidden layer
    analytic = 2 * BS * (F * HID + HID) * 2 + 2 * BS * HID
    assert p["flops_per_step"] == pytest.approx(analytic, rel=0.10)


# lbfgs_fit.py: LBFGS(max_iter=5, tolerances 0): 5 closure calls per step
LB_ROWS, LB_F, LB_H, LB_BS, LB_ITER = 512, 32, 64, 128, 5


@pytest.fixture(scope="session")
def lbfgs_profile(tmp_path_factory):
    args = ["--rows", str(LB_ROWS), "--features", str(LB_F), "--hidden", str(LB_H),
            "--batch-size", str(LB_BS), "--max-iter", str(LB_ITER)]
    return profile_script(SCRIPTS / "lbfgs_fit.py", args, steps=3, warmup=2,
                          cwd=tmp_path_factory.mktemp("lbfgs"))


def test_closure_optimizer_counts_one_closure_times_the_calls(lbfgs_profile):
    p = lbfgs_profile
    assert p["training_loop"] == {"style": "closure", "closure_calls_per_step": LB_ITER}
    assert p["optimizers"] == ["LBFGS"]
    assert p["parameters"] == LB_F * LB_H + LB_H + LB_H + 1
    assert p["batch_size"] == LB_BS
    assert p["micro_batches_per_step"] == 1
    assert p["steps_per_epoch"] == LB_ROWS // LB_BS
    per_closure = 2 * LB_BS * (LB_F * LB_H + LB_H) * 2 + 2 * LB_BS * LB_H
    assert p["flops_per_step"] == pytest.approx(LB_ITER * per_closure, rel=0.10)


@pytest.mark.slow  # the watchdog: test_profiler_failures.py (hanging script) in the default run
def test_no_step_stops_early_and_names_command(tmp_path):
    with pytest.raises(DomainFailure) as info:
        profile_script(SCRIPTS / "inference_only.py", ["--seconds", "60"], steps=2, warmup=1,
                       timeout_s=30, cwd=tmp_path)
    msg = str(info.value)
    assert "--command" in msg
    assert "no training step" in msg and "no backward" in msg
    assert "raise --timeout, or lower" not in msg
    assert info.value.details["reason"] == "no_steps"


def test_relayed_script_error_has_no_escape_codes(tmp_path):
    with pytest.raises(DomainFailure) as info:
        profile_script(SCRIPTS / "coloured_error.py", steps=2, warmup=1, cwd=tmp_path)
    text = str(info.value) + str(info.value.details)
    assert "CUDA out of memory while loading" in str(info.value)
    assert chr(27) not in text
