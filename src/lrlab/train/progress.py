"""A rich progress bar for training: step, loss, LR, tokens/s and ETA, refreshed a few times a second."""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class StepProgress:
    """``with StepProgress(total, start, tokens_per_step): ... progress.update(done, loss, lr, val)``.

    ``header`` is printed once above the bar. Disabled, it does nothing (tests, processes other than rank 0)."""

    def __init__(self, total: int, start: int, tokens_per_step: int, enabled: bool = True, header: str = "") -> None:
        self.enabled, self.header = enabled, header
        self.start, self.tokens_per_step = start, tokens_per_step
        if not enabled:
            return
        self._bar = Progress(
            TextColumn("step"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._bar.add_task("train", total=total, completed=start, stats="")

    def __enter__(self) -> StepProgress:
        self._mark, self._rate = (time.perf_counter(), self.start), 0.0
        if self.enabled:
            if self.header:
                self._bar.console.print(self.header, highlight=False)
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._bar.stop()

    def update(self, done: int, loss: float, lr: float, val_loss: float | None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._mark[0] >= 1.0:  # tokens/s over the last second or more, not diluted by start-up
            self._rate = (done - self._mark[1]) * self.tokens_per_step / (now - self._mark[0])
            self._mark = (now, done)
        val = f" val {val_loss:.4f}" if val_loss is not None else ""
        stats = f"loss {loss:.4f}{val} lr {lr:.2e} {self._rate:,.0f} tok/s"
        self._bar.update(self._task, completed=done, stats=stats)
