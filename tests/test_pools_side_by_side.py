"""`--pool chtc,ospool`: each pool's answer and which finishes sooner, and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.cli import main
from advisor.errors import InputError
from advisor.recommend.compare import compare_recommendations, pool_facts, pool_list
from simulator.pool import load_pool

REPO = Path(__file__).resolve().parents[1]
MANY = str(REPO / "examples" / "workloads" / "2_many_architectures.yaml")


@pytest.mark.parametrize("text, words", [("chtc", "not a list"), ("chtc,", "not a list"),
                                         ("chtc,chtc", "twice"), ("a,b,c,d,e", "at most")])
def test_pool_list_refuses_what_is_not_a_list_of_pools(text: str, words: str) -> None:
    with pytest.raises(InputError) as exc:
        pool_list(text)
    assert exc.value.field == "--pool" and words in str(exc.value)


def test_pool_facts_say_what_differs() -> None:
    chtc, ospool = pool_facts(load_pool("chtc")), pool_facts(load_pool("ospool"))
    assert any("not preempted" in f for f in chtc) and any("+GPUJobLength" in f for f in chtc)
    assert any("preempted" in f and "12 h" in f for f in ospool)
    assert any("+JobDurationCategory" in f for f in ospool)
    assert any("/staging" in f for f in ospool) and not any("/staging" in f for f in chtc)


def _answer(mean: float, half: float) -> dict:
    return {"verdict": "htc-able", "expected": {"time_to_results_hours": {
        "mean": mean, "ci95_low": mean - half, "ci95_high": mean + half, "p90": mean}},
        "candidates": [{"label": f"plan {mean:g}", "chosen": True}]}


def test_comparison_names_the_sooner_pool_and_whether_beyond_the_noise() -> None:
    pools = [load_pool("chtc"), load_pool("ospool")]
    c = compare_recommendations([_answer(40, 2), _answer(160, 5)], pools)
    assert c["sooner"] == "chtc" and c["beyond_noise"] is True
    assert "+JobDurationCategory" in c["why"] and "plan 160" in c["why"]
    tie = compare_recommendations([_answer(41, 3), _answer(40, 3)], pools)
    assert tie["sooner"] == "ospool" and tie["beyond_noise"] is False and "within the noise" in tie["why"]
    none = compare_recommendations([_answer(40, 2), {"verdict": "not-a-fit"}], pools)
    assert none["sooner"] == "chtc" and "Only chtc" in none["why"]


def test_assess_on_two_pools(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["assess", MANY, "--pool", "chtc,ospool", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert set(data["pools"]) == {"chtc", "ospool"}
    assert data["pools"]["chtc"]["verdict"] == data["pools"]["ospool"]["verdict"]
    assert [r["pool"] for r in data["comparison"]["pools"]] == ["chtc", "ospool"]


def test_several_pools_write_no_job_set(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["recommend", MANY, "--pool", "chtc,ospool", "-o", str(tmp_path / "out"), "--json"])
    out, _ = capsys.readouterr()
    assert code == 2
    assert "-o" in out and "one --pool" in out
