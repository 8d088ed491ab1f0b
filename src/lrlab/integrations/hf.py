"""lrlab probes and records in the Hugging Face Trainer: ``Trainer(..., callbacks=[HFProbeCallback(...)])``.

Needs ``pip install 'lrlab[hf]'`` (transformers and accelerate). Each optimizer update ``t`` (after gradient
accumulation: the Trainer's ``state.global_step`` before the update) is one row, with the LR it ran at, the probe
values and the Trainer's own logs of that update: ``loss`` as ``train_loss``, ``grad_norm`` and ``eval_loss`` as
``val_loss``. With ``logging_steps=k`` the Trainer logs the mean loss of the last k updates at every k-th one, so
only those rows have a ``train_loss``; ``logging_steps=1`` gives every update its own.

Hooks: ``on_step_begin`` (before the first micro-batch of an update), ``on_pre_optimizer_step`` (gradients
complete and already clipped), ``on_step_end`` (after the update and the scheduler step), ``on_log`` (the same
update's logs), ``on_save`` (rows flushed before each checkpoint), ``on_train_end``. A resumed run
(``trainer.train(resume_from_checkpoint=...)``) starts its records at the checkpoint's step and drops later rows.

``gns`` (with ``gradient_accumulation_steps >= 2``) reads the last micro-batch's raw gradients in parameter hooks
during its backward pass, since the Trainer clips before ``on_pre_optimizer_step``; ``sharpness`` evaluates
``model(**inputs).loss`` on the update's first micro-batch, its inputs as the Trainer passed them (without
``num_items_in_batch``, so the loss is that micro-batch's mean).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from lrlab.errors import InputError
from lrlab.integrations.optimizers import check_covers
from lrlab.integrations.recorder import DEFAULT, ProbeRecorder

#: the Trainer's training log keys kept in lrlab's rows, under lrlab's names; its evaluation metrics ``eval_X``
#: are kept as ``val_X`` (``eval_loss`` as ``val_loss``), except its timings
LOG_KEYS = {"loss": "train_loss", "grad_norm": "grad_norm"}
_TIMINGS = ("_runtime", "_per_second", "_preparation_time")


def _row_key(key: str) -> str | None:
    """The row's name for a Trainer log key, or None for one not kept."""
    if key.startswith("eval_") and not key.endswith(_TIMINGS):
        return "val_" + key.removeprefix("eval_")
    return LOG_KEYS.get(key)


class HFProbeCallback(TrainerCallback):
    """Runs lrlab probes (``updates``, ``rrc``, ``gns``, ``sharpness``) every ``every`` updates and records every
    update's row.

    ``probes`` (names, or names to cadences), ``out_dir``, ``store``, ``study``, ``config``, ``sink``: as
    :class:`lrlab.integrations.ProbeRecorder`; without ``config`` the store's run is named by the Trainer's output
    folder, so a resume from it continues that run.
    """

    def __init__(
        self,
        probes: Any = DEFAULT,
        every: int = 10,
        *,
        out_dir: str | Path | None = None,
        store: Any = None,
        study: str = "transformers",
        config: dict[str, Any] | None = None,
        sink: Any = None,
    ) -> None:
        self.recorder = ProbeRecorder(
            probes, every, out_dir=out_dir, store=store, study=study, config=config, sink=sink
        )
        self._capture: Any = None  # the forward pre-hook keeping a sharpness step's first micro-batch

    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        check_covers(lr_scheduler, state.max_steps)
        self.recorder = self.recorder.begin(
            state.global_step,
            integration="transformers",
            main_process=state.is_world_process_zero,
            accumulation=("gradient_accumulation_steps", args.gradient_accumulation_steps),
            config={"output_dir": str(Path(args.output_dir).resolve())},
        )

    def on_step_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        loss_fn = self._first_batch_loss(model) if self.recorder.active("sharpness", state.global_step) else None
        self.recorder.start_step(
            model,
            optimizer,
            state.global_step,
            micro_batches=args.gradient_accumulation_steps,
            loss_fn=loss_fn,
        )

    def _first_batch_loss(self, model):
        """A loss function of the update's first micro-batch, kept by a forward pre-hook when it comes."""
        seen: dict[str, Any] = {}

        def keep(module, args, kwargs):
            if not seen:
                seen.update(args=args, kwargs={k: v for k, v in kwargs.items() if k != "num_items_in_batch"})

        self._capture = model.register_forward_pre_hook(keep, with_kwargs=True)

        def loss():
            self._release()
            out = model(*seen["args"], **seen["kwargs"])
            value = out.get("loss") if isinstance(out, dict) else out[0] if isinstance(out, tuple) else out
            if not isinstance(value, torch.Tensor) or value.ndim != 0:
                raise InputError(
                    "the sharpness probe needs the model's own loss, and the model returned none for the Trainer's "
                    "inputs (batches without labels, or a Trainer that computes the loss itself: "
                    "label_smoothing_factor, compute_loss_func)",
                    "probes",
                )
            return value

        return loss

    def _release(self) -> None:
        if self._capture is not None:
            self._capture.remove()
            self._capture = None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.recorder.backward_done()

    def on_step_end(self, args, state, control, **kwargs):
        self._release()
        self.recorder.end_step()

    def on_log(self, args, state, control, logs=None, **kwargs):
        values = {
            _row_key(k): float(v)
            for k, v in (logs or {}).items()
            if _row_key(k) is not None and isinstance(v, int | float) and not isinstance(v, bool)  # no lists
        }
        self.recorder.log(state.global_step - 1, values)  # logged after update global_step - 1

    def on_save(self, args, state, control, **kwargs):
        self.recorder.flush()

    def on_train_end(self, args, state, control, **kwargs):
        self.close("done" if state.global_step >= state.max_steps else "interrupted")

    def close(self, status: str = "done") -> None:
        """Remove every hook and record the run's outcome (``done``, ``interrupted``, ``failed``) with its rows:
        the Trainer calls no callback when a step raises, so ``with HFProbeCallback(...) as probes:`` around
        ``trainer.train()`` (or this call) records a failed run instead of leaving it ``running``."""
        self._release()
        self.recorder.close(status)

    def __enter__(self) -> HFProbeCallback:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.close("done" if kind is None else "interrupted" if kind is KeyboardInterrupt else "failed")
