"""Hostile and malformed input to every ``lrlab`` command: a table of cases, each held to lrlab's bad-input rule.

The rule (README, "Bad input ... prints one line naming what is wrong and where, and exits with code 2"):

- exit code 2, and no exception other than that ``SystemExit``;
- exactly one non-empty line of output (stdout and stderr together), on stderr, starting with ``error:``; no
  ``Traceback``, no control characters; optionally a substring the line must contain (the file, key, flag or
  limit it names, printed literally even when it looks like rich markup);
- every file under the case's folder is byte-for-byte unchanged and none is removed, and the output files the
  command was asked to write (``--out``, ``--plot``, ``--out-csv``) are not created;
- no runaway allocation and no hang.

Most cases run in-process through ``CliRunner`` (a SIGALRM guard turns a hang into a failure). Cases that could
allocate gigabytes or run forever (``sub=True``) run in a child process under an address-space cap (its size at
start plus ``MEMORY_HEADROOM``) and a timeout. The children are forked from a ``multiprocessing`` forkserver that
has imported torch and lrlab once, so each starts in milliseconds instead of a 3-8 s interpreter start, and they
run in background threads while the in-process cases go on. The SIGTERM test at the end runs the real
``python -c "from lrlab.cli import main; main()"`` command line.

Setting ``LRLAB_HOSTILE_LOG=FILE`` appends one JSON line per case (id, problems) to FILE.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import lrlab
from lrlab.cli import app

IN_PROCESS_TIMEOUT_S = 30
SUB_TIMEOUT_S = 60
HANG_TIMEOUT_S = 10  # cases whose likely failure mode is running forever: a tiny run ends long before this
CHILD_WORKERS = 3  # child cases run at the same time (each may map up to MEMORY_HEADROOM more)
MEMORY_HEADROOM = 1536 * 2**20  # address space a child may add to what the forkserver already mapped (torch)
SRC_ROOT = Path(lrlab.__file__).resolve().parents[1]  # the lrlab under test, also for the child processes
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# A folder this process cannot write into: chmod 0o500 stops everyone but root; as root, sysfs refuses new files.
RO_DIR = "/sys" if IS_ROOT else "{tmp}/ro"
OUTPUT_FLAGS = ("--out", "--plot", "--out-csv")

FAST = ("--set", "seq_len=32", "--batch-size", "4", "--set", "eval_batches=1", "--no-progress")
TRAIN = ("train", "--set", "data='{corpus}'", *FAST)
RUN_ARGS = (*TRAIN, "--steps", "2", "--schedule", "constant:peak=1e-3")  # the run every folder case starts from
FIND = ("find-lr", "--set", "data='{corpus}'", "--set", "seq_len=32", "--set", "batch_size=4", "--json")
SHOW = ("schedule", "show")
COMPARE = ("schedule", "compare")
COS = "cosine:peak=1e-3,warmup=10,total=100,final=1e-4"
FIT = ("fit", "{tmp}/c.csv", "--law", "momentum", "--method", "lbfgs", "--out", "{tmp}/fit.json")
PREDICT = ("predict", "{tmp}/fit.json", "--schedule", "cosine:peak=3e-4,warmup=20,total=400", "--steps", "400")
OPTIMIZE = ("optimize", "{tmp}/fit.json", "--steps", "400", "--peak-lr", "3e-4")
DEEP = "[" * 100_000 + "]" * 100_000


# --- assets shared by the cases ------------------------------------------------------------------------------


@dataclass
class Assets:
    corpus: Path  # ~60 KB text file, the training data of every train / find-lr case
    fit: dict  # a valid saved fit (momentum law), corrupted per case
    run: Path  # a finished 2-step run folder (RUN_ARGS), copied per case


def _curve_text(n: int = 300, warmup: int = 10) -> str:
    """A dense step,loss,lr curve: cosine LR, loss falling with the LR area."""
    t = np.arange(n)
    lr = 1e-3 * np.where(t < warmup, (t + 1) / warmup, 0.55 + 0.45 * np.cos(np.pi * (t - warmup) / (n - warmup)))
    loss = 2.0 + 1.5 * (1.0 + np.cumsum(lr) / 1e-3) ** -0.5
    return "step,loss,lr\n" + "".join(f"{s},{float(v)!r},{float(r)!r}\n" for s, v, r in zip(t, loss, lr, strict=True))


GOOD_CURVE = _curve_text()


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Assets:
    import inspect

    import lrlab.train.loop
    from lrlab.laws import fit, load_curve, make_law
    from lrlab.laws.io import fit_to_dict

    root = tmp_path_factory.mktemp("hostile-assets")
    corpus = root / "corpus.txt"
    corpus.write_text(inspect.getsource(lrlab.train.loop) * 3 + inspect.getsource(json) * 2)
    (root / "c.csv").write_text(GOOD_CURVE)
    fitted = fit(make_law("momentum"), [load_curve(root / "c.csv")], 1e-3, "lbfgs")
    fit_dict = json.loads(json.dumps(fit_to_dict(fitted)))
    run = root / "run"
    env = {"LRLAB_CACHE": str(root / "cache")}
    argv = [a.replace("{corpus}", str(corpus)) for a in RUN_ARGS] + ["--out", str(run)]
    result = CliRunner(env=env).invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert (run / "checkpoints" / "ckpt-00000002.pt").is_file()
    return Assets(corpus, fit_dict, run)


# --- setup helpers: each returns a function (tmp, assets) -> None that writes the case's input files ------------

Setup = Callable[[Path, Assets], None]


def files(**named: str | bytes) -> Setup:
    """Write files under tmp; a name's '__' stands for '/', a value None makes a directory."""

    def setup(tmp: Path, assets: Assets) -> None:
        for name, content in named.items():
            path = tmp / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            if content is None:
                path.mkdir(exist_ok=True)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)

    return setup


def write(name: str, content: str | bytes | None) -> Setup:
    """One file (a name with dots, which ``files`` cannot take as a keyword)."""
    return files(**{name: content})


def both(*setups: Setup) -> Setup:
    def setup(tmp: Path, assets: Assets) -> None:
        for s in setups:
            s(tmp, assets)

    return setup


def curve(name: str = "c.csv", text: str = GOOD_CURVE) -> Setup:
    return write(name, text)


def fit_file(change: Callable[[dict], object] | None = None, name: str = "fit.json") -> Setup:
    """A copy of the valid fit, changed in place by ``change``, saved as JSON (NaN allowed)."""

    def setup(tmp: Path, assets: Assets) -> None:
        d = json.loads(json.dumps(assets.fit))
        if change is not None:
            change(d)
        (tmp / name).write_text(json.dumps(d, indent=2))

    return setup


def put(path: str, value: object) -> Callable[[dict], None]:
    """``put("params.L0", x)``: set a dotted key of the fit dict."""

    def change(d: dict) -> None:
        *heads, last = path.split(".")
        for h in heads:
            d = d[h]
        d[last] = value

    return change


def drop(path: str) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        *heads, last = path.split(".")
        for h in heads:
            d = d[h]
        del d[last]

    return change


def raw_fit(make: Callable[[dict], str | bytes]) -> Setup:
    """fit.json as arbitrary text or bytes built from the valid fit."""

    def setup(tmp: Path, assets: Assets) -> None:
        content = make(json.loads(json.dumps(assets.fit)))
        path = tmp / "fit.json"
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)

    return setup


def run_folder(change: Callable[[Path], None] | None = None) -> Setup:
    """``tmp/D``: a copy of the finished 2-step run, then ``change(D)``."""

    def setup(tmp: Path, assets: Assets) -> None:
        shutil.copytree(assets.run, tmp / "D")
        if change is not None:
            change(tmp / "D")

    return setup


def checkpoint_of(d: Path) -> Path:
    return d / "checkpoints" / "ckpt-00000002.pt"


def truncate_checkpoint(d: Path) -> None:
    path = checkpoint_of(d)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


class _Evil:
    """Unpickling this runs a shell command: a checkpoint must never be unpickled with code execution."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def evil_checkpoint(d: Path) -> None:
    import torch

    marker = d.parent / "pwned"
    torch.save({"step": _Evil(str(marker)), "model": {}, "optimizer": {}}, checkpoint_of(d))


def checkpoint_step(value: object) -> Callable[[Path], None]:
    def change(d: Path) -> None:
        import torch

        state = torch.load(checkpoint_of(d), map_location="cpu", weights_only=True)
        state["step"] = value
        torch.save(state, checkpoint_of(d))

    return change


def checkpoint_is(obj_or_bytes: object) -> Callable[[Path], None]:
    def change(d: Path) -> None:
        import torch

        if isinstance(obj_or_bytes, bytes):
            checkpoint_of(d).write_bytes(obj_or_bytes)
        else:
            torch.save(obj_or_bytes, checkpoint_of(d))

    return change


def newest_checkpoint_is_a_folder(d: Path) -> None:
    (d / "checkpoints" / "ckpt-00000009.pt").mkdir()


def metrics_is_a_folder(d: Path) -> None:
    (d / "metrics.jsonl").unlink()
    (d / "metrics.jsonl").mkdir()


def read_only_folder(tmp: Path, assets: Assets) -> None:
    if not IS_ROOT:
        (tmp / "ro").mkdir()
        (tmp / "ro").chmod(0o500)


def big_corpus(tmp: Path, assets: Assets) -> None:
    """~2.4 MB of text: its 5% validation split still holds 100002 tokens (seq_len=100000 passes the size check)."""
    (tmp / "big.txt").write_text(assets.corpus.read_text() * 40)


def long_curve(tmp: Path, assets: Assets) -> None:
    (tmp / "long.csv").write_text(_curve_text(n=1_000_000, warmup=1000))


def jsonl(*objs: object) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs)


def sparse_curve(steps: list[int], lr: bool = True) -> str:
    head = "step,loss,lr\n" if lr else "step,loss\n"
    return head + "".join(f"{s},{3.0 - 0.001 * s}" + (",1e-3" if lr else "") + "\n" for s in steps)


# --- the cases -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    setup: Setup | None = None
    contains: str | None = None  # the error line must contain this (after placeholder substitution)
    forbid: tuple[str, ...] = ()  # substrings the output must not contain
    sub: bool = False  # run in a memory-capped child process with a timeout
    timeout: int | None = None
    absent: tuple[str, ...] = ()  # more paths that must not exist afterwards


def C(id: str, *argv: str, **kw) -> Case:
    return Case(id, tuple(argv), **kw)


UTF16_CSV = "step,lr\n0,1e-3\n1,1e-3\n".encode("utf-16")
BINARY = bytes(range(256)) * 4
LONG_FIELD = "step,lr\n0," + "1" * 200_000 + "\n"

SCHEDULE_CASES = [
    C("spec-empty", *SHOW, "", contains="empty"),
    C("spec-blank", *SHOW, "   ", contains="empty"),
    C("spec-unknown-family", *SHOW, "cosin:peak=1e-3,total=10", contains="cosin"),
    C("spec-family-without-params", *SHOW, "cosine", contains="cosine"),
    C("spec-missing-total", *SHOW, "cosine:peak=1e-3", contains="total"),
    C("spec-missing-peak", *SHOW, "constant:warmup=10", "--steps", "20", contains="peak"),
    C("spec-unknown-key", *SHOW, "cosine:peak=1e-3,total=10,foo=1", contains="foo"),
    C("spec-duplicate-key", *SHOW, "cosine:peak=1e-3,peak=2e-3,total=10", contains="peak"),
    C("spec-key-without-value", *SHOW, "cosine:peak=,total=10", contains="peak"),
    C("spec-trailing-comma", *SHOW, "cosine:peak=1e-3,total=10,"),
    C("spec-peak-nan", *SHOW, "constant:peak=nan", "--steps", "10", contains="peak"),
    C("spec-peak-inf", *SHOW, "constant:peak=inf", "--steps", "10", contains="peak"),
    C("spec-peak-negative", *SHOW, "constant:peak=-1e-3", "--steps", "10", contains="peak"),
    C("spec-peak-1e400", *SHOW, "constant:peak=1e400", "--steps", "10", contains="peak"),
    C("spec-peak-word", *SHOW, "constant:peak=fast", "--steps", "10", contains="peak"),
    C("spec-warmup-negative", *SHOW, "constant:peak=1e-3,warmup=-5", "--steps", "10", contains="warmup"),
    C("spec-warmup-fractional", *SHOW, "constant:peak=1e-3,warmup=2.5", "--steps", "10", contains="warmup"),
    C("spec-total-1e30", *SHOW, "cosine:peak=1e-3,total=1e30", contains="total"),
    C("spec-total-below-warmup", *SHOW, "cosine:peak=1e-3,warmup=50,total=10", contains="total"),
    C("spec-final-above-peak", *SHOW, "cosine:peak=1e-3,total=10,final=1", contains="final"),
    C("spec-init-above-peak", *SHOW, "constant:peak=1e-3,warmup=5,init=1", "--steps", "10", contains="init"),
    C("spec-exp-warmup-from-0", *SHOW, "constant:peak=1e-3,warmup=10,warmup_shape=exp", "--steps", "20"),
    C("spec-warmup-shape-unknown", *SHOW, "constant:peak=1e-3,warmup=10,warmup_shape=zig", "--steps", "20"),
    C("spec-wsd-decay-0", *SHOW, "wsd:peak=1e-3,total=100,decay=0", contains="decay"),
    C("spec-wsd-decay-twice", *SHOW, "wsd:peak=1e-3,total=100,decay=0.2,decay_steps=10", contains="decay"),
    C("spec-wsd-shape-unknown", *SHOW, "wsd:peak=1e-3,total=100,decay=0.2,shape=zigzag", contains="zigzag"),
    C("spec-multistep-decreasing", *SHOW, "multistep:peak=1e-3,milestones=3000/1000", "--steps", "9"),
    C("spec-multistep-garbage", *SHOW, "multistep:peak=1e-3,milestones=a/b", "--steps", "9", contains="milestones"),
    C("spec-step-every-0", *SHOW, "step:peak=1e-3,every=0", "--steps", "9", contains="every"),
    C("spec-markup-close-tag", *SHOW, "[/bold]", contains="[/bold]"),
    C("spec-markup-open-tag", *SHOW, "[red]x", contains="[red]x"),
    C("spec-markup-in-value", *SHOW, "cosine:peak=[bold]1,total=10", contains="[bold]1"),
    C("spec-markup-link", *SHOW, "[link=https://x]y[/link]:peak=1", contains="[link=https://x]"),
    C("spec-10k-chars", *SHOW, "cosine:peak=1e-3,total=10,x=" + "9" * 10_000, contains="x"),
    C("spec-10k-keys", *SHOW, "constant:peak=1e-3," + ",".join(f"k{i}=1" for i in range(1500)), contains="k0"),
    C("spec-control-chars", *SHOW, "cosine:peak=1e-3\x1b[31m,total=10"),
    C("join-without-at", *SHOW, "constant:peak=1e-3 | constant:peak=1e-4", "--steps", "9"),
    C("join-boundary-0", *SHOW, "constant:peak=1e-3 | @0 constant:peak=1e-4", "--steps", "9"),
    C("join-boundary-decreasing", *SHOW, "constant:peak=1e-3|@100 constant:peak=1e-4|@50 constant:peak=1e-5"),
    C("join-empty-piece", *SHOW, "constant:peak=1e-3 |", "--steps", "9"),
    C("join-boundary-nan", *SHOW, "constant:peak=1e-3 | @nan constant:peak=1e-4", "--steps", "9"),
    C("join-boundary-negative", *SHOW, "constant:peak=1e-3 | @-5 constant:peak=1e-4", "--steps", "9"),
    C("join-boundary-1e30", *SHOW, "constant:peak=1e-3 | @1e30 constant:peak=1e-4", "--steps", "9"),
    C("join-only-pipes", *SHOW, "|||", "--steps", "9"),
    C("cycles-0", *SHOW, "cosine:peak=1e-3,total=10,cycles=0", contains="cycles"),
    C("cycles-unbounded", *SHOW, "constant:peak=1e-3,cycles=2", "--steps", "9", contains="cycles"),
    C("cycle-gain-without-cycles", *SHOW, "cosine:peak=1e-3,total=10,cycle_gain=0.5", contains="cycle"),
    C("cycles-1e8", *SHOW, "cosine:peak=1e-3,warmup=1,total=10,cycles=100000000", sub=True, timeout=HANG_TIMEOUT_S),
    C("show-total-2e53-json", *SHOW, "cosine:peak=1e-3,total=9007199254740991", "--json", sub=True),
    C("show-unbounded-without-steps", *SHOW, "constant:peak=1e-3", contains="--steps"),
    C("show-at-int64-overflow", *SHOW, COS, "--at", "99999999999999999999", contains="--at"),
    C("show-at-above-2e53", *SHOW, COS, "--at", "9007199254740993", contains="--at"),
    C("show-at-negative", *SHOW, COS, "--at", "-1", contains="--at"),
    C("show-at-garbage", *SHOW, COS, "--at", "1,a", contains="--at"),
    C("show-at-float", *SHOW, COS, "--at", "1.5", contains="--at"),
    C("show-at-empty", *SHOW, COS, "--at", ",", contains="--at"),
    C("show-at-and-every", *SHOW, COS, "--at", "1", "--every", "2", contains="--every"),
    C("show-every-0", *SHOW, COS, "--every", "0", contains="--every"),
    C("show-every-negative", *SHOW, COS, "--every", "-5", contains="--every"),
    C("show-steps-0", *SHOW, COS, "--steps", "0", contains="--steps"),
    C("show-steps-negative", *SHOW, COS, "--steps", "-3", contains="--steps"),
    C("show-steps-1e10", *SHOW, COS, "--steps", "10000000000", contains="--steps"),
    C("show-steps-1e10-json", *SHOW, COS, "--steps", "10000000000", "--json", sub=True),
    C("show-steps-1e10-plot", *SHOW, COS, "--steps", "10000000000", "--plot", "{tmp}/x.png", sub=True),
    C("show-steps-1e4-click", *SHOW, COS, "--steps", "1e4", contains="--steps"),
    C("show-plot-unknown-extension", *SHOW, COS, "--plot", "{tmp}/x.xyz", contains="x.xyz"),
    C("show-plot-onto-folder", *SHOW, COS, "--plot", "{tmp}/adir", setup=files(adir=None), contains="adir"),
    C("show-plot-dev-full", *SHOW, COS, "--plot", "/dev/full", contains="/dev/full"),
    C("compare-one-spec", *COMPARE, COS, contains="two"),
    C("compare-second-bad", *COMPARE, COS, "[red]x", contains="[red]x"),
    C("compare-steps-0", *COMPARE, COS, COS, "--steps", "0", contains="--steps"),
    C("compare-unbounded", *COMPARE, "constant:peak=1", "constant:peak=2", contains="--steps"),
    C("compare-at-int64-overflow", *COMPARE, COS, COS, "--at", "99999999999999999999", contains="--at"),
    C("compare-csv-too-short", *COMPARE, COS, "{tmp}/lr.csv", setup=write("lr.csv", "step,lr\n0,1e-3\n1,1e-3\n")),
]

CSV_CASES = [
    C("csv-missing", *SHOW, "{tmp}/missing.csv", contains="missing.csv"),
    C("csv-folder", *SHOW, "{tmp}/adir.csv", setup=write("adir.csv", None), contains="adir.csv"),
    C("csv-empty", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", ""), contains="lr.csv"),
    C("csv-header-only", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", "step,lr\n"), contains="lr.csv"),
    C("csv-wrong-header", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", "a,b\n0,1\n"), contains="lr.csv"),
    C("csv-utf16", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", UTF16_CSV), contains="lr.csv"),
    C("csv-binary", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", BINARY), contains="lr.csv"),
    C("csv-field-over-limit", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", LONG_FIELD), contains="lr.csv"),
    C("csv-ragged", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", "step,lr\n0,1e-3\n1\n"), contains="lr.csv:3"),
    C("csv-lr-nan", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", "step,lr\n0,nan\n"), contains="lr.csv"),
    C("csv-lr-inf", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", "step,lr\n0,inf\n"), contains="lr.csv"),
    C("csv-lr-negative", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", "step,lr\n0,-1\n"), contains="lr.csv"),
    C("csv-steps-unsorted", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", "step,lr\n1,1\n0,1\n"), contains="lr.csv"),
    C("csv-steps-duplicate", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", "step,lr\n0,1\n0,1\n"), contains="lr.csv"),
    C("csv-step-fractional", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", "step,lr\n0.5,1\n"), contains="lr.csv"),
    C("csv-step-boolean", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", "step,lr\ntrue,1\n"), contains="lr.csv"),
    C("csv-nul-bytes", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", "step,lr\n0,1e-3\x00\n"), contains="lr.csv"),
    C("csv-step-huge", *SHOW, "{tmp}/lr.csv", setup=write("lr.csv", "step,lr\n99999999999999999999,1\n")),
    C("csv-at-past-table", *SHOW, "{tmp}/lr.csv", "--at", "5", setup=write("lr.csv", "step,lr\n0,1\n1,1\n")),
    C("csv-name-markup-close", *SHOW, "{tmp}/a[/bold]b.csv", contains="a[/bold]b.csv"),
    C("csv-name-markup-link", *SHOW, "{tmp}/[link=x]y.csv", contains="[link=x]y.csv"),
    C("csv-name-markup-dir", *SHOW, "{tmp}/[red]/lr.csv", contains="[red]/lr.csv"),
    C("curve-missing", *FIT, contains="c.csv"),
    C("curve-folder", *FIT, setup=write("c.csv", None), contains="c.csv"),
    C("curve-empty", *FIT, setup=curve(text=""), contains="c.csv"),
    C("curve-header-only", *FIT, setup=curve(text="step,loss,lr\n"), contains="c.csv"),
    C("curve-wrong-header", *FIT, setup=curve(text="s,l\n0,1\n"), contains="c.csv"),
    C("curve-utf16", *FIT, setup=curve(text=GOOD_CURVE.encode("utf-16")), contains="c.csv"),
    C("curve-binary", *FIT, setup=curve(text=BINARY), contains="c.csv"),
    C("curve-field-over-limit", *FIT, setup=curve(text="step,loss\n0," + "1" * 200_000 + "\n"), contains="c.csv"),
    C("curve-ragged", *FIT, setup=curve(text="step,loss,lr\n0,3,1e-3\n1,3\n"), contains="c.csv:3"),
    C("curve-loss-nan", *FIT, setup=curve(text="step,loss,lr\n0,nan,1e-3\n1,3,1e-3\n"), contains="c.csv"),
    C("curve-loss-inf", *FIT, setup=curve(text="step,loss,lr\n0,inf,1e-3\n1,3,1e-3\n"), contains="c.csv"),
    C("curve-loss-negative", *FIT, setup=curve(text="step,loss,lr\n0,-3,1e-3\n1,3,1e-3\n"), contains="c.csv"),
    C("curve-loss-zero", *FIT, setup=curve(text="step,loss,lr\n0,0,1e-3\n1,3,1e-3\n"), contains="c.csv"),
    C("curve-steps-unsorted", *FIT, setup=curve(text="step,loss,lr\n1,3,1e-3\n0,3,1e-3\n"), contains="c.csv"),
    C("curve-steps-duplicate", *FIT, setup=curve(text="step,loss,lr\n0,3,1e-3\n0,3,1e-3\n"), contains="c.csv"),
    C("curve-step-negative", *FIT, setup=curve(text="step,loss,lr\n-1,3,1e-3\n0,3,1e-3\n"), contains="c.csv"),
    C("curve-step-boolean", *FIT, setup=curve(text="step,loss,lr\nTrue,3,1e-3\n"), contains="c.csv"),
    C("curve-step-int64-overflow", *FIT, setup=curve(text="step,loss,lr\n100000000000000000000,3,1e-3\n")),
    C("curve-one-point", *FIT, setup=curve(text="step,loss,lr\n0,3.0,1e-3\n"), contains="c.csv"),
    C("curve-lr-sparse", *FIT, setup=curve(text=sparse_curve([0, 10, 20])), contains="sparse"),
    C("curve-lr-gap", *FIT, setup=curve(text="step,loss,lr\n0,3,1e-3\n1,2.9,\n2,2.8,1e-3\n"), contains="c.csv"),
    C("curve-no-lr", *FIT, setup=curve(text=sparse_curve([0, 1, 2], lr=False)), contains="c.csv"),
    C("curve-lr-all-zero", *FIT, setup=curve(text="step,loss,lr\n0,3,0\n1,2.9,0\n2,2.8,0\n"), contains="c.csv"),
    C("curve-lr-nan", *FIT, setup=curve(text="step,loss,lr\n0,3,nan\n1,2.9,1e-3\n"), contains="c.csv"),
    C("curve-bad-sidecar", *FIT, setup=both(curve(text=sparse_curve([5, 10], lr=False)), write("c.lr.csv", BINARY))),
    C("curve-name-markup", "fit", "{tmp}/[/]c.csv", "--out", "{tmp}/fit.json", contains="[/]c.csv"),
    C(
        "curve-same-name-twice",
        "fit",
        "{tmp}/a/c.csv",
        "{tmp}/b/c.csv",
        "--out",
        "{tmp}/fit.json",
        setup=both(write("a/c.csv", GOOD_CURVE), write("b/c.csv", GOOD_CURVE)),
        contains="c",
    ),
    C(
        "jsonl-step-true",
        "fit",
        "{tmp}/c.jsonl",
        "--law",
        "momentum",
        "--out",
        "{tmp}/fit.json",
        setup=write(
            "c.jsonl", jsonl({"step": False, "loss": 3.0, "lr": 1e-3}, {"step": True, "loss": 2.9, "lr": 1e-3})
        ),
        contains="c.jsonl",
    ),
    C(
        "jsonl-loss-true",
        "fit",
        "{tmp}/c.jsonl",
        "--out",
        "{tmp}/fit.json",
        setup=write("c.jsonl", jsonl({"step": 0, "loss": True, "lr": 1e-3})),
        contains="c.jsonl",
    ),
    C(
        "jsonl-loss-nan",
        "fit",
        "{tmp}/c.jsonl",
        "--out",
        "{tmp}/fit.json",
        setup=write("c.jsonl", jsonl('{"step": 0, "loss": NaN, "lr": 1e-3}')),
        contains="c.jsonl",
    ),
    C(
        "jsonl-not-objects",
        "fit",
        "{tmp}/c.jsonl",
        "--out",
        "{tmp}/fit.json",
        setup=write("c.jsonl", jsonl([0, 3.0], [1, 2.9])),
        contains="c.jsonl",
    ),
    C(
        "jsonl-deeply-nested",
        "fit",
        "{tmp}/c.jsonl",
        "--out",
        "{tmp}/fit.json",
        setup=write("c.jsonl", DEEP + "\n"),
        contains="c.jsonl",
    ),
    C(
        "jsonl-invalid",
        "fit",
        "{tmp}/c.jsonl",
        "--out",
        "{tmp}/fit.json",
        setup=write("c.jsonl", '{"step": 0, "loss": \n'),
        contains="c.jsonl",
    ),
    C(
        "jsonl-utf16",
        "fit",
        "{tmp}/c.jsonl",
        "--out",
        "{tmp}/fit.json",
        setup=write("c.jsonl", jsonl({"step": 0, "loss": 3.0}).encode("utf-16")),
        contains="c.jsonl",
    ),
    C(
        "jsonl-step-int64-overflow",
        "fit",
        "{tmp}/c.jsonl",
        "--out",
        "{tmp}/fit.json",
        setup=write("c.jsonl", jsonl({"step": 10**20, "loss": 3.0, "lr": 1e-3})),
        contains="c.jsonl",
    ),
    C(
        "jsonl-lr-string",
        "fit",
        "{tmp}/c.jsonl",
        "--out",
        "{tmp}/fit.json",
        setup=write("c.jsonl", jsonl({"step": 0, "loss": 3.0, "lr": "fast"})),
        contains="c.jsonl",
    ),
    C(
        "curve-step-1e12-with-schedule",
        "fit",
        "{tmp}/c.csv",
        "--schedule",
        "constant:peak=1e-3",
        "--out",
        "{tmp}/fit.json",
        setup=curve(text="step,loss\n1,3.0\n1000000000000,2.0\n"),
        sub=True,
    ),
    C(
        "curve-1e6-rows-mpl",  # the multi-power law's quadrature limit: a clean error, fast
        "fit",
        "{tmp}/long.csv",
        "--law",
        "mpl",
        "--out",
        "{tmp}/fit.json",
        setup=long_curve,
        sub=True,
        timeout=40,
    ),
    C("fit-schedule-bad", *FIT, "--schedule", "nope:x=1", setup=curve(), contains="nope"),
    C("fit-schedule-count", *FIT, "--schedule", COS, "--schedule", COS, setup=curve(), contains="--schedule"),
    C("fit-schedule-too-short", *FIT, "--schedule", COS, setup=curve(), contains="100"),
    C("fit-n-params-count", *FIT, "--n-params", "1e6", "--n-params", "2e6", setup=curve(), contains="--n-params"),
    C("fit-smooth-0", *FIT, "--smooth", "0", setup=curve(), contains="--smooth"),
    C("fit-smooth-too-long", *FIT, "--smooth", "1000", setup=curve(), contains="1000"),
    C("fit-huber-nan", *FIT, "--huber-delta", "nan", setup=curve(), contains="--huber-delta"),
    C("fit-huber-negative", *FIT, "--huber-delta", "-1", setup=curve(), contains="--huber-delta"),
    C("fit-lam-2", *FIT, "--lam", "2", setup=curve(), contains="--lam"),
    C("fit-lam-nan", *FIT, "--lam", "nan", setup=curve(), contains="--lam"),
    C("fit-lam-word", *FIT, "--lam", "big", setup=curve(), contains="--lam"),
    C("fit-gamma-wrong-law", *FIT, "--gamma", "0.5", setup=curve(), contains="--gamma"),
    C(
        "fit-gamma-out-of-range",
        "fit",
        "{tmp}/c.csv",
        "--law",
        "mpl-qexp",
        "--gamma",
        "5",
        "--out",
        "{tmp}/fit.json",
        setup=curve(),
        contains="--gamma",
    ),
    C(
        "fit-law-unknown",
        "fit",
        "{tmp}/c.csv",
        "--law",
        "nope",
        "--out",
        "{tmp}/fit.json",
        setup=curve(),
        contains="nope",
    ),
    C("fit-law-markup", "fit", "{tmp}/c.csv", "--law", "[/]", "--out", "{tmp}/fit.json", setup=curve(), contains="[/]"),
    C(
        "fit-method-unknown",
        "fit",
        "{tmp}/c.csv",
        "--law",
        "momentum",
        "--method",
        "sgd",
        "--out",
        "{tmp}/fit.json",
        setup=curve(),
        contains="sgd",
    ),
    C("fit-warmup-unknown", *FIT, "--warmup", "nope", setup=curve(), contains="nope"),
    C("fit-missing-out-click", "fit", "{tmp}/c.csv", setup=curve(), contains="--out"),
]

FIT_FILE_CASES = [
    C("fitfile-missing", *PREDICT, contains="fit.json"),
    C("fitfile-folder", *PREDICT, setup=write("fit.json", None), contains="fit.json"),
    C("fitfile-empty", *PREDICT, setup=write("fit.json", ""), contains="fit.json"),
    C("fitfile-not-json", *PREDICT, setup=write("fit.json", "hello"), contains="fit.json"),
    C("fitfile-utf16", *PREDICT, setup=raw_fit(lambda d: json.dumps(d).encode("utf-16")), contains="fit.json"),
    C("fitfile-binary", *PREDICT, setup=write("fit.json", BINARY), contains="fit.json"),
    C("fitfile-list", *PREDICT, setup=write("fit.json", "[1, 2]"), contains="fit.json"),
    C("fitfile-null", *PREDICT, setup=write("fit.json", "null"), contains="fit.json"),
    C("fitfile-deeply-nested", *PREDICT, setup=write("fit.json", DEEP), contains="fit.json"),
    C(
        "fitfile-cov-deeply-nested",
        *PREDICT,
        setup=raw_fit(lambda d: json.dumps({**d, "cov": None}).replace('"cov": null', '"cov": ' + DEEP)),
        contains="fit.json",
    ),
    C("fitfile-wrong-format", *PREDICT, setup=fit_file(put("format", "other")), contains="fit.json"),
    C("fitfile-wrong-version", *PREDICT, setup=fit_file(put("version", 99)), contains="version"),
    C("fitfile-version-string", *PREDICT, setup=fit_file(put("version", "3")), contains="version"),
    C("fitfile-version-list", *PREDICT, setup=fit_file(put("version", [3])), contains="version"),
    C("fitfile-params-missing", *PREDICT, setup=fit_file(drop("params")), contains="params"),
    C("fitfile-param-missing", *PREDICT, setup=fit_file(drop("params.L0")), contains="L0"),
    C("fitfile-params-list", *PREDICT, setup=fit_file(put("params", [1, 2, 3, 4])), contains="params"),
    C("fitfile-param-nan", *PREDICT, setup=fit_file(put("params.L0", float("nan"))), contains="L0"),
    C("fitfile-param-inf", *PREDICT, setup=fit_file(put("params.L0", float("inf"))), contains="L0"),
    C("fitfile-param-string", *PREDICT, setup=fit_file(put("params.L0", "abc")), contains="L0"),
    C("fitfile-param-1e300", *PREDICT, setup=fit_file(put("params.A", 1e300)), contains="A"),
    C("fitfile-param-negative", *PREDICT, setup=fit_file(put("params.alpha", -1.0)), contains="alpha"),
    C("fitfile-law-unknown", *PREDICT, setup=fit_file(put("law", "nope")), contains="nope"),
    C("fitfile-law-markup", *PREDICT, setup=fit_file(put("law", "[/bold]")), contains="[/bold]"),
    C("fitfile-options-string", *PREDICT, setup=fit_file(put("options", "x")), contains="options"),
    C("fitfile-options-unknown", *PREDICT, setup=fit_file(put("options", {"foo": 1})), contains="foo"),
    C("fitfile-cov-wrong-shape", *PREDICT, setup=fit_file(put("cov", [[1.0]])), contains="cov"),
    C("fitfile-cov-ragged", *PREDICT, setup=fit_file(put("cov", [[1.0, 2.0], [3.0]])), contains="cov"),
    C("fitfile-cov-nan", *PREDICT, setup=fit_file(put("cov", [[float("nan")] * 4] * 4)), contains="cov"),
    C("fitfile-cov-strings", *PREDICT, setup=fit_file(put("cov", [["a"] * 4] * 4)), contains="cov"),
    C("fitfile-resid-negative", *PREDICT, setup=fit_file(put("resid_std", -1.0)), contains="resid_std"),
    C("fitfile-resid-nan", *PREDICT, setup=fit_file(put("resid_std", float("nan"))), contains="resid_std"),
    C("fitfile-resid-string", *PREDICT, setup=fit_file(put("resid_std", "x")), contains="resid_std"),
    C("fitfile-huber-missing", *PREDICT, setup=fit_file(drop("huber_delta")), contains="huber_delta"),
    C("fitfile-info-string", *PREDICT, setup=fit_file(put("info", "abc")), contains="info"),
    C("fitfile-info-list", *PREDICT, setup=fit_file(put("info", [1, 2])), contains="info"),
    C("fitfile-info-number", *PREDICT, setup=fit_file(put("info", 5)), contains="info"),
    C("fitfile-curves-string", *PREDICT, setup=fit_file(put("curves", "abc")), contains="curves"),
    C("fitfile-curves-list", *PREDICT, setup=fit_file(put("curves", [1])), contains="curves"),
    C("fitfile-objective-string", *PREDICT, setup=fit_file(put("objective", "abc")), contains="objective"),
    C("fitfile-objective-list", *PREDICT, setup=fit_file(put("objective", [1])), contains="objective"),
    C(
        "fitfile-name-markup",
        "predict",
        "{tmp}/[bold]fit.json",
        "--schedule",
        COS,
        "--steps",
        "100",
        contains="[bold]fit.json",
    ),
    C("predict-steps-1", *PREDICT[:-1], "1", setup=fit_file(), contains="--steps"),
    C(
        "predict-steps-1e10",
        "predict",
        "{tmp}/fit.json",
        "--schedule",
        "constant:peak=3e-4,warmup=20",
        "--steps",
        "10000000000",
        setup=fit_file(),
        sub=True,
    ),
    C("predict-at-past-steps", *PREDICT, "--at", "400", setup=fit_file(), contains="--at"),
    C("predict-at-garbage", *PREDICT, "--at", "x", setup=fit_file(), contains="--at"),
    C("predict-at-int64-overflow", *PREDICT, "--at", "99999999999999999999", setup=fit_file(), contains="--at"),
    C(
        "predict-schedule-markup",
        "predict",
        "{tmp}/fit.json",
        "--schedule",
        "[bold]x",
        "--steps",
        "10",
        setup=fit_file(),
        contains="[bold]x",
    ),
    C(
        "predict-schedule-too-short",
        "predict",
        "{tmp}/fit.json",
        "--schedule",
        COS,
        "--steps",
        "400",
        setup=fit_file(),
        contains="--steps",
    ),
    C(
        "predict-schedule-csv-missing",
        "predict",
        "{tmp}/fit.json",
        "--schedule",
        "{tmp}/lr.csv",
        "--steps",
        "10",
        setup=fit_file(),
        contains="lr.csv",
    ),
    C("predict-plot-unknown-extension", *PREDICT, "--plot", "{tmp}/x.xyz", setup=fit_file(), contains="x.xyz"),
    C("optimize-peak-1e300", *OPTIMIZE[:-1], "1e300", setup=fit_file(), contains="--peak-lr"),
    C("optimize-peak-nan", *OPTIMIZE[:-1], "nan", setup=fit_file(), contains="--peak-lr"),
    C("optimize-peak-inf", *OPTIMIZE[:-1], "inf", setup=fit_file(), contains="--peak-lr"),
    C("optimize-peak-negative", *OPTIMIZE[:-1], "-1", setup=fit_file(), contains="--peak-lr"),
    C(
        "optimize-steps-1",
        "optimize",
        "{tmp}/fit.json",
        "--steps",
        "1",
        "--peak-lr",
        "3e-4",
        setup=fit_file(),
        contains="--steps",
    ),
    C(
        "optimize-steps-1e10",
        "optimize",
        "{tmp}/fit.json",
        "--steps",
        "10000000000",
        "--peak-lr",
        "3e-4",
        setup=fit_file(),
        sub=True,
        timeout=HANG_TIMEOUT_S,
    ),
    C("optimize-family-unknown", *OPTIMIZE, "--family", "nope", setup=fit_file(), contains="nope"),
    C("optimize-family-markup", *OPTIMIZE, "--family", "[bold]x", setup=fit_file(), contains="[bold]x"),
    C("optimize-warmup-negative", *OPTIMIZE, "--warmup", "-5", setup=fit_file(), contains="warmup"),
    C("optimize-warmup-huge", *OPTIMIZE, "--warmup", "1000000000000", setup=fit_file(), contains="warmup"),
    C("optimize-info-warmup-string", *OPTIMIZE, setup=fit_file(put("info.warmup", "abc")), contains="warmup"),
    C("optimize-info-warmup-nan", *OPTIMIZE, setup=fit_file(put("info.warmup", float("nan"))), contains="warmup"),
    C("optimize-info-string", *OPTIMIZE, setup=fit_file(put("info", "abc")), contains="info"),
    C(
        "optimize-out-csv-folder",
        *OPTIMIZE,
        "--out-csv",
        "{tmp}/adir",
        setup=both(fit_file(), files(adir=None)),
        contains="adir",
    ),
    C("optimize-out-csv-dev-full", *OPTIMIZE, "--out-csv", "/dev/full", setup=fit_file(), contains="/dev/full"),
    C(
        "optimize-plot-unknown-extension",
        *OPTIMIZE,
        "--out-csv",
        "{tmp}/best.csv",
        "--plot",
        "{tmp}/x.xyz",
        setup=fit_file(),
        contains="x.xyz",
    ),
]

OUTPUT_CASES = [
    C("fit-out-onto-folder", *FIT[:-1], "{tmp}/adir", setup=both(curve(), files(adir=None)), contains="adir"),
    C(
        "fit-out-read-only-folder",
        *FIT[:-1],
        RO_DIR + "/fit.json",
        setup=both(curve(), read_only_folder),
        contains="fit.json",
    ),
    C(
        "fit-out-under-a-file",
        *FIT[:-1],
        "{tmp}/afile/fit.json",
        setup=both(curve(), write("afile", "x")),
        contains="afile",
    ),
    C("fit-out-dev-full", *FIT[:-1], "/dev/full", setup=curve(), contains="/dev/full"),
    C("fit-fails-keeps-existing-out", *FIT, setup=both(curve(text="step,loss\n"), fit_file()), contains="c.csv"),
    C("fit-plot-unknown-extension", *FIT, "--plot", "{tmp}/x.xyz", setup=curve(), contains="x.xyz"),
    C("fit-plot-onto-folder", *FIT, "--plot", "{tmp}/adir", setup=both(curve(), files(adir=None)), contains="adir"),
    C("train-out-onto-a-file", *RUN_ARGS, "--out", "{tmp}/afile", setup=write("afile", "keep"), contains="afile"),
    C("train-out-under-a-file", *RUN_ARGS, "--out", "{tmp}/afile/run", setup=write("afile", "keep"), contains="afile"),
    C("train-out-read-only", *RUN_ARGS, "--out", RO_DIR + "/run", setup=read_only_folder, contains="run"),
    C(
        "demo-out-onto-a-file",
        "demo",
        "--parts",
        "schedules",
        "--out",
        "{tmp}/afile",
        setup=write("afile", "keep"),
        contains="afile",
    ),
    C("demo-parts-unknown", "demo", "--parts", "nope", "--out", "{tmp}/demo", contains="--parts"),
    C("demo-parts-empty", "demo", "--parts", ",", "--out", "{tmp}/demo", contains="--parts"),
    C("demo-parts-markup", "demo", "--parts", "[red]x", "--out", "{tmp}/demo", contains="[red]x"),
    C("demo-steps-0", "demo", "--parts", "schedules", "--steps", "0", "--out", "{tmp}/demo", contains="--steps"),
    C(
        "demo-steps-negative",
        "demo",
        "--parts",
        "schedules",
        "--steps",
        "-5",
        "--out",
        "{tmp}/demo",
        contains="--steps",
    ),
    C("demo-steps-1e10", "demo", "--parts", "schedules", "--steps", "10000000000", "--out", "{tmp}/demo", sub=True),
]

CONFIG_CASES = [
    C("cfg-missing", *TRAIN[:1], "{tmp}/nope.toml", *TRAIN[1:], contains="nope.toml"),
    C("cfg-folder", "train", "{tmp}/cfg.toml", *TRAIN[1:], setup=write("cfg.toml", None), contains="cfg.toml"),
    C(
        "cfg-utf16",
        "train",
        "{tmp}/cfg.toml",
        *TRAIN[1:],
        setup=write("cfg.toml", "steps = 2\n".encode("utf-16")),
        contains="cfg.toml",
    ),
    C("cfg-binary", "train", "{tmp}/cfg.toml", *TRAIN[1:], setup=write("cfg.toml", BINARY), contains="cfg.toml"),
    C(
        "cfg-invalid-toml",
        "train",
        "{tmp}/cfg.toml",
        *TRAIN[1:],
        setup=write("cfg.toml", "steps = = 3\n"),
        contains="cfg.toml",
    ),
    C(
        "cfg-deeply-nested",
        "train",
        "{tmp}/cfg.toml",
        *TRAIN[1:],
        setup=write("cfg.toml", "x = " + DEEP + "\n"),
        contains="cfg.toml",
    ),
    C(
        "cfg-steps-string",
        "train",
        "{tmp}/cfg.toml",
        *TRAIN[1:],
        setup=write("cfg.toml", 'steps = "three"\n'),
        contains="steps",
    ),
    C(
        "cfg-steps-bool",
        "train",
        "{tmp}/cfg.toml",
        *TRAIN[1:],
        setup=write("cfg.toml", "steps = true\n"),
        contains="steps",
    ),
    C(
        "cfg-unknown-key",
        "train",
        "{tmp}/cfg.toml",
        *TRAIN[1:],
        setup=write("cfg.toml", "stpes = 3\n"),
        contains="stpes",
    ),
    C(
        "cfg-unknown-key-markup",
        "train",
        "{tmp}/cfg.toml",
        *TRAIN[1:],
        setup=write("cfg.toml", '"[bold]x" = 1\n'),
        contains="[bold]x",
    ),
    C(
        "cfg-model-not-table",
        "train",
        "{tmp}/cfg.toml",
        *TRAIN[1:],
        setup=write("cfg.toml", "model = 3\n"),
        contains="model",
    ),
    C(
        "cfg-model-unknown-key",
        "train",
        "{tmp}/cfg.toml",
        *TRAIN[1:],
        setup=write("cfg.toml", "[model]\nx = 1\n"),
        contains="model.x",
    ),
    C(
        "cfg-optimizer-options-not-table",
        "train",
        "{tmp}/cfg.toml",
        *TRAIN[1:],
        setup=write("cfg.toml", "optimizer_options = 3\n"),
        contains="optimizer_options",
    ),
    C(
        "cfg-steps-beyond-int64",
        "train",
        "{tmp}/cfg.toml",
        *TRAIN[1:],
        setup=write("cfg.toml", "steps = 99999999999999999999\n"),
        contains="steps",
        sub=True,
        timeout=HANG_TIMEOUT_S,
    ),
    C("cfg-name-markup", "train", "{tmp}/[/]x.toml", *TRAIN[1:], contains="[/]x.toml"),
]

S2 = (*TRAIN, "--steps", "2")  # a config that trains 2 steps if the bad value is accepted

SET_CASES = [
    C("set-no-equals", *S2, "--set", "steps", contains="--set"),
    C("set-empty-key", *S2, "--set", "=3", contains="--set"),
    C("set-unknown-key", *S2, "--set", "stpes=3", contains="stpes"),
    C("set-steps-1e10-float", *TRAIN, "--set", "steps=1e10", contains="steps"),
    C("set-steps-0", *TRAIN, "--set", "steps=0", contains="steps"),
    C(
        "set-steps-10000000000",
        *TRAIN,
        "--set",
        "steps=10000000000",
        contains="steps",
        sub=True,
        timeout=HANG_TIMEOUT_S,
    ),
    C("flag-steps-10000000000", *TRAIN, "--steps", "10000000000", contains="steps", sub=True, timeout=HANG_TIMEOUT_S),
    C("set-tokens-negative", *TRAIN, "--set", "tokens=-1", contains="tokens"),
    C(
        "set-seq-len-100000",
        *S2,
        "--set",
        "data='{tmp}/big.txt'",
        "--set",
        "seq_len=100000",
        setup=big_corpus,
        contains="seq_len",
        sub=True,
        timeout=HANG_TIMEOUT_S,
    ),
    C("set-n-embd-1e6", *S2, "--set", "model.n_embd=1000000", contains="n_embd", sub=True),
    C("flag-batch-size-1e7", *S2, "--batch-size", "10000000", contains="batch", sub=True),
    C("set-n-layer-0", *S2, "--set", "model.n_layer=0", contains="n_layer"),
    C("set-n-head-3", *S2, "--set", "model.n_head=3", contains="n_head"),
    C("set-vocab-0", *S2, "--set", "model.vocab_size=0", contains="vocab_size"),
    C("set-vocab-10-byte-data", *S2, "--set", "model.vocab_size=10", contains="vocab_size"),
    C("set-vocab-negative", *S2, "--set", "model.vocab_size=-5", contains="vocab_size"),
    C("set-preset-unknown", *S2, "--preset", "huge", contains="huge"),
    C("set-weight-decay-inf", *S2, "--set", "weight_decay=inf", contains="weight_decay"),
    C("set-weight-decay-nan", *S2, "--set", "weight_decay=nan", contains="weight_decay"),
    C("set-divergence-factor-nan", *S2, "--set", "divergence_factor=nan", contains="divergence_factor"),
    C("set-grad-clip-nan", *S2, "--set", "grad_clip=nan", contains="grad_clip"),
    C("set-val-fraction-nan", *S2, "--set", "val_fraction=nan", contains="val_fraction"),
    C("set-val-fraction-1", *S2, "--set", "val_fraction=1", contains="val_fraction"),
    C("set-batch-size-0", *TRAIN, "--steps", "2", "--set", "batch_size=0", contains="batch_size"),
    C("set-grad-accum-not-dividing", *S2, "--set", "grad_accum=3", contains="grad_accum"),
    C("set-eval-every-0", *S2, "--set", "eval_every=0", contains="eval_every"),
    C("set-keep-last-0", *S2, "--set", "keep_last=0", contains="keep_last"),
    C("set-seed-negative", *S2, "--seed", "-1", contains="seed"),
    C("set-seed-beyond-int64", *S2, "--set", "seed=99999999999999999999", contains="seed"),
    C("set-device-cuda", *S2, "--set", "device='cuda'", contains="cuda"),
    C("set-device-cuda-7", *S2, "--set", "device='cuda:7'", contains="cuda:7"),
    C("set-device-tpu", *S2, "--set", "device='tpu'", contains="tpu"),
    C("set-device-empty", *S2, "--set", "device=''", contains="device"),
    C("set-device-markup", *S2, "--set", "device='[bold]x'", contains="[bold]x"),
    C("set-precision-fp8", *S2, "--set", "precision='fp8'", contains="fp8"),
    C("set-optimizer-unknown", *S2, "--optimizer", "sgd9", contains="sgd9"),
    C("set-optimizer-markup", *S2, "--optimizer", "[/]", contains="[/]"),
    C("set-capturable-true", *S2, "--set", "optimizer_options.capturable=true", contains="capturable"),
    C("set-betas-2-3", *S2, "--set", "optimizer_options.betas=[2,3]", contains="beta"),
    C("set-betas-string", *S2, "--set", "optimizer_options.betas='x'", contains="beta"),
    C("set-optimizer-option-foo", *S2, "--set", "optimizer_options.foo=1", contains="foo"),
    C("set-optimizer-option-lr", *S2, "--set", "optimizer_options.lr=1", contains="lr"),
    C("set-optimizer-option-eps-nan", *S2, "--set", "optimizer_options.eps=nan", contains="eps"),
    C("set-probe-unknown", *S2, "--probe", "nope", contains="nope"),
    C("set-probe-gns-without-accum", *S2, "--probe", "gns", contains="gns"),
    C("set-probe-every-0", *S2, "--probe", "updates", "--probe-every", "0", contains="probe_every"),
    C("set-schedule-nan", *S2, "--schedule", "cosine:peak=nan,total=10", contains="peak"),
    C("set-schedule-unbounded-no-steps", *TRAIN, "--schedule", "constant:peak=1e-3", contains="steps"),
    C("set-schedule-csv-missing", *S2, "--schedule", "{tmp}/lr.csv", contains="lr.csv"),
    C("set-schedule-markup", *S2, "--schedule", "[red]x", contains="[red]x"),
    C("data-missing", *S2, "--set", "data='{tmp}/nope.txt'", contains="nope.txt"),
    C("data-markup", *S2, "--set", "data='{tmp}/[red]x.txt'", contains="[red]x.txt"),
    C("data-empty-file", *S2, "--set", "data='{tmp}/empty.txt'", setup=write("empty.txt", ""), contains="empty.txt"),
    C("data-10-bytes", *S2, "--set", "data='{tmp}/ten.txt'", setup=write("ten.txt", "0123456789"), contains="ten.txt"),
    C("data-empty-folder", *S2, "--set", "data='{tmp}/dd'", setup=files(dd=None), contains="dd"),
    C("data-bin-odd-size", *S2, "--set", "data='{tmp}/t.bin'", setup=write("t.bin", b"\x01\x02\x03"), contains="t.bin"),
    C(
        "data-bin-tokens-past-vocab",
        *S2,
        "--set",
        "data='{tmp}/t.bin'",
        setup=write("t.bin", b"\xff\xff" * 20_000),
        contains="t.bin",
    ),
    C(
        "data-bin-val-missing",
        *S2,
        "--set",
        "data='{tmp}/t.bin'",
        "--set",
        "val_data='{tmp}/v.bin'",
        setup=write("t.bin", b"\x01\x00" * 20_000),
        contains="v.bin",
    ),
    C("data-dev-zero", *S2, "--set", "data='/dev/zero'", contains="/dev/zero", sub=True, timeout=HANG_TIMEOUT_S),
    C(
        "data-dev-urandom",
        *S2,
        "--set",
        "data='/dev/urandom'",
        contains="/dev/urandom",
        sub=True,
        timeout=HANG_TIMEOUT_S,
    ),
    C("resume-without-out", *S2, "--resume", contains="--out"),
    C("resume-empty-out", *S2, "--resume", "--out", "{tmp}/E", setup=files(E=None), contains="checkpoint"),
    C("train-unknown-option-click", *S2, "--stpes", "3", contains="--stpes"),
]

FIND_LR_CASES = [
    C("findlr-lr-max-inf", *FIND, "--steps", "5", "--lr-max", "inf", contains="--lr-max"),
    C("findlr-lr-max-nan", *FIND, "--steps", "5", "--lr-max", "nan", contains="--lr-max"),
    C("findlr-lr-min-0", *FIND, "--steps", "5", "--lr-min", "0", contains="--lr-min"),
    C("findlr-lr-min-nan", *FIND, "--steps", "5", "--lr-min", "nan", contains="--lr-min"),
    C("findlr-lr-min-above-max", *FIND, "--steps", "5", "--lr-min", "1", "--lr-max", "0.1", contains="--lr-"),
    C("findlr-steps-0", *FIND, "--steps", "0", contains="--steps"),
    C("findlr-steps-1", *FIND, "--steps", "1", contains="--steps"),
    C("findlr-method-unknown", *FIND, "--method", "nope", contains="nope"),
    C("findlr-method-markup", *FIND, "--method", "[/]", contains="[/]"),
    C("findlr-k-0", *FIND, "--method", "catapult", "--k", "0", contains="--k"),
    C(
        "findlr-k-100000",
        *FIND,
        "--method",
        "catapult",
        "--k",
        "100000",
        contains="--k",
        sub=True,
        timeout=HANG_TIMEOUT_S,
    ),
    C("findlr-catapult-lr-min-inf", *FIND, "--method", "catapult", "--lr-min", "inf", contains="--lr-min"),
    C("findlr-config-missing", "find-lr", "{tmp}/nope.toml", *FIND[1:], contains="nope.toml"),
    C("findlr-device-tpu", *FIND, "--steps", "5", "--set", "device='tpu'", contains="tpu"),
    C("findlr-plot-unknown-extension", *FIND, "--steps", "5", "--plot", "{tmp}/x.xyz", contains="x.xyz"),
    C(
        "findlr-plot-onto-folder",
        *FIND,
        "--steps",
        "5",
        "--plot",
        "{tmp}/adir",
        setup=files(adir=None),
        contains="adir",
    ),
]

RUN_FOLDER_CASES = [
    C("rerun-without-resume", *RUN_ARGS, "--out", "{tmp}/D", setup=run_folder(), contains="resume"),
    C(
        "rerun-that-fails",
        *RUN_ARGS,
        "--out",
        "{tmp}/D",
        "--set",
        "optimizer_options.foo=1",
        setup=run_folder(),
    ),
    C(
        "resume-that-fails",
        *RUN_ARGS[:-4],
        "--steps",
        "4",
        "--schedule",
        "constant:peak=1e-3",
        "--set",
        "optimizer_options.foo=1",
        "--out",
        "{tmp}/D",
        "--resume",
        setup=run_folder(),
        contains="foo",
    ),
    C(
        "resume-other-optimizer",
        *RUN_ARGS[:-4],
        "--steps",
        "4",
        "--schedule",
        "constant:peak=1e-3",
        "--optimizer",
        "lion",
        "--out",
        "{tmp}/D",
        "--resume",
        setup=run_folder(),
        contains="lion",
    ),
    C(
        "resume-other-seq-len",
        *RUN_ARGS[:-4],
        "--steps",
        "4",
        "--schedule",
        "constant:peak=1e-3",
        "--set",
        "seq_len=64",
        "--out",
        "{tmp}/D",
        "--resume",
        setup=run_folder(),
        contains="seq_len",
    ),
    C(
        "resume-truncated-checkpoint",
        *RUN_ARGS[:-4],
        "--steps",
        "4",
        "--schedule",
        "constant:peak=1e-3",
        "--out",
        "{tmp}/D",
        "--resume",
        setup=run_folder(truncate_checkpoint),
        contains="ckpt-00000002.pt",
    ),
    C(
        "resume-pickle-with-code",
        *RUN_ARGS[:-4],
        "--steps",
        "4",
        "--schedule",
        "constant:peak=1e-3",
        "--out",
        "{tmp}/D",
        "--resume",
        setup=run_folder(evil_checkpoint),
        contains="ckpt-00000002.pt",
        forbid=("weights_only=False", "set to `False`", "likely succeed", "can still be loaded", "trusted source"),
        absent=("{tmp}/pwned",),
    ),
    C(
        "resume-negative-step",
        *RUN_ARGS[:-4],
        "--steps",
        "4",
        "--schedule",
        "constant:peak=1e-3",
        "--out",
        "{tmp}/D",
        "--resume",
        setup=run_folder(checkpoint_step(-5)),
        contains="step",
    ),
    C(
        "resume-step-past-run",
        *RUN_ARGS[:-4],
        "--steps",
        "4",
        "--schedule",
        "constant:peak=1e-3",
        "--out",
        "{tmp}/D",
        "--resume",
        setup=run_folder(checkpoint_step(10**9)),
        contains="step",
    ),
    C(
        "resume-step-string",
        *RUN_ARGS[:-4],
        "--steps",
        "4",
        "--schedule",
        "constant:peak=1e-3",
        "--out",
        "{tmp}/D",
        "--resume",
        setup=run_folder(checkpoint_step("x")),
        contains="step",
    ),
    C(
        "resume-checkpoint-not-a-dict",
        *RUN_ARGS[:-4],
        "--steps",
        "4",
        "--schedule",
        "constant:peak=1e-3",
        "--out",
        "{tmp}/D",
        "--resume",
        setup=run_folder(checkpoint_is([1, 2])),
        contains="ckpt-00000002.pt",
    ),
    C(
        "resume-checkpoint-empty",
        *RUN_ARGS[:-4],
        "--steps",
        "4",
        "--schedule",
        "constant:peak=1e-3",
        "--out",
        "{tmp}/D",
        "--resume",
        setup=run_folder(checkpoint_is(b"")),
        contains="ckpt-00000002.pt",
    ),
    C(
        "resume-checkpoint-is-a-folder",
        *RUN_ARGS[:-4],
        "--steps",
        "4",
        "--schedule",
        "constant:peak=1e-3",
        "--out",
        "{tmp}/D",
        "--resume",
        setup=run_folder(newest_checkpoint_is_a_folder),
        contains="ckpt-00000009.pt",
    ),
    C(
        "resume-metrics-is-a-folder",
        *RUN_ARGS[:-4],
        "--steps",
        "4",
        "--schedule",
        "constant:peak=1e-3",
        "--out",
        "{tmp}/D",
        "--resume",
        setup=run_folder(metrics_is_a_folder),
        contains="metrics.jsonl",
    ),
]

CLICK_CASES = [
    C("click-unknown-command", "nope", contains="nope"),
    C("click-show-without-spec", *SHOW, contains="spec"),
    C(
        "click-predict-without-steps",
        "predict",
        "{tmp}/fit.json",
        "--schedule",
        COS,
        setup=fit_file(),
        contains="--steps",
    ),
    C("click-optimize-peak-word", *OPTIMIZE[:-1], "high", setup=fit_file(), contains="--peak-lr"),
]

GRID_ROWS = "".join(
    f"{lr},{b},{2 + (i - 2) ** 2 / 10}\n" for b in (8, 16, 32) for i, lr in enumerate([1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2])
)
GRID = "lr,batch_size,loss\n" + GRID_ROWS
STEPS = "batch_size,steps\n64,4000\n128,2100\n256,1200\n512,800\n"
SURGE = ("surge", "{tmp}/g.csv")
STUDY_OK = """
name = "s"
optimizers = ["torch-adamw"]
max_batch_size = 8
pilot_share = 0.8
[budget]
steps = 1000
[base]
data = "{corpus}"
batch_size = 4
seq_len = 32
"""
STUDY = ("study", "{tmp}/s.toml", "--out", "{tmp}/o")


def study_file(old: str = "", new: str = "", text: str | None = None) -> Setup:
    """A study file: the valid one (on the cases' corpus) with ``old`` replaced by ``new``, or ``text``."""

    def setup(tmp: Path, assets: Assets) -> None:
        body = text if text is not None else STUDY_OK.replace(old, new)
        (tmp / "s.toml").write_text(body.replace("{corpus}", str(assets.corpus)))

    return setup


STUDY_CASES = [
    C("study-missing", *STUDY, contains="s.toml"),
    C("study-invalid-toml", *STUDY, setup=study_file(text="name = "), contains="invalid TOML"),
    C("study-unknown-key", *STUDY, setup=study_file('name = "s"', 'name = "s"\nnmae = 1'), contains="nmae"),
    C("study-no-budget", *STUDY, setup=study_file("[budget]\nsteps = 1000", ""), contains="budget"),
    C("study-budget-negative", *STUDY, setup=study_file("steps = 1000", "steps = -3"), contains="budget.steps"),
    C("study-budget-two-keys", *STUDY, setup=study_file("steps = 1000", "steps = 9\ntokens = 9"), contains="budget"),
    C("study-budget-huge", *STUDY, setup=study_file("steps = 1000", "steps = 10000000000000000"), contains="budget"),
    C("study-budget-too-small", *STUDY, setup=study_file("steps = 1000", "steps = 50"), contains="budget"),
    C("study-optimizer-unknown", *STUDY, setup=study_file('"torch-adamw"', '"sgdx"'), contains="sgdx"),
    C("study-optimizers-empty", *STUDY, setup=study_file('["torch-adamw"]', "[]"), contains="optimizers"),
    C("study-optimizers-twice", *STUDY, setup=study_file('"torch-adamw"]', '"lion", "lion"]'), contains="twice"),
    C("study-share-zero", *STUDY, setup=study_file("pilot_share = 0.8", "pilot_share = 0"), contains="pilot_share"),
    C("study-share-nan", *STUDY, setup=study_file("pilot_share = 0.8", "pilot_share = nan"), contains="pilot_share"),
    C("study-share-text", *STUDY, setup=study_file("pilot_share = 0.8", 'pilot_share = "a"'), contains="pilot_share"),
    C("study-max-batch-1", *STUDY, setup=study_file("max_batch_size = 8", "max_batch_size = 1"), contains="max_batch"),
    C("study-executor", *STUDY, setup=study_file('name = "s"', 'name = "s"\nexecutor = "slurm"'), contains="executor"),
    C("study-workers-0", *STUDY, "--workers", "0", setup=study_file(), contains="--workers"),
    C("study-name-empty", *STUDY, setup=study_file('name = "s"', 'name = ""'), contains="name"),
    C("study-name-control", *STUDY, setup=study_file('name = "s"', 'name = "s\\u0001"'), contains="printable"),
    C("study-max-below-base", *STUDY, setup=study_file("max_batch_size = 8", "max_batch_size = 3"), contains="[4,"),
    C("study-full-run-too-long", *STUDY, setup=study_file("steps = 1000", "steps = 100000000"), contains="limit"),
    C("study-base-missing", *STUDY, setup=study_file("[base]", '[base]\nfile = "nope.toml"'), contains="nope.toml"),
    C("study-base-bad-key", *STUDY, setup=study_file("[base]", "[base]\nbatchsize = 3"), contains="batchsize"),
    C("study-grad-accum", *STUDY, setup=study_file("[base]", "[base]\ngrad_accum = 2"), contains="grad_accum"),
    C(
        "study-odd-eval-batch",
        *STUDY,
        setup=study_file("[base]", "[base]\neval_batch_size = 5"),
        contains="base.eval_batch_size must be even",
    ),
    C(
        "study-eval-batch-above-max",
        *STUDY,
        setup=study_file("[base]", "[base]\neval_batch_size = 64"),
        contains="at most max_batch_size = 8, got 64",
    ),
    C(
        "study-out-onto-a-file",
        *STUDY[:3],
        "{tmp}/afile",
        setup=both(study_file(), write("afile", "x")),
        contains="afile",
    ),
    C("report-store-missing", "report", "{tmp}/s.toml", "--store", "{tmp}/no.db", setup=study_file(), contains="no.db"),
    C(
        "report-store-not-sqlite",
        "report",
        "{tmp}/s.toml",
        "--store",
        "{tmp}/r.db",
        "--out",
        "{tmp}/r.html",
        setup=both(study_file(), write("r.db", BINARY)),
        contains="r.db",
    ),
    C(
        "report-out-not-html",
        "report",
        "{tmp}/s.toml",
        "--store",
        "{tmp}/r.db",
        "--out",
        "{tmp}/r.txt",
        setup=both(study_file(), write("r.db", "")),
        contains="--out",
    ),
]


BATCH_CASES = [
    C("surge-no-input", "surge", contains="--store"),
    C(
        "surge-both-inputs",
        *SURGE,
        "--store",
        "{tmp}/r.db",
        "--study",
        "s",
        setup=write("g.csv", GRID),
        contains="one of",
    ),
    C("surge-study-without-store", *SURGE, "--study", "s", setup=write("g.csv", GRID), contains="--study"),
    C("surge-store-without-study", "surge", "--store", "{tmp}/r.db", setup=write("r.db", ""), contains="--study"),
    C("surge-store-missing", "surge", "--store", "{tmp}/none.db", "--study", "s", contains="none.db"),
    C(
        "surge-store-not-sqlite",
        "surge",
        "--store",
        "{tmp}/r.db",
        "--study",
        "s",
        setup=write("r.db", BINARY),
        contains="r.db",
    ),
    C("surge-missing-columns", *SURGE, setup=write("g.csv", "lr,loss\n1e-3,2\n"), contains="batch_size"),
    C(
        "surge-one-batch-size",
        *SURGE,
        setup=write("g.csv", "lr,batch_size,loss\n1e-3,8,2\n2e-3,8,1.9\n4e-3,8,2.1\n"),
        contains="2 or more batch sizes",
    ),
    C(
        "surge-all-diverged",
        *SURGE,
        setup=write("g.csv", "lr,batch_size,loss\n1e-3,8,nan\n2e-3,8,inf\n1e-3,16,nan\n"),
        contains="every cell diverged",
    ),
    C("surge-lr-zero", *SURGE, setup=write("g.csv", "lr,batch_size,loss\n0,8,2\n"), contains="g.csv:2"),
    C("surge-batch-negative", *SURGE, setup=write("g.csv", "lr,batch_size,loss\n1e-3,-8,2\n"), contains="g.csv:2"),
    C("surge-empty-loss", *SURGE, setup=write("g.csv", "lr,batch_size,loss\n1e-3,8,\n"), contains="empty loss"),
    C("surge-binary", *SURGE, setup=write("g.csv", BINARY), contains="g.csv"),
    C("surge-bad-law", *SURGE, "--law", "linear", setup=write("g.csv", GRID), contains="--law"),
    C("surge-bad-alpha", *SURGE, "--law", "sgd", "--alpha", "-1", setup=write("g.csv", GRID), contains="--alpha"),
    C("surge-alpha-word", *SURGE, "--alpha", "many", setup=write("g.csv", GRID), contains="--alpha"),
    C("surge-bad-noise", *SURGE, "--loss-noise", "-1", setup=write("g.csv", GRID), contains="--loss-noise"),
    C("surge-bad-level", *SURGE, "--level", "2", setup=write("g.csv", GRID), contains="--level"),
    C("surge-bad-unit", *SURGE, "--unit", "bytes", setup=write("g.csv", GRID), contains="--unit"),
    C("surge-bad-predict", *SURGE, "--predict-batch", "64,-1", setup=write("g.csv", GRID), contains="--predict-batch"),
    C("surge-predict-words", *SURGE, "--predict-batch", "big", setup=write("g.csv", GRID), contains="--predict-batch"),
    C("surge-group-missing", *SURGE, "--group", "optimizer", setup=write("g.csv", GRID), contains="optimizer"),
    C("surge-plot-replaces-input", *SURGE, "--plot", "{tmp}/g.csv", setup=write("g.csv", GRID), contains="g.csv"),
    C("surge-plot-format", *SURGE, "--plot", "{tmp}/p.txt", setup=write("g.csv", GRID), contains="p.txt"),
    C("bnoise-no-input", "bnoise", contains="--example"),
    C("bnoise-missing-columns", "bnoise", "{tmp}/s.csv", setup=write("s.csv", "batch_size\n8\n"), contains="steps"),
    C(
        "bnoise-two-batch-sizes",
        "bnoise",
        "{tmp}/s.csv",
        setup=write("s.csv", "batch_size,steps\n8,100\n16,60\n"),
        contains="3 or more",
    ),
    C(
        "bnoise-steps-zero",
        "bnoise",
        "{tmp}/s.csv",
        setup=write("s.csv", "batch_size,steps\n8,0\n16,60\n32,40\n"),
        contains="s.csv",
    ),
    C("bnoise-bad-level", "bnoise", "{tmp}/s.csv", "--level", "1.5", setup=write("s.csv", STEPS), contains="--level"),
    C("bnoise-both", "bnoise", "{tmp}/s.csv", "--example", setup=write("s.csv", STEPS), contains="one of"),
    C("bnoise-example-group", "bnoise", "--example", "--group", "x", contains="--group"),
    C(
        "bnoise-huge-steps",
        "bnoise",
        "{tmp}/s.csv",
        setup=write("s.csv", "batch_size,steps\n8,1e308\n16,1e308\n32,1e300\n"),
        contains="1e+15",
    ),
    C("surge-huge-predict", *SURGE, "--predict-batch", "1e308", setup=write("g.csv", GRID), contains="--predict-batch"),
    C("surge-level-too-high", *SURGE, "--level", "0.999", setup=write("g.csv", GRID), contains="--level"),
    C(
        "surge-mixed-seq-len",
        *SURGE,
        "--unit",
        "tokens",
        setup=write("g.csv", "lr,batch_size,loss,seq_len\n1e-3,8,2,128\n1e-3,16,2,\n"),
        contains="seq_len",
    ),
    C("surge-group-is-a-column", *SURGE, "--group", "lr", setup=write("g.csv", GRID), contains="--group"),
    C(
        "surge-unknown-status",
        *SURGE,
        setup=write("g.csv", "lr,batch_size,loss,status\n1e-3,8,2,weird\n"),
        contains="weird",
    ),
    C(
        "scale-bad-law",
        "scale",
        "{tmp}/g.csv",
        "--group",
        "n",
        "--law",
        "linear",
        setup=write("g.csv", "lr,batch_size,loss,n\n1e-3,8,2,10\n1e-3,16,2,10\n1e-3,8,2,20\n"),
        contains="--law",
    ),
    C("scale-one-group", "scale", "{tmp}/g.csv", setup=write("g.csv", GRID), contains="2 or more groups"),
    C(
        "scale-d-varies",
        "scale",
        "{tmp}/g.csv",
        "--group",
        "n",
        setup=write("g.csv", "lr,batch_size,loss,n,d\n1e-3,8,2,10,100\n1e-3,16,2,10,900\n1e-3,8,2,20,100\n"),
        contains="d varies",
    ),
]

CASES = [
    *SCHEDULE_CASES,
    *CSV_CASES,
    *FIT_FILE_CASES,
    *OUTPUT_CASES,
    *CONFIG_CASES,
    *SET_CASES,
    *FIND_LR_CASES,
    *RUN_FOLDER_CASES,
    *CLICK_CASES,
    *BATCH_CASES,
    *STUDY_CASES,
]


# --- running a case ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    exit_code: int | None  # None: killed by a signal or timed out
    stdout: str
    stderr: str
    exception: str = ""  # "Type: message (at file:line in function)" for an exception other than SystemExit
    timed_out: bool = False
    signal: int | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class _Timeout(BaseException):
    """A BaseException, so that lrlab's broad ``except Exception`` clauses cannot swallow it."""


def _lrlab_frame(tb) -> str:
    """The innermost traceback frame in lrlab's source (or the innermost frame)."""
    frames = traceback.extract_tb(tb)
    ours = [f for f in frames if str(SRC_ROOT) in f.filename] or frames
    if not ours:
        return "?"
    f = ours[-1]
    name = f.filename.replace(str(SRC_ROOT) + os.sep, "")
    return f"{name}:{f.lineno} in {f.name}"


def _in_process(argv: list[str], env: dict[str, str]) -> Outcome:
    def alarm(signum, frame):
        raise _Timeout

    runner = CliRunner(env=env)
    previous = signal.signal(signal.SIGALRM, alarm)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # what a real run would print to stderr
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=category)
        signal.alarm(IN_PROCESS_TIMEOUT_S)
        try:
            result = runner.invoke(app, argv, catch_exceptions=True)
        except _Timeout:
            return Outcome(None, "", "", timed_out=True, seconds=time.perf_counter() - started)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    stderr = result.stderr + "".join(
        warnings.formatwarning(w.message, w.category, w.filename, w.lineno, "") for w in caught
    )
    out = Outcome(result.exit_code, result.stdout, stderr, seconds=time.perf_counter() - started)
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        where = _lrlab_frame(result.exc_info[2]) if result.exc_info else "?"
        out.exception = f"{type(exc).__name__}: {text} (at {where})"
    return out


_CHILD = """
import os, resource, sys, traceback
with open('/proc/self/status') as f:
    vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith('VmSize:'))
cap = vm + HEADROOM
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
os.environ.update(ENV)
os.chdir(CWD)
for fd, name in ((1, STDOUT), (2, STDERR)):
    target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(target, fd)
    os.close(target)
sys.argv = ['lrlab', *ARGV]
code = 0
try:
    from lrlab.cli import main
    main()
except SystemExit as exc:  # as the interpreter does: an int is the status, anything else is printed, status 1
    if exc.code is not None and not isinstance(exc.code, int):
        print(exc.code, file=sys.stderr)
    code = 1 if exc.code is not None and not isinstance(exc.code, int) else (exc.code or 0)
except BaseException:  # an uncaught exception: traceback, status 1
    traceback.print_exc()
    code = 1
sys.stdout.flush()
sys.stderr.flush()
with open(STATUS, 'w') as f:  # the status, independent of multiprocessing's own bookkeeping
    f.write(str(code))
os._exit(code)
"""
_PRELOAD = ["lrlab.cli", "torch", "lrlab.train.loop", "lrlab.train.lr_search", "lrlab.laws", "matplotlib.pyplot"]


def _in_child(ctx, argv: list[str], env: dict[str, str], cwd: Path, timeout: int) -> Outcome:
    logs = cwd.parent / "child-output"
    logs.mkdir()
    stdout, stderr, status = logs / "stdout", logs / "stderr", logs / "status"
    scope = {"HEADROOM": MEMORY_HEADROOM, "ENV": env, "CWD": str(cwd), "STDOUT": str(stdout)}
    scope |= {"STDERR": str(stderr), "STATUS": str(status), "ARGV": argv}
    proc = ctx.Process(target=exec, args=(_CHILD, scope), daemon=True)
    started = time.perf_counter()
    proc.start()
    proc.join(timeout)
    timed_out = proc.is_alive()
    if timed_out:
        proc.kill()
        proc.join(10)
    code = proc.exitcode
    if not timed_out and status.exists() and status.read_text().strip():
        code = int(status.read_text())
    out = Outcome(
        None if timed_out or code is None or code < 0 else code,
        stdout.read_text(errors="replace") if stdout.exists() else "",
        stderr.read_text(errors="replace") if stderr.exists() else "",
        timed_out=timed_out,
        signal=-code if not timed_out and code is not None and code < 0 else None,
        seconds=time.perf_counter() - started,
    )
    if "Traceback (most recent call last)" in out.stderr:
        last = [ln for ln in out.stderr.strip().splitlines() if ln and not ln.startswith(" ")][-1]
        frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', out.stderr)
        ours = [f for f in frames if str(SRC_ROOT) in f[0]] or frames
        where = "?"
        if ours:
            path, line, func = ours[-1]
            where = f"{path.replace(str(SRC_ROOT) + os.sep, '')}:{line} in {func}"
        out.exception = f"{last[:300]} (at {where})"
    return out


def _snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (``<dir>`` for folders) under ``root``."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for d in dirnames:
            found[str((here / d).relative_to(root))] = "<dir>"
        for name in filenames:
            path = here / name
            if path.is_symlink() or not path.is_file():
                found[str(path.relative_to(root))] = "<special>"
                continue
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _problems(case: Case, out: Outcome, before: dict, after: dict, created: list[str], fill) -> list[str]:
    """Every way ``out`` breaks the bad-input rule (an empty list: the case passes)."""
    problems = []
    if out.timed_out:
        problems.append(f"timeout: still running after {out.seconds:.0f} s")
    if out.signal is not None:
        problems.append(f"killed by signal {out.signal}")
    if out.exception:
        problems.append(f"exception {out.exception}")
    if not out.timed_out and out.exit_code != 2:
        problems.append(f"exit code {out.exit_code} (expected 2)")
    combined = out.stdout + out.stderr
    if "Traceback" in combined:
        problems.append("'Traceback' in the output")
    if re.search(r"MemoryError|Cannot allocate memory|can't allocate memory|std::bad_alloc", combined):
        problems.append("memory exhausted")
    err_lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    out_lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    if not out.timed_out and (len(err_lines) != 1 or out_lines):
        shown = " | ".join((err_lines + out_lines)[:3])[:300]
        problems.append(f"{len(err_lines)} stderr + {len(out_lines)} stdout lines (expected 1 + 0): {shown!r}")
    line = err_lines[0] if err_lines else ""
    if err_lines and not line.startswith("error:"):
        problems.append(f"first stderr line does not start with 'error:': {line[:200]!r}")
    if case.contains is not None and not out.timed_out:
        wanted = fill(case.contains)
        if wanted not in out.stderr:
            problems.append(f"message does not contain {wanted!r}: {line[:300]!r}")
    for bad in case.forbid:
        if bad in combined:
            problems.append(f"output contains forbidden {bad!r}")
    if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", combined):
        problems.append("control characters (e.g. ANSI escapes) in the output")
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    removed = sorted(k for k in before if k not in after)
    if changed:
        problems.append(f"files modified: {changed}")
    if removed:
        problems.append(f"files removed: {removed}")
    if created:
        problems.append(f"output created by a failing command: {created}")
    return problems


def _fill(text: str, tmp: Path, assets: Assets) -> str:
    return text.replace("{tmp}", str(tmp)).replace("{corpus}", str(assets.corpus))


def _run_case(case: Case, root: Path, assets: Assets, ctx=None) -> tuple[list[str], Outcome]:
    """Set up ``case`` in ``root/case`` (corpus cache in ``root/cache``), run it, and judge it."""
    tmp, cache = root / "case", root / "cache"
    tmp.mkdir(parents=True)
    env = {"LRLAB_CACHE": str(cache)}
    if case.setup is not None:
        case.setup(tmp, assets)
    try:
        argv = [_fill(a, tmp, assets) for a in case.argv]
        must_not_exist = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in OUTPUT_FLAGS]
        must_not_exist = [p for p in must_not_exist if not os.path.lexists(p)]
        must_not_exist += [_fill(p, tmp, assets) for p in case.absent]
        before = _snapshot(tmp)
        if case.sub:
            out = _in_child(ctx, argv, env, tmp, case.timeout or SUB_TIMEOUT_S)
        else:
            out = _in_process(argv, env)
        after = _snapshot(tmp)
        created = [p for p in must_not_exist if os.path.lexists(p)]
    finally:
        if not IS_ROOT and (tmp / "ro").exists():
            (tmp / "ro").chmod(0o700)
    problems = _problems(case, out, before, after, created, lambda s: _fill(s, tmp, assets))
    path = os.environ.get("LRLAB_HOSTILE_LOG")
    if path:
        row = {"id": case.id, "sub": case.sub, "seconds": round(out.seconds, 2), "problems": problems}
        row |= {"exit_code": out.exit_code, "stderr": out.stderr[-3000:], "stdout": out.stdout[-500:]}
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
    return problems, out


@pytest.fixture(scope="module")
def child_cases(assets, tmp_path_factory, request):
    """The selected ``sub`` cases, started in background threads as soon as the first case runs (their timeouts
    and memory blow-ups overlap with the in-process cases); each test then waits for its own."""
    selected = {
        item.callspec.params["case"].id
        for item in request.session.items
        if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), Case)
    }
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    root = tmp_path_factory.mktemp("hostile-children")
    pool = ThreadPoolExecutor(max_workers=CHILD_WORKERS)
    futures = {c.id: pool.submit(_run_case, c, root / c.id, assets, ctx) for c in CASES if c.sub and c.id in selected}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path, assets: Assets, child_cases, monkeypatch) -> None:
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path / "cache"))  # CliRunner(env=...) sets it too
    if case.sub:
        problems, out = child_cases[case.id].result()
    else:
        problems, out = _run_case(case, tmp_path, assets)
    if problems:
        pytest.fail(f"{case.id} ({out.seconds:.1f} s): " + "; ".join(problems), pytrace=False)


def test_case_table_is_large_and_ids_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    assert len(CASES) >= 350
    assert sum(c.sub for c in CASES) <= 20


# --- tests outside the table ---------------------------------------------------------------------------------


def test_show_at_without_steps_succeeds() -> None:
    """--at names the steps: an unbounded schedule needs no --steps then."""
    result = CliRunner().invoke(app, ["schedule", "show", "constant:peak=1e-3", "--at", "0,100"])
    assert result.exit_code == 0, (result.exception, result.output)
    assert "100" in result.stdout


def test_show_json_at_without_steps_succeeds() -> None:
    result = CliRunner().invoke(app, ["schedule", "show", "constant:peak=1e-3", "--at", "0,100", "--json"])
    assert result.exit_code == 0, (result.exception, result.output)
    assert json.loads(result.stdout) == {"steps": [0, 100], "lr": [1e-3, 1e-3]}


def test_sigterm_interrupts_a_run_and_records_it(tmp_path: Path, assets: Assets) -> None:
    """SIGTERM during `lrlab train`: the process ends within 20 s, non-zero, and run.json says "interrupted"."""
    out = tmp_path / "D"
    argv = [_fill(a, tmp_path, assets) for a in TRAIN] + ["--steps", "100000", "--out", str(out)]
    env = dict(os.environ, LRLAB_CACHE=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join([str(SRC_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [sys.executable, "-c", "from lrlab.cli import main; main()", *argv]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        metrics = out / "metrics.jsonl"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
                break
            time.sleep(0.1)
        assert proc.poll() is None, f"the run ended before SIGTERM: {proc.returncode} {proc.communicate()}"
        assert metrics.exists() and len(metrics.read_text().splitlines()) >= 3, "no metrics rows within 90 s"
        proc.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            pytest.fail("the run did not exit within 20 s of SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0, (stdout, stderr)
    assert "Traceback" not in stderr, stderr
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted", run["status"]
