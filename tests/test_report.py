"""`advisor report`: the page's sections, escaping, self-containment, the figures' numbers, the
not-a-fit page and exit codes, the CLI. Small settings (1–2 replications per candidate, a few
for the figures) keep it quick; the browser checks are in test_report_browser.py."""

from __future__ import annotations

import base64
import json
import math
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from advisor.cli import main
from advisor.report import SECTION_IDS, Report, build_report, plots, write_report
from advisor.report import html as h
from advisor.workload import load_workload_or_profile
from simulator.theory import (
    daly_interval,
    daly_wall_time,
    in_place_expected_wall_time,
)

REPO = Path(__file__).resolve().parents[1]
WORKLOADS = REPO / "examples" / "workloads"


class Page(HTMLParser):
    """What the tests look at: section ids, images, scripts, links, text per section."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.pre: list[str] = []
        self._in_pre = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section" and a.get("id"):
            self.sections.append(str(a["id"]))
        if tag == "img":
            self.images.append(a)
        for k in ("src", "href"):
            if a.get(k):
                self.urls.append(str(a[k]))
        if tag == "pre":
            self._in_pre += 1
            self.pre.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre -= 1

    def handle_data(self, data: str) -> None:
        if self._in_pre:
            self.pre[-1] += data


@pytest.fixture(scope="module")
def catdog() -> Report:
    w = load_workload_or_profile(WORKLOADS / "4_catdog.yaml")
    return build_report(w, "chtc", replications=2, plot_replications=5, seed=1)


@pytest.fixture(scope="module")
def checkpointing() -> Report:
    """Use case 2 with 20 tasks: the chosen request checkpoints on backfill (4 tasks would fit the
    72 h `mediumlong` tier's 4 GPUs per user unbroken)."""
    w = load_workload_or_profile(WORKLOADS / "2_many_architectures.yaml", tasks=20)
    return build_report(w, "chtc", replications=1, plot_replications=4, seed=1)


@pytest.fixture(scope="module")
def not_a_fit() -> Report:
    w = load_workload_or_profile(WORKLOADS / "3_foundation_model.yaml")
    return build_report(w, "chtc", replications=1, plot_replications=3)


def test_every_section_in_order_with_a_submit_file(catdog: Report) -> None:
    page = Page(catdog.html)
    assert page.sections == list(SECTION_IDS) == catdog.sections
    assert catdog.exit_code == 0
    submit = page.pre[0]
    assert "request_gpus = 1" in submit and "gpus_minimum_memory" in submit
    assert submit.rstrip().endswith("queue")


def test_page_is_self_contained(catdog: Report, checkpointing: Report) -> None:
    for rep in (catdog, checkpointing):
        page = Page(rep.html)
        assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
        assert all(u.startswith(("#", "data:image/svg+xml;base64,")) for u in page.urls), page.urls
        assert "@import" not in rep.html and "url(" not in rep.html


def test_every_figure_is_an_svg_with_a_title(checkpointing: Report) -> None:
    page = Page(checkpointing.html)
    assert len(page.images) == 3   # time-to-results, checkpoint curve, backfill what-if
    for img in page.images:
        assert img["alt"] and img["title"]
        svg = base64.b64decode(str(img["src"]).split(",", 1)[1]).decode()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        # matplotlib writes each text it draws as paths with the text in a comment
        texts = re.findall(r"<!-- (.*?) -->", svg)
        assert any(t.startswith(str(img["title"])) for t in texts), texts[:5]


def test_every_plot_labels_its_axes_with_units(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = plots._render

    def capture(fig: Any, alt: str, title: str) -> plots.Figure:
        seen.append([(ax.get_title(), ax.get_xlabel(), ax.get_ylabel(),
                      fig._suptitle.get_text() if fig._suptitle else "") for ax in fig.axes])
        return real(fig, alt, title)

    monkeypatch.setattr(plots, "_render", capture)
    plots.time_to_results([1.0, 1.5, 2.5, 3.0], expected_mean_hours=2.0, label="x")
    plots.checkpoint_curve(work_hours=30, mtte_hours=8, cost_hours=0.01, restart_hours=0.02,
                           chosen_interval_hours=0.8, daly_interval_hours=0.4, guidance_hours=(1, 5),
                           simulated=[plots.SimulatedPoint(0.4, 32, 31, 33)])
    plots.compare_bars([plots.Bar("a", 5, 4, 6, 6.5, True), plots.Bar("b", 7, 6, 8, 8.5)], title="t")
    unit = re.compile(r"\((h|min|days|count|ECDF)[,)]")
    for axes in seen:
        for title, xlabel, ylabel, suptitle in axes:
            assert title or suptitle
            assert xlabel and ylabel
            assert unit.search(xlabel), xlabel
    assert all(unit.search(y) for axes in seen[:2] for _, _, y, _ in axes)


def test_text_from_files_is_escaped(tmp_path: Path) -> None:
    hostile = "<script>alert('x')</script> & \"quotes\""
    src = (WORKLOADS / "4_catdog.yaml").read_text()
    src = re.sub(r"^source:.*$", f"source: {json.dumps(hostile)}", src, flags=re.M)
    src = src.replace("resumable: true", f"resumable: true\nnotes: {json.dumps(hostile)}")
    path = tmp_path / "hostile.yaml"
    path.write_text(src)
    rep = build_report(load_workload_or_profile(path), "chtc", replications=1, plot_replications=2,
                       checkpoint_points=False)
    assert "<script" not in rep.html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in rep.html


def test_html_builders_escape_and_keep_safe_fragments() -> None:
    assert h.esc("<a href='x'>&</a>") == "&lt;a href=&#x27;x&#x27;&gt;&amp;&lt;/a&gt;"
    assert h.esc(h.Safe("<b>ok</b>")) == "<b>ok</b>"
    assert h.tag("td", "<i>", class_="num") == '<td class="num">&lt;i&gt;</td>'
    t = h.table(["a<b"], [["1 & 2"]], numeric=(0,))
    assert "a&lt;b" in t and "1 &amp; 2" in t and 'class="num"' in t


def test_time_to_results_extends_recommends_replications(checkpointing: Report) -> None:
    """The figure's replications start with the seeds recommend chose by: same first value(s)."""
    rec = checkpointing.recommendation
    dist = checkpointing.time_to_results
    assert dist is not None
    assert dist.replications == 4 and dist.held_runs == 0 and len(dist.values_hours) == 4
    assert dist.values_hours[0] == pytest.approx(rec.expected["time_to_results_hours"]["mean"], rel=1e-9)
    d = checkpointing.to_dict()["time_to_results"]
    assert d["mean"] == pytest.approx(statistics.fmean(dist.values_hours))


def test_checkpoint_section_marks_the_chosen_interval(checkpointing: Report) -> None:
    rec = checkpointing.recommendation
    ck = checkpointing.checkpoint
    assert rec.request is not None and rec.request.checkpoint_interval_minutes is not None
    assert ck["chosen_interval_hours"] * 60 == pytest.approx(rec.request.checkpoint_interval_minutes, abs=1)
    assert ck["daly_interval_hours"] == pytest.approx(rec.checkpoint["daly"]["daly_interval_hours"])
    assert not ck["hypothetical"]
    alt = [i["alt"] for i in Page(checkpointing.html).images if "checkpoint interval" in str(i["alt"])]
    assert alt and f"recommended {rec.request.checkpoint_interval_minutes:.0f} min" in str(alt[0])


def test_simulated_checkpoint_points_follow_the_in_place_curve(checkpointing: Report) -> None:
    ck = checkpointing.checkpoint
    assert len(ck["simulated"]) >= 4
    assert ck["gap_hours"] > 0 and ck["delay_hours"] > 0      # CHTC: 3.5 s gap, 78 s delay
    for p in ck["simulated"]:
        theory = in_place_expected_wall_time(ck["work_hours"], p["interval_hours"], ck["cost_hours"],
                                             ck["restart_hours"], ck["gap_hours"], ck["mtte_hours"],
                                             ck["delay_hours"])
        assert abs(p["mean_hours"] - theory) / theory < 0.08, (p, theory)


def test_verdict_shows_the_campaigns_gpu_hours_and_pool_share(checkpointing: Report) -> None:
    e = checkpointing.recommendation.expected
    assert 0 < e["pool_gpu_share"] <= 1
    assert f"{e['gpu_hours']:,.0f}" in checkpointing.html
    assert h.esc(f"it held {e['pool_gpu_share']:.1%} of the pool's GPUs on average") in checkpointing.html


def test_in_place_optimum_minimises_the_in_place_curve() -> None:
    tau = plots.in_place_optimum(40, 0.01, 0.02, 0.001, 6.0, 0.02)
    best = in_place_expected_wall_time(40, tau, 0.01, 0.02, 0.001, 6.0, 0.02)
    for other in (tau * 0.7, tau * 1.4, daly_interval(0.01, 6.0) * 3):
        assert best <= in_place_expected_wall_time(40, other, 0.01, 0.02, 0.001, 6.0, 0.02)
    # an in-place restart costs little: without delay or gap its optimum is near Daly's
    near = plots.in_place_optimum(40, 0.01, 0.0, 0.0, 6.0)
    assert near == pytest.approx(daly_interval(0.01, 6.0), rel=0.1)
    assert daly_wall_time(40, 0.5, 0.01, 0.02, 6.0) < in_place_expected_wall_time(40, 0.5, 0.01, 0.02, 0.001, 6.0, 0.02)


def test_report_draws_the_recommendations_interval_curve(checkpointing: Report) -> None:
    curve = [r for r in checkpointing.recommendation.checkpoint.get("interval_curve", [])
             if r["interval_minutes"]]
    assert len(curve) > 1, "the recommendation simulated several intervals"
    alt = next(str(i["alt"]) for i in Page(checkpointing.html).images
               if "checkpoint interval" in str(i["alt"]))
    assert f"simulated time to results at {len(curve)} intervals" in alt
    for r in curve:
        assert f"{r['interval_minutes']:.0f} min: {r['mean_hours']:.3g} h" in alt
    assert "the campaign's time to results simulated for the recommended request" in checkpointing.html


def test_no_checkpoint_request_shows_the_backfill_curve_as_hypothetical(catdog: Report) -> None:
    request = catdog.recommendation.request
    assert request is not None and request.checkpoint_interval_minutes is None
    assert catdog.checkpoint["hypothetical"] is True
    assert catdog.checkpoint["chosen_interval_hours"] is None
    # The numbers are the recommendation's own (Daly's with backfill), not recomputed by the report.
    daly = catdog.recommendation.daly_with_backfill
    assert daly is not None
    assert catdog.checkpoint["daly_interval_hours"] == daly["daly_interval_hours"]
    assert catdog.checkpoint["mtte_hours"] == daly["mean_time_to_eviction_hours"]
    assert "if the job ran as backfill" in catdog.html


def test_backfill_whatif_flips_is_resumable(checkpointing: Report, catdog: Report) -> None:
    for rep in (checkpointing, catdog):
        w = rep.whatif("backfill")
        assert w is not None and w.variant is not None and w.variant.outcome is not None
        assert w.variant.candidate.is_resumable != w.chosen.candidate.is_resumable
        assert w.variant.candidate.min_capability == w.chosen.candidate.min_capability
        assert math.isfinite(w.variant.outcome.time_to_results_hours["mean"])
    assert 'id="whatif"' in catdog.html and "Every candidate recommend considered" in catdog.html


def test_busier_pool_whatif_runs_the_same_request(checkpointing: Report) -> None:
    w = checkpointing.whatif("busier")
    assert w is not None and w.variant is not None and w.variant.outcome is not None
    assert w.variant.candidate == w.chosen.candidate
    assert "busier pool (80%)" == w.name
    assert "what if: busier pool (80%)" in checkpointing.html


def test_a_profile_gets_predicted_step_times_in_the_fit_table(tmp_path: Path) -> None:
    from test_predict_profiles import make_profile

    path = tmp_path / "train.json"
    path.write_text(json.dumps(make_profile()))
    rep = build_report(load_workload_or_profile(path, tasks=4), "chtc", replications=1,
                       plot_replications=2, checkpoint_points=False)
    assert rep.sections == list(SECTION_IDS)
    assert "<th class=\"num nowrap\">step (s)</th>" in rep.html
    assert "measured host peak" in rep.html          # request_memory sized from the profile
    assert "roofline" in rep.html                     # the predictor's limits among the assumptions


def test_not_a_fit_page_has_reasons_alternatives_and_no_submit_file(not_a_fit: Report) -> None:
    page = Page(not_a_fit.html)
    assert not_a_fit.verdict == "not-a-fit" and not_a_fit.exit_code == 1
    assert page.sections == ["verdict", "fit-table", "assumptions"]
    assert page.pre == [] and "submit-file" not in not_a_fit.html
    assert "What to do instead" in not_a_fit.html and "No submit file" in not_a_fit.html
    for reason in not_a_fit.recommendation.reasons[:3]:
        assert h.esc(reason) in not_a_fit.html


def test_write_report_is_atomic_and_readable(catdog: Report, tmp_path: Path) -> None:
    out = write_report(catdog, tmp_path / "sub" / "consult.html")
    assert out.read_text() == catdog.html
    assert out.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in out.parent.iterdir()] == ["consult.html"]   # no temporary left behind


def test_cli_writes_the_page_and_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "consult.html"
    code = main(["report", str(WORKLOADS / "4_catdog.yaml"), "-o", str(out), "--replications", "1",
                 "--plot-replications", "3", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    data = json.loads(captured.out)
    assert data["output"] == str(out) and data["verdict"] == "htc-able"
    assert data["sections"] == list(SECTION_IDS)
    assert data["time_to_results"]["replications"] == 3
    assert out.exists() and "advisor report" in out.read_text()
    assert "--plot-replications 3" in out.read_text()   # the command that reproduces it


def test_cli_not_a_fit_exits_1_and_still_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "consult.html"
    code = main(["report", str(WORKLOADS / "3_foundation_model.yaml"), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert out.exists() and "not-a-fit" in captured.out
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("argv, field", [
    (["-o", "consult.pdf"], "-o"),
    (["-o", "x.html", "--plot-replications", "1"], "--plot-replications"),
])
def test_cli_bad_input_exits_2(argv: list[str], field: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a if not a.endswith((".html", ".pdf")) else str(tmp_path / a) for a in argv]
    code = main(["report", str(WORKLOADS / "4_catdog.yaml"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert field in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_cli_requires_an_output_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", str(WORKLOADS / "4_catdog.yaml")])
    assert exc.value.code == 2
    assert "-o" in capsys.readouterr().err
