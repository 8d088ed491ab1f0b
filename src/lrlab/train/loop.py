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
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import platform
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from lrlab import __version__
from lrlab.errors import InputError
from lrlab.schedules import load as load_schedule
from lrlab.schedules.torch import ScheduleLR
from lrlab.train import ddp
from lrlab.train.batches import TRAIN, VAL, batch_starts, get_batch
from lrlab.train.callbacks import Hooks, StepContext, resolve_probes
from lrlab.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from lrlab.train.config import TrainConfig
from lrlab.train.corpus import TokenData, load_data
from lrlab.train.metrics import JsonlSink, MetricsSink, NullSink
from lrlab.train.model import GPT
from lrlab.train.progress import StepProgress

# The config fields that decide which tokens each step (and each evaluation) sees: a resume must keep them.
_DATA_STREAM = ("data", "val_data", "val_fraction", "batch_size", "seq_len", "seed")


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


def build_optimizer(cfg: TrainConfig, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over two groups: matrices with ``weight_decay`` (embeddings only when
    ``decay_embeddings``), and biases, norm gains (and embeddings otherwise) without."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        is_embedding = name.startswith(("wte.", "wpe."))
        (decay if p.ndim >= 2 and (cfg.decay_embeddings or not is_embedding) else no_decay).append(p)
    groups = [
        {"params": ps, "weight_decay": wd}
        for ps, wd in ((decay, cfg.weight_decay), (no_decay, 0.0))
        if ps  # torch rejects an empty group
    ]
    if cfg.optimizer == "torch-adamw":
        cls = torch.optim.AdamW
    else:
        from lrlab.optim import OPTIMIZERS  # imported here: the trainer works without it for torch-adamw

        if cfg.optimizer not in OPTIMIZERS:
            known = ", ".join(["torch-adamw", *OPTIMIZERS])
            raise InputError(f"config: unknown optimizer {cfg.optimizer!r} (known: {known})")
        cls = OPTIMIZERS[cfg.optimizer]
    # TOML has no tuples; torch optimizers take betas as one
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.optimizer_options.items()}
    try:
        return cls(groups, lr=lr, weight_decay=cfg.weight_decay, **options)
    except (TypeError, ValueError) as exc:
        raise InputError(f"config optimizer_options for {cfg.optimizer}: {exc}") from None


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
    ) -> None:
        cfg.validate()
        self.cfg = cfg
        self.dist = ddp.setup(cfg.device)
        d = self.dist
        if cfg.batch_size % (d.world_size * cfg.grad_accum):
            raise InputError(
                f"config: batch_size={cfg.batch_size} is not divisible by processes x grad_accum "
                f"= {d.world_size} x {cfg.grad_accum}"
            )
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.ckpt_dir = self.out_dir / "checkpoints" if self.out_dir is not None else None
        self.data: TokenData = load_data(cfg.data, cfg.val_data, cfg.val_fraction)
        try:
            self.schedule = load_schedule(cfg.schedule)
        except InputError as exc:
            raise InputError(f"config schedule {cfg.schedule!r}: {exc}") from None
        self.total_steps = cfg.total_steps(self.schedule.total)

        torch.manual_seed(cfg.seed)  # same initial weights on every process
        self.model = GPT(cfg.gpt_config(self.data.vocab_size)).to(d.device)
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
        self.rows_per_micro = cfg.batch_size // (d.world_size * cfg.grad_accum)

    # --- state ---------------------------------------------------------------------------------------------

    def _restore(self) -> None:
        if self.ckpt_dir is None:
            raise InputError("--resume needs --out DIR (the folder of the run to continue)")
        found = list_checkpoints(self.ckpt_dir)
        if not found:
            raise InputError(f"--resume: no checkpoint in {self.ckpt_dir}")
        state = load_checkpoint(found[-1])
        self._check_data_stream(state.get("config"), found[-1])
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.start_step, self.initial_loss = int(state["step"]), state["initial_loss"]
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise InputError(f"checkpoint {found[-1]} does not fit this config's model/optimizer: {first}") from None

    def _check_data_stream(self, saved: Any, path: Path) -> None:
        """A resumed run must see the batches the uninterrupted run would have: same data, batch, length, seed."""
        if not isinstance(saved, dict):
            return  # a checkpoint without its config (written by hand): the state dicts are still checked
        now = self.cfg.to_dict()
        changed = [
            f"{k} ({saved[k]!r} -> {now[k]!r})"
            for k in _DATA_STREAM
            if k in saved and _comparable(k, saved[k]) != _comparable(k, now[k])
        ]
        if changed:
            raise InputError(
                f"--resume: this config changes {', '.join(changed)} from checkpoint {path}; "
                "the resumed run would not continue the same batches (train into a new --out instead)"
            )

    def _checkpoint(self, steps_done: int) -> None:
        if self.ckpt_dir is None or not self.dist.is_main:
            return
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
                "torch_version": torch.__version__,
                "python_version": platform.python_version(),
                "device": str(self.dist.device),
                "world_size": self.dist.world_size,
                "n_params": self.model.num_params(),
                "tokens_per_step": cfg.tokens_per_step,
                "total_steps": self.total_steps,
                "data": self.data.source,
                "train_tokens": len(self.data.train),
                "val_tokens": len(self.data.val),
            },
        }

    # --- one step --------------------------------------------------------------------------------------------

    def _micro_batches(self, tokens: np.ndarray, stream: int, index: int) -> list[tuple[torch.Tensor, ...]]:
        """This process's rows of global batch ``index``, cut into ``grad_accum`` micro-batches."""
        cfg, d = self.cfg, self.dist
        starts = batch_starts(len(tokens), cfg.seq_len, cfg.batch_size, cfg.seed, stream, index)
        mine = starts.reshape(d.world_size, -1)[d.rank].reshape(cfg.grad_accum, -1)
        dev = d.device
        return [tuple(t.to(dev, non_blocking=True) for t in get_batch(tokens, s, cfg.seq_len)) for s in mine]

    def train_micro_batches(self, step: int) -> list[tuple[torch.Tensor, ...]]:
        """This process's micro-batches (inputs, targets) of training batch ``step``."""
        return self._micro_batches(self.data.train, TRAIN, step)

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
        """Mean loss over the ``eval_batches`` fixed validation batches (all processes together)."""
        self.model.eval()
        total = torch.zeros((), device=self.dist.device)
        for i in range(self.cfg.eval_batches):
            for x, y in self._micro_batches(self.data.val, VAL, i):
                with self.autocast:
                    total += self.model(x, y).float()
        self.model.train()
        ddp.all_reduce_sum(total, self.dist)
        return total.item() / (self.cfg.eval_batches * self.cfg.grad_accum * self.dist.world_size)

    def _diverged(self, loss: float) -> bool:
        return not math.isfinite(loss) or loss > self.cfg.divergence_factor * self.initial_loss

    def _context(self, step: int, batch: list[tuple[torch.Tensor, ...]]) -> StepContext:
        lr = self.optimizer.param_groups[0]["lr"]
        return StepContext(self.model, self.optimizer, step, lr, batch, self.dist.rank, self.dist.world_size)

    def _train_step(self, step: int, stop: _StopSignal) -> tuple[StepContext, bool, bool]:
        """Optimizer step ``step``: returns (its context and metrics row, diverged, a process asked to stop).

        A diverged step is not applied: its loss is recorded, the weights stay those before the step."""
        cfg = self.cfg
        ctx = self._context(step, self._micro_batches(self.data.train, TRAIN, step))
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
        self.optimizer.step()
        self.scheduler.step()
        self.hooks("after_step", ctx)
        self.optimizer.zero_grad(set_to_none=True)
        ctx.row["tokens"] = (step + 1) * cfg.tokens_per_step
        return ctx, False, stop_now

    # --- the run -----------------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        cfg = self.cfg
        if len(self.data.val) < cfg.seq_len + 2:
            raise InputError(f"data {cfg.data!r}: the validation split is shorter than seq_len + 2 tokens")
        self.sink.open(self.metadata(), self.start_step)
        self.hooks("on_train_start", self._context(self.start_step, []))
        status, steps_done, loss, val_loss, diverged_at = "done", self.start_step, None, None, None
        header = (
            f"{cfg.model.preset}: {self.model.num_params() / 1e6:.2f}M parameters, {cfg.tokens_per_step} tokens/step "
            f"({cfg.batch_size} x {cfg.seq_len}), steps {self.start_step}..{self.total_steps}, {self.dist.world_size} "
            f"process(es) on {self.dist.device}, data {self.data.source}"
        )
        progress = StepProgress(self.total_steps, self.start_step, cfg.tokens_per_step, self.progress, header)
        started = time.perf_counter()
        try:
            with _StopSignal() as stop, progress:
                for step in range(self.start_step, self.total_steps):
                    ctx, diverged, stop_now = self._train_step(step, stop)
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
                    if periodic and steps_done < self.total_steps and not stop_now:  # the end-of-run save covers those
                        self._checkpoint(steps_done)
                    if stop_now:
                        status = "interrupted"
                        break
        except BaseException as exc:
            failed = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            self.sink.close({"status": failed, "steps_done": steps_done, "error": f"{type(exc).__name__}: {exc}"})
            raise
        if status != "diverged":
            self._checkpoint(steps_done)
        self.hooks("on_train_end", self._context(steps_done, []))
        summary = {"final_train_loss": loss, "final_val_loss": val_loss, "diverged_at": diverged_at}
        self.sink.close({"status": status, "steps_done": steps_done, **summary})
        return RunResult(status, steps_done, **summary)


def train(cfg: TrainConfig, out_dir: str | Path | None = None, resume: bool = False, **kwargs: Any) -> RunResult:
    """Build a :class:`Trainer` for ``cfg`` and run it (see the module doc for what is recorded)."""
    return Trainer(cfg, out_dir, resume, **kwargs).run()
