"""Measurements during training (update sizes, RRC, gradient noise scale, sharpness) and initial-LR searches.

Probes are trainer callbacks (``lrlab train --probe updates,rrc,gns,sharpness --probe-every K``) and work on any
torch model and optimizer through the same methods. ``PROBES`` maps each config name to its class; each class
takes ``every`` (the cadence in optimizer steps) as its first argument.
"""

from lrlab.probes.base import Probe
from lrlab.probes.catapult import CatapultResult, catapult_search, catapult_warmup
from lrlab.probes.noise import GNSProbe, noise_scale_estimates
from lrlab.probes.range_test import RangeTestResult, lr_range_test
from lrlab.probes.rrc import RRCProbe, relative_representation_change
from lrlab.probes.sharpness import (
    SharpnessProbe,
    adam_preconditioner,
    hessian_vector_product,
    sharpness,
    top_eigenvalue,
)
from lrlab.probes.updates import UpdateProbe, row_angles

PROBES: dict[str, type[Probe]] = {p.name: p for p in (UpdateProbe, RRCProbe, GNSProbe, SharpnessProbe)}

__all__ = [
    "PROBES",
    "CatapultResult",
    "GNSProbe",
    "Probe",
    "RRCProbe",
    "RangeTestResult",
    "SharpnessProbe",
    "UpdateProbe",
    "adam_preconditioner",
    "catapult_search",
    "catapult_warmup",
    "hessian_vector_product",
    "lr_range_test",
    "noise_scale_estimates",
    "relative_representation_change",
    "row_angles",
    "sharpness",
    "top_eigenvalue",
]
