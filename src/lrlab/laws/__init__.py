"""Loss-curve laws: fit the momentum law and the multi-power law to observed curves, predict the loss of any
schedule, and choose the schedule with the lowest predicted final loss. numpy/scipy only (no torch).

    from lrlab.laws import load_curve, MultiPowerLaw, fit, save_fit, load_fit
    f = fit(MultiPowerLaw(), [load_curve("run.csv", schedule="cosine:peak=3e-4,warmup=2000,total=24000")])
    f.band(lr, steps)          # (pred, lo, hi)
"""

from lrlab.laws.curves import Curve, load_curve, load_curves
from lrlab.laws.fitting import Fit, curve_metrics, fit
from lrlab.laws.io import load_fit, save_fit
from lrlab.laws.law import Law, Param
from lrlab.laws.momentum import MomentumFloorLaw, MomentumLaw, MomentumSizeLaw
from lrlab.laws.multipower import MultiPowerLaw, QAreaExpLaw, SaturatedDropLaw
from lrlab.laws.optimize import optimize, optimize_cosine, optimize_free, optimize_wsd
from lrlab.laws.registry import LAWS, make_law

__all__ = [
    "LAWS",
    "Curve",
    "Fit",
    "Law",
    "MomentumFloorLaw",
    "MomentumLaw",
    "MomentumSizeLaw",
    "MultiPowerLaw",
    "Param",
    "QAreaExpLaw",
    "SaturatedDropLaw",
    "curve_metrics",
    "fit",
    "load_curve",
    "load_curves",
    "load_fit",
    "make_law",
    "optimize",
    "optimize_cosine",
    "optimize_free",
    "optimize_wsd",
    "save_fit",
]
