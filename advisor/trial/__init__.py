"""`advisor trial`: one job of a submit file run on this machine the way an execute point runs it
(sandbox, exit-85 restarts, evictions, request limits, output checks). See runner.py."""

from advisor.trial.runner import CHECKPOINT_INTERVAL_ENV, Trial, TrialOptions, run_trial

__all__ = ["CHECKPOINT_INTERVAL_ENV", "Trial", "TrialOptions", "run_trial"]
