"""The study report: one self-contained HTML page (lrlab.report.html), the recommendation on top, then a section
per step with its figures, the numbers behind them and one sentence on what they mean."""

from __future__ import annotations

import math
from pathlib import Path

from lrlab.report import study_plots as plots
from lrlab.report.html import Page, write_page
from lrlab.store.db import Store
from lrlab.study import StudyResult


def _g(x: float | None, digits: int = 4) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _interval(lo: float, hi: float) -> str:
    """An LR interval; one whose end is unbounded (a best LR at the grid's edge) as a bound."""
    if not (lo > 0 and math.isfinite(lo)):
        return f"at most {_g(hi, 3)} (the grid's low edge)"
    if not math.isfinite(hi):
        return f"at least {_g(lo, 3)} (the grid's high edge)"
    return f"[{_g(lo, 3)}, {_g(hi, 3)}]"


def recommendation_rows(r: StudyResult) -> list[list[str]]:
    """The recommendation as (what, value, evidence) rows: the table on top of the report and the summary."""
    s, b, w = r.schedule, r.batch, r.warmup.chosen
    lo, hi = s.chosen.band
    rows = [
        ["optimizer", r.config.optimizer, f"lowest short-run loss of {', '.join(r.spec.optimizers)}"],
        [
            "warmup",
            f"{w.warmup} steps",
            "needed: the run without it ended worse"
            if w.needs_warmup
            else "none: the run without warmup ended within 0.5% of the run with it",
        ],
        ["batch size", f"{b.batch_size} sequences", f"grid at equal tokens; gns probe B_simple {_g(b.gns, 3)}"],
        ["peak LR", f"{b.lr:.3g}", f"interval {_interval(*b.lr_interval)}"],
        [
            "schedule",
            str(s.chosen.schedule) if s.chosen.name != "free" else "free-form (schedule.csv)",
            f"{s.chosen.name}, found with the {s.chosen.law} law",
        ],
        ["steps", f"{s.total:,}", f"{r.spec.tokens:,} tokens at {b.batch_size} x {r.spec.seq_len} per step"],
        ["predicted final loss", f"{s.chosen.loss:.4f}", f"laws' range [{lo:.4f}, {hi:.4f}]"],
    ]
    if r.verification is not None:
        v = r.verification
        rows.append(["observed final loss", _g(v.final_observed), f"--verify: error {v.final_error:+.2%} (predicted)"])
    return rows


def build_page(r: StudyResult, store: Store) -> Page:
    page = Page(f"lrlab study: {r.spec.name}")
    spent = r.spent()
    page.paragraph(
        f"Full run: {r.spec.tokens:,} training tokens. Pilots spent {sum(spent.values()):,} tokens,"
        f" {r.pilot_share_spent:.1%} of the full run (limit {r.spec.pilot_share:.0%}): step 1 {spent['warmup']:,},"
        f" step 2 {spent['grid']:,}, step 3 {spent['schedule']:,}. Study file: {r.spec.source}."
    )
    page.heading("Recommendation", anchor="recommendation")
    page.table(["", "recommended", "evidence"], recommendation_rows(r))
    for text, anchor in (("Step 1", "step1"), ("Step 2", "step2"), ("Step 3", "step3"), ("Verify", "verify")):
        page.link(text, f"#{anchor}")
    _step1(page, r, store)
    _step2(page, r, store)
    _step3(page, r)
    _verify(page, r)
    page.heading("Elsewhere in lrlab", anchor="more")
    page.notes(
        [
            "lrlab demo --parts schedules: the standard schedules side by side (the gallery the study draws from)",
            "lrlab surge / lrlab bnoise --store STORE --study NAME/grid: the batch-size laws on the grid alone",
            "lrlab fit: a loss-curve law on any curves; lrlab find-lr: the range test and catapult on a config",
        ]
    )
    return page


def _step1(page: Page, r: StudyResult, store: Store) -> None:
    page.heading("Step 1: first LR and warmup", anchor="step1")
    chosen = r.warmup.chosen
    page.paragraph(
        f"{chosen.optimizer} is kept; "
        + (
            f"it needs warmup: without it the short run ended at {chosen.losses['no warmup']:.4f} against"
            f" {chosen.losses['warmup']:.4f}, with first updates up to {chosen.early_update['no warmup']:.3g} of the"
            f" weights' norm against {chosen.early_update['warmup']:.3g}."
            if chosen.needs_warmup
            else f"it needs no warmup: without it the short run ended at {chosen.losses['no warmup']:.4f} against"
            f" {chosen.losses['warmup']:.4f} with it."
        )
    )
    page.figure(plots.lr_search(r, store), alt="LR range test per optimizer", caption="LR range test and eta_c")
    page.figure(
        plots.warmup_runs(r, store),
        alt="short runs with and without warmup",
        caption="solid: with warmup; dashed: without",
    )
    page.table(
        [
            "optimizer",
            "range-test LR",
            "eta_c",
            "loss, no warmup",
            "loss, warmup",
            "early update, no warmup",
            "early update, warmup",
            "update transient (steps)",
            "recommended warmup",
        ],
        [
            [
                e.optimizer,
                f"{e.range_lr:.3g}",
                _g(e.eta_c, 3),
                _g(e.losses["no warmup"]),
                _g(e.losses["warmup"]),
                _g(e.early_update["no warmup"], 3),
                _g(e.early_update["warmup"], 3),
                _g(e.transient),
                str(e.warmup),
            ]
            for e in r.warmup.evidence
        ],
        caption=f"short runs of {r.plan.warmup_steps} steps at the range-test LR; warmup tested:"
        f" {r.warmup.chosen.warmup_tested} steps",
    )
    notes = [f"{e.optimizer}: {n}" for e in r.warmup.evidence for n in e.notes]
    if notes:
        page.notes(notes)


def _step2(page: Page, r: StudyResult, store: Store) -> None:
    b = r.batch
    page.heading("Step 2: batch size and peak LR", anchor="step2")
    law = b.grid_fit.law if b.grid_fit is not None else "no"
    page.paragraph(
        f"At equal tokens, batch size {b.batch_size} reached the lowest loss (larger batches within the loss noise"
        f" {_g(b.loss_noise, 2)} are preferred); its best LR is {b.lr:.3g} ({law} law)."
    )
    page.figure(plots.lr_batch_heatmap(r), alt="LR x batch-size heatmap", caption="final loss of every grid cell")
    page.figure(plots.noise_scale(r, store), alt="gradient noise scale over training", caption="gns probe")
    page.table(
        ["batch size", "steps", "best LR", "interval", "at grid edge", "loss"],
        [
            [
                f"{o.batch_size:g}",
                str(b.steps.get(int(o.batch_size), "")),
                f"{o.best_lr:.3g}",
                _interval(*o.interval),
                o.at_grid_edge or "",
                _g(o.loss),
            ]
            for o in b.optima
        ],
        caption=f"grid LRs {', '.join(f'{x:.3g}' for x in b.lrs)}",
    )
    if b.notes:
        page.notes(b.notes)


def _step3(page: Page, r: StudyResult) -> None:
    s = r.schedule
    page.heading("Step 3: schedule", anchor="step3")
    ratio = s.total / max(c.steps[-1] + 1 for c in s.curves)
    page.paragraph(
        f"The laws, fitted on two pilots of {int(s.curves[0].steps[-1]) + 1} steps, predict the {s.total:,}-step run"
        f" ({ratio:.0f}x longer). Ranked by {s.auto or 'the median of the laws'} (the pilots-only protocol's law),"
        f" the {s.chosen.name} schedule is lowest; free-form schedules are shown but never chosen. Its predicted"
        f" final loss, the median of the laws, is {s.chosen.loss:.4f}: over so long an extrapolation read the laws'"
        " range as the uncertainty."
    )
    page.figure(plots.pilots_and_fits(r), alt="schedule pilots with fitted laws", caption="pilots and fits")
    page.figure(plots.candidates(r), alt="candidate schedules and predicted loss", caption="candidates")
    page.table(
        ["family", "found by", "schedule", f"ranked by ({s.auto or 'median'})", "median of the laws", "laws' range"],
        [
            [
                c.name,
                c.law or "-",
                str(c.schedule),
                f"{c.score(s.auto):.4f}",
                f"{c.loss:.4f}",
                f"[{c.band[0]:.4f}, {c.band[1]:.4f}]",
            ]
            for c in sorted(s.candidates, key=lambda c: c.score(s.auto))
        ],
        caption="every law's optimum of each family, and the baseline; predicted final validation loss",
    )


def _verify(page: Page, r: StudyResult) -> None:
    page.heading("Verify: predicted against observed", anchor="verify")
    v = r.verification
    if v is None:
        page.paragraph("Not run: `lrlab study FILE --verify` trains the recommendation and fills this section.")
        return
    page.paragraph(
        f"The recommendation ended at {_g(v.final_observed)}; the laws predicted {v.final_predicted:.4f}"
        f" ({v.final_error:+.2%}); PredE over the run {_g(v.prede, 3)}, {_g(v.coverage, 2)} of its records inside"
        " the laws' range."
    )
    if len(v.steps):
        page.figure(plots.verification(r), alt="predicted against observed loss", caption="verification")


def write_report(r: StudyResult, store: Store, path: str | Path) -> Path:
    return write_page(build_page(r, store), path)
