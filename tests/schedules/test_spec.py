"""The one-line spec: canonical forms, round trips, and errors that name the bad token and its position."""

import pytest

from lrlab.schedules import WSD, Constant, Cosine, Cyclic, Join, SpecError, parse


def test_canonical_forms_parse_exactly_as_written():
    assert parse("constant:peak=1e-3,warmup=100") == Constant(peak=1e-3, warmup=100)
    assert parse("cosine:peak=1e-3,warmup=100,total=1000,final=1e-4") == Cosine(
        peak=1e-3, warmup=100, total=1000, final=1e-4
    )
    wsd = parse("wsd:peak=1e-3,warmup=100,total=1000,decay=0.2,shape=linear,final=0")
    assert wsd == WSD(peak=1e-3, warmup=100, total=1000, decay=0.2, shape="linear", final=0.0)
    assert wsd.decay_start == 800


def test_canonical_forms_print_back_unchanged():
    for spec in ["constant:peak=1e-3,warmup=100", "cosine:peak=1e-3,warmup=100,total=1000,final=1e-4"]:
        assert str(parse(spec)) == spec


def test_composites_parse():
    c = parse("cosine:peak=1e-3,warmup=50,total=500,cycles=4,cycle_gain=0.5")
    assert isinstance(c, Cyclic) and c.cycles == 4 and c.gain == 0.5 and c.total == 2000
    j = parse("cosine:peak=1e-3,warmup=100,total=1000 | @1000 constant:peak=1e-5")
    assert isinstance(j, Join) and j.boundaries == (1000,)
    assert j(1500) == 1e-5
    assert parse(str(j)) == j
    assert parse("multistep:peak=0.1,milestones=300/600").milestones == (300, 600)
    assert parse("constant:peak=1,warmup=1e3").warmup == 1000  # integral floats are fine for steps


@pytest.mark.parametrize(
    ("spec", "pos", "token"),
    [
        ("cosine:peak=1e-3,warmup=100,totl=1000", 28, "totl"),
        ("cosin:peak=1", 0, "cosin"),
        ("cosine:peak=abc,total=5", 12, "abc"),
        ("cosine:peak=1e-3,warmup=10.5,total=100", 24, "10.5"),
        ("constant:peak=1e-3,peak=2e-3", 19, "peak"),
        ("constant:peak", 9, "peak"),
        ("cosine:peak=1e-3,total=100 | constant:peak=1", 29, "constant:peak=1"),
        ("constant", 0, "constant"),
    ],
)
def test_bad_spec_names_token_and_position(spec, pos, token):
    with pytest.raises(SpecError) as info:
        parse(spec)
    assert info.value.pos == pos
    assert info.value.token == token
    message = str(info.value)
    assert f"position {pos}" in message and repr(token) in message and "\n" not in message


def test_semantic_errors_are_spec_errors():
    with pytest.raises(SpecError, match="must exceed warmup"):
        parse("cosine:peak=1e-3,warmup=100,total=50")
    with pytest.raises(SpecError, match="missing required key peak"):
        parse("constant:warmup=10")
    with pytest.raises(SpecError, match="needs total"):
        parse("cosine:peak=1e-3")
    with pytest.raises(SpecError, match="increasing"):
        parse("constant:peak=1 | @100 constant:peak=2 | @50 constant:peak=3")


def test_review_edge_cases_are_one_line_spec_errors():
    with pytest.raises(SpecError, match="below 2\\*\\*53"):
        parse("cosine:peak=1e-3,total=1e300")
    with pytest.raises(SpecError, match="milestones must be > 0"):
        parse("multistep:peak=1,milestones=-5/3")
    with pytest.raises(SpecError, match="needs shape=poly"):
        parse("wsd:peak=1,total=100,decay=0.3,power=2")


def test_wsd_decay_share_rounds_halves_up():
    assert parse("wsd:peak=1,total=10,decay=0.25").decay_length == 3
    assert parse("wsd:peak=1,total=10,decay=0.35").decay_length == 4
    assert parse("wsd:peak=1,total=10,decay=0.05").decay_length == 1
