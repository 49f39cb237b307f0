"""Hostile and careless input files, through the real CLI: each is refused with exit 2, a message
that names the field (or the repeated key), and no traceback. Some go through a subprocess to
prove the same at the process level (and to bound a would-be hang with a timeout)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from advisor.cli import main
from simulator import files
from simulator.shipped import shipped_path

REPO = Path(__file__).resolve().parents[1]
WORKLOAD = {"name": "hostile", "kind": "training", "tasks": 3, "per_task": {"gpu_hours": 1}}
PROFILE = json.loads((REPO / "profiles" / "cnn_catdog.json").read_text())


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def _refused(code: int, text: str, *needles: str) -> None:
    assert code == 2, text[-2000:]
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text, (needle, text[-2000:])


def _subprocess(*argv: str, timeout: float = 300) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "advisor.cli", *argv], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)
    return proc.returncode, proc.stdout + proc.stderr


def _workload(tmp_path: Path, **changes: Any) -> Path:
    doc = copy.deepcopy(WORKLOAD)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(doc, width=10**9))
    return path


# --- profiles: wrong types, absurd sizes, injected lines ------------------------------------

def _set(path: str, value: Any):  # noqa: ANN202
    def edit(p: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = p
        for part in parents:
            node = node[part]
        node[last] = value
    return edit


PROFILE_CASES = {
    "data is text": (_set("data", "x"), "data"),
    "steps_per_epoch is a word": (_set("steps_per_epoch", "many"), "steps_per_epoch"),
    "steps_per_epoch is negative": (_set("steps_per_epoch", -3), "steps_per_epoch"),
    "data.bytes is a word": (_set("data.bytes", "lots"), "data.bytes"),
    "checkpoint_bytes is absurd": (_set("checkpoint_bytes", 1e30), "checkpoint_bytes"),
    "script with a newline": (_set("script", "train.py\ntouch /tmp/pwned"), "script"),
    "args as one string": (_set("args", "--epochs 3"), "args"),
    "args as a mapping": (_set("args", {"epochs": 3}), "args"),
    "an argument with a newline": (_set("args", ["--data-dir", "d\nrm -rf ~"]), "args[1]"),
    "data.path with a newline": (_set("data.path", "data\ntouch X\n#"), "data.path"),
    "peak memory is text": (_set("peak_memory_bytes.host", "big"), "peak_memory_bytes.host"),
}


@pytest.mark.parametrize("case", sorted(PROFILE_CASES))
def test_bad_profile_exit_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             case: str) -> None:
    edit, field = PROFILE_CASES[case]
    profile = copy.deepcopy(PROFILE)
    edit(profile)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile))
    code, text = _cli(capsys, "assess", str(path), "--json")
    _refused(code, text, f"{field} = ")


def test_profile_with_a_repeated_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps(PROFILE)
    path = tmp_path / "p.json"
    path.write_text(text[:-1] + ', "steps_per_epoch": 9999}')
    _refused(*_cli(capsys, "assess", str(path), "--json"), "'steps_per_epoch'", "repeats")


def test_profile_nested_too_deep(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"data": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _refused(*_subprocess("assess", str(path), "--json"), "deeper than")


# --- workloads --------------------------------------------------------------------------------

def test_container_with_an_injected_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _workload(tmp_path, container="docker://img\ninclude : /bin/touch X |")
    _refused(*_cli(capsys, "assess", str(path), "--json"), "container = ", "control character")


def test_workload_with_a_repeated_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("name: dup\ntasks: 3\nper_task:\n  gpu_hours: 1\ntasks: 500\n")
    _refused(*_cli(capsys, "assess", str(path)), "'tasks'", "line 5")


def test_yaml_alias_bomb_fails_fast(tmp_path: Path) -> None:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for name, prev in zip("bcdefghi", "abcdefgh", strict=True):
        text += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    path = tmp_path / "bomb.yaml"
    path.write_text(text + "name: bomb\ntasks: 1\nper_task: {gpu_hours: *i}\n")
    _refused(*_subprocess("assess", str(path), "--json", timeout=120), "aliases that expand")


def test_workload_nested_too_deep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\ntasks: 1\nnotes: " + "[" * 200 + "]" * 200 + "\n")
    _refused(*_cli(capsys, "assess", str(path)), "deeper than")


def test_directory_is_not_no_such_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "w.yaml"
    folder.mkdir()
    _refused(*_cli(capsys, "assess", str(folder)), "is a directory")


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = _workload(tmp_path)
    real_open = Path.open

    def guarded(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:  # as for a file without read permission (tests may run as root)
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded)
    _refused(*_cli(capsys, "assess", str(path)), "permission denied")


def test_file_size_cap(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = _workload(tmp_path, notes="x" * 5000)
    monkeypatch.setattr(files, "MAX_INPUT_BYTES", 4000)
    _refused(*_cli(capsys, "assess", str(path)), "larger than the 4 kB")


@pytest.mark.parametrize("changes, field", [
    ({"tasks": 0}, "tasks"),
    ({"tasks": "many"}, "tasks"),
    ({"per_task": {"gpu_hours": "lots"}}, "per_task.gpu_hours"),
    ({"per_task": {"steps": -1}}, "per_task.steps"),
    ({"per_task": {"memory_gb": 0}}, "per_task.memory_gb"),
    ({"per_task": {"gpus": True}}, "per_task.gpus"),
    ({"resumable": "yes please"}, "resumable"),
    ({"notes": "fine\x1b[2J"}, "notes"),
])
def test_bad_workload_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             changes: dict[str, Any], field: str) -> None:
    path = _workload(tmp_path, **changes)
    _refused(*_cli(capsys, "assess", str(path), "--json"), f"{field} = ")


def test_number_forms_and_meaningful_zeros_load(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("name: forms\ntasks: 1e3\nper_task:\n  gpu_hours: 1e-3\n  input_gb: 0\n")
    code, text = _cli(capsys, "assess", str(path), "--json")
    assert code == 0, text
    assert json.loads(text[: text.rindex("}") + 1])["workload"] == "forms"
    cpu_only = _workload(tmp_path, per_task={"gpu_hours": None, "gpus": 0, "cpu_hours": 2})
    code, text = _cli(capsys, "assess", str(cpu_only), "--json")
    assert code == 0, text


def test_long_notes_load_and_print(tmp_path: Path) -> None:
    """A 5 MB notes field loads; a long unbroken one prints (rich's highlighter, quadratic on
    long words, took 33 s at 50 kB): the timeout bounds a regression, it is not a timing assert."""
    big = _workload(tmp_path, notes="word " * 1_000_000)
    code, text = _subprocess("assess", str(big), "--json", timeout=300)
    assert code == 0 and "Traceback" not in text
    unbroken = tmp_path / "unbroken.yaml"
    unbroken.write_text(yaml.safe_dump({**WORKLOAD, "notes": "x" * 200_000}, width=10**9))
    code, text = _subprocess("assess", str(unbroken), timeout=300)
    assert code == 0 and "assumed:" in text and "x" * 150 in text


# --- pools and scenarios ------------------------------------------------------------------------

def test_pool_and_scenario_with_repeated_keys(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    pool = shipped_path("pool", "chtc").read_text()
    path = tmp_path / "pool.yaml"
    path.write_text(pool + "\nname: twice\n")
    _refused(*_cli(capsys, "pools", str(path)), "'name'", "repeats")
    scenario = tmp_path / "s.yaml"
    scenario.write_text("workload: {tasks: 1, work_hours: 1}\nseed: 1\nseed: 2\n")
    _refused(*_cli(capsys, "simulate", str(scenario), "--workers", "0"), "'seed'")


def test_scenario_field_with_a_newline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text('workload: {tasks: 1, work_hours: 1, user: "me\\nqueue 9999"}\n')
    _refused(*_cli(capsys, "simulate", str(scenario), "--workers", "0"), "workload.user = ")
