"""Update norms, angles and RRC by hand on a linear layer."""

import math

import pytest
import torch

from lrlab.probes import RRCProbe, UpdateProbe, relative_representation_change, row_angles


class _Ctx:
    def __init__(self, model, step=0):
        self.model, self.step, self.rank = model, step, 0
        self.row = {}

    def log(self, values):
        self.row.update(values)


def test_row_angles_by_hand_including_tiny_angles():
    before = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    after = torch.tensor([[1.0, 1.0], [0.0, 5.0]])
    assert row_angles(before, after).tolist() == pytest.approx([math.pi / 4, 0.0], abs=1e-7)
    tiny = row_angles(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1e-6]]))
    assert tiny.item() == pytest.approx(1e-6, rel=1e-4)  # arccos of the dot product would give 0 here


def test_rrc_by_hand():
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    dw = torch.tensor([[0.0, 0.5], [0.0, 0.0]])
    x = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    # ||dW x_1|| = 0, ||dW x_2|| = 1; ||W x|| = 2 for both rows: RRC = mean(0, 1) / mean(2, 2) = 0.25
    assert relative_representation_change(w, w + dw, x) == pytest.approx(0.25)


def test_update_and_rrc_probes_on_an_sgd_step_of_a_linear_layer():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2, bias=False)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    x = torch.randn(5, 3)
    w0 = layer.weight.detach().clone()
    updates, rrc, ctx = UpdateProbe(every=1), RRCProbe(every=1), _Ctx(layer)
    for probe in (updates, rrc):
        probe.on_step_start(ctx)
    layer(x).pow(2).sum().backward()
    rrc.after_backward(ctx)
    opt.step()
    for probe in (updates, rrc):
        probe.after_step(ctx)
    dw = layer.weight.detach() - w0
    assert ctx.row["update_norm/weight"] == pytest.approx(dw.norm().item(), rel=1e-6)
    assert ctx.row["update_rel/weight"] == pytest.approx((dw.norm() / w0.norm()).item(), rel=1e-6)
    cos = torch.nn.functional.cosine_similarity(w0, layer.weight.detach(), dim=1).double().clamp(-1, 1)
    assert ctx.row["angle/weight/max"] == pytest.approx(torch.arccos(cos).max().item(), rel=1e-3)
    expected = (x @ dw.T).norm(dim=1).mean() / (x @ w0.T).norm(dim=1).mean()
    assert ctx.row["rrc/"] == pytest.approx(expected.item(), rel=1e-5)
    assert ctx.row["rrc"] == ctx.row["rrc/"]


def test_probes_are_idle_off_cadence_and_remove_their_hooks():
    layer = torch.nn.Linear(2, 2)
    probe, ctx = RRCProbe(every=10), _Ctx(layer, step=3)
    probe.on_step_start(ctx)
    layer(torch.ones(1, 2))
    probe.after_step(ctx)
    assert ctx.row == {} and not layer._forward_pre_hooks
    ctx.step = 10
    probe.on_step_start(ctx)
    assert layer._forward_pre_hooks
    probe.after_backward(ctx)
    assert not layer._forward_pre_hooks
