"""DDP: ``torchrun --nproc_per_node=2 -m lrlab train`` on CPU/gloo matches one process with the same batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lrlab.train import load_config, train


def run_two_processes(config, out, *args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "lrlab", "train", str(config), "--out", str(out), "--no-progress", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


def write_config(path, text_file, grad_accum: int):
    path.write_text(
        f"data = '{text_file}'\nseq_len = 32\nbatch_size = 8\ngrad_accum = {grad_accum}\nsteps = 6\neval_every = 3\n"
        "eval_batches = 2\nschedule = 'constant:peak=3e-3,warmup=2'\n"
    )
    return path


def test_two_processes_match_one_with_the_same_global_batch(tmp_path, text_file, read_metrics):
    config = write_config(tmp_path / "ddp.toml", text_file, 2)
    run_two_processes(config, tmp_path / "ddp")
    train(load_config(config), tmp_path / "single")

    ddp, single = read_metrics(tmp_path / "ddp"), read_metrics(tmp_path / "single")
    assert [r["step"] for r in ddp] == list(range(6))  # one row per step: only rank 0 writes
    for key in ("train_loss", "grad_norm", "lr"):
        assert [r[key] for r in ddp] == pytest.approx([r[key] for r in single], rel=1e-5), key
    assert [r["step"] for r in ddp if "val_loss" in r] == [2, 5]
    val = [r["val_loss"] for r in ddp if "val_loss" in r]
    assert val == pytest.approx([r["val_loss"] for r in single if "val_loss" in r], rel=1e-5)
    run = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert run["status"] == "done" and run["meta"]["world_size"] == 2


def test_a_validation_set_of_its_own_size_scores_the_same_under_ddp(tmp_path, text_file, read_metrics):
    """eval_batch_size (12, not the training batch's 8) is cut across processes and micro-batches like a batch."""
    config = write_config(tmp_path / "ddp.toml", text_file, 2)
    run_two_processes(config, tmp_path / "ddp", "--set", "eval_batch_size=12")
    train(load_config(config, ["eval_batch_size=12"]), tmp_path / "single")
    plain = train(load_config(config), tmp_path / "plain")
    ddp, single = read_metrics(tmp_path / "ddp"), read_metrics(tmp_path / "single")
    val = [r["val_loss"] for r in ddp if "val_loss" in r]
    assert len(val) == 2 and val == pytest.approx([r["val_loss"] for r in single if "val_loss" in r], rel=1e-5)
    assert val[-1] != pytest.approx(plain.final_val_loss, rel=1e-4)  # other sequences than the batch-8 set


def test_gns_under_ddp_equals_one_process_with_all_the_micro_batches(tmp_path, text_file, read_metrics):
    """2 processes x 2 micro-batches of 2 rows vs 1 process x 4 micro-batches of the same rows: same estimate."""
    run_two_processes(
        write_config(tmp_path / "ddp.toml", text_file, 2), tmp_path / "ddp", "--probe", "gns", "--probe-every", "1"
    )
    single = load_config(write_config(tmp_path / "one.toml", text_file, 4), ["probes=['gns']", "probe_every=1"])
    train(single, tmp_path / "single")
    ddp, one = read_metrics(tmp_path / "ddp"), read_metrics(tmp_path / "single")
    for key in ("gns/grad_sq", "gns/trace", "train_loss"):
        assert [r[key] for r in ddp] == pytest.approx([r[key] for r in one], rel=1e-4), key
