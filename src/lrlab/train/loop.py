"""The training loop: one optimizer step per schedule step, logged, checkpointed, divergence-aware.

Step ``t`` (0-based) draws training batch ``t`` (see :mod:`lrlab.train.batches`), runs ``grad_accum``
micro-batches forward and backward, clips the global gradient norm, applies update ``t`` with ``lr(t)`` from the
schedule, and logs ``{"step": t, "lr", "train_loss", "grad_norm", "tokens", "elapsed_s"}``; ``train_loss`` is the
mean cross-entropy (nats per token) of batch ``t`` before update ``t``. Every ``eval_every`` steps and at the last
step the row also gets ``val_loss``: the mean over the fixed validation batches of the model after update ``t``.

Stops: ``done`` after the last step; ``diverged`` when a step's loss is not finite or exceeds
``divergence_factor`` times the loss of step 0 (update ``t`` is then not applied and ``steps_done == t``);
``interrupted`` after the current step on SIGINT/SIGTERM (a second Ctrl-C a second later aborts at once);
``failed`` on an error, which is re-raised after the status is recorded. A checkpoint is written every
``ckpt_every`` steps and at the end of every run that did not diverge, so a resumed run with a larger ``steps``
continues it exactly.

Nothing already recorded is lost: a fresh run refuses an output folder that holds an earlier run unless told to
``overwrite`` it (or to ``resume`` it); every check of the config, data, model, optimizer and checkpoint runs
before anything is written; and the records are opened only once the first step has run, so a config that
cannot take a single step (an optimizer option torch rejects at step time) is an :class:`InputError` that leaves
the folder as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import os
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from lrlab import __version__
from lrlab.errors import InputError, clip, first_line
from lrlab.files import check_output_dir, make_dirs
from lrlab.schedules import load as load_schedule
from lrlab.schedules.torch import ScheduleLR
from lrlab.train import ddp
from lrlab.train.batches import TRAIN, VAL, batch_starts, get_batch
from lrlab.train.budget import check_fits
from lrlab.train.callbacks import Hooks, StepContext, resolve_probes
from lrlab.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from lrlab.train.config import TrainConfig, validation_set_of
from lrlab.train.corpus import TokenData, load_data
from lrlab.train.environment import numerics, torch_threads
from lrlab.train.metrics import JsonlSink, MetricsSink, NullSink
from lrlab.train.model import GPT
from lrlab.train.progress import StepProgress

# The config fields a resume must keep: those that decide which tokens each step sees, and the optimizer whose
# state the checkpoint holds; and the validation set each evaluation scores (TrainConfig.validation_set).
_RESUME_KEEPS = ("data", "val_data", "val_fraction", "batch_size", "seq_len", "seed", "optimizer")


def _comparable(key: str, value: Any) -> Any:
    """Data paths as absolute paths, so that ``./x.txt`` and ``x.txt`` are the same source."""
    if key in ("data", "val_data") and value not in ("", "stdlib"):
        return str(Path(value).expanduser().resolve())
    return value


@dataclass(frozen=True)
class RunResult:
    status: str  # done, diverged, interrupted (failed runs raise)
    steps_done: int
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    diverged_at: int | None = None


def code_version() -> str:
    """A git-independent fingerprint of the code: sha256 over lrlab's own source files (first 12 hex digits)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


#: ``torch.optim.AdamW`` keyword arguments a config may set; the rest (``capturable``, ``differentiable``) are for
#: CUDA graphs and higher-order autograd, which this trainer does not use, and fail only at the first step.
TORCH_ADAMW_OPTIONS = ("betas", "eps", "amsgrad", "maximize", "foreach", "fused")


def build_optimizer(cfg: TrainConfig, model: GPT, lr: float) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over the model's own param groups (:meth:`GPT.optimizer_groups`)."""
    return _construct(cfg, model.optimizer_groups(cfg.weight_decay, cfg.decay_embeddings), lr)


def check_optimizer(cfg: TrainConfig) -> None:
    """Build ``cfg``'s optimizer over one dummy parameter, so that bad ``optimizer_options`` are an InputError
    before any run starts (a sweep checks every cell this way)."""
    _construct(cfg, [{"params": [torch.zeros(1, requires_grad=True)]}], 1e-3)


def _construct(cfg: TrainConfig, groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
    if cfg.optimizer == "torch-adamw":
        cls = torch.optim.AdamW
        unknown = sorted(set(cfg.optimizer_options) - set(TORCH_ADAMW_OPTIONS))
        if unknown:
            raise InputError(
                f"config optimizer_options for torch-adamw: {unknown[0]!r} is not supported here "
                f"(supported: {', '.join(TORCH_ADAMW_OPTIONS)})"
            )
    else:
        from lrlab.optim import OPTIMIZERS  # the config's validate() checked the name

        cls = OPTIMIZERS[cfg.optimizer]
    # TOML has no tuples; torch optimizers take betas as one
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.optimizer_options.items()}
    _check_betas(options.get("betas"))
    try:
        return cls(groups, lr=lr, weight_decay=cfg.weight_decay, **options)
    except (TypeError, ValueError, RuntimeError, IndexError) as exc:
        given = ", ".join(sorted(options)) or "none given"
        raise InputError(f"config optimizer_options ({given}) for {cfg.optimizer}: {clip(exc, 160)}") from None


def _check_betas(betas: Any) -> None:
    """``betas``, when given, is two numbers in [0, 1) (torch checks two of them and fails later on a third)."""
    if betas is None:
        return
    numbers = isinstance(betas, tuple) and all(isinstance(b, int | float) and not isinstance(b, bool) for b in betas)
    if not (numbers and len(betas) == 2 and all(0 <= b < 1 for b in betas)):
        raise InputError(f"config optimizer_options: betas must be two numbers in [0, 1), got {clip(betas)}")


def earlier_run(out_dir: Path) -> list[str]:
    """The records of an earlier run in ``out_dir`` (metrics.jsonl, run.json, checkpoints), by name."""
    found = [name for name in ("metrics.jsonl", "run.json") if (out_dir / name).exists()]
    ckpts = list_checkpoints(out_dir / "checkpoints")
    return found + ([f"{len(ckpts)} checkpoint(s)"] if ckpts else [])


class _StopSignal:
    """SIGINT/SIGTERM set a flag the loop checks after each step.

    A second Ctrl-C more than a second after the first aborts at once. Closer repeats are the same request:
    torchrun forwards the Ctrl-C its workers already received from the terminal."""

    repeat_window_s = 1.0

    def __init__(self) -> None:
        self.requested = False
        self._first = 0.0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        now = time.monotonic()
        if not self.requested:
            self.requested, self._first = True, now
        elif signum == signal.SIGINT and now - self._first > self.repeat_window_s:
            raise KeyboardInterrupt

    def __enter__(self) -> _StopSignal:
        with contextlib.suppress(ValueError):  # not the main thread: no handler, Ctrl-C aborts as usual
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    """Holds a run's model, optimizer, schedule and data; :meth:`run` executes it."""

    def __init__(
        self,
        cfg: TrainConfig,
        out_dir: str | Path | None = None,
        resume: bool = False,
        callbacks: list[Any] | None = None,
        sink: MetricsSink | None = None,
        progress: bool = False,
        overwrite: bool = False,
    ) -> None:
        cfg.validate()
        self.cfg = cfg
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.ckpt_dir = self.out_dir / "checkpoints" if self.out_dir is not None else None
        self._check_out_dir(resume, overwrite)
        self.dist = ddp.setup(cfg.device)
        d = self.dist
        for name, rows in (("batch_size", cfg.batch_size), ("eval_batch_size", cfg.validation_set[1])):
            if rows % (d.world_size * cfg.grad_accum):
                raise InputError(
                    f"config: {name}={rows} is not divisible by processes x grad_accum"
                    f" = {d.world_size} x {cfg.grad_accum}"
                )
        try:
            self.schedule = load_schedule(cfg.schedule)
        except InputError as exc:
            raise InputError(f"config schedule {clip(cfg.schedule)!r}: {exc}") from None
        self.total_steps = cfg.total_steps(self.schedule.total)
        if self.schedule.total is not None and self.schedule.total < self.total_steps:
            # a bounded schedule holds its final LR past its total; tabulated ones have no LR there at all
            self.schedule(self.total_steps - 1)
        self.data: TokenData = load_data(cfg.data, cfg.val_data, cfg.val_fraction)
        gpt = cfg.gpt_config(self.data.vocab_size)
        self._check_vocab(gpt.vocab_size)
        self.rows_per_micro = cfg.batch_size // (d.world_size * cfg.grad_accum)
        if cfg.check_memory:
            check_fits(gpt, self.rows_per_micro, d.device)
            eval_rows = cfg.validation_set[1] // (d.world_size * cfg.grad_accum)
            if eval_rows > self.rows_per_micro:  # an evaluation needs less than training as many rows
                check_fits(gpt, eval_rows, d.device, evaluation=True)

        torch.manual_seed(cfg.seed)  # same initial weights on every process
        self.model = GPT(gpt).to(d.device)
        self.optimizer = build_optimizer(cfg, self.model, lr=self.schedule(0))
        self.scheduler = ScheduleLR(self.optimizer, self.schedule, mode="absolute")
        self.start_step, self.initial_loss = 0, None
        if resume:
            self._restore()
        self.ddp_model = DistributedDataParallel(self.model) if d.world_size > 1 else self.model
        self.hooks = Hooks([*resolve_probes(cfg.probes, cfg.probe_every), *(callbacks or [])])
        if sink is None:
            sink = JsonlSink(self.out_dir) if self.out_dir is not None else NullSink()
        self.sink = sink if d.is_main else NullSink()
        self.progress = progress and d.is_main
        self.autocast = torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
        self._fresh = not resume  # a fresh run clears the folder's old checkpoints once it really starts
        self._resume, self._overwrite = resume, overwrite
        self.recorded = False  # the records opened (after the first step)
        self._lock_fd: int | None = None

    # --- checks before anything is written ---------------------------------------------------------------------

    def _check_out_dir(self, resume: bool, overwrite: bool) -> None:
        if self.out_dir is None:
            if resume:
                raise InputError("needs the folder of the run to continue (out_dir)", "resume")
            return
        check_output_dir(self.out_dir, "out_dir")
        if resume and overwrite:
            raise InputError("resume continues the run in the folder, overwrite replaces it: choose one", "overwrite")
        found = earlier_run(self.out_dir)
        if found and not (resume or overwrite):
            raise InputError(
                f"{self.out_dir} already holds a run ({', '.join(found)}); resume it, overwrite it, or choose "
                "another folder",
                "out_dir",
            )

    def _check_vocab(self, vocab: int) -> None:
        """Every token id of the data must index the embedding (else an IndexError inside the first step). Only a
        vocabulary smaller than the data's can fail, so the scan of the tokens is skipped otherwise."""
        if vocab >= 1 << 16 or vocab >= self.data.vocab_size == 256:  # uint16 tokens; bytes are < 256
            return
        top = max(int(a.max()) if a.size else 0 for a in (self.data.train, self.data.val))
        if top >= vocab:
            raise InputError(
                f"config: model.vocab_size={vocab} is too small for data {clip(self.data.source)!r}, whose "
                f"largest token id is {top} (vocab_size must be at least {top + 1})"
            )

    # --- state ---------------------------------------------------------------------------------------------

    def _restore(self) -> None:
        found = list_checkpoints(self.ckpt_dir)
        if not found:
            raise InputError(f"no checkpoint in {self.ckpt_dir}", "resume")
        state = load_checkpoint(found[-1])
        self._check_continues(state.get("config"), found[-1])
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
            first = clip(first_line(exc), 160)
            raise InputError(f"checkpoint {found[-1]} does not fit this config's model/optimizer: {first}") from None
        if state["step"] >= self.total_steps:
            raise InputError(
                f"the run in {self.out_dir} has done {state['step']:,} steps, this config asks for "
                f"{self.total_steps:,}; raise steps to continue it",
                "resume",
            )
        self.start_step, self.initial_loss = state["step"], state.get("initial_loss")

    def _check_continues(self, saved: Any, path: Path) -> None:
        """A resumed run must see the batches the uninterrupted run would have (same data, batch, length, seed),
        score the same validation set and step with the same optimizer (whose state it loads)."""
        if not isinstance(saved, dict):
            return  # a checkpoint without its config (written by hand): the state dicts are still checked
        now = self.cfg.to_dict()
        changed = [
            f"{k} ({clip(repr(saved[k]))} -> {clip(repr(now[k]))})"
            for k in _RESUME_KEEPS
            if k in saved and _comparable(k, saved[k]) != _comparable(k, now[k])
        ]
        try:
            scored = validation_set_of(saved)
        except KeyError:  # a config without the keys (written by hand): nothing to compare
            scored = self.cfg.validation_set
        if scored != self.cfg.validation_set:
            changed.append(f"the validation set (batches, sequences, seed: {scored} -> {self.cfg.validation_set})")
        if changed:
            raise InputError(
                f"this config changes {', '.join(changed)} from checkpoint {path}; a resumed run keeps the data "
                "stream and the optimizer of the run it continues (train into a new folder instead)",
                "resume",
            )

    def _checkpoint(self, steps_done: int) -> None:
        if self.ckpt_dir is None or not self.dist.is_main:
            return
        flush = getattr(self.sink, "flush", None)  # sinks written before flush() existed have none
        if flush is not None:
            flush()  # the rows before a checkpoint are stored before a resume may start after them
        state = {
            "step": steps_done,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "initial_loss": self.initial_loss,
            "config": self.cfg.to_dict(),
        }
        save_checkpoint(self.ckpt_dir, steps_done, state, self.cfg.keep_last)

    def metadata(self) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "config": cfg.to_dict(),
            "meta": {
                "lrlab_version": __version__,
                "code_version": code_version(),
                **numerics(),
                "device": str(self.dist.device),
                "world_size": self.dist.world_size,
                "n_params": self.model.num_params(),
                "tokens_per_step": cfg.tokens_per_step,
                "total_steps": self.total_steps,
                "data": self.data.source,
                "data_fingerprint": self.data.fingerprint(),
                "train_tokens": len(self.data.train),
                "val_tokens": len(self.data.val),
            },
        }

    # --- one step --------------------------------------------------------------------------------------------

    def _micro_batches(
        self, tokens: np.ndarray, stream: int, index: int, rows: int, seed: int
    ) -> list[tuple[torch.Tensor, ...]]:
        """This process's rows of global batch ``index`` (``rows`` sequences), cut into ``grad_accum`` micro-batches."""
        cfg, d = self.cfg, self.dist
        starts = batch_starts(len(tokens), cfg.seq_len, rows, seed, stream, index)
        mine = starts.reshape(d.world_size, -1)[d.rank].reshape(cfg.grad_accum, -1)
        dev = d.device
        return [tuple(t.to(dev, non_blocking=True) for t in get_batch(tokens, s, cfg.seq_len)) for s in mine]

    def train_micro_batches(self, step: int) -> list[tuple[torch.Tensor, ...]]:
        """This process's micro-batches (inputs, targets) of training batch ``step``."""
        return self._micro_batches(self.data.train, TRAIN, step, self.cfg.batch_size, self.cfg.seed)

    def _forward_backward(self, batch: list[tuple[torch.Tensor, ...]], stop: bool) -> tuple[float, bool]:
        """Accumulate the step's gradients; returns (mean loss over all processes, any process asked to stop).

        The common case (one process, one micro-batch) adds no tensor op to a plain loop's forward/backward."""
        n, world = len(batch), self.dist.world_size
        losses = []
        for i, (x, y) in enumerate(batch):
            sync = i == n - 1 or world == 1
            with contextlib.nullcontext() if sync else self.ddp_model.no_sync(), self.autocast:
                loss = self.ddp_model(x, y)
            (loss / n if n > 1 else loss).backward()
            losses.append(loss.detach())
        mean = losses[0] if n == 1 else torch.stack(losses).mean()
        if world == 1:
            return mean.item(), stop
        packed = torch.stack([mean.float(), torch.tensor(float(stop), device=mean.device)])
        ddp.all_reduce_sum(packed, self.dist)  # one collective carries both the loss and the stop request
        loss_sum, stops = packed.tolist()
        return loss_sum / world, stops > 0

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean loss over the fixed validation batches (``cfg.validation_set``; all processes together)."""
        self.model.eval()
        total = torch.zeros((), device=self.dist.device)
        batches, rows, seed = self.cfg.validation_set
        for i in range(batches):
            for x, y in self._micro_batches(self.data.val, VAL, i, rows, seed):
                with self.autocast:
                    total += self.model(x, y).float()
        self.model.train()
        ddp.all_reduce_sum(total, self.dist)
        return total.item() / (batches * self.cfg.grad_accum * self.dist.world_size)

    def _diverged(self, loss: float) -> bool:
        return not math.isfinite(loss) or loss > self.cfg.divergence_factor * self.initial_loss

    def _context(self, step: int, batch: list[tuple[torch.Tensor, ...]]) -> StepContext:
        lr = self.optimizer.param_groups[0]["lr"]
        return StepContext(self.model, self.optimizer, step, lr, batch, self.dist.rank, self.dist.world_size)

    def _train_step(self, step: int, stop: _StopSignal) -> tuple[StepContext, bool, bool]:
        """Optimizer step ``step``: returns (its context and metrics row, diverged, a process asked to stop).

        A diverged step is not applied: its loss is recorded, the weights stay those before the step."""
        cfg = self.cfg
        ctx = self._context(step, self.train_micro_batches(step))
        self.hooks("on_step_start", ctx)
        ctx.loss, stop_now = self._forward_backward(ctx.batch, stop.requested)  # a signal up to here counts
        if self.initial_loss is None:
            self.initial_loss = ctx.loss
        ctx.row.update(step=step, lr=ctx.lr, train_loss=ctx.loss)
        if self._diverged(ctx.loss):
            ctx.row["tokens"] = step * cfg.tokens_per_step
            return ctx, True, stop_now
        self.hooks("after_backward", ctx)
        if cfg.grad_clip > 0:
            ctx.row["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip).item()
        self._optimizer_step(first=step == self.start_step and not self.recorded)
        if step + 1 < self.total_steps:
            self.scheduler.step()
        else:  # no update follows the last: count it, but lr(steps) is never used (a step,lr table has none)
            self.scheduler.advance()
        self.hooks("after_step", ctx)
        self.optimizer.zero_grad(set_to_none=True)
        ctx.row["tokens"] = (step + 1) * cfg.tokens_per_step
        return ctx, False, stop_now

    # --- the run -----------------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Train to ``total_steps`` (see the module doc); ``cfg.threads`` applies for the run's duration."""
        with torch_threads(self.cfg.threads):
            return self._run()

    def _run(self) -> RunResult:
        cfg = self.cfg
        if len(self.data.val) < cfg.seq_len + 2:
            raise InputError(f"data {clip(cfg.data)!r}: the validation split is shorter than seq_len + 2 tokens")
        header = (
            f"{cfg.model.preset}: {self.model.num_params() / 1e6:.2f}M parameters, {cfg.tokens_per_step} tokens/step "
            f"({cfg.batch_size} x {cfg.seq_len}), steps {self.start_step}..{self.total_steps}, {self.dist.world_size} "
            f"process(es) on {self.dist.device}, data {self.data.source}"
        )
        progress = StepProgress(self.total_steps, self.start_step, cfg.tokens_per_step, self.progress, header)
        status, steps_done, loss, val_loss, diverged_at = "done", self.start_step, None, None, None
        started = time.perf_counter()
        # the signal handlers cover everything from the first record to the last, so a SIGTERM never leaves a
        # run recorded as "running"
        with _StopSignal() as stop:
            try:
                self.hooks("on_train_start", self._context(self.start_step, []))
                with progress:
                    for step in range(self.start_step, self.total_steps):
                        ctx, diverged, stop_now = self._train_step(step, stop)
                        if not self.recorded:
                            if stop_now:  # stopped before its first step was done: nothing recorded, nothing lost
                                self.hooks("on_train_end", self._context(step, []))
                                return RunResult("interrupted", self.start_step)
                            self._open_records()
                        loss, row = ctx.loss, ctx.row
                        if diverged:
                            status, diverged_at = "diverged", step
                            self.sink.log(row)
                            break
                        steps_done = step + 1
                        if steps_done % cfg.eval_every == 0 or steps_done == self.total_steps:
                            val_loss = row["val_loss"] = self.evaluate()
                        row["elapsed_s"] = time.perf_counter() - started
                        self.sink.log(row)
                        progress.update(steps_done, loss, ctx.lr, val_loss)
                        periodic = cfg.ckpt_every and steps_done % cfg.ckpt_every == 0
                        if periodic and steps_done < self.total_steps and not stop_now:  # the final save covers it
                            self._checkpoint(steps_done)
                        if stop_now:
                            status = "interrupted"
                            break
                if status != "diverged":
                    self._checkpoint(steps_done)
            except BaseException as exc:
                if self.recorded:
                    failed = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                    error = f"{type(exc).__name__}: {exc}"
                    trace = traceback.format_exc()
                    self.sink.close({"status": failed, "steps_done": steps_done, "error": error, "traceback": trace})
                raise
            finally:
                self._unlock()
            self.hooks("on_train_end", self._context(steps_done, []))
            summary = {"final_train_loss": loss, "final_val_loss": val_loss, "diverged_at": diverged_at}
            self.sink.close({"status": status, "steps_done": steps_done, **summary})
        return RunResult(status, steps_done, **summary)

    def _optimizer_step(self, first: bool) -> None:
        """``optimizer.step()``; on a run's first step an error there is the optimizer refusing its options
        (torch checks some only then, e.g. ``capturable`` on a CPU): an :class:`InputError` (nothing is recorded
        yet), with the original error kept as its cause."""
        if not first:
            self.optimizer.step()
            return
        try:
            self.optimizer.step()
        except InputError:
            raise  # an lrlab optimizer's own message (LionAR without weight decay)
        except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as exc:
            raise InputError(
                f"config: {self.cfg.optimizer} refused its options at the first step, nothing was recorded "
                f"({type(exc).__name__}: {clip(first_line(exc), 160)})"
            ) from exc

    def _open_records(self) -> None:
        """Start the run's records, after its first step ran. The output folder is locked for this run first (a
        second run into it, started meanwhile, is refused then), and a fresh run into a folder it may overwrite
        drops the earlier run's checkpoints, so they cannot mix with this run's."""
        if self.out_dir is not None and self.dist.is_main:
            self._lock()
            if self._fresh:
                for old in list_checkpoints(self.ckpt_dir):
                    old.unlink()
        self.sink.open(self.metadata(), self.start_step)
        self.recorded = True

    def _lock(self) -> None:
        """An exclusive lock on ``OUT/.lock`` until the run ends (released by the OS if the process dies)."""
        make_dirs(self.out_dir, "out_dir")
        fd = os.open(self.out_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise InputError(
                f"another run is writing into {self.out_dir}; wait for it or choose another", "out_dir"
            ) from None
        self._lock_fd = fd
        if not (self._resume or self._overwrite) and earlier_run(self.out_dir):  # written since the first check
            self._unlock()
            raise InputError(f"{self.out_dir} received another run's records while this one started", "out_dir")

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None


def train(cfg: TrainConfig, out_dir: str | Path | None = None, resume: bool = False, **kwargs: Any) -> RunResult:
    """Build a :class:`Trainer` for ``cfg`` and run it (see the module doc for what is recorded). ``kwargs``:
    ``callbacks``, ``sink``, ``progress``, ``overwrite`` (replace an earlier run in ``out_dir``)."""
    return Trainer(cfg, out_dir, resume, **kwargs).run()
