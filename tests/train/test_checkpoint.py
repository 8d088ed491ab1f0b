"""Checkpoints: atomic files, keep-last-N, safe loading, clear errors for damaged or foreign files."""

from __future__ import annotations

import pytest
import torch

from lrlab.errors import InputError
from lrlab.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint


def _state(step: int) -> dict:
    return {
        "step": step,
        "model": {"w": torch.full((3,), float(step))},
        "optimizer": {"state": {}},
        "scheduler": {"last_epoch": step},
    }


def test_save_load_round_trip_and_keep_last(tmp_path):
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, _state(step), keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-00000020.pt", "ckpt-00000030.pt"]
    assert not list(tmp_path.glob("*.tmp"))  # temporary files were renamed, none left behind
    state = load_checkpoint(list_checkpoints(tmp_path)[-1])
    assert state["step"] == 30 and torch.equal(state["model"]["w"], torch.full((3,), 30.0))


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path, 5, _state(5), keep_last=1)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=r"checkpoint .*ckpt-00000005\.pt is corrupted"):
        load_checkpoint(path)
    path.write_text("not a checkpoint at all")
    with pytest.raises(InputError, match="corrupted"):
        load_checkpoint(path)


class _Payload:
    """Stands in for an arbitrary pickled object; weights_only loading must refuse to build it."""


def test_pickled_objects_are_refused_and_foreign_dicts_rejected(tmp_path):
    torch.save({**_state(1), "model": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="holds Python objects other than tensors") as caught:
        load_checkpoint(tmp_path / "evil.pt")
    assert "weights_only" not in str(caught.value)  # never torch's advice to load a stranger's file unsafely
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="missing step/model/optimizer"):
        load_checkpoint(tmp_path / "foreign.pt")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"step": -5}, "step must be a whole number >= 0"),
        ({"step": 2.5}, "step must be a whole number >= 0"),
        ({"initial_loss": float("nan")}, "initial_loss must be a positive number"),
    ],
)
def test_checkpoint_values_are_checked(tmp_path, change, message):
    torch.save({**_state(3), **change}, tmp_path / "ckpt-00000003.pt")
    with pytest.raises(InputError, match=message):
        load_checkpoint(tmp_path / "ckpt-00000003.pt")
