"""Law names (as used by the CLI and saved fits) -> law classes."""

from __future__ import annotations

from lrlab.errors import InputError
from lrlab.laws.law import Law
from lrlab.laws.momentum import MomentumLaw, MomentumSizeLaw
from lrlab.laws.multipower import MultiPowerLaw, QAreaExpLaw, SaturatedDropLaw

LAWS: dict[str, type[Law]] = {
    cls.name: cls for cls in (MomentumLaw, MomentumSizeLaw, MultiPowerLaw, QAreaExpLaw, SaturatedDropLaw)
}


def make_law(name: str, **options) -> Law:
    """Build the law called ``name`` with its constructor options; an unknown name is an InputError."""
    if name not in LAWS:
        raise InputError(f"unknown law {name!r}; choose one of {', '.join(LAWS)}")
    try:
        return LAWS[name](**options)
    except TypeError as exc:
        raise InputError(f"law {name!r}: bad options {options} ({exc})") from None
