"""Pure learning-rate schedules: lr(t) for the 0-based optimizer step t, vectorized over numpy arrays.

Build them from classes (``Cosine(peak=1e-3, warmup=100, total=1000, final=1e-4)``), from a one-line spec
(``parse("cosine:peak=1e-3,warmup=100,total=1000,final=1e-4")``) or from a ``step,lr`` CSV (``load("lr.csv")``).
Attach one to a torch optimizer with :class:`lrlab.schedules.torch.ScheduleLR` (imported separately so that
this package stays free of torch).
"""

from lrlab.schedules.base import Schedule
from lrlab.schedules.composite import Cyclic, Join, Tabulated
from lrlab.schedules.families import (
    FAMILIES,
    WSD,
    Constant,
    Cosine,
    Exponential,
    InverseSqrt,
    Linear,
    MultiStep,
    OneMinusSqrt,
    Polynomial,
    Step,
)
from lrlab.schedules.spec import SpecError, load, parse, read_csv, write_csv

__all__ = [
    "FAMILIES",
    "WSD",
    "Constant",
    "Cosine",
    "Cyclic",
    "Exponential",
    "InverseSqrt",
    "Join",
    "Linear",
    "MultiStep",
    "OneMinusSqrt",
    "Polynomial",
    "Schedule",
    "SpecError",
    "Step",
    "Tabulated",
    "load",
    "parse",
    "read_csv",
    "write_csv",
]
