"""Nothing a user recorded is lost: refused, stopped or failing runs leave an earlier run's folder as it was."""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
from pathlib import Path

import pytest
import torch

import lrlab.train.budget
from lrlab.errors import InputError
from lrlab.train import Trainer, train


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def earlier_run(tmp_path, fast_config):
    out = tmp_path / "run"
    assert train(fast_config("steps=4"), out).status == "done"
    return out, _digest(out)


def test_ctrl_c_during_the_first_step_of_an_overwrite_keeps_the_earlier_run(earlier_run, fast_config):
    out, before = earlier_run

    class CtrlC:
        def on_step_start(self, ctx):
            os.kill(os.getpid(), signal.SIGINT)  # the trainer's handler: stop after this step

    result = Trainer(fast_config("steps=4", "seed=1"), out, overwrite=True, callbacks=[CtrlC()]).run()
    assert (result.status, result.steps_done) == ("interrupted", 0)
    assert _digest(out) == before  # nothing opened, nothing dropped: the earlier checkpoints are still there


def test_a_second_run_into_a_locked_folder_is_refused(earlier_run, fast_config):
    out, before = earlier_run
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another run holds the folder
    try:
        with pytest.raises(InputError, match="another run is writing into"):
            Trainer(fast_config("steps=4", "seed=1"), out, overwrite=True).run()
    finally:
        os.close(fd)
    assert _digest(out) == before


def test_resuming_a_complete_run_is_refused_and_keeps_its_losses(earlier_run, fast_config):
    out, before = earlier_run
    with pytest.raises(InputError, match="has done 4 steps, this config asks for 4; raise steps"):
        Trainer(fast_config("steps=4"), out, resume=True)
    assert _digest(out) == before


def test_an_optimizer_refusing_its_options_at_the_first_step_is_bad_input_with_its_cause(tmp_path, fast_config):
    """torch checks some options only inside step() (capturable on a CPU): an error there, at the first step, is
    the config's; nothing is recorded, and torch's error is kept as the cause."""
    trainer = Trainer(fast_config("steps=2"), tmp_path / "r")

    def refuse(*args, **kwargs):
        raise RuntimeError("If capturable=True, params and state_steps must be on supported devices")

    trainer.optimizer.step = refuse
    with pytest.raises(InputError, match="refused its options at the first step, nothing was recorded") as caught:
        trainer.run()
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert not (tmp_path / "r").exists()


def test_an_lrlab_optimizer_refusing_a_setting_at_its_first_step_says_why(tmp_path, fast_config):
    with pytest.raises(InputError, match=r"LionAR: weight_decay=0\.0 gives matrices"):
        Trainer(fast_config("steps=2", "optimizer='lionar'", "weight_decay=0.0"), tmp_path / "r").run()
    assert not (tmp_path / "r").exists()


def test_a_bug_in_the_first_step_is_not_reported_as_bad_input(tmp_path, fast_config):
    """A callback (or any code but the optimizer's step) raising is a bug: its own exception, nothing recorded."""

    class Broken:
        def after_backward(self, ctx):
            raise TypeError("a bug in a probe")

    with pytest.raises(TypeError, match="a bug in a probe"):
        Trainer(fast_config("steps=2"), tmp_path / "r", callbacks=[Broken()]).run()
    assert not (tmp_path / "r" / "run.json").exists()


@pytest.mark.parametrize("betas", ["[0.9]", "[0.9, 0.95, 0.99]", "[0.9, 1.5]", "['a', 'b']"])
def test_betas_must_be_two_numbers_in_0_1(fast_config, betas):
    with pytest.raises(InputError, match="betas must be two numbers in"):
        Trainer(fast_config(f"optimizer_options.betas={betas}"))


def test_the_memory_check_refuses_what_cannot_fit_and_can_be_turned_off(fast_config, monkeypatch):
    monkeypatch.setattr(lrlab.train.budget, "free_bytes", lambda device: 1 << 20)  # 1 MiB free
    with pytest.raises(InputError, match=r"needs about .* GiB to train, more than the .* this process may use"):
        Trainer(fast_config())
    trainer = Trainer(fast_config("check_memory=false"))
    assert trainer.model.num_params() > 0


def test_a_validation_batch_too_large_to_evaluate_names_eval_batch_size(fast_config, monkeypatch):
    from lrlab.train.budget import gpt_params, training_bytes

    cfg = fast_config()
    gpt = cfg.gpt_config(256)
    fits = training_bytes(gpt, cfg.batch_size)  # the training micro-batch fits, 64 times its rows do not
    monkeypatch.setattr(lrlab.train.budget, "free_bytes", lambda device: fits + 16 * gpt_params(gpt))
    assert Trainer(fast_config("eval_batch_size=8")).model.num_params() > 0
    with pytest.raises(InputError, match=r"256 sequences per micro-batch\) needs about .* GiB to evaluate.*eval_batch"):
        Trainer(fast_config("eval_batch_size=256"))


def test_the_estimate_counts_what_the_model_holds(fast_config):
    """16 bytes a parameter (weights, gradients, two moments) plus activations that grow with the batch."""
    from lrlab.train.budget import gpt_params, training_bytes

    cfg = Trainer(fast_config()).model.cfg
    assert gpt_params(cfg) == sum(p.numel() for p in Trainer(fast_config()).model.parameters())
    one, two = training_bytes(cfg, 1), training_bytes(cfg, 2)
    assert one > 16 * gpt_params(cfg) and two - one == one - 16 * gpt_params(cfg)
    assert torch.get_num_threads() >= 1
