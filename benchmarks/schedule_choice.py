"""How the study should score a schedule when its loss-curve laws disagree: a development benchmark (prints numbers).

The study (lrlab.study.schedule) fits every candidate law on two short pilots and must rank schedules for a run
several times longer. This script poses that decision on the development set (``--data``: the schedules-and-
scaling curves, lrlab.datasets.schedules_and_scaling), where the answer was measured:

- per group, the pilots are the constant run **cut at the shortest cosine run's length** and that cosine run, so
  that both pilots are short, as the study's are (the targets are 1.3-3.3x longer);
- per target length T longer than that, the candidates are the group's runs of length T (the cosine to 10% at
  twice the constant's peak, the WSD with a 20% linear cooldown, and the constant run read at step T);
- every law of lrlab.laws.select.CANDIDATES is fitted as the study fits them (lrlab.study.schedule.fit_laws) and
  predicts each candidate's final loss; a **rule** turns the laws' predictions into one score; the lowest score
  is the pick.

Printed per rule: the mean and worst regret (the pick's measured final loss over the best candidate's, minus 1),
how many picks were the best, and the mean error of the score as a prediction of the final loss. The named
baseline is ``median``, the study's rule before this benchmark; ``auto`` ranks by the law the pilots-only
protocol picks (the rule the study took after it); ``oracle-law`` (the one law that would have
been best over all decisions, known only afterwards) bounds what choosing a single law can do.

    python benchmarks/schedule_choice.py --data ../shared/data/loss_curves/schedules-and-scaling [--json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import numpy as np
from rich.console import Console
from rich.table import Table

from lrlab.datasets import schedules_and_scaling as sas
from lrlab.laws import Curve
from lrlab.study.schedule import fit_laws


def _cut(c: Curve, last: int) -> Curve:
    keep = c.steps <= last
    return Curve(f"{c.name}@{last}", c.steps[keep], c.loss[keep], c.lr[: last + 1], c.schedule)


def _at(c: Curve, t: int) -> float:
    """The measured loss at step ``t`` (the record nearest to it at or before)."""
    j = int(np.searchsorted(c.steps, t, side="right")) - 1
    return float(c.loss[j])


def decisions(root: str) -> list[dict]:
    """Per group and target length: every law's predicted final loss of each candidate, and the measured one."""
    out = []
    for group in sas.groups(root):
        runs = sas.runs(root, group)
        const = max((r for r in runs if r["kind"] == "const"), key=lambda r: r["T"])
        cos = sorted((r for r in runs if r["kind"].startswith("cos")), key=lambda r: r["T"])
        short = int(cos[0]["T"])
        c_const = sas.curve(root, group, const["name"])
        pilots = [_cut(c_const, short), sas.curve(root, group, cos[0]["name"])]
        fits, auto = fit_laws(pilots)
        lengths = sorted({int(r["T"]) for r in runs if int(r["T"]) > short})
        for t in lengths:
            cands = {r["kind"]: sas.curve(root, group, r["name"]) for r in runs if int(r["T"]) == t and r is not const}
            if t <= int(const["T"]):
                cands["const"] = c_const
            if len(cands) < 2:
                continue
            rows = {}
            for kind, c in cands.items():
                last = int(c.steps[c.steps <= t][-1])  # a run's last record (some end a step or 100 short of T)
                pred = {k: float(f.predict(c.lr[: last + 1], np.array([last]))[0]) for k, f in fits.items()}
                rows[kind] = {"true": _at(c, last), "pred": {k: v for k, v in pred.items() if np.isfinite(v) and v > 0}}
            out.append({"group": group, "T": t, "short": short, "auto": auto, "candidates": rows})
    return out


def rules(laws: list[str]) -> dict[str, Callable[[dict[str, float], str], float]]:
    out = {
        "median": lambda p, auto: float(np.median(list(p.values()))),
        "mean": lambda p, auto: float(np.mean(list(p.values()))),
        "auto": lambda p, auto: p.get(auto, np.inf),
    }
    for law in laws:
        out[f"law:{law}"] = lambda p, auto, law=law: p.get(law, np.inf)
    return out


def score(ds: list[dict], rule: Callable[[dict[str, float], str], float]) -> dict:
    regrets, errors, hits = [], [], 0
    for d in ds:
        cands = d["candidates"]
        scores = {k: rule(v["pred"], d["auto"]) for k, v in cands.items() if v["pred"]}
        pick = min(scores, key=scores.get)
        best = min(v["true"] for v in cands.values())
        regrets.append(cands[pick]["true"] / best - 1)
        hits += cands[pick]["true"] == best
        errors += [abs(s / cands[k]["true"] - 1) for k, s in scores.items() if np.isfinite(s)]
    return {
        "mean_regret": float(np.mean(regrets)),
        "worst_regret": float(np.max(regrets)),
        "best_picks": hits,
        "decisions": len(ds),
        "mean_abs_error": float(np.mean(errors)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a copy of the schedules-and-scaling curves")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ds = decisions(args.data)
    laws = sorted({k for d in ds for v in d["candidates"].values() for k in v["pred"]})
    results = {name: score(ds, rule) for name, rule in rules(laws).items()}
    single = {k: v for k, v in results.items() if k.startswith("law:")}
    oracle = min(single, key=lambda k: single[k]["mean_regret"])
    results["oracle-law"] = dict(single[oracle], law=oracle[4:])
    base = results["median"]["mean_regret"]
    table = Table(title=f"{len(ds)} decisions over {len({d['group'] for d in ds})} groups; baseline: median")
    for col in ("rule", "mean regret", "worst regret", "best picks", "regret / median's", "score error"):
        table.add_column(col)
    for name, r in results.items():
        ratio = r["mean_regret"] / base if base > 0 else float("nan")
        table.add_row(
            name if name != "oracle-law" else f"oracle-law ({r['law']})",
            f"{r['mean_regret']:.3%}",
            f"{r['worst_regret']:.3%}",
            f"{r['best_picks']}/{r['decisions']}",
            f"{ratio:.2f}",
            f"{r['mean_abs_error']:.2%}",
        )
    Console().print(table)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
