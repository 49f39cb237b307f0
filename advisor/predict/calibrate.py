"""Calibrating the roofline's efficiencies on the GPU a profile was measured on.

A profile measured on a CUDA GPU that the catalog knows gives one observation: the measured
compute time per step (median step time minus median data wait). The roofline with default
efficiencies predicts that GPU's step; their ratio becomes a scale on every GPU's prediction:

* roofline-bound on the measuring GPU: `time_scale = measured / predicted` (all op classes'
  efficiencies scaled together — one step time cannot separate them);
* launch-overhead-bound there: the host dispatch cost per kernel is scaled instead.

The factor is clamped to [0.1, 10]; outside that the measurement and the profile's counts
disagree too much to trust (said in the output). A profile measured on a CPU (or on a GPU not
in the catalog) keeps the documented defaults of `roofline.py`, and the output says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.errors import ConfigError
from advisor.predict.profile_input import ProfileView
from advisor.predict.roofline import DEFAULT_EFFICIENCIES, Efficiencies, roofline
from simulator.catalog import Catalog, GpuSpec

SCALE_MIN, SCALE_MAX = 0.1, 10.0


@dataclass(frozen=True)
class Calibration:
    efficiencies: Efficiencies
    calibrated: bool
    measured_gpu: GpuSpec | None
    factor: float                  # measured / predicted on the measuring GPU (1.0 if none)
    applied_to: str                # "roofline", "overhead" or "none"
    note: str


def resolve_gpu(catalog: Catalog, name: str | None) -> GpuSpec | None:
    """The catalog entry for a device name as torch reports it ("NVIDIA A100-SXM4-80GB")."""
    if not name:
        return None
    for candidate in (name, name.removeprefix("NVIDIA ").strip()):
        try:
            return catalog.get(candidate)
        except ConfigError:
            continue
    return None


def calibrate(view: ProfileView, catalog: Catalog, base: Efficiencies = DEFAULT_EFFICIENCIES) -> Calibration:
    if not view.measured_on_gpu:
        return Calibration(base, False, None, 1.0, "none",
                           f"measured on a {view.device_kind.upper()}: not calibrated; documented default "
                           "efficiencies per op class are used (advisor/predict/roofline.py)")
    name = view.device_name or ""
    gpu = resolve_gpu(catalog, name)
    if gpu is None:
        return Calibration(base, False, None, 1.0, "none",
                           f"measured on {name or 'an unnamed GPU'}, which is not in the catalog: not "
                           "calibrated; documented default efficiencies are used")
    measured = view.step_time_s - view.data_wait_s
    predicted = roofline(view, gpu, base)
    if measured <= 0 or predicted.step_s <= 0:
        return Calibration(base, False, gpu, 1.0, "none",
                           f"measured on {gpu.name} but no compute time could be separated from the data "
                           "wait: not calibrated")
    if predicted.bound == "overhead":
        factor = measured / predicted.dispatch_floor_s
        applied = "overhead"
    else:
        factor = measured / predicted.gpu_time_s
        applied = "roofline"
    clamped = min(max(factor, SCALE_MIN), SCALE_MAX)
    note = (f"calibrated on {gpu.name} (where it was measured): measured compute "
            f"{measured * 1e3:.3g} ms/step vs {predicted.step_s * 1e3:.3g} ms predicted with default "
            f"efficiencies → {applied} times × {clamped:.3g}")
    if clamped != factor:
        note += f" (clamped from {factor:.3g}: the profile's counts and timing disagree)"
    eff = (base.scaled(time_scale=clamped, source=note) if applied == "roofline"
           else base.scaled(dispatch_scale=clamped, source=note))
    return Calibration(eff, True, gpu, clamped, applied, note)
