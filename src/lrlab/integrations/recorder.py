"""lrlab probes and records for a training loop lrlab does not own (the Hugging Face Trainer, Lightning, yours).

:class:`ProbeRecorder` wires the probes exactly as lrlab's own trainer does (:mod:`lrlab.train.callbacks`: the same
:class:`StepContext`, hooks and probe lookup) and writes one row per optimizer update, ``{"step": t, "lr": lr(t),
"train_loss", ...probe values}``, to the trainer's sinks: ``DIR/metrics.jsonl`` (:class:`JsonlSink`) and/or a run
in the run store (:class:`lrlab.store.StoreSink`). ``t`` is the 0-based update, ``lr`` the LR update ``t`` ran at
and ``train_loss`` the loss of its batch before the update, as in ``lrlab train``'s rows.

Every probe of :data:`SUPPORTED` works, given what it needs from the loop: ``updates`` and ``rrc`` need only the
model and its weights before and after an update; ``gns`` needs 2 or more micro-batches an update
(``micro_batches=``) and a call of :meth:`ProbeRecorder.backward_done` between the last backward pass and the
optimizer step; ``sharpness`` needs that call too and ``loss_fn``, the loss of the update's first micro-batch at
the current weights. The framework callbacks pass all of it.

Your own loop::

    with ProbeRecorder(["updates", "rrc"], every=10, store="runs.db", study="mine", config={"lr": 1e-3}) as rec:
        for step, (x, y) in enumerate(batches):
            with rec.step(model, opt, step) as ctx:
                ctx.loss = train_step(x, y)  # forward, backward, opt.step(), sched.step(), opt.zero_grad()
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from lrlab.errors import InputError, clip
from lrlab.probes import PROBES
from lrlab.store import StoreSink
from lrlab.train.callbacks import Hooks, StepContext, resolve_probes
from lrlab.train.environment import numerics
from lrlab.train.metrics import JsonlSink, MetricsSink, NullSink, TeeSink

SUPPORTED = tuple(PROBES)  # every lrlab probe: updates, rrc, gns, sharpness
RESERVED = ("step", "lr", "train_loss")  # the row keys the recorder writes itself
DEFAULT = ("updates", "rrc")  # what needs nothing from the loop beyond the model and the update
#: probes that read the whole update's gradients: the loop calls ``backward_done`` before the optimizer step
NEED_GRADIENTS = ("gns", "sharpness")


class ProbeRecorder:
    """Probes every ``every`` updates and the run's rows into ``out_dir/metrics.jsonl`` and/or a store run.

    Args:
        probes: names from :data:`SUPPORTED`, or a dict of names to their own cadences (``{"updates": 10,
            "sharpness": 100}``).
        every: the cadence in optimizer updates of the probes given by name.
        out_dir: write ``metrics.jsonl`` and ``run.json`` here.
        store: a run store file (or :class:`lrlab.store.Store`); the run is study ``study``'s run with ``config``
            (a dict naming the run: the same config again is the same run, which a resume continues).
        study: the store's study for the run.
        config: the run's identity in the study (required with ``store`` unless a framework callback fills it).
        sink: any further sink (e.g. :class:`lrlab.train.metrics.MemorySink`), after the others.
    """

    def __init__(
        self,
        probes: Sequence[str] | Mapping[str, int] = DEFAULT,
        every: int = 10,
        *,
        out_dir: str | Path | None = None,
        store: Any = None,
        study: str = "integrations",
        config: dict[str, Any] | None = None,
        sink: MetricsSink | None = None,
    ) -> None:
        cadences = _cadences(probes, every)
        self.probes = resolve_probes(cadences)
        self.names = tuple(cadences)
        self.hooks = Hooks(self.probes)
        self._out_dir, self._store, self.study, self.config = out_dir, store, study, config
        self._extra = sink
        self.sink: TeeSink | None = None
        self._store_sink: StoreSink | None = None
        self._ctx: StepContext | None = None  # the update in progress
        self._pending: dict[str, Any] | None = None  # the last update's row, open to the framework's own logs
        self._gradients_seen = False  # backward_done was called for the update in progress
        self._written: int | None = None  # the step of the last row written
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

    def begin(
        self, start_step: int, *, integration: str, main_process: bool, accumulation: tuple[str, int], config: dict
    ) -> ProbeRecorder:
        """Open a framework run's records at ``start_step``, named by ``config`` unless the user named it; returns
        the recorder to use: this one on the main process, one that probes and records nothing on the others
        (one process records the run). ``accumulation``: the framework's name for its micro-batches an update,
        and their number (``gns`` needs 2 or more; the run's metadata keeps it)."""
        name, count = accumulation
        if "gns" in self.names and count < 2:
            raise InputError(f"the gns probe needs {name} >= 2", name)
        meta = {"integration": integration, name: count}
        recorder = self if main_process else ProbeRecorder([], sink=NullSink())
        if recorder.config is None:
            recorder.config = {"integration": integration, **config}
        recorder.open(start_step, meta)
        return recorder

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

    def active(self, name: str, step: int) -> bool:
        """Whether probe ``name`` measures update ``step``."""
        return any(p.name == name and p.active(step) for p in self.probes)

    def start_step(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        step: int,
        *,
        micro_batches: int | None = None,
        loss_fn: Callable[[], torch.Tensor] | None = None,
        reports_micro_batches: bool = False,
    ) -> StepContext:
        """Before update ``step``'s first forward pass: the probes take their copies and hooks.

        ``micro_batches``: forward/backward passes in this update (``gns`` needs 2 or more); ``loss_fn``: the
        first micro-batch's loss at the current weights (``sharpness``); ``reports_micro_batches``: the loop
        calls :meth:`micro_batch` before each pass (else the probes hook the model's forward). The loop may clip,
        unscale or all-reduce the gradients before :meth:`backward_done`: ``gns`` reads the last micro-batch's
        raw gradients in parameter hooks during its backward pass (on this process: a local estimate)."""
        if self.sink is None:
            self.open(step)
        self.write_pending()
        if loss_fn is None and self.active("sharpness", step):
            raise InputError("the sharpness probe needs loss_fn, the first micro-batch's loss", "loss_fn")
        if (micro_batches or 1) < 2 and self.active("gns", step):
            raise InputError("the gns probe needs micro_batches >= 2 (gradient accumulation)", "micro_batches")
        lr = optimizer.param_groups[0]["lr"]
        self._ctx = StepContext(
            model,
            optimizer,
            step,
            float(lr),
            batch=[],
            micro_batches=micro_batches if micro_batches is not None else 1,
            loss_fn=loss_fn,
            grads_changed_before_after_backward=True,
            reports_micro_batches=reports_micro_batches,
        )
        self._gradients_seen = False
        self.hooks("on_step_start", self._ctx)
        return self._ctx

    def micro_batch(self, inputs: Any) -> None:
        """A micro-batch of the update in progress starts (loops that report them: ``reports_micro_batches``)."""
        if self._ctx is not None:
            self._ctx.micro_batch = inputs
            self.hooks("on_micro_batch", self._ctx)
            self._ctx.micro_batch = None

    def backward_done(self) -> None:
        """The update's gradients are complete, before the optimizer step (and before clipping where the loop
        allows): ``gns`` and ``sharpness`` measure here, and the probes' input hooks come off."""
        if self._ctx is not None:
            self._gradients_seen = True
            self.hooks("after_backward", self._ctx)

    def end_step(self, loss: float | None = None) -> None:
        """After the optimizer applied the update: the probes measure it; its row stays open for :meth:`log`."""
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        missed = [n for n in NEED_GRADIENTS if not self._gradients_seen and self.active(n, ctx.step)]
        if missed:
            for probe in self.probes:
                probe.remove_hooks()
            raise InputError(
                f"the {missed[0]} probe needs backward_done() between the backward pass and the optimizer step",
                "backward_done",
            )
        self.hooks("after_step", ctx)
        for probe in self.probes:
            probe.remove_hooks()  # an evaluation pass between updates must not feed a probe
        loss = ctx.loss if loss is None else loss
        loss = None if loss is None else float(loss)
        self._pending = {"step": ctx.step, "lr": ctx.lr, **({} if loss is None else {"train_loss": loss}), **ctx.row}
        self.steps_done = ctx.step + 1

    def log(self, step: int, values: dict[str, float]) -> None:
        """Add ``values`` to the row of update ``step`` if it is the last one ended (else they are dropped).

        Where that row was already written (a checkpoint flushed it, or the next update started: validation in
        the middle of an accumulated update), ``values`` go out as a row of their own for the same step: the
        store merges it into the step's metrics; ``metrics.jsonl`` holds a second line with that step."""
        if not values:
            return
        if self._pending is not None and self._pending["step"] == step:
            self._pending.update(values)
        elif self.sink is not None and step == self._written:
            self.sink.log({"step": step, **values})

    def write_pending(self) -> None:
        """Write the last update's row to the sinks."""
        if self._pending is None:
            return
        row, self._pending = self._pending, None
        self._written = row["step"]
        if row.get("train_loss") is not None:
            self.last_loss = row["train_loss"]
        self.sink.log(row)

    def flush(self) -> None:
        """Make every row so far durable (before a framework checkpoint: a resume from it must find them)."""
        if self.sink is not None:
            self.write_pending()
            self.sink.flush()

    @contextlib.contextmanager
    def step(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, **needs: Any
    ) -> Iterator[StepContext]:
        """One update of your own loop: set ``ctx.loss`` inside (and ``ctx.log({...})`` for more values);
        ``needs``: :meth:`start_step`'s keywords (``micro_batches``, ``loss_fn``) for ``gns`` and ``sharpness``,
        which also need :meth:`backward_done` after the backward passes."""
        ctx = self.start_step(model, optimizer, step, **needs)
        yield ctx
        self.end_step()
        self.write_pending()


def _cadences(probes: Sequence[str] | Mapping[str, int], every: int) -> dict[str, int]:
    """{probe name: cadence in updates} from names (each at ``every``) or a dict of names to cadences."""
    if isinstance(probes, str):
        raise InputError(
            f"a list of names or a dict of names to cadences, not the string {clip(repr(probes))}", "probes"
        )
    names = list(probes)
    for name in names:
        if name not in SUPPORTED:  # (an unhashable entry is no name either)
            raise InputError(f"unknown probe {clip(repr(name))} (available: {', '.join(SUPPORTED)})", "probes")
        if names.count(name) > 1:
            raise InputError(f"probe {name!r} is named twice", "probes")
    cadences = {name: probes[name] for name in names} if isinstance(probes, Mapping) else dict.fromkeys(names, every)
    for name, k in cadences.items():
        if isinstance(k, bool) or not isinstance(k, int):
            raise InputError(
                f"the cadence of {name!r} must be a whole number of updates, not {clip(repr(k))}", "probes"
            )
    return cadences
