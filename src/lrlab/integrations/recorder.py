"""lrlab probes and records for a training loop lrlab does not own (the Hugging Face Trainer, Lightning, yours).

:class:`ProbeRecorder` wires the probes exactly as lrlab's own trainer does (:mod:`lrlab.train.callbacks`: the same
:class:`StepContext`, hooks and probe lookup) and writes one row per optimizer update, ``{"step": t, "lr": lr(t),
"train_loss", ...probe values}``, to the trainer's sinks: ``DIR/metrics.jsonl`` (:class:`JsonlSink`) and/or a run
in the run store (:class:`lrlab.store.StoreSink`). ``t`` is the 0-based update, ``lr`` the LR update ``t`` ran at
and ``train_loss`` the loss of its batch before the update, as in ``lrlab train``'s rows.

Only the probes that need nothing but the model and its weights before and after an update are supported
(:data:`SUPPORTED`: ``updates``, ``rrc``): ``gns`` needs the step's micro-batches and their gradients before
clipping, and ``sharpness`` a ``model(x, y) -> loss`` call, which these loops do not hand to a callback.

Your own loop::

    with ProbeRecorder(["updates", "rrc"], every=10, store="runs.db", study="mine", config={"lr": 1e-3}) as rec:
        for step, (x, y) in enumerate(batches):
            with rec.step(model, opt, step) as ctx:
                ctx.loss = train_step(x, y)  # forward, backward, opt.step(), sched.step(), opt.zero_grad()
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from lrlab.errors import InputError
from lrlab.store import StoreSink
from lrlab.train.callbacks import Hooks, StepContext, resolve_probes
from lrlab.train.environment import numerics
from lrlab.train.metrics import JsonlSink, MetricsSink, TeeSink

SUPPORTED = ("updates", "rrc")


class ProbeRecorder:
    """Probes every ``every`` updates and the run's rows into ``out_dir/metrics.jsonl`` and/or a store run.

    Args:
        probes: names from :data:`SUPPORTED`.
        every: the probes' cadence in optimizer updates.
        out_dir: write ``metrics.jsonl`` and ``run.json`` here.
        store: a run store file (or :class:`lrlab.store.Store`); the run is study ``study``'s run with ``config``
            (a dict naming the run: the same config again is the same run, which a resume continues).
        study: the store's study for the run.
        config: the run's identity in the study (required with ``store`` unless a framework callback fills it).
        sink: any further sink (e.g. :class:`lrlab.train.metrics.MemorySink`), after the others.
    """

    def __init__(
        self,
        probes: Sequence[str] = SUPPORTED,
        every: int = 10,
        *,
        out_dir: str | Path | None = None,
        store: Any = None,
        study: str = "integrations",
        config: dict[str, Any] | None = None,
        sink: MetricsSink | None = None,
    ) -> None:
        unsupported = [p for p in probes if p not in SUPPORTED]
        if unsupported:
            raise InputError(
                f"probe {unsupported[0]!r} is not supported outside lrlab's trainer "
                f"(supported: {', '.join(SUPPORTED)})",
                "probes",
            )
        self.probes = resolve_probes(list(probes), every)
        self.hooks = Hooks(self.probes)
        self._out_dir, self._store, self.study, self.config = out_dir, store, study, config
        self._extra = sink
        self.sink: TeeSink | None = None
        self._store_sink: StoreSink | None = None
        self._ctx: StepContext | None = None  # the update in progress
        self._pending: dict[str, Any] | None = None  # the last update's row, open to the framework's own logs
        self.last_loss: float | None = None
        self.steps_done = 0

    # --- the run ---------------------------------------------------------------------------------------------

    def open(self, start_step: int, meta: dict[str, Any] | None = None) -> None:
        """Start the records at update ``start_step`` (a resume drops rows of that update and later)."""
        sinks: list[MetricsSink] = []
        if self._out_dir is not None:
            sinks.append(JsonlSink(self._out_dir))
        if self._store is not None:
            if self.config is None:
                raise InputError("a run in the store needs a config naming it (a dict)", "config")
            self._store_sink = StoreSink(self._store, study=self.study, config=self.config)
            sinks.append(self._store_sink)
        if self._extra is not None:
            sinks.append(self._extra)
        self.sink = TeeSink(sinks)
        self.sink.open({"config": self.config, "meta": {**numerics(), **(meta or {})}}, start_step)
        self.steps_done = start_step

    @property
    def run_id(self) -> int | None:
        """The store's id of this run once its records are open (for :func:`lrlab.integrations.write_curve`)."""
        return None if self._store_sink is None else self._store_sink.run_id

    def close(self, status: str = "done") -> None:
        """Write the last row and record the outcome (``done``, ``failed``, ``interrupted``)."""
        if self.sink is None:
            return
        self.write_pending()
        for probe in self.probes:
            probe.remove_hooks()
        self.sink.close({"status": status, "steps_done": self.steps_done, "final_train_loss": self.last_loss})
        self.sink = None

    def __enter__(self) -> ProbeRecorder:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        self.close("done" if kind is None else "interrupted" if kind is KeyboardInterrupt else "failed")

    @property
    def current(self) -> StepContext | None:
        """The update in progress (from :meth:`start_step` to :meth:`end_step`), or None."""
        return self._ctx

    # --- one update ------------------------------------------------------------------------------------------

    def start_step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> StepContext:
        """Before update ``step``'s first forward pass: the probes take their copies and hooks."""
        if self.sink is None:
            self.open(step)
        self.write_pending()
        lr = optimizer.param_groups[0]["lr"]
        self._ctx = StepContext(model, optimizer, step, float(lr), batch=[])
        self.hooks("on_step_start", self._ctx)
        return self._ctx

    def backward_done(self) -> None:
        """The update's gradients are complete (the probes' input hooks come off before anything else runs)."""
        if self._ctx is not None:
            self.hooks("after_backward", self._ctx)

    def end_step(self, loss: float | None = None) -> None:
        """After the optimizer applied the update: the probes measure it; its row stays open for :meth:`log`."""
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        self.hooks("after_step", ctx)
        for probe in self.probes:
            probe.remove_hooks()  # an evaluation pass between updates must not feed a probe
        loss = ctx.loss if loss is None else loss
        loss = None if loss is None else float(loss)
        self._pending = {"step": ctx.step, "lr": ctx.lr, **({} if loss is None else {"train_loss": loss}), **ctx.row}
        self.steps_done = ctx.step + 1

    def log(self, step: int, values: dict[str, float]) -> None:
        """Add ``values`` to the row of update ``step`` if it is the last one ended (else they are dropped)."""
        if self._pending is not None and self._pending["step"] == step:
            self._pending.update(values)

    def write_pending(self) -> None:
        """Write the last update's row to the sinks."""
        if self._pending is None:
            return
        row, self._pending = self._pending, None
        if row.get("train_loss") is not None:
            self.last_loss = row["train_loss"]
        self.sink.log(row)

    def flush(self) -> None:
        """Make every row so far durable (before a framework checkpoint: a resume from it must find them)."""
        if self.sink is not None:
            self.write_pending()
            self.sink.flush()

    @contextlib.contextmanager
    def step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> Iterator[StepContext]:
        """One update of your own loop: set ``ctx.loss`` inside (and ``ctx.log({...})`` for more values)."""
        ctx = self.start_step(model, optimizer, step)
        yield ctx
        self.end_step()
        self.write_pending()
