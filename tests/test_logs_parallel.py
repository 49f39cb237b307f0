"""advisor.logs.parallel: a log read by several processes gives exactly the sequential result."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.logs import parallel
from advisor.logs.generate import GeneratorConfig, write_log
from advisor.logs.parse import ParsedLog, parse_log
from advisor.logs.report import job_dict

FIXTURES = Path(__file__).parent / "fixtures" / "logs"


def same(a: ParsedLog, b: ParsedLog) -> None:
    assert a.events == b.events
    assert a.event_counts == b.event_counts
    assert a.error == b.error
    assert (a.first_event_s, a.last_event_s) == (b.first_event_s, b.last_event_s)
    assert [job_dict(j) for j in a.jobs.values()] == [job_dict(j) for j in b.jobs.values()]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("par")
    out = {}
    for fmt in ("iso", "old"):
        p = d / f"{fmt}.log"
        write_log(p, GeneratorConfig(jobs=1500, seed=21, date_format=fmt,
                                     start="2025-12-31T06:00:00"))
        out[fmt] = p
    return out


@pytest.mark.parametrize("fmt", ["iso", "old"])
@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_equals_sequential(generated, fmt, workers):
    p = generated[fmt]
    same(parse_log(p, workers=1), parse_log(p, workers=workers))


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.log")), ids=lambda p: p.name)
def test_parallel_on_fixtures(path):
    same(parse_log(path, workers=1), parse_log(path, workers=4))


def test_parallel_keeps_partial_reports(generated, tmp_path):
    data = generated["iso"].read_bytes()
    cut = tmp_path / "cut.log"
    cut.write_bytes(data[: len(data) * 2 // 3 + 17])
    seq, par = parse_log(cut, workers=1), parse_log(cut, workers=3)
    assert seq.error and "truncated or corrupt" in seq.error
    same(seq, par)
    garbled = tmp_path / "garbled.log"
    text = data.decode()
    at = text.index("005 (", len(text) // 2)
    garbled.write_text(text[:at] + "005 (abc.000.000) " + text[at + 18:])
    s2, p2 = parse_log(garbled, workers=1), parse_log(garbled, workers=3)
    assert s2.error is not None
    same(s2, p2)


def test_plan_chunks_start_at_events(generated):
    p = generated["iso"]
    size = p.stat().st_size
    chunks = parallel.plan_chunks(str(p), size, 7)
    assert chunks[0][0] == 0 and chunks[-1][1] == size
    data = p.read_bytes()
    for (_s, e), (s2, _e2) in zip(chunks, chunks[1:], strict=False):
        assert e == s2  # contiguous
        assert data[s2 - 4:s2] == b"...\n"  # each chunk starts right after an event


def test_falls_back_when_no_processes(generated, monkeypatch):
    import multiprocessing

    def broken(*_a, **_k):
        raise OSError("no fork here")

    monkeypatch.setattr(multiprocessing, "get_context", broken)
    p = generated["old"]
    same(parse_log(p, workers=1), parse_log(p, workers=3))


def test_choose_workers(monkeypatch):
    monkeypatch.delenv("ADVISOR_LOG_WORKERS", raising=False)
    assert parallel.choose_workers(1000, None) == 1
    assert parallel.choose_workers(10**9, 1) == 1
    assert parallel.choose_workers(10**9, 3) == 3
    monkeypatch.setenv("ADVISOR_LOG_WORKERS", "2")
    assert parallel.choose_workers(1000, None) == 2
