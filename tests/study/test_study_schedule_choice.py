"""Step 3's choice among candidate schedules: ranked by the protocol's law, never free-form, simpler within 0.1%."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrlab.errors import InputError
from lrlab.schedules import load
from lrlab.study.schedule import SIMPLER_MARGIN, Candidate, choose

SCHEDULE = load("cosine:peak=1e-3,total=100")


def cand(name: str, **by_law: float) -> Candidate:
    return Candidate(name, "a", SCHEDULE, by_law)


def test_the_ranking_law_decides_even_against_the_median():
    runaway_wsd = cand("wsd", a=1.30, b=0.60, c=0.61)  # median 0.61: a runaway pair drags it down
    cosine = cand("cosine", a=1.25, b=1.40, c=1.41)  # median 1.40
    assert choose([runaway_wsd, cosine], "a") is cosine
    assert choose([runaway_wsd, cosine], "") is runaway_wsd  # no ranking law: the median ranks


def test_free_form_is_never_chosen_however_low_its_prediction():
    free = cand("free", a=0.5, b=0.5)
    base = cand("cosine to 10% (baseline)", a=1.5, b=1.5)
    assert choose([free, base], "a") is base
    with pytest.raises(InputError, match="no WSD, cosine or baseline"):
        choose([free], "a")


def test_a_simpler_family_within_the_margin_wins_and_outside_it_loses():
    cosine = cand("cosine", a=1.0)
    near = cand("wsd", a=1.0 * (1 + SIMPLER_MARGIN) * 0.999)
    far = cand("wsd", a=1.0 * (1 + SIMPLER_MARGIN) * 1.01)
    assert choose([cosine, near], "a") is near
    assert choose([cosine, far], "a") is cosine


def test_a_candidate_the_ranking_law_cannot_score_falls_back_to_its_median():
    unscored = cand("wsd", b=1.0, c=1.2)  # the ranking law "a" predicted no finite loss for it
    scored = cand("cosine", a=1.3, b=1.3)
    assert unscored.score("a") == pytest.approx(1.1)
    assert choose([unscored, scored], "a") is unscored


families = st.sampled_from(["wsd", "cosine", "free", "cosine to 10% (baseline)"])
losses = st.floats(0.5, 5.0)


@given(st.lists(st.tuples(families, losses, losses), min_size=1, max_size=12))
def test_the_choice_is_within_the_margin_of_the_best_eligible_and_no_simpler_one_is(rows):
    cands = [cand(name, a=x, b=y) for name, x, y in rows]
    eligible = [c for c in cands if c.name != "free"]
    if not eligible:
        with pytest.raises(InputError):
            choose(cands, "a")
        return
    chosen = choose(cands, "a")
    best = min(c.by_law["a"] for c in eligible)
    assert chosen.name != "free"
    assert chosen.by_law["a"] <= best * (1 + SIMPLER_MARGIN)
    order = ["wsd", "cosine", "cosine to 10% (baseline)"]
    simpler = [c for c in eligible if order.index(c.name) < order.index(chosen.name)]
    assert all(c.by_law["a"] > best * (1 + SIMPLER_MARGIN) for c in simpler)
    assert np.isfinite(chosen.loss)
