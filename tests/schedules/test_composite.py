"""Join, cycles with re-warmup, and tabulated (array/CSV) schedules."""

import numpy as np
import pytest

from lrlab.errors import InputError
from lrlab.schedules import Constant, Cosine, Cyclic, Join, Linear, Tabulated, load, parse, write_csv


def test_join_pieces_see_steps_relative_to_their_boundary():
    a = Linear(peak=1.0, total=100, final=0.5)
    b = Cosine(peak=0.5, warmup=10, total=50)
    j = Join((a, b), (100,))
    t = np.arange(200)
    expected = np.where(t < 100, a(np.minimum(t, 99)), b(np.maximum(t - 100, 0)))
    np.testing.assert_array_equal(j(t), expected)
    assert j.total == 150
    assert Join((a, Constant(peak=0.1)), (100,)).total is None


def test_join_rejects_bad_boundaries():
    a = Constant(peak=1.0)
    with pytest.raises(InputError, match="increasing"):
        Join((a, a, a), (100, 50))
    with pytest.raises(InputError, match="boundaries"):
        Join((a, a), ())


def test_cycles_rewarm_and_decay_by_gain():
    base = Cosine(peak=1.0, warmup=10, total=100, final=0.0)
    c = Cyclic(base, cycles=3, gain=0.5)
    assert c.total == 300
    assert c(109) == 0.5 and c(209) == 0.25  # each cycle re-warms to gain^k x peak
    np.testing.assert_array_equal(c(np.arange(100)), base(np.arange(100)))
    assert c(300) == 0.0 and c(1000) == 0.0  # after the last cycle its final LR holds
    with pytest.raises(InputError, match="bounded"):
        Cyclic(Constant(peak=1.0), cycles=2)


def test_tabulated_lookup_and_errors():
    s = Tabulated([0.1, 0.2, 0.3])
    assert s.total == 3
    assert s(np.array([2, 0])).tolist() == [0.3, 0.1]
    with pytest.raises(InputError, match="past the tabulated"):
        s(3)
    with pytest.raises(InputError, match="finite"):
        Tabulated([0.1, float("nan")])


def test_csv_round_trip_is_exact(tmp_path):
    s = parse("wsd:peak=3e-4,warmup=20,total=200,decay=0.3,shape=1-sqrt,final=3e-5")
    path = tmp_path / "lr.csv"
    write_csv(s, path, 200)
    loaded = load(str(path))
    np.testing.assert_array_equal(loaded.values(200), s.values(200))
    assert load(str(loaded)) == loaded


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "empty"),
        ("t,eta\n0,1\n", "header"),
        ("step,lr\n0,0.1\n2,0.1\n", "list every step"),
        ("step,lr\n0,abc\n", r"bad.csv:2: expected an integer step"),
        ("step,lr\n0,-1\n", "finite and >= 0"),
    ],
)
def test_malformed_csv_gives_one_line_naming_the_problem(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=match) as info:
        load(str(path))
    assert "\n" not in str(info.value)


def test_missing_csv_file():
    with pytest.raises(InputError, match="no such file"):
        load("/nonexistent/lr.csv")


def test_csv_extra_columns_ignored(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,loss,lr\n0,5.0,0.1\n1,4.0,0.2\n")
    assert load(str(path)).values(2).tolist() == [0.1, 0.2]


def test_csv_with_a_byte_order_mark_reads(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("step,lr\n0,0.1\n1,0.2\n".encode("utf-8-sig"))
    assert load(str(path)).values(2).tolist() == [0.1, 0.2]
