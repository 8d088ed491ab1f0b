"""The development set for loss-curve laws: curves of Schaipp et al. (ICML 2025, arXiv:2501.18965) and Haegele et
al. (NeurIPS 2024, arXiv:2405.18392), exported from github.com/fabian-sp/lr-scheduling (MIT licence).

It is *not* bundled: point ``root`` at a copy (benchmarks take ``--data``). Layout, as in that copy's README:
``manifest.json`` (``{"groups": {GROUP: {"curves": [{"name", "kind", "peak_lr", "T", ...}]}}}``) and one folder
per group (``dataset_Llayers_dwidth``) holding, per curve NAME, ``NAME.csv`` (step,lr,loss: validation loss every
200 steps) and ``NAME.lr.csv`` (the LR of every step, the sidecar :func:`lrlab.laws.load_curve` reads).

Two fixed protocols per group, scored as mean |pred - y| / y over the validation points at step >= 1000
(:data:`SCORE_FROM`):

- ``cross-peak``: pilots = the longest constant run and the shortest cosine run (twice the constant's peak LR);
  targets = every other curve of the group;
- ``same-peak``: pilots = the longest constant run and the shortest WSD run; targets = the other WSD runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from lrlab.errors import InputError, clip
from lrlab.files import read_text
from lrlab.laws import Curve, load_curve

PROTOCOLS = ("cross-peak", "same-peak")
SCORE_FROM = 1000  # the protocols score points at step >= 1000
MAX_MANIFEST_BYTES = 8 << 20


def manifest(root: str | Path) -> dict:
    """The parsed ``manifest.json`` of a copy of the data; a missing or malformed one is an InputError."""
    path = Path(root) / "manifest.json"
    try:
        data = json.loads(read_text(path, "manifest", MAX_MANIFEST_BYTES))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc.msg})") from None
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, dict) or not groups:
        raise InputError(f"{path}: expected an object with a non-empty 'groups' table")
    return data


def groups(root: str | Path) -> list[str]:
    """The group names (folders) of the copy at ``root``, sorted."""
    return sorted(manifest(root)["groups"])


def runs(root: str | Path, group: str) -> list[dict]:
    """The manifest's entries of one group's curves (``name``, ``kind``, ``peak_lr``, ``T``, ...)."""
    table = manifest(root)["groups"]
    if group not in table:
        raise InputError(f"unknown group {clip(group)!r}; the data at {root} has {', '.join(sorted(table))}")
    runs = table[group].get("curves") if isinstance(table[group], dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, dict) and {"name", "kind", "T"} <= set(r) for r in runs):
        raise InputError(f"{root}/manifest.json: group {clip(group)!r} needs a list of curves with name, kind and T")
    return runs


def split(root: str | Path, group: str, protocol: str) -> tuple[list[str], list[str]]:
    """(pilot names, target names) of one group under a protocol (see the module docstring)."""
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {clip(protocol)!r}; choose one of {', '.join(PROTOCOLS)}", "protocol")
    entries = runs(root, group)

    def of(kind: str) -> list[dict]:
        return sorted((r for r in entries if str(r["kind"]).startswith(kind)), key=lambda r: r["T"])

    const, cos, wsd = of("const"), of("cos"), of("wsd")
    if not const or not (cos if protocol == "cross-peak" else len(wsd) > 1):
        raise InputError(f"group {clip(group)!r} lacks the runs of the {protocol} protocol")
    second = cos[0] if protocol == "cross-peak" else wsd[0]
    pilots = [const[-1]["name"], second["name"]]
    pool = entries if protocol == "cross-peak" else wsd
    return pilots, [r["name"] for r in pool if r["name"] not in pilots]


def curve(root: str | Path, group: str, name: str) -> Curve:
    """One validation-loss curve, its per-step LR from the ``NAME.lr.csv`` sidecar."""
    if name not in {r["name"] for r in runs(root, group)}:
        raise InputError(f"group {clip(group)!r} has no curve {clip(name)!r}")
    return load_curve(Path(root) / group / f"{name}.csv")
