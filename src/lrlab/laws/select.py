"""Choose a law from the pilot curves alone (``--law auto``), and measure how far a law errs when it extrapolates.

The protocol sees only the curves being fitted (the pilots), never the schedules to be predicted (curves of more
than ``MAX_RECORDS`` records are thinned to that many for it, evenly). For each
pilot in turn, its fit window ``[from_step, last step]`` is cut at ``SPLIT`` of its length; the law is fitted on
that pilot's early part and every other pilot whole, and predicts the pilot's late part. So each held-out part
asks what a user asks of the law, a prediction past what it saw, with every other curve's information (the
annealing of a decayed pilot) at hand; leaving a whole pilot out would leave one curve alone, which rarely pins a
law's annealing term.

A law's protocol error is the mean PredE (mean |pred - y| / y) of the held-out parts; its ``model_error`` is
the largest of their absolute log residuals, which widens the fit's band (:class:`lrlab.laws.fitting.Fit`).
A candidate that cannot be fitted on the early parts (too few points) or predicts a non-finite loss scores
infinity.

``select`` scores every candidate, keeps the first in ``CANDIDATES`` order whose protocol error is at most
``TOLERANCE`` (2x) the lowest, and fits it on all the points; if that fit fails (the multi-power law's
quadrature limit on a very long per-step log, which the protocol saw thinned), the next candidate is fitted.
Every candidate's numbers are recorded in ``Fit.info["selection"]``.

Why not simply the lowest: on the development set (docs/laws.md) the protocol's lowest was the law with the
best error on the held-out schedules in only 3 of 10 groups (cross-peak) and 0 of 10 (same-peak), while
momentum-floor, first in the order, was best in 19 of the 20; with the 2x rule auto picked the best in 9 and 9
of 10. The protocol thus acts as a veto on the preferred law, for curves on which it
fails plainly. Order and tolerance were chosen on the development protocols only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lrlab.errors import InputError, clip
from lrlab.laws.curves import Curve
from lrlab.laws.fitting import Fit, check_from_step, default_from_step, fit, fit_window
from lrlab.laws.law import Law
from lrlab.laws.registry import make_law

CANDIDATES = ("momentum-floor", "mpl-qexp", "mpl", "momentum")  # what --law auto chooses among, preferred first
TOLERANCE = 2.0  # auto keeps the first candidate whose protocol error is within this factor of the lowest
MAX_RECORDS = 2000  # records of a curve the protocol fits on (evenly spaced; the final fit uses every one)
SPLIT = 0.7  # each pilot's window is fitted up to 70% of its length, scored after


@dataclass
class Protocol:
    """One law's pilots-only scores: mean held-out PredE, largest log error, and each held-out part's PredE."""

    law: str
    prede: float = math.inf
    model_error: float = math.inf
    parts: dict[str, float] = field(default_factory=dict)
    error: str = ""  # why the protocol could not score the law, if it could not

    def to_dict(self) -> dict:
        out = {"prede": self.prede, "model_error": self.model_error, "parts": self.parts}
        return out | ({"error": self.error} if self.error else {})


def _thinned(c: Curve) -> Curve:
    """At most ``MAX_RECORDS`` evenly spaced records of a curve (the first and last kept): a per-step log of a
    long run would make every protocol fit as slow as the final one, for a score that needs far fewer points."""
    if len(c.steps) <= MAX_RECORDS:
        return c
    keep = np.unique(np.linspace(0, len(c.steps) - 1, MAX_RECORDS).round().astype(np.int64))
    return c.records(keep)


def _without_shared(other: Curve, held: Curve, first_held: int) -> Curve:
    """``other`` without its points from ``first_held`` on that are the held-out curve's own: where two pilots
    share a run (a WSD run branched from the constant run's checkpoint), their records before the branch are the
    same measurements, and the fit would see what it is scored on."""
    n = min(len(other.lr), len(held.lr))
    differ = np.flatnonzero(other.lr[:n] != held.lr[:n])
    shared_until = int(differ[0]) if differ.size else n  # the first step whose LR differs
    keep = (other.steps < first_held) | (other.steps >= shared_until)
    if keep.all():
        return other
    return other.records(keep)


def _split(c: Curve) -> tuple[Curve, Curve]:
    """(early, late) parts of a windowed curve at ``SPLIT`` of its steps."""
    cut = c.steps[0] + SPLIT * (c.steps[-1] - c.steps[0])
    early = c.steps <= cut
    if early.sum() < 2 or early.all():
        raise InputError(f"{c.where}: too few records to split for the selection protocol")
    return c.records(early), c.records(~early)


def protocol(
    law: Law, curves: list[Curve], from_step: int | str = "auto", huber_delta: float = 1e-3, method=None
) -> Protocol:
    """The pilots-only protocol of the module docstring for one law (deterministic)."""
    window = default_from_step(curves) if from_step == "auto" else check_from_step(from_step)
    curves = [_thinned(fit_window(c, window)) for c in curves]
    result = Protocol(law.name)
    try:
        halves = [_split(c) for c in curves]
    except InputError as exc:
        result.error = exc.message
        return result
    logs: list[np.ndarray] = []
    for i, (c, (early, late)) in enumerate(zip(curves, halves, strict=True)):
        name = f"{c.name} after step {int(late.steps[0])}"
        train = [early if j == i else _without_shared(other, c, int(late.steps[0])) for j, other in enumerate(curves)]
        try:
            pred = fit(law, train, huber_delta, method, from_step=0).predict(late.lr, late.steps, late.n_params)
        except InputError as exc:
            result.error = f"{name}: {exc.message}"
            return result
        if not np.all(np.isfinite(pred) & (pred > 0)):
            result.error = f"{name}: the law predicts a non-finite or non-positive loss"
            return result
        result.parts[name] = float(np.mean(np.abs(pred - late.loss) / late.loss))
        logs.append(np.log(late.loss) - np.log(pred))
    result.prede = float(np.mean(list(result.parts.values())))
    result.model_error = float(np.max(np.abs(np.concatenate(logs))))
    return result


def fit_measured(
    law: Law, curves: list[Curve], from_step: int | str = "auto", huber_delta: float = 1e-3, method=None
) -> Fit:
    """:func:`lrlab.laws.fit` plus the protocol for this one law: its model error widens the band (0 when the
    protocol cannot score the law: ``Fit.info["selection"]`` then says why)."""
    t0 = time.perf_counter()
    scores = {law.name: protocol(law, curves, from_step, huber_delta, method)}
    return _finish(fit(law, curves, huber_delta, method, from_step=from_step), scores, t0)


def _finish(result: Fit, scores: dict[str, Protocol], t0: float) -> Fit:
    """Record the protocol's scores in the fit; ``Fit.seconds`` stays the final fit's, the whole in
    ``info["check_seconds"]``."""
    chosen = scores[result.law.name]
    result.model_error = chosen.model_error if math.isfinite(chosen.model_error) else 0.0
    result.info["check_seconds"] = time.perf_counter() - t0 - result.seconds
    result.info["selection"] = {
        "chosen": result.law.name,
        "protocol": f"each pilot cut at {SPLIT:.0%} of its window, fitted on its start and the others, scored after",
        "candidates": {name: p.to_dict() for name, p in scores.items()},
    }
    return result


def select(
    curves: list[Curve],
    laws: tuple[str, ...] = CANDIDATES,
    from_step: int | str = "auto",
    huber_delta: float = 1e-3,
    on_law: Callable[[str], None] | None = None,
) -> Fit:
    """``--law auto``: the first of ``laws`` whose protocol error is within ``TOLERANCE`` of the lowest, fitted on
    every point of the window.

    ``on_law(name)`` is called before each candidate's protocol (for a progress display). If no candidate can
    be scored (pilots too short to split), an InputError says so.
    """
    if not curves:
        raise InputError("fit needs at least one curve")
    t0 = time.perf_counter()
    scores: dict[str, Protocol] = {}
    for name in laws:
        if on_law is not None:
            on_law(name)
        scores[name] = protocol(make_law(name), curves, from_step, huber_delta)
    lowest = min(p.prede for p in scores.values())
    if not math.isfinite(lowest):
        reasons = clip("; ".join(f"{p.law}: {p.error}" for p in scores.values()), 300)
        raise InputError(f"auto could not score any law on these curves ({reasons}); name a law", "law")
    within = [name for name in laws if scores[name].prede <= TOLERANCE * lowest]
    rest = sorted(
        (n for n in laws if n not in within and math.isfinite(scores[n].prede)), key=lambda n: scores[n].prede
    )
    failures = []
    for name in within + rest:  # the preferred law, unless it cannot be fitted on every record (then the next)
        try:
            result = fit(make_law(name), curves, huber_delta, from_step=from_step)
        except InputError as exc:
            failures.append(f"{name}: {exc.message}")
            continue
        if failures:
            result.info["not_fitted"] = failures
        return _finish(result, scores, t0)
    raise InputError(f"auto scored laws but could fit none on every record ({clip('; '.join(failures), 300)})", "law")
