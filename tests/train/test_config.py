"""Config loading: TOML, typed overrides, and one-line errors naming the key and where it came from."""

from __future__ import annotations

import re

import pytest

from lrlab.errors import InputError
from lrlab.train.config import load_config, parse_override


def test_toml_then_flags_then_set(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'steps = 100\nschedule = "wsd:peak=1e-3,warmup=10,total=100,decay=0.2"\n'
        '[model]\npreset = "mini"\nqk_norm = true\n[optimizer_options]\nbetas = [0.9, 0.95]\n'
    )
    cfg = load_config(path, ["model.n_layer=3", "steps=50", "optimizer_options.eps=1e-9"], {"seed": 7})
    assert (cfg.steps, cfg.seed, cfg.model.preset, cfg.model.n_layer, cfg.model.qk_norm) == (50, 7, "mini", 3, True)
    assert cfg.optimizer_options == {"betas": [0.9, 0.95], "eps": 1e-9}
    assert cfg.schedule.startswith("wsd:") and cfg.gpt_config(256).n_layer == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("steps=12", ("steps", 12)),
        ("weight_decay=0", ("weight_decay", 0)),
        ("optimizer=lion", ("optimizer", "lion")),
        ("schedule=cosine:peak=1e-3,warmup=5,total=50", ("schedule", "cosine:peak=1e-3,warmup=5,total=50")),
        ('probes=["rrc", "gns"]', ("probes", ["rrc", "gns"])),
        ("model.qk_norm=true", ("model.qk_norm", True)),
    ],
)
def test_override_values_are_toml_or_strings(text, expected):
    assert parse_override(text) == expected


def test_int_is_accepted_where_a_float_is_expected():
    cfg = load_config(None, ["weight_decay=0", "steps=none", "tokens=1000"])
    assert cfg.weight_decay == 0.0 and isinstance(cfg.weight_decay, float)
    assert cfg.steps is None and cfg.tokens == 1000


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["stpes=10"], "unknown key 'stpes'"),
        (["model.layers=2"], "unknown key 'model.layers'"),
        (["steps=ten"], "key 'steps' expects int or None, got str 'ten'"),
        (["steps=1.5"], "key 'steps' expects int or None, got float"),
        (["model.qk_norm=1"], "key 'model.qk_norm' expects bool"),
        (["seed=true"], "key 'seed' expects int"),
        (["probes=[1, 2]"], "key 'probes' expects list[str]"),
        (["batch_size=6", "grad_accum=4"], "not divisible by grad_accum"),
        (["batch_size=8", "grad_accum=4", "eval_batch_size=6"], "eval_batch_size=6 is not divisible by grad_accum=4"),
        (["eval_batch_size=0"], "eval_batch_size must lie in [1, 1,048,576], got 0"),
        (["eval_seed=-1"], "eval_seed must lie in [0, 2**63), got -1"),
        (["eval_seed=1.5"], "key 'eval_seed' expects int or None"),
        (["model.preset=huge"], "unknown model.preset 'huge'"),
        (["eval_every=0"], "eval_every must be >= 1"),
        (["model.n_head=0"], "model.n_head must lie in [1, 1,024], got 0"),
        (["model.n_embd=30", "model.n_head=4"], "n_embd=30 is not divisible by n_head=4"),
        (["nonsense"], "override 'nonsense': expected key=value"),
    ],
)
def test_bad_overrides_give_one_line_errors(overrides, message):
    with pytest.raises(InputError) as err:
        load_config(None, overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_toml_files_name_the_file_and_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("steps = 10\nlearning_rate = 3e-4\n")
    with pytest.raises(InputError, match=r"config .*bad\.toml: unknown key 'learning_rate'"):
        load_config(path)
    path.write_text("steps = \n")
    with pytest.raises(InputError, match=r"bad\.toml: invalid TOML: .*line 1"):
        load_config(path)
    path.write_text("[model]\nn_layer = '4'\n")
    with pytest.raises(InputError, match=re.escape("key 'model.n_layer' expects int or None, got str '4'")):
        load_config(path)
    with pytest.raises(InputError, match=r"missing\.toml: no such file"):
        load_config(tmp_path / "missing.toml")


def test_seed_and_gns_accumulation_are_checked_before_training():
    with pytest.raises(InputError, match=re.escape("seed must lie in [0, 2**63), got -1")):
        load_config(None, ["seed=-1"])
    with pytest.raises(InputError, match="grad_accum >= 2"):
        load_config(None, ["probes=['gns']"])
    assert load_config(None, ["probes=['gns']", "grad_accum=2"]).grad_accum == 2
