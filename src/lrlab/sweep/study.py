"""Study files: a base training config and the axes to sweep, read from TOML into one config per cell.

    name = "tiny-lr-bs"                 # the study's name in the store
    budget = "steps"                    # "steps": every cell runs the base's steps; "tokens": the base's token
                                        # budget, steps = ceil(tokens / (batch_size * seq_len)) per cell
    retries = 2                         # a failed run is retried this many times (an interrupted one always continues)

    [base]                              # the training config of every cell (or: base = "tiny.toml")
    file = "tiny.toml"                  # a config file, relative to this file (optional)
    steps = 300                         # config keys over that file (TrainConfig keys, [base.model], ...)

    [axes]                              # every combination of these values
    lr = {log = [1e-3, 3e-2], n = 4}    # log range: n values from lo to hi, geometric (whole numbers when both
                                        # bounds are: {log = [8, 64], n = 4} is 8, 16, 32, 64)
    batch_size = [8, 16]                # a list
    schedule = ["cosine:peak=1e-3,warmup=30,total=300", "wsd:peak=1e-3,warmup=30,total=300,decay=0.2"]

    [[zip]]                             # a group of keys that vary together (equal-length lists), crossed with
    batch_size = [8, 16, 32]            # the axes and with the other groups
    lr = [2e-3, 2.8e-3, 4e-3]

Keys are any config key (dotted for tables: ``model.preset``, ``optimizer_options.beta``) and three that act on
the schedule spec: ``schedule`` (the whole spec), ``lr`` (its peak) and ``warmup`` (its warmup steps), applied in
that order. With ``budget = "tokens"`` a schedule's ``total`` follows each cell's steps, so every cell decays over
its own run. When the study varies ``batch_size`` or ``seed``, every cell keeps the base's validation set
(``eval_batch_size`` and ``eval_seed``: the base's batch size and seed unless set), so that final losses compare
across cells. Each cell is validated when the study is
read (the config and its schedule); a bad file, axis or cell is one :class:`InputError` naming it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import InputError, clip
from lrlab.files import check_keys, read_toml
from lrlab.schedules import Join, load
from lrlab.schedules.families import Warmed
from lrlab.store.db import config_hash
from lrlab.train.config import TrainConfig, load_config
from lrlab.train.corpus import check_data_path
from lrlab.train.loop import check_optimizer

SCHEDULE_KEYS = ("schedule", "lr", "warmup")
BUDGETS = ("steps", "tokens")
STUDY_KEYS = ("name", "base", "budget", "retries", "axes", "zip")
MAX_CELLS = 10_000
MAX_STUDY_BYTES = 1 << 20


@dataclass(frozen=True)
class Cell:
    """One run of a study: the axis values that make it and the full config they give."""

    values: dict[str, Any]
    config: TrainConfig


@dataclass(frozen=True)
class Study:
    """A study file read and validated: its name, budget rule, retries, axes, zip groups and every cell."""

    name: str
    source: str
    budget: str
    retries: int
    axes: dict[str, list]
    zips: list[dict[str, list]]
    cells: list[Cell]

    def spec(self) -> dict[str, Any]:
        """What the store keeps about the study (its file, budget and axes)."""
        return {"source": self.source, "budget": self.budget, "axes": self.axes, "zip": self.zips}


def load_study(path: str | Path) -> Study:
    """Read and validate a study file (see the module doc)."""
    path = Path(path)
    table = read_toml(path, "study", MAX_STUDY_BYTES)
    where = f"study {path}"
    check_keys(table, STUDY_KEYS, where)
    name = table.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}: name must be a non-empty string, got {clip(repr(name))}")
    budget = table.get("budget", "steps")
    if budget not in BUDGETS:
        raise InputError(f"{where}: budget must be one of {', '.join(BUDGETS)}, got {clip(repr(budget))}")
    retries = table.get("retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
        raise InputError(f"{where}: retries must be a whole number in [0, 100], got {clip(repr(retries))}")
    base_file, base_table = base_source(table.get("base"), path, where)
    axes = {key: _axis(key, spec, where) for key, spec in _table(table.get("axes", {}), "axes", where).items()}
    zips = [_zip_group(group, i, where) for i, group in enumerate(_groups(table.get("zip", []), where))]
    _check_disjoint(axes, zips, where)
    combos = _combinations(axes, zips, where)
    kept = _kept_validation_set(base_file, base_table, {*axes, *(k for group in zips for k in group)}, where)
    cells = [_cell(values, base_file, {**base_table, **kept}, budget, where, kept) for values in combos]
    _check_unique(cells, where)
    return Study(name, str(path), budget, retries, axes, zips, cells)


def base_source(value: Any, path: Path, where: str) -> tuple[Path | None, dict]:
    """(config file, inline keys): ``base = "file.toml"`` or a ``[base]`` table (whose ``file`` key may name one)."""
    if value is None:
        return None, {}
    if isinstance(value, str):
        return _base_file(value, path, where), {}
    table = _table(value, "base", where)
    file = table.pop("file", None)
    if file is not None and not isinstance(file, str):
        raise InputError(f"{where}: base.file must be a path, got {clip(repr(file))}")
    return (_base_file(file, path, where) if file else None), table


def _base_file(name: str, path: Path, where: str) -> Path:
    base = (path.parent / name).expanduser()
    if not base.exists():
        raise InputError(f"{where}: base config {name!r} not found (looked for {base})")
    if not base.is_file():
        raise InputError(f"{where}: base config {name!r} is not a regular file ({base})")
    return base


def _table(value: Any, key: str, where: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{where}: {key} must be a table, got {type(value).__name__}")
    return dict(value)


def _groups(value: Any, where: str) -> list:
    if not isinstance(value, list) or not all(isinstance(g, dict) for g in value):
        raise InputError(f"{where}: zip must be an array of tables ([[zip]] sections)")
    return value


def _axis(key: str, spec: Any, where: str) -> list:
    """The values of one axis: a non-empty list, or ``{log = [lo, hi], n = N}`` / ``{lin = [lo, hi], n = N}``."""
    at = f"{where}: axis {key!r}"
    if isinstance(spec, list):
        if not spec:
            raise InputError(f"{at} is empty")
        return list(spec)
    if not isinstance(spec, dict):
        raise InputError(f"{at} must be a list of values or a range {{log = [lo, hi], n = N}}")
    kinds = [k for k in ("log", "lin") if k in spec]
    extra = [k for k in spec if k not in ("log", "lin", "n")]
    if len(kinds) != 1 or extra or "n" not in spec:
        raise InputError(f"{at}: a range is {{log = [lo, hi], n = N}} or {{lin = [lo, hi], n = N}}")
    bounds, n = spec[kinds[0]], spec["n"]
    numbers = isinstance(bounds, list) and len(bounds) == 2 and all(_is_number(b) for b in bounds)
    if not numbers or not all(math.isfinite(b) for b in bounds):
        raise InputError(f"{at}: {kinds[0]} takes two finite numbers [lo, hi], got {clip(repr(bounds))}")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CELLS:
        raise InputError(f"{at}: n must be a whole number in [1, {MAX_CELLS}], got {clip(repr(n))}")
    integers = all(isinstance(b, int) for b in bounds)
    lo, hi = (float(b) for b in bounds)
    if kinds[0] == "log":
        if not 0 < lo <= hi:
            raise InputError(f"{at}: a log range needs 0 < lo <= hi, got [{lo:g}, {hi:g}]")
        values = np.geomspace(lo, hi, n)
    else:
        if lo > hi:
            raise InputError(f"{at}: a range needs lo <= hi, got [{lo:g}, {hi:g}]")
        values = np.linspace(lo, hi, n)
    if integers:  # integer bounds (batch sizes, steps) give whole numbers
        return sorted({round(v) for v in values})
    return [float(f"{v:.6g}") for v in values]  # readable values; 6 digits are far finer than any LR grid


def _zip_group(group: dict, index: int, where: str) -> dict[str, list]:
    at = f"{where}: zip group {index + 1}"
    if not group:
        raise InputError(f"{at} is empty")
    lengths = set()
    for key, values in group.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"{at}: {key!r} must be a non-empty list")
        lengths.add(len(values))
    if len(lengths) != 1:
        raise InputError(f"{at}: its lists have different lengths ({', '.join(map(str, sorted(lengths)))})")
    return dict(group)


def _check_disjoint(axes: dict, zips: list[dict], where: str) -> None:
    seen = set(axes)
    for i, group in enumerate(zips):
        twice = seen & set(group)
        if twice:
            raise InputError(f"{where}: key {sorted(twice)[0]!r} is swept twice (zip group {i + 1} and another)")
        seen |= set(group)


def _combinations(axes: dict[str, list], zips: list[dict[str, list]], where: str) -> list[dict[str, Any]]:
    """Every cell's values: the product of the axes and the zip groups (each group one dimension)."""
    dims = [[{k: v} for v in values] for k, values in axes.items()]
    dims += [[dict(zip(g, row, strict=True)) for row in zip(*g.values(), strict=True)] for g in zips]
    count = math.prod(len(d) for d in dims)
    if count > MAX_CELLS:
        raise InputError(f"{where}: {count:,} cells is more than {MAX_CELLS:,}; sweep fewer values")
    return [dict(item for part in combo for item in part.items()) for combo in itertools.product(*dims)]


def _check_unique(cells: list[Cell], where: str) -> None:
    """Two cells that give the same training config would be one run trained twice at once: refused."""
    seen: dict[str, Cell] = {}
    for cell in cells:
        key = config_hash(cell.config.to_dict())
        if key in seen:
            first, second = _label(seen[key].values), _label(cell.values)
            raise InputError(f"{where}: cells {first} and {second} give the same run; remove the repeated values")
        seen[key] = cell


def _kept_validation_set(base: Path | None, inline: dict, varied: set[str], where: str) -> dict[str, int]:
    """The base's validation set, as the keys that fix it, for cells that vary what it is drawn with: a run draws
    its validation batches at its own batch size and seed, so cells of other batch sizes or seeds would be
    scored on other sequences (which moves the loss more than a batch size does at small scale). Keys the study
    varies itself are left alone."""
    wanted = {"batch_size": "eval_batch_size", "seed": "eval_seed"}
    keys = [wanted[k] for k in wanted if k in varied and wanted[k] not in varied]
    if not keys:
        return {}
    try:
        _, rows, seed = load_config(base, (), flatten_keys(inline)).validation_set
    except InputError as exc:
        raise InputError(f"{where}: base: {exc}") from None
    return {k: v for k, v in (("eval_batch_size", rows), ("eval_seed", seed)) if k in keys}


def _cell(
    values: dict[str, Any], base: Path | None, inline: dict, budget: str, where: str, kept: dict[str, int]
) -> Cell:
    at = f"{where}: cell {_label(values)}"
    plain = {k: v for k, v in values.items() if k not in SCHEDULE_KEYS}
    try:
        cfg = load_config(base, (), {**flatten_keys(inline), **plain})
        cfg.schedule = _schedule(cfg, values, budget)
        if budget == "tokens":
            if cfg.tokens is None:
                raise InputError("budget 'tokens' needs a tokens budget in the base config")
            cfg.steps = None
            cfg.steps = cfg.total_steps(None)
        cfg.validate()
        cfg.total_steps(load(cfg.schedule).total)  # the schedule parses, and the run has a length
        check_optimizer(cfg)  # its options construct it (else every run of the cell would fail at its start)
        check_data_path(cfg.data, cfg.val_data)
    except InputError as exc:
        hint = ""
        if "eval_batch_size" in kept and "eval_batch_size" in exc.message:
            hint = " (the base's validation set, kept for every batch size: set eval_batch_size in [base] to fit)"
        raise InputError(f"{at}: {exc}{hint}") from None
    return Cell(values, cfg)


def flatten_keys(table: dict, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"preset": "tiny"}}`` -> ``{"model.preset": "tiny"}`` (optimizer_options stays one value)."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name == "model":
            out |= flatten_keys(value, f"{name}.")
        else:
            out[name] = value
    return out


def _schedule(cfg: TrainConfig, values: dict[str, Any], budget: str) -> str:
    """The cell's schedule spec: the base's, or the ``schedule`` axis, then its peak (``lr``) and ``warmup``."""
    spec = values.get("schedule", cfg.schedule)
    if not isinstance(spec, str):
        raise InputError(f"schedule must be a spec string, got {clip(repr(spec))}")
    changes: dict[str, Any] = {}
    if "lr" in values:
        if not _is_number(values["lr"]) or not (math.isfinite(values["lr"]) and values["lr"] > 0):
            raise InputError(f"lr must be a finite number > 0, got {clip(repr(values['lr']))}")
        changes["peak"] = float(values["lr"])
    if "warmup" in values:
        warmup = values["warmup"]
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise InputError(f"warmup must be a whole number of steps >= 0, got {clip(repr(warmup))}")
        changes["warmup"] = warmup
    if budget == "tokens":
        steps = -(-cfg.tokens // cfg.tokens_per_step) if cfg.tokens else None
        changes["total"] = steps
    if not changes:
        return spec
    schedule = load(spec)
    if not isinstance(schedule, Warmed):
        kind = "a join of pieces" if isinstance(schedule, Join) else type(schedule).__name__
        raise InputError(f"lr, warmup and a token budget change a schedule family's spec, not {kind} ({spec})")
    if "total" in changes and (changes["total"] is None or schedule.total is None):
        changes.pop("total")
    if "init" in {f.name for f in fields(schedule)} and "peak" in changes and schedule.init > changes["peak"]:
        changes["init"] = 0.0
    return str(replace(schedule, **changes))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def short_value(value: Any) -> str:
    """A cell value as a table shows it: floats to 3 significant digits, other values clipped to 40 characters."""
    return f"{value:.3g}" if isinstance(value, float) else clip(str(value), 40)


def _label(values: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={short_value(v)}" for k, v in values.items()) + "}"
