"""The explain stage of `recommend`: from the simulated candidates to the recommendation.

`explain(plan, evaluated)` chooses the best candidate (`simulate.choose`), turns it into the
request (`Request`), the job (`jobfiles.plan_job`) and the expected time-to-results, and says why:
a reason per request value, the verdict that follows from the chosen plan, the checkpoint story
(Daly's optimum against the chosen interval and the pool's guidance, the simulated interval
curve with the trade-off in time to results and lost work) and every assumption. An interval
outside the pool's guidance is recommended only when it beats every candidate inside it beyond
the noise (`within_guidance`); the story then carries that figure. The
result, `Recommendation`, is data: whoever shows it (the report) reads the numbers from it and
simulates more of the same from its `plan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.assess import Assessment
from advisor.check.secrets import scrub_args
from advisor.emit.quote import shell_command
from advisor.recommend.candidates import Candidate, Space, describe_daly, in_guidance
from advisor.recommend.evaluate import MAX_SIM_JOBS
from advisor.recommend.jobfiles import plan_job
from advisor.recommend.plan import Plan
from advisor.recommend.simulate import Evaluated, choose
from advisor.recommend.sizing import HOST_HEADROOM, Sizing
from advisor.request import JobSpec, Request
from advisor.units import fmt_hours
from advisor.workload import Workload
from simulator.pool import Pool


@dataclass
class Recommendation:
    workload: str
    pool: str
    verdict: str
    reasons: list[str]
    request: Request | None
    job: JobSpec | None
    expected: dict[str, Any]
    candidates: list[Evaluated]
    objective: str
    assumed: list[str]
    checkpoint: dict[str, Any]       # the checkpoint story: interval, costs, Daly's numbers, text
    assessment: Assessment
    files: list[str] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    data_dir: str | None = None     # the data the profiled script read (packed as an input)
    data_plan: dict[str, Any] = field(default_factory=dict)   # inputs, outputs, quotas, GPU-hours
    # What the candidates were simulated under (for reports that simulate more of the same, with
    # `plan.plan_scenario(rec.plan, candidate)`):
    plan: Plan | None = field(default=None, repr=False)
    # Daly's numbers had the chosen request accepted backfill (its floor, evictable slots): the
    # checkpoint trade-off a request that does not checkpoint would face there; None when the pool
    # has no backfill or nothing evicts there.
    daly_with_backfill: dict[str, Any] | None = None

    @property
    def chosen(self) -> Evaluated | None:
        return next((e for e in self.candidates if e.chosen), None)

    @property
    def sizing(self) -> Sizing | None:
        return None if self.plan is None else self.plan.sizing

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload, "pool": self.pool, "verdict": self.verdict,
            "reasons": self.reasons, "advice": self.assessment.advice,
            "request": None if self.request is None else self.request.to_dict(),
            "jobs": None if self.job is None else self.job.queue,
            "items_per_job": None if self.job is None else self.job.items_per_job,
            "expected": self.expected, "objective": self.objective,
            "candidates": [e.to_dict() for e in self.candidates],
            "checkpoint": self.checkpoint, "assumed": self.assumed, "why": self.why,
            "files": self.files, "data_plan": self.data_plan,
            "assess_verdict": self.assessment.verdict,
            "verdict_differs_from_assess": self.why.get("verdict_differs_from_assess"),
        }


def explain(plan: Plan, evaluated: list[Evaluated]) -> Recommendation:
    """The recommendation for the plan, given every candidate simulated (marks the chosen one)."""
    a = plan.assessment
    assumed = list(plan.assumed)
    empty = Recommendation(plan.workload.name, plan.pool.name, a.verdict, a.reasons, None, None, {},
                           evaluated, plan.objective, assumed, {}, a, plan=plan)
    if not plan.simulates:
        return empty
    best = choose(evaluated, plan.objective)
    if best is None or best.outcome is None:
        empty.reasons = a.reasons + ["No candidate finished all its jobs in the simulation."]
        return empty
    best, guidance_figure = within_guidance(best, evaluated, plan)
    assert best.outcome is not None
    space, sizing, pool, workload = plan.space, plan.sizing, plan.pool, plan.workload
    assert space is not None and sizing is not None
    best.chosen = True
    c = best.candidate
    why = dict(sizing.reasons)
    if c.min_capability and c.min_capability > (sizing.gate_capability or 0):
        why["gpus_minimum_capability"] = _why_floor(plan, c)
    request = chosen_request(plan, c)
    jobs = math.ceil(workload.tasks / c.items_per_job)
    considered = space.considered(c.min_capability, c.is_resumable)
    slowest = max(space.job_hours(o, c.items_per_job) for o in considered)
    tier = pool.tier(c.job_length) if c.job_length else None
    if c.job_length:
        # the tier clock runs across exit-85 restarts: only a vacated-and-requeued job's runs are short
        per_run = bool(c.checkpoint_interval_hours) and (
            pool.tier_clock == "run" or (c.is_resumable and pool.resumable_at_tier_limit == "vacate"))
        why["job_length"] = (f"runs of up to {fmt_hours(c.checkpoint_interval_hours or slowest if per_run else slowest)}"
                             f" fit the {c.job_length} tier ({fmt_hours(tier.max_hours) if tier else '?'})"
                             + ("; at the limit the +is_resumable job is vacated and requeued from its "
                                "last checkpoint" if per_run and pool.tier_clock == "claim"
                                and slowest > (tier.max_hours if tier else 0) else ""))
    if c.is_resumable:
        why["is_resumable"] = "backfill on research groups' GPUs finished sooner in the simulation"
    job, data = plan_job(workload, pool, request, sizing, c.items_per_job, jobs, slowest, tier, why)
    verdict, reasons = _verdict(a, c)
    if verdict != a.verdict:
        why["verdict_differs_from_assess"] = verdict_fact(a, c, slowest, tier)
        reasons[0] = ("The simulation found a plan without checkpointing, so the verdict differs "
                      f"from `advisor assess`: {why['verdict_differs_from_assess']}.")
    reasons += [f"Talk to a facilitator: {f}." for f in data.facilitator]
    ttr = best.outcome.time_to_results_hours
    expected = {"time_to_results_hours": {"mean": ttr["mean"], "p90": ttr["p90"],
                                          "ci95_low": ttr["ci95_low"], "ci95_high": ttr["ci95_high"]},
                "jobs": jobs, "job_hours_on_slowest_gpu": slowest,
                "goodput_fraction": best.outcome.goodput_fraction, "gpu_hours": float(f"{data.gpu_hours:.4g}"),
                "evictions_per_job": best.outcome.evictions_per_task,
                # the share of all the pool's GPUs the campaign held on average (simulated, with
                # other users' load, fair share and the tier's per-user limit)
                "pool_gpu_share": best.outcome.gpu_share}
    if best.outcome.scale > jobs / min(jobs, MAX_SIM_JOBS) * 1.000001:
        assumed.append(f"a slice of the campaign was simulated ({best.outcome.scale:.3g} times less "
                       "work: fewer jobs and checkpoint intervals) and the time scaled")
    elif jobs > MAX_SIM_JOBS:
        assumed.append(f"{MAX_SIM_JOBS:,} of the {jobs:,} jobs were simulated and the time scaled "
                       "(throughput-bound regime)")
    assumed.append(f"request_memory has {HOST_HEADROOM:.0%} headroom over the measured host peak"
                   if workload.profile_data is not None else "memory, disk and GPU memory as stated in the workload")
    backfill = any(s.backfill_only for s in pool.slots)
    return Recommendation(workload.name, pool.name, verdict, reasons, request, job, expected,
                          evaluated, plan.objective, assumed,
                          checkpoint_story(space, c, pool, evaluated, guidance_figure), a,
                          why=why, command=task_command(workload),
                          data_dir=_profiled_data_path(workload), data_plan=data.to_dict(), plan=plan,
                          daly_with_backfill=describe_daly(space, c.min_capability, True)
                          if backfill else None)


def chosen_request(plan: Plan, c: Candidate) -> Request:
    """The submit-file request for candidate `c`: the sized resources and the candidate's policy."""
    sizing = plan.sizing
    assert sizing is not None
    cap = max(c.min_capability, sizing.gate_capability or 0.0) or None
    return Request(
        request_cpus=sizing.request_cpus, request_memory_mb=sizing.request_memory_mb,
        request_disk_mb=sizing.request_disk_mb, request_gpus=max(1, plan.workload.per_task.gpus),
        gpus_minimum_capability=cap, gpus_minimum_memory_mb=sizing.gpus_minimum_memory_mb,
        job_length=c.job_length, is_resumable=c.is_resumable,
        checkpoint_interval_minutes=None if c.checkpoint_interval_hours is None
        else round(c.checkpoint_interval_hours * 60),
    )


def _why_floor(plan: Plan, c: Candidate) -> str:
    """Why the chosen capability floor is above the gate the request needs."""
    gate = (plan.sizing.gate_capability if plan.sizing else None) or 0
    fits = [o for o in plan.usable if o.capability >= gate]
    kept = sum(o.shared + o.backfill for o in fits if o.capability >= c.min_capability)
    total = sum(o.shared + o.backfill for o in fits)
    return (f"the simulation finished sooner when slower GPUs (below "
            f"{c.min_capability:g}) were left out, beyond the noise of the "
            f"simulation; it costs {total - kept} of the {total} GPUs the job "
            f"could run on (floor {gate:g})")


def _verdict(a: Assessment, c: Candidate) -> tuple[str, list[str]]:
    """The assessment's verdict, corrected by the plan the simulation chose."""
    verdict, reasons = a.verdict, list(a.reasons)
    if verdict == "htc-able-with-checkpointing" and c.checkpoint_interval_hours is None:
        verdict = "htc-able"
        reasons.insert(0, "The simulation found a plan without checkpointing.")
    elif verdict == "htc-able" and c.checkpoint_interval_hours is not None and not a.facts.get("batching"):
        reasons.insert(0, "Checkpointing is optional here, but it finished sooner in the simulation "
                       "(backfill evictions then lose little work).")
    return verdict, reasons


def verdict_fact(a: Assessment, c: Candidate, slowest: float, tier: Any) -> str:
    """The simulated fact that turned the assessment's verdict into the recommendation's: the
    GPUs the chosen plan is restricted to, the tier every job then fits (its slowest job's hours)
    and the time to results that made it the choice."""
    where = (f"restricted to capability {c.min_capability:g} and above" if c.min_capability
             else "on the GPUs it may use")
    fits = (f"every job fits the {fmt_hours(tier.max_hours)} {tier.name} tier "
            f"({fmt_hours(slowest)} on the slowest of them)" if tier is not None
            else f"every job takes at most {fmt_hours(slowest)}")
    return (f"assess said {a.verdict}; {where} {fits}, so no job needs a checkpoint to finish, "
            f"and this plan ({c.label}) finished soonest in the simulation")


def _ttr(e: Evaluated) -> dict[str, float]:
    assert e.outcome is not None
    return e.outcome.time_to_results_hours


def within_guidance(best: Evaluated, evaluated: list[Evaluated],
                    plan: Plan) -> tuple[Evaluated, dict[str, Any] | None]:
    """`best` when its checkpoint interval lies in the pool's guidance (or there is none).
    Otherwise `best` only if it beats the best candidate inside the guidance beyond the noise
    (its 95% interval of the mean time to results lies wholly below that candidate's), with the
    figure that says so; else the best candidate inside the guidance. Candidates without
    checkpoints count as inside."""
    guidance = plan.pool.checkpoint_guidance
    if in_guidance(best.candidate.checkpoint_interval_hours, guidance):
        return best, None
    assert guidance is not None
    inside = choose([e for e in evaluated
                     if in_guidance(e.candidate.checkpoint_interval_hours, guidance)], plan.objective)
    if inside is None:
        return best, {"outside_guidance": True, "no_candidate_inside": True}
    out, ins = _ttr(best), _ttr(inside)
    figure = {"outside_guidance": True,
              "interval_minutes": round((best.candidate.checkpoint_interval_hours or 0) * 60),
              "time_to_results_hours": {k: out[k] for k in ("mean", "ci95_low", "ci95_high")},
              "best_inside": inside.candidate.label,
              "best_inside_time_to_results_hours": {k: ins[k] for k in ("mean", "ci95_low", "ci95_high")},
              "beats_beyond_noise": out["ci95_high"] < ins["ci95_low"]}
    if figure["beats_beyond_noise"]:
        return best, figure
    return inside, {**figure, "recommended_inside": True}


def interval_curve(evaluated: list[Evaluated], c: Candidate) -> list[dict[str, Any]]:
    """Time to results and lost work against the checkpoint interval, for the chosen candidate's
    policy (floor, backfill, items per job), every interval simulated (common random numbers)."""
    rows = []
    for e in evaluated:
        x = e.candidate
        if (x.min_capability, x.is_resumable, x.items_per_job, x.cpu_ok) != \
                (c.min_capability, c.is_resumable, c.items_per_job, c.cpu_ok) or e.outcome is None:
            continue
        t = e.outcome.time_to_results_hours
        rows.append({"interval_minutes": None if x.checkpoint_interval_hours is None
                     else round(x.checkpoint_interval_hours * 60, 1),
                     "job_length": x.job_length, "mean_hours": t["mean"],
                     "ci95_low_hours": t["ci95_low"], "ci95_high_hours": t["ci95_high"],
                     "lost_fraction": e.outcome.lost_fraction,
                     "goodput_fraction": e.outcome.goodput_fraction, "chosen": e.chosen})
    rows.sort(key=lambda r: math.inf if r["interval_minutes"] is None else r["interval_minutes"])
    return rows


def _pct(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:.0%}"


def _trade_off(curve: list[dict[str, Any]]) -> str:
    """The trade-off in words: the shortest and the longest interval simulated."""
    ck = [r for r in curve if r["interval_minutes"] is not None and math.isfinite(r["mean_hours"])]
    if len(ck) < 2:
        return ""
    lo, hi = ck[0], ck[-1]
    return (f" Trade-off simulated for this request: every {fmt_hours(lo['interval_minutes'] / 60)}, "
            f"{fmt_hours(lo['mean_hours'])} to results with {_pct(lo['lost_fraction'])} of the GPU time "
            f"lost to evictions; every {fmt_hours(hi['interval_minutes'] / 60)}, "
            f"{fmt_hours(hi['mean_hours'])} with {_pct(hi['lost_fraction'])} lost. Shorter intervals "
            "lose less work at an eviction but spend more time writing and restarting.")


def _figure_text(figure: dict[str, Any] | None, pool: Pool) -> str:
    if not figure or figure.get("no_candidate_inside"):
        return ""
    g = pool.checkpoint_guidance
    advised = f"{pool.possessive} {g.range_text} guidance" if g else "the guidance"
    out, ins = figure["time_to_results_hours"], figure["best_inside_time_to_results_hours"]
    said = (f"{fmt_hours(out['mean'])} (95% CI {fmt_hours(out['ci95_low'])}–{fmt_hours(out['ci95_high'])}) "
            f"against {fmt_hours(ins['mean'])} (95% CI {fmt_hours(ins['ci95_low'])}–"
            f"{fmt_hours(ins['ci95_high'])}) for the best candidate within {advised} "
            f"({figure['best_inside']})")
    if figure.get("recommended_inside"):
        return (f" A {figure['interval_minutes']} min interval, outside {advised}, did not finish "
                f"sooner beyond the noise: {said}; so the interval stays within the guidance.")
    return f" Outside {advised}, justified by the simulation beyond the noise: {said}."


def _guidance_disagrees(space: Space, c: Candidate, pool: Pool,
                        curve: list[dict[str, Any]]) -> dict[str, Any] | None:
    """When the model says "no checkpoint" for jobs that run longer than the pool's guidance
    advises between checkpoints: the guidance, the figure (what the best interval within it costs
    in the simulation) and why a facilitator would still checkpoint."""
    g = pool.checkpoint_guidance
    if g is None or not space.workload.can_checkpoint:
        return None
    runs = [space.job_hours(o, c.items_per_job)
            for o in space.considered(c.min_capability, c.is_resumable)]
    if not runs or max(runs) <= g.max_hours:
        return None
    none = next((r for r in curve if r["interval_minutes"] is None and r["chosen"]), None)
    inside = [r for r in curve if r["interval_minutes"] is not None
              and g.min_hours * 60 <= r["interval_minutes"] <= g.max_hours * 60
              and math.isfinite(r["mean_hours"])]
    advised = f"{pool.possessive} guidance is to checkpoint every {g.range_text}"
    out: dict[str, Any] = {"longest_run_hours": round(max(runs), 2), "guidance_hours":
                           [g.min_hours, g.max_hours]}
    text = (f" The model and {pool.possessive} guidance differ: runs of up to "
            f"{fmt_hours(max(runs))} are longer than {g.max_hours:g} h, and {advised}")
    if none is not None and inside:
        best = min(inside, key=lambda r: r["mean_hours"])
        cost = best["mean_hours"] - none["mean_hours"]
        beyond = best["ci95_low_hours"] > none["ci95_high_hours"]
        out.update({"best_inside_interval_minutes": best["interval_minutes"],
                    "cost_hours": round(cost, 3), "cost_beyond_noise": beyond})
        text += (f"; every {fmt_hours(best['interval_minutes'] / 60)} costs "
                 f"{'+' if cost >= 0 else '−'}{fmt_hours(abs(cost))} here ({fmt_hours(best['mean_hours'])} "
                 f"against {fmt_hours(none['mean_hours'])}, "
                 + ("beyond the noise" if beyond else "within the noise") + ")")
    out["text"] = (text + ". The simulation has no machine failures or maintenance drains, which "
                   "would restart such a job from zero: checkpointing within the guidance is cheap "
                   "insurance if the program can resume.")
    return out


def checkpoint_story(space: Space, c: Candidate, pool: Pool, evaluated: list[Evaluated] | None = None,
                     guidance_figure: dict[str, Any] | None = None) -> dict[str, Any]:
    """The chosen checkpoint interval, its costs, Daly's numbers where the slots evict, the
    simulated interval curve and the trade-off, and why."""
    story: dict[str, Any] = {"interval_minutes": None if c.checkpoint_interval_hours is None
                             else round(c.checkpoint_interval_hours * 60),
                             "cost_seconds": round(space.costs.cost_hours * 3600),
                             "restart_seconds": round(space.costs.restart_hours * 3600)}
    daly = describe_daly(space, c.min_capability, c.is_resumable)
    if daly:
        story["daly"] = daly
    guidance = pool.checkpoint_guidance
    curve = interval_curve(evaluated or [], c)
    if len(curve) > 1:
        story["interval_curve"] = curve
    if guidance_figure:
        story["guidance_figure"] = guidance_figure
    if c.checkpoint_interval_hours is None:
        insurance = _guidance_disagrees(space, c, pool, curve)
        if insurance:
            story["guidance_disagrees"] = insurance
        story["explanation"] = ("No checkpointing: every job finishes within its tier "
                                + ("and evictions cost less than checkpointing would."
                                   if daly else "and the slots it uses are not preempted.")
                                + _figure_text(guidance_figure, pool)
                                + (insurance["text"] if insurance else "") + _trade_off(curve))
        return story
    tau = c.checkpoint_interval_hours
    text = f"Checkpoint every {fmt_hours(tau)}."
    if daly:
        text += (f" Daly's optimum for a mean time to eviction of {daly['mean_time_to_eviction_hours']:g} h "
                 f"and a {daly['checkpoint_cost_hours'] * 3600:.0f} s checkpoint is "
                 f"{fmt_hours(daly['daly_interval_hours'])}; the simulation under the tier limits "
                 f"chose {fmt_hours(tau)}.")
    else:
        text += " No evictions on the slots it uses: the interval only has to keep each run inside its tier."
    if guidance is not None:
        lo, hi = guidance.min_hours, guidance.max_hours
        advised = f"{pool.possessive} {guidance.range_text} guidance"
        if tau < lo:
            text += (f" That is shorter than {advised}: the checkpoint is cheap "
                     f"({space.costs.cost_hours * 3600:.0f} s), so frequent checkpoints cost little "
                     "while evictions are frequent.")
        elif tau > hi:
            text += (f" That is longer than {advised}: "
                     + ("evictions are rare enough that each checkpoint mostly costs time"
                        if daly else "nothing evicts these jobs, so each checkpoint only costs time")
                     + (f"; keep it under the {guidance.hard_max_hours:g} h maximum."
                        if guidance.hard_max_hours is not None else "."))
        else:
            text += f" That lies within {advised}."
    text += _figure_text(guidance_figure, pool) + _trade_off(curve)
    story["explanation"] = text
    return story


def _profiled_data_path(workload: Workload) -> str | None:
    data = (workload.profile_data or {}).get("data") or {}
    return str(data["path"]) if data.get("path") else None


def task_command(workload: Workload) -> str | None:
    """For a profiled script: the command that runs it as profiled."""
    prof = workload.profile_data
    if prof is None or prof.get("mode", "torch") != "torch":
        return None
    script = Path(str(prof.get("script", "train.py"))).name
    args, _found = scrub_args([str(a) for a in (prof.get("args") or [])])  # also older profiles
    data = str((prof.get("data") or {}).get("path") or "")
    if data and Path(data).name and Path(data).name != data:
        # The job unpacks the data archive in its sandbox: the script reads it by its relative name.
        local = Path(data).name
        args = [local if a == data else a[:-len(data)] + local if a.endswith("=" + data) else a
                for a in args]
    return "python3 " + shell_command([script, *args])
