"""Law names (as used by the CLI and saved fits) -> law classes, and the options each law's constructor takes."""

from __future__ import annotations

import inspect

from lrlab.errors import InputError, clip
from lrlab.laws.law import Law
from lrlab.laws.momentum import MomentumFloorLaw, MomentumLaw, MomentumSizeLaw
from lrlab.laws.multipower import MultiPowerLaw, QAreaExpLaw, SaturatedDropLaw

LAWS: dict[str, type[Law]] = {
    cls.name: cls
    for cls in (MomentumLaw, MomentumFloorLaw, MomentumSizeLaw, MultiPowerLaw, QAreaExpLaw, SaturatedDropLaw)
}


def law_options(name: str) -> tuple[str, ...]:
    """The constructor options of the law called ``name`` (e.g. ``("lam", "warmup")`` for the momentum law)."""
    cls = _law_class(name)
    params = inspect.signature(cls).parameters.values()
    return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def make_law(name: str, **options) -> Law:
    """Build the law called ``name`` with its constructor options; an unknown name or option is an InputError
    about that option."""
    known = law_options(name)
    for key in options:
        if key not in known:
            takes = f"its options are {', '.join(known)}" if known else "it takes no options"
            raise InputError(f"law {name!r} has no option {clip(key)!r}; {takes}", key)
    try:
        return LAWS[name](**options)
    except TypeError as exc:
        raise InputError(f"law {name!r}: bad options {clip(options, 120)} ({clip(exc, 120)})") from None


def _law_class(name: str) -> type[Law]:
    if name not in LAWS:
        raise InputError(f"unknown law {clip(name)!r}; choose one of {', '.join(LAWS)}", "law")
    return LAWS[name]
