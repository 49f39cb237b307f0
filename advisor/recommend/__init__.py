"""What to put in the submit file: the request, the tier, backfill, the checkpoint interval,
items per job, and the expected time-to-results, chosen by simulating every candidate.

`recommend(workload, pool_ref)` runs three stages, each a module of its own:

1. plan (`advisor.recommend.plan`): assess the workload on the pool, size the request from the
   measurements (`sizing`) and enumerate the candidates to simulate (`candidates`);
2. evaluate (`advisor.recommend.simulate`): simulate each candidate on the pool with common random
   numbers (`evaluate`), then the refinements around the best;
3. explain (`advisor.recommend.explain`): choose, build the request, the reasons, the checkpoint
   story and the assumptions.

It returns every candidate with the chosen one marked, the objective and the defaults it assumed.
`write_job_files` turns the choice into an HTCondor submit file (with the checkpoint wrapper), a
Slurm script or a Kubernetes Job.
"""

from __future__ import annotations

from pathlib import Path

from advisor.recommend.explain import Recommendation as Recommendation
from advisor.recommend.explain import checkpoint_story as _checkpoint_story
from advisor.recommend.explain import explain
from advisor.recommend.explain import task_command as task_command
from advisor.recommend.jobfiles import write_job_files as write_job_files
from advisor.recommend.plan import DEFAULT_BACKGROUND_LOAD as DEFAULT_BACKGROUND_LOAD
from advisor.recommend.plan import OBJECTIVES as OBJECTIVES
from advisor.recommend.plan import make_plan
from advisor.recommend.simulate import Evaluated as Evaluated
from advisor.recommend.simulate import Progress, evaluate_plan
from advisor.workload import Workload
from simulator.catalog import Catalog

__all__ = ["DEFAULT_BACKGROUND_LOAD", "OBJECTIVES", "Evaluated", "Recommendation", "_checkpoint_story",
           "recommend", "task_command", "write_job_files"]


def recommend(workload: Workload, pool_ref: str | Path, *, catalog: Catalog | None = None,
              objective: str = "mean", replications: int = 4, seed: int = 1,
              background_load: float = DEFAULT_BACKGROUND_LOAD,
              progress: Progress | None = None, scheduler: str | None = None) -> Recommendation:
    """Plan the candidates, simulate them (on the Dask scheduler at `scheduler` when given),
    explain the best (see the module's docstring). `progress(done, total, label)` follows the
    simulations; `total` is `plan.progress_total`."""
    plan = make_plan(workload, pool_ref, catalog=catalog, objective=objective,
                     replications=replications, seed=seed, background_load=background_load)
    return explain(plan, evaluate_plan(plan, progress, scheduler))
