"""Study files (lrlab.sweep.study): the grammar of axes, ranges and zip groups, the schedule keys, the token
budget, the base config, and a table of bad files that must each be one InputError naming the problem.

Expected values are computed independently (numpy for ranges, math.ceil for token budgets, the schedule parser
for the specs the cells end up with).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from lrlab.errors import InputError
from lrlab.schedules import parse
from lrlab.sweep import load_study
from lrlab.sweep.study import MAX_CELLS, MAX_STUDY_BYTES

BASE = """\
steps = 100
seq_len = 32
batch_size = 4
eval_batches = 1
schedule = "cosine:peak=1e-3,warmup=10,total=100,final=1e-4"
"""


def _study(tmp_path: Path, text: str, base: str | None = BASE, name: str = "study.toml") -> Path:
    """Write ``text`` as a study file (and ``base.toml`` beside it) and return its path."""
    if base is not None:
        (tmp_path / "base.toml").write_text(base)
    path = tmp_path / name
    path.write_text(text)
    return path


def _sig6(value: float) -> float:
    """``value`` rounded to 6 significant digits (numpy's formatter, not the f-string the module uses)."""
    return float(np.format_float_scientific(value, precision=5, unique=False))


def _values(study) -> list[dict]:
    return [c.values for c in study.cells]


# --- the grammar ---------------------------------------------------------------------------------------------


def test_list_axes_give_their_product_in_order(tmp_path: Path) -> None:
    path = _study(tmp_path, 'base = "base.toml"\n[axes]\nseed = [0, 1, 2]\nbatch_size = [4, 8]\n')
    study = load_study(path)
    assert study.name == "study"  # the file's stem by default
    assert (study.budget, study.retries) == ("steps", 2)
    assert _values(study) == [{"seed": s, "batch_size": b} for s, b in itertools.product([0, 1, 2], [4, 8])]
    for cell in study.cells:
        assert (cell.config.seed, cell.config.batch_size) == (cell.values["seed"], cell.values["batch_size"])
        assert cell.config.steps == 100 and cell.config.seq_len == 32  # the rest from the base
        assert cell.config.schedule == "cosine:peak=1e-3,warmup=10,total=100,final=1e-4"  # untouched
    assert study.spec() == {
        "source": str(path),
        "budget": "steps",
        "axes": {"seed": [0, 1, 2], "batch_size": [4, 8]},
        "zip": [],
    }


@pytest.mark.parametrize(("lo", "hi", "n"), [(1e-4, 1e-1, 7), (3e-4, 3e-3, 4), (0.5, 0.5, 1), (1e-5, 2.0, 13)])
def test_log_range_is_geomspace_to_6_significant_digits(tmp_path: Path, lo: float, hi: float, n: int) -> None:
    base = BASE.replace(",final=1e-4", "")  # a final LR above the lowest peak would be a bad cell
    path = _study(tmp_path, f'base = "base.toml"\n[axes]\nlr = {{log = [{lo!r}, {hi!r}], n = {n}}}\n', base)
    study = load_study(path)
    expected = np.geomspace(lo, hi, n)
    got = [c.values["lr"] for c in study.cells]
    assert got == [_sig6(v) for v in expected]
    np.testing.assert_allclose(got, expected, rtol=5e-6)
    assert got[0] == lo and got[-1] == hi
    assert study.axes == {"lr": got}
    for cell in study.cells:  # lr is the schedule's peak
        assert parse(cell.config.schedule).peak == cell.values["lr"]


@pytest.mark.parametrize(("lo", "hi", "n"), [(0.0, 1.0, 5), (0.5, 3.0, 9), (0.9, 0.999, 4), (2.0, 2.0, 1)])
def test_lin_range_is_linspace_to_6_significant_digits(tmp_path: Path, lo: float, hi: float, n: int) -> None:
    path = _study(tmp_path, f'base = "base.toml"\n[axes]\n"optimizer_options.eps" = {{lin = [{lo}, {hi}], n = {n}}}\n')
    got = [c.values["optimizer_options.eps"] for c in load_study(path).cells]
    expected = np.linspace(lo, hi, n)
    assert got == [_sig6(v) for v in expected]
    np.testing.assert_allclose(got, expected, rtol=5e-6, atol=0)
    assert all(isinstance(v, float) for v in got)


def test_integer_bounds_give_whole_numbers_for_integer_keys(tmp_path: Path) -> None:
    """{log = [8, 64], n = 4} over batch_size is 8, 16, 32, 64 (ints: the config refuses a float batch size)."""
    path = _study(tmp_path, 'base = "base.toml"\n[axes]\nbatch_size = {log = [8, 64], n = 4}\n')
    got = [c.values["batch_size"] for c in load_study(path).cells]
    assert got == [8, 16, 32, 64] and all(type(v) is int for v in got)
    assert [c.config.batch_size for c in load_study(path).cells] == got
    rounded = _study(tmp_path, 'base = "base.toml"\n[axes]\nbatch_size = {log = [8, 20], n = 3}\n', name="r.toml")
    assert [c.values["batch_size"] for c in load_study(rounded).cells] == [8, 13, 20]  # geomspace 8, 12.65, 20


def test_zip_groups_are_crossed_with_the_axes_and_each_other(tmp_path: Path) -> None:
    text = """base = "base.toml"
[axes]
seed = [0, 1]

[[zip]]
batch_size = [4, 8, 16]
lr = [1e-3, 1.4e-3, 2e-3]

[[zip]]
eval_every = [5, 10]
weight_decay = [0.0, 0.1]
"""
    study = load_study(_study(tmp_path, text))
    assert len(study.cells) == 2 * 3 * 2
    combos = {tuple(sorted(v.items())) for v in _values(study)}
    expected = {
        (("batch_size", b), ("eval_every", e), ("lr", lr), ("seed", s), ("weight_decay", w))
        for s in (0, 1)
        for b, lr in zip([4, 8, 16], [1e-3, 1.4e-3, 2e-3], strict=True)
        for e, w in zip([5, 10], [0.0, 0.1], strict=True)
    }
    assert combos == expected
    for cell in study.cells:
        cfg = cell.config
        assert (cfg.batch_size, cfg.eval_every, cfg.weight_decay) == (
            cell.values["batch_size"],
            cell.values["eval_every"],
            cell.values["weight_decay"],
        )
        assert parse(cfg.schedule).peak == cell.values["lr"]
    assert study.zips == [
        {"batch_size": [4, 8, 16], "lr": [1e-3, 1.4e-3, 2e-3]},
        {"eval_every": [5, 10], "weight_decay": [0.0, 0.1]},
    ]


def test_a_study_of_zip_groups_only_and_of_no_axes(tmp_path: Path) -> None:
    only_zip = load_study(_study(tmp_path, 'base = "base.toml"\n[[zip]]\nseed = [1, 2]\nlr = [1e-3, 2e-3]\n'))
    assert _values(only_zip) == [{"seed": 1, "lr": 1e-3}, {"seed": 2, "lr": 2e-3}]
    single = load_study(_study(tmp_path, 'base = "base.toml"\n', name="single.toml"))
    assert [c.values for c in single.cells] == [{}]  # no axes: one cell, the base itself
    assert single.cells[0].config.steps == 100


def test_schedule_lr_and_warmup_keys_change_the_spec(tmp_path: Path) -> None:
    text = """base = "base.toml"
[axes]
schedule = ["cosine:peak=5e-3,warmup=20,total=100,final=1e-5", "wsd:peak=1e-3,warmup=5,total=100,decay=0.2"]
lr = [2e-3, 4e-3]
warmup = [3, 7]
"""
    study = load_study(_study(tmp_path, text))
    assert len(study.cells) == 8
    for cell in study.cells:
        original = parse(cell.values["schedule"])
        s = parse(cell.config.schedule)
        assert type(s) is type(original)
        assert s.peak == cell.values["lr"]  # lr: the peak of the axis's spec
        assert s.warmup == cell.values["warmup"]  # warmup: its warmup steps
        assert s.total == original.total == 100  # the rest of the spec is kept
        assert s.final == original.final
        steps = np.arange(101)
        lr = s(steps)
        assert lr.max() == pytest.approx(cell.values["lr"], rel=1e-12)
        assert lr[cell.values["warmup"] - 1] == pytest.approx(cell.values["lr"], rel=1e-12)  # warmup ends at peak
    wsd = next(c for c in study.cells if c.values["schedule"].startswith("wsd"))
    assert parse(wsd.config.schedule).decay == 0.2


def test_lr_alone_keeps_the_base_warmup_and_total_and_lowers_a_too_high_init(tmp_path: Path) -> None:
    base = BASE.replace(
        'schedule = "cosine:peak=1e-3,warmup=10,total=100,final=1e-4"',
        'schedule = "constant:peak=1e-2,warmup=10,init=5e-3"',
    )
    study = load_study(_study(tmp_path, 'base = "base.toml"\n[axes]\nlr = [1e-3, 8e-3]\n', base=base))
    low, high = (parse(c.config.schedule) for c in study.cells)
    assert (low.peak, low.warmup, low.total, low.init) == (1e-3, 10, None, 0.0)  # init above the new peak: 0
    assert (high.peak, high.warmup, high.init) == (8e-3, 10, 5e-3)  # init below it: kept


def test_without_schedule_keys_the_spec_text_is_unchanged(tmp_path: Path) -> None:
    spec = "cosine:peak=1e-3 , warmup=10,total=100"  # not the canonical form: kept as written
    study = load_study(_study(tmp_path, f'[base]\nfile = "base.toml"\nschedule = "{spec}"\n[axes]\nseed = [1]\n'))
    assert study.cells[0].config.schedule == spec


@pytest.mark.parametrize("batch_sizes", [[4, 8, 16], [3, 7]])
def test_token_budget_sets_steps_and_schedule_total_per_cell(tmp_path: Path, batch_sizes: list[int]) -> None:
    tokens = 10_000
    base = BASE + f"tokens = {tokens}\n"  # with steps = 100 in the base, which the token budget replaces
    text = f'budget = "tokens"\nbase = "base.toml"\n[axes]\nbatch_size = {batch_sizes}\nlr = [1e-3]\n'
    study = load_study(_study(tmp_path, text, base=base))
    assert study.budget == "tokens"
    assert [c.values["batch_size"] for c in study.cells] == batch_sizes
    for cell in study.cells:
        cfg = cell.config
        steps = math.ceil(tokens / (cell.values["batch_size"] * 32))
        assert cfg.steps == steps
        assert cfg.steps * cfg.batch_size * cfg.seq_len >= tokens > (cfg.steps - 1) * cfg.batch_size * cfg.seq_len
        s = parse(cfg.schedule)
        assert (s.total, s.warmup, s.peak, s.final) == (steps, 10, 1e-3, 1e-4)


def test_token_budget_leaves_an_unbounded_schedule_unbounded(tmp_path: Path) -> None:
    base = 'seq_len = 32\ntokens = 4096\nschedule = "constant:peak=1e-3,warmup=2"\n'
    study = load_study(_study(tmp_path, 'budget = "tokens"\nbase = "base.toml"\n[axes]\nbatch_size = [4, 16]\n', base))
    assert [c.config.steps for c in study.cells] == [32, 8]
    assert [c.config.schedule for c in study.cells] == ["constant:peak=1e-3,warmup=2"] * 2


def test_base_as_a_path_and_as_a_table_with_file_and_keys(tmp_path: Path, monkeypatch) -> None:
    sub = tmp_path / "studies"
    sub.mkdir()
    (sub / "corpus.txt").write_text("text")  # a data path is the run's, relative to where the sweep runs
    monkeypatch.chdir(sub)
    (sub / "base.toml").write_text(BASE + '[model]\npreset = "tiny"\n[optimizer_options]\nbetas = [0.9, 0.95]\n')
    as_path = load_study(_study(sub, 'base = "base.toml"\n', base=None, name="a.toml"))  # relative to the study
    cfg = as_path.cells[0].config
    assert (cfg.steps, cfg.batch_size, cfg.model.preset, cfg.optimizer_options) == (
        100,
        4,
        "tiny",
        {"betas": [0.9, 0.95]},
    )
    table = """[base]
file = "base.toml"
steps = 20
data = "corpus.txt"

[base.model]
preset = "mini"
n_layer = 1
"""
    cfg = load_study(_study(sub, table, base=None, name="b.toml")).cells[0].config
    assert (cfg.steps, cfg.batch_size, cfg.data) == (20, 4, "corpus.txt")  # inline keys over the file's
    assert (cfg.model.preset, cfg.model.n_layer) == ("mini", 1)
    inline = load_study(_study(sub, "[base]\nsteps = 7\nseq_len = 16\n", base=None, name="c.toml"))
    cfg = inline.cells[0].config  # no file: the defaults, then the keys
    assert (cfg.steps, cfg.seq_len, cfg.batch_size) == (7, 16, 16)


def test_dotted_keys_reach_model_and_optimizer_options(tmp_path: Path) -> None:
    text = """base = "base.toml"
name = "dotted"
retries = 0
[axes]
"model.preset" = ["tiny", "mini"]
"optimizer_options.eps" = [1e-8, 1e-6]
"model.qk_norm" = [true]
"""
    study = load_study(_study(tmp_path, text))
    assert (study.name, study.retries) == ("dotted", 0)
    got = {(c.config.model.preset, c.config.optimizer_options["eps"], c.config.model.qk_norm) for c in study.cells}
    assert got == {("tiny", 1e-8, True), ("tiny", 1e-6, True), ("mini", 1e-8, True), ("mini", 1e-6, True)}


def test_cell_count_limit_is_inclusive(tmp_path: Path, monkeypatch) -> None:
    import lrlab.sweep.study as study_module

    assert MAX_CELLS == 10_000
    monkeypatch.setattr(study_module, "MAX_CELLS", 40)
    text = "[base]\nsteps = 10\n[axes]\nweight_decay = {lin = [0, 0.9], n = 10}\n[[zip]]\neval_every = [1, 2, 3, 4]\n"
    text += "keep_last = [1, 2, 3, 4]\n"
    study = load_study(_study(tmp_path, text, base=None))
    assert len(study.cells) == 40
    over = "[base]\nsteps = 10\n[axes]\nweight_decay = {lin = [0, 0.9], n = 41}\n"
    with pytest.raises(InputError, match=r"n must be a whole number in \[1, 40\], got 41"):
        load_study(_study(tmp_path, over, base=None, name="over.toml"))
    over = "[base]\nsteps = 10\n[axes]\nweight_decay = {lin = [0, 0.9], n = 40}\nseed = [0, 1]\n"  # 80 cells
    with pytest.raises(InputError, match="80 cells is more than 40"):
        load_study(_study(tmp_path, over, base=None, name="over.toml"))


# --- bad study files -----------------------------------------------------------------------------------------

JOIN_BASE = BASE.replace(
    'schedule = "cosine:peak=1e-3,warmup=10,total=100,final=1e-4"',
    'schedule = "cosine:peak=1e-3,warmup=10,total=50 | @50 constant:peak=1e-4"',
)
B = 'base = "base.toml"\n'

# (id, study text or bytes, base text, substrings the one-line message must contain)
BAD = [
    ("unknown-top-level-key", "foo = 1\n", BASE, ["unknown key 'foo'"]),
    ("empty-axis", B + "[axes]\nlr = []\n", BASE, ["axis 'lr' is empty"]),
    ("lin-lo-above-hi", B + "[axes]\nlr = {lin = [2.0, 1.0], n = 3}\n", BASE, ["axis 'lr'", "lo <= hi", "[2, 1]"]),
    ("log-lo-above-hi", B + "[axes]\nlr = {log = [1e-2, 1e-3], n = 3}\n", BASE, ["axis 'lr'", "0 < lo <= hi"]),
    ("log-lo-zero", B + "[axes]\nlr = {log = [0, 1e-2], n = 3}\n", BASE, ["axis 'lr'", "0 < lo <= hi"]),
    ("log-lo-negative", B + "[axes]\nlr = {log = [-1e-3, 1e-2], n = 3}\n", BASE, ["axis 'lr'", "0 < lo"]),
    ("n-zero", B + "[axes]\nlr = {log = [1e-3, 1e-2], n = 0}\n", BASE, ["axis 'lr'", "n must be", "got 0"]),
    ("n-not-integer", B + "[axes]\nlr = {log = [1e-3, 1e-2], n = 2.5}\n", BASE, ["axis 'lr'", "n must be"]),
    ("n-boolean", B + "[axes]\nlr = {log = [1e-3, 1e-2], n = true}\n", BASE, ["axis 'lr'", "n must be"]),
    ("n-missing", B + "[axes]\nlr = {log = [1e-3, 1e-2]}\n", BASE, ["axis 'lr'", "a range is"]),
    ("range-extra-key", B + "[axes]\nlr = {lin = [1, 2], n = 2, step = 1}\n", BASE, ["axis 'lr'", "a range is"]),
    ("non-numeric-bounds", B + '[axes]\nlr = {log = ["a", 1e-2], n = 2}\n', BASE, ["axis 'lr'", "two finite numbers"]),
    ("nan-bound", B + "[axes]\nlr = {lin = [nan, 1.0], n = 2}\n", BASE, ["axis 'lr'", "two finite numbers"]),
    ("inf-bound", B + "[axes]\nlr = {log = [1e-3, inf], n = 2}\n", BASE, ["axis 'lr'", "two finite numbers"]),
    ("three-bounds", B + "[axes]\nlr = {lin = [1, 2, 3], n = 2}\n", BASE, ["axis 'lr'", "two finite numbers"]),
    ("axis-scalar", B + "[axes]\nlr = 1e-3\n", BASE, ["axis 'lr' must be a list"]),
    ("zip-unequal-lengths", B + "[[zip]]\nlr = [1e-3, 2e-3]\nbatch_size = [4]\n", BASE, ["zip group 1", "(1, 2)"]),
    ("zip-empty-list", B + "[[zip]]\nlr = []\n", BASE, ["zip group 1", "'lr' must be a non-empty list"]),
    ("zip-not-tables", B + "zip = [1, 2]\n", BASE, ["zip must be an array of tables"]),
    ("key-in-axis-and-zip", B + "[axes]\nlr = [1e-3]\n[[zip]]\nlr = [1e-3, 2e-3]\nseed = [1, 2]\n", BASE,
     ["key 'lr' is swept twice"]),
    ("key-in-two-zips", B + "[[zip]]\nseed = [1]\n[[zip]]\nseed = [2]\n", BASE,
     ["key 'seed' is swept twice", "zip group 2"]),
    ("unknown-config-key-in-axis", B + "[axes]\nlearning_rate = [1e-3]\n", BASE,
     ["cell {learning_rate=0.001}", "unknown key 'learning_rate'"]),
    ("unknown-model-key-in-axis", B + '[axes]\n"model.depth" = [2]\n', BASE, ["cell {model.depth=2}", "model.depth"]),
    ("cell-fails-validation", B + "[axes]\nbatch_size = [4, 0]\n", BASE,
     ["cell {batch_size=0}", "batch_size must lie"]),
    ("cell-wrong-type", B + '[axes]\nseed = [1, "x"]\n', BASE, ["cell {seed=x}", "'seed' expects int"]),
    ("unknown-preset", B + '[axes]\n"model.preset" = ["huge"]\n', BASE,
     ["cell {model.preset=huge}", "unknown model.preset"]),
    ("lr-on-a-joined-schedule", B + "[axes]\nlr = [1e-3]\n", JOIN_BASE, ["cell {lr=0.001}", "join"]),
    ("lr-negative", B + "[axes]\nlr = [1e-3, -1e-3]\n", BASE, ["cell {lr=-0.001}", "lr must be a finite number > 0"]),
    ("lr-zero", B + "[axes]\nlr = [0.0]\n", BASE, ["cell {lr=0}", "lr must be"]),
    ("lr-nan", B + "[axes]\nlr = [nan]\n", BASE, ["cell {lr=nan}", "lr must be"]),
    ("lr-string", B + '[axes]\nlr = ["big"]\n', BASE, ["cell {lr=big}", "lr must be"]),
    ("warmup-reaches-total", B + "[axes]\nwarmup = [100]\n", BASE, ["cell {warmup=100}", "must exceed warmup=100"]),
    ("warmup-negative", B + "[axes]\nwarmup = [-1]\n", BASE, ["cell {warmup=-1}", "warmup=-1"]),
    # the module doc: "Each cell is validated when the study is read (the config and its schedule)"
    ("warmup-not-integer", B + "[axes]\nwarmup = [1.5]\n", BASE, ["cell {warmup=1.5}", "warmup"]),
    ("bad-schedule-spec-in-axis", B + '[axes]\nschedule = ["cosine:peak=x"]\n', BASE,
     ["cell {schedule=cosine:peak=x}"]),
    ("schedule-not-a-string", B + "[axes]\nschedule = [1]\n", BASE, ["cell {schedule=1}", "spec string"]),
    ("tokens-budget-without-tokens", 'budget = "tokens"\n' + B + "[axes]\nlr = [1e-3]\n", BASE,
     ["cell {lr=0.001}", "budget 'tokens' needs a tokens budget"]),
    ("unknown-budget", 'budget = "time"\n' + B, BASE, ["budget must be one of steps, tokens", "'time'"]),
    ("missing-base-file", 'base = "nope.toml"\n', None, ["base config 'nope.toml' not found"]),
    ("missing-base-table-file", '[base]\nfile = "nope.toml"\n', None, ["base config 'nope.toml' not found"]),
    ("base-file-not-a-path", "[base]\nfile = 3\n", None, ["base.file must be a path"]),
    ("base-not-a-table", "base = [1]\n", None, ["base must be a table"]),
    ("unknown-key-in-base-table", "[base]\nfoo = 1\n", None, ["cell {}", "unknown key 'foo'"]),
    ("invalid-base-file", 'base = "base.toml"\n', "steps = = 3\n", ["invalid TOML"]),
    ("axes-not-a-table", "axes = 3\n", None, ["axes must be a table"]),
    ("invalid-toml", "name = \n", None, ["invalid TOML", "line 1"]),
    ("toml-nested-too-deeply", "x = " + "[" * 5000 + "]" * 5000 + "\n", None, ["invalid TOML", "nested too deeply"]),
    ("binary-file", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 64, None, ["not UTF-8"]),
    ("over-the-size-limit", "# " + "x" * MAX_STUDY_BYTES + "\n", None, ["bytes is more than", f"{MAX_STUDY_BYTES:,}"]),
    ("more-than-max-cells", "[axes]\nseed = {lin = [0, 100], n = 101}\nsteps = {lin = [1, 100], n = 100}\n", None,
     ["10,100 cells is more than 10,000"]),
    ("retries-negative", "retries = -1\n", None, ["retries must be a whole number", "-1"]),
    ("retries-not-integer", "retries = 1.5\n", None, ["retries must be a whole number"]),
    ("retries-too-many", "retries = 101\n", None, ["retries must be a whole number in [0, 100]"]),
    ("name-empty", 'name = "  "\n', None, ["name must be a non-empty string"]),
    ("repeated-axis-value", B + "[axes]\nlr = [1e-3, 1e-3]\n", BASE, ["cells {lr=0.001} and {lr=0.001}", "same run"]),
    ("bad-optimizer-option", B + '[axes]\noptimizer_options = [{betas = [0.9, "x"]}]\n', BASE,
     ["cell {optimizer_options=", "betas must be two numbers"]),
    ("unknown-optimizer-option", B + "[axes]\noptimizer_options = [{nesterov = true}]\n", BASE,
     ["cell {optimizer_options=", "nesterov"]),
    ("missing-data-path", B + '[axes]\ndata = ["no/such/corpus.txt"]\n', BASE, ["cell {data=", "no such file"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "base", "needles"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_study_file_is_one_input_error_naming_the_problem(
    tmp_path: Path, text: str | bytes, base: str | None, needles: list[str]
) -> None:
    if base is not None:
        (tmp_path / "base.toml").write_text(base)
    path = tmp_path / "study.toml"
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    with pytest.raises(InputError) as info:
        load_study(path)
    message = str(info.value)
    assert "\n" not in message and len(message) < 1000, message
    assert message.startswith(f"study {path}"), message  # names the file
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


def test_bad_table_is_large_with_unique_ids() -> None:
    ids = [c[0] for c in BAD]
    assert len(ids) == len(set(ids)) and len(ids) >= 15


def test_a_missing_study_file_or_a_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_study(tmp_path / "missing.toml")
    with pytest.raises(InputError, match="not a regular file"):
        load_study(tmp_path)


def test_cells_of_other_batch_sizes_or_seeds_keep_the_bases_validation_set(tmp_path: Path) -> None:
    """A run draws its validation batches at its own batch size and seed: a study that varies either scores every
    cell on the base's validation set instead (``eval_batch_size``, ``eval_seed``), unless it varies those too."""
    path = _study(tmp_path, 'base = "base.toml"\n[axes]\nbatch_size = [8, 16]\nseed = [1, 2]\n')
    assert {c.config.validation_set for c in load_study(path).cells} == {(1, 4, 0)}  # the base's: 1 x 4, seed 0
    chosen = _study(tmp_path, 'base = "base.toml"\n[axes]\nbatch_size = [4, 8]\neval_batch_size = [2]\n', name="c.toml")
    assert {c.config.eval_batch_size for c in load_study(chosen).cells} == {2}
    others = _study(tmp_path, 'base = "base.toml"\n[axes]\nlr = [1e-3, 2e-3]\n', name="o.toml")
    assert {(c.config.eval_batch_size, c.config.eval_seed) for c in load_study(others).cells} == {(None, None)}
    in_base = _study(tmp_path, '[base]\nfile = "base.toml"\neval_seed = 7\n[axes]\nseed = [1, 2]\n', name="b.toml")
    assert {c.config.eval_seed for c in load_study(in_base).cells} == {7}


def test_a_kept_validation_batch_that_a_cell_cannot_split_names_the_base(tmp_path: Path) -> None:
    text = 'base = "base.toml"\n[[zip]]\nbatch_size = [8, 16]\ngrad_accum = [1, 8]\n'
    with pytest.raises(InputError, match=r"eval_batch_size=4 is not divisible by grad_accum=8 \(the base's validation"):
        load_study(_study(tmp_path, text))
