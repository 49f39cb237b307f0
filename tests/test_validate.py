"""The validation toolkit (simulator.validate), the safe reader (simulator.files) and the one
dotted-key setter (simulator.overrides): one rule per check, for every loader."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from advisor.errors import InputError
from simulator import files
from simulator.errors import ConfigError
from simulator.files import parse_json, parse_yaml, read_json, read_text, read_yaml
from simulator.overrides import set_key, show_key, split_key
from simulator.validate import (
    REQUIRED,
    boolean,
    choice,
    control_character,
    join,
    known_keys,
    mapping,
    number,
    string,
    string_list,
)


def test_one_error_class_for_both_packages() -> None:
    assert InputError is ConfigError


# --- number ---------------------------------------------------------------------------------

def test_number_declares_whether_zero_is_meaningful() -> None:
    assert number(0, "per_task.gpus", minimum=0, integer=True) == 0
    with pytest.raises(ConfigError) as err:
        number(0, "tasks", exclusive_minimum=0, integer=True)
    assert err.value.field == "tasks" and "greater than zero" in str(err.value)
    with pytest.raises(ConfigError, match="zero or more"):
        number(-1, "input_gb", minimum=0)
    with pytest.raises(TypeError):  # every field states its lower bound, exactly once
        number(1, "x")
    with pytest.raises(TypeError):
        number(1, "x", minimum=0, exclusive_minimum=0)


@pytest.mark.parametrize("value, expected", [
    (3, 3.0), (2.5, 2.5), ("1e-3", 0.001), ("5E6", 5e6), ("2_000", 2000.0), (" 12 ", 12.0),
    ("-0.5", None), (".5", 0.5), ("1.", 1.0),
])
def test_number_reads_yaml_11_and_12_numeric_text(value: object, expected: float | None) -> None:
    if expected is None:
        with pytest.raises(ConfigError, match="zero or more"):
            number(value, "x", minimum=0)
    else:
        assert number(value, "x", minimum=0) == expected


@pytest.mark.parametrize("value", [True, False, "many", "1e", "nan", "inf", "0x10", [], {},
                                   math.nan, math.inf, -math.inf, 10**400, "1e999"])
def test_number_refuses_what_is_not_a_finite_number(value: object) -> None:
    with pytest.raises(ConfigError) as err:
        number(value, "per_task.memory_gb", minimum=0)
    assert err.value.field == "per_task.memory_gb" and err.value.fix


def test_number_integer_maximum_and_default() -> None:
    assert number(4.0, "n", minimum=0, integer=True) == 4
    assert isinstance(number("12", "n", minimum=0, integer=True), int)
    with pytest.raises(ConfigError, match="whole number"):
        number(2.5, "slots[1].count", exclusive_minimum=0, integer=True)
    with pytest.raises(ConfigError, match="implausibly large"):
        number(1e30, "checkpoint_bytes", minimum=0, maximum=1e14)
    assert number(None, "x", minimum=0, default=7) == 7
    assert number(None, "x", minimum=0, default=None) is None
    with pytest.raises(ConfigError, match="is missing"):
        number(None, "workload.tasks", exclusive_minimum=0, default=REQUIRED)


# --- the other helpers ----------------------------------------------------------------------

def test_mapping_known_keys_boolean_choice() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        mapping([1], "per_task", "{gpu_hours: 1}")
    with pytest.raises(ConfigError) as err:
        known_keys({"tasks": 1, "taks": 2}, ("tasks", "per_task"), "")
    assert err.value.field == "taks" and "tasks" in err.value.suggestions
    with pytest.raises(ConfigError) as err:
        known_keys({"cuont": 1}, ("count",), "slots[0]")
    assert err.value.field == "slots[0].cuont"
    assert boolean(None, "resumable", default=None) is None
    with pytest.raises(ConfigError, match="true or false"):
        boolean("yes please", "resumable")
    assert choice(None, "precision", ("fp32", "bf16"), default=None) is None
    with pytest.raises(ConfigError) as err:
        choice("bf61", "precision", ("fp32", "bf16"))
    assert "bf16" in err.value.suggestions
    assert join("", "tasks") == "tasks" and join("slots", 2) == "slots[2]"
    assert join("a.b", "c") == "a.b.c"


@pytest.mark.parametrize("text", ["data\ntouch X\n#", "a\rb", "nul\x00", "esc\x1b[31m",
                                  "nel\x85", "ls\u2028x", "del\x7f"])
def test_string_refuses_control_characters_naming_the_field(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        string(text, "data.path")
    assert err.value.field == "data.path" and "control character" in str(err.value)
    assert control_character(text) is not None


def test_string_free_text_and_lists() -> None:
    assert string("a\tb", "name") == "a\tb"
    assert string("line one\nline two\tx", "notes", multiline=True).count("\n") == 1
    with pytest.raises(ConfigError):
        string("bell\x07", "notes", multiline=True)
    assert string(2024, "name", coerce=True) == "2024"
    with pytest.raises(ConfigError, match="must be text"):
        string(2024, "script")
    with pytest.raises(ConfigError, match="is empty"):
        string("  ", "tiers[0].name", allow_empty=False)
    assert string_list(["--epochs", "3"], "args") == ["--epochs", "3"]
    for bad in ("--epochs 3", {"epochs": 3}):
        with pytest.raises(ConfigError, match="list of strings"):
            string_list(bad, "args")
    with pytest.raises(ConfigError) as err:
        string_list(["ok", "x\ny"], "args")
    assert err.value.field == "args[1]"


# --- the reader -----------------------------------------------------------------------------

def test_yaml_numbers_in_both_forms_and_ints_stay_ints() -> None:
    data = parse_yaml("a: 1e-3\nb: 12\nc: 5E6\nd: '1e3'\ne: 1.5e2\nf: 1_000\n", "w", "t")
    assert data == {"a": 0.001, "b": 12, "c": 5e6, "d": "1e3", "e": 150.0, "f": 1000}
    assert isinstance(data["b"], int)


def test_duplicate_keys_are_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse_yaml("tasks: 1\nname: x\ntasks: 500\n", "workload", "w.yaml")
    assert "'tasks'" in str(err.value) and "line 3" in str(err.value)
    with pytest.raises(ConfigError, match="'gpus'"):
        parse_yaml("per_task:\n  gpus: 1\n  gpus: 2\n", "workload", "w.yaml")
    with pytest.raises(ConfigError, match="'steps_per_epoch'"):
        parse_json('{"steps_per_epoch": 1, "steps_per_epoch": 2}', "profile", "p.json", "fix")
    # a merge key brings values in; an explicit key after it is not a duplicate
    assert parse_yaml("a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  p: 3\n", "w", "t")["b"] == {"p": 3, "q": 2}


def test_aliases_are_bounded_and_cannot_refer_to_themselves() -> None:
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for name, prev in zip("bcdefghi", "abcdefgh", strict=True):
        bomb += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
    with pytest.raises(ConfigError, match="aliases that expand"):
        parse_yaml(bomb, "scenario", "bomb.yaml")
    with pytest.raises(ConfigError, match="refers to itself"):
        parse_yaml("a: &a [*a]\n", "scenario", "loop.yaml")
    small = parse_yaml("base: &b {gpu: L40, count: 2}\nslots: [*b, *b]\n", "pool", "p.yaml")
    assert small["slots"] == [{"gpu": "L40", "count": 2}] * 2


@pytest.mark.parametrize("depth, ok", [(files.MAX_DEPTH, True), (files.MAX_DEPTH + 1, False),
                                       (5000, False)])
def test_nesting_is_limited_in_yaml_and_json(depth: int, ok: bool) -> None:
    text = "[" * depth + "]" * depth
    for parse in (lambda t: parse_yaml(t, "w", "t"), lambda t: parse_json(t, "p", "t", "fix")):
        if ok:
            parse(text)
        else:
            with pytest.raises(ConfigError, match=f"deeper than {files.MAX_DEPTH}"):
                parse(text)
    with pytest.raises(ConfigError, match="deeper"):  # past Python's recursion limit
        parse_json("[" * 100_000 + "]" * 100_000, "profile", "p.json", "fix")


def test_reader_messages_for_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        read_yaml(tmp_path, "workload")
    with pytest.raises(ConfigError, match="no such file"):
        read_json(tmp_path / "absent.json", "profile", "fix")
    big = tmp_path / "big.yaml"
    big.write_text("notes: " + "x" * 2000 + "\n")
    monkeypatch.setattr(files, "MAX_INPUT_BYTES", 1000)
    with pytest.raises(ConfigError, match="larger than the 1 kB"):
        read_yaml(big, "workload")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_text(latin, "workload", "fix")


def test_permission_denied_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("name: x\n")

    def denied(self: Path, *a: object, **k: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(ConfigError) as err:
        read_yaml(path, "workload")
    assert "permission denied" in str(err.value) and "chmod" in str(err.value)


def test_a_big_free_text_field_reads_whole() -> None:
    data = parse_yaml("notes: " + "word " * 1_000_000 + "\n", "workload", "w.yaml")
    assert len(data["notes"]) == 5_000_000 - 1


# --- the one dotted-key setter --------------------------------------------------------------

def test_split_and_set_keys() -> None:
    assert split_key("pool.slots[0].count") == ["pool", "slots", 0, "count"]
    assert split_key("pool.slots.3.count") == ["pool", "slots", 3, "count"]
    assert show_key(["pool", "slots", 0, "count"]) == "pool.slots[0].count"
    d = {"pool": {"slots": [{"count": 1}]}, "workload": {"checkpoint": "none"}}
    assert set_key(d, "pool.slots[0].count", 5) == 1
    assert set_key(d, ["workload", "checkpoint", "interval_minutes"], 30) is None
    assert d == {"pool": {"slots": [{"count": 5}]}, "workload": {"checkpoint": {"interval_minutes": 30}}}
    with pytest.raises(ConfigError, match="out of range"):
        set_key(d, "pool.slots[9].count", 1)
    with pytest.raises(ConfigError, match="not a dotted key"):
        split_key("..")
