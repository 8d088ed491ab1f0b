"""ScheduleLR: exact LRs, resume into fresh objects, no warnings, per-group multipliers, accumulation."""

import io
import warnings

import numpy as np
import pytest
import torch

from lrlab.errors import InputError
from lrlab.schedules import Cosine, parse
from lrlab.schedules.torch import ScheduleLR

SPEC = "wsd:peak=1e-2,warmup=10,total=60,decay=0.3,shape=cosine,final=1e-4"


def _model_and_opt(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 2)
    return model, torch.optim.AdamW(model.parameters(), lr=1.0)


def _train(model, opt, sched, steps, seed=1):
    gen = torch.Generator().manual_seed(seed)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        x = torch.randn(8, 4, generator=gen)
        model(x).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    return lrs


def test_resume_into_fresh_optimizer_and_scheduler_gives_identical_lrs_and_weights():
    schedule = parse(SPEC)
    model, opt = _model_and_opt()
    full = _train(model, opt, ScheduleLR(opt, schedule), 60)
    final_weights = model.weight.detach().clone()

    model, opt = _model_and_opt()
    sched = ScheduleLR(opt, schedule)
    first = _train(model, opt, sched, 25)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)  # the scheduler state must load without unpickling objects

    model2, opt2 = _model_and_opt(seed=123)
    sched2 = ScheduleLR(opt2, parse(SPEC))
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert opt2.param_groups[0]["lr"] == schedule(25)
    # continue from the same data position: replay the generator of _train (seed 1) to step 25
    rest = []
    gen = torch.Generator().manual_seed(1)
    for _ in range(25):
        torch.randn(8, 4, generator=gen)
    for _ in range(35):
        rest.append(opt2.param_groups[0]["lr"])
        model2(torch.randn(8, 4, generator=gen)).pow(2).mean().backward()
        opt2.step()
        opt2.zero_grad()
        sched2.step()
    assert first + rest == full
    torch.testing.assert_close(model2.weight, final_weights, rtol=0, atol=0)


def test_state_dict_is_only_the_step():
    _, opt = _model_and_opt()
    sched = ScheduleLR(opt, parse(SPEC))
    assert sched.state_dict() == {"last_epoch": 0, "_step_count": 1}


def test_load_state_dict_before_optimizer_state_sets_lr_at_once():
    _, opt = _model_and_opt()
    sched = ScheduleLR(opt, parse(SPEC))
    sched.load_state_dict({"last_epoch": 55, "_step_count": 56})
    assert opt.param_groups[0]["lr"] == parse(SPEC)(55)
    assert sched.get_last_lr() == [parse(SPEC)(55)]


def test_no_warning_in_normal_use():
    model, opt = _model_and_opt()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched = ScheduleLR(opt, parse(SPEC))
        _train(model, opt, sched, 5)


def test_multiplier_mode_keeps_per_group_ratios():
    torch.manual_seed(0)
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([{"params": [a], "lr": 1e-3}, {"params": [b], "lr": 1e-4}], lr=1.0)
    unit = Cosine(peak=1.0, warmup=5, total=50)
    sched = ScheduleLR(opt, unit, mode="multiplier")
    for t in range(50):
        assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * unit(t), rel=1e-15)
        assert opt.param_groups[1]["lr"] == pytest.approx(1e-4 * unit(t), rel=1e-15)
        opt.step()
        sched.step()


def test_one_schedule_per_group_and_count_checked():
    p, q = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p]}, {"params": [q]}], lr=1.0)
    s1, s2 = Cosine(peak=1.0, total=10), Cosine(peak=0.5, total=20)
    sched = ScheduleLR(opt, [s1, s2])
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == [s1(1), s2(1)]
    with pytest.raises(InputError, match="2 param groups"):
        ScheduleLR(opt, [s1])
    with pytest.raises(InputError, match="mode"):
        ScheduleLR(opt, s1, mode="relative")


def test_tensor_lr_is_filled_in_place():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([p], lr=torch.tensor(0.1))
    s = Cosine(peak=0.1, total=10)
    sched = ScheduleLR(opt, s)
    opt.step()
    sched.step()
    assert isinstance(opt.param_groups[0]["lr"], torch.Tensor)
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(s(1), rel=1e-6)


def test_gradient_accumulation_counts_optimizer_updates_not_micro_batches():
    model, opt = _model_and_opt()
    schedule = parse(SPEC)
    sched = ScheduleLR(opt, schedule)
    accum, seen = 4, []
    for _update in range(12):
        for _micro in range(accum):
            model(torch.randn(2, 4)).sum().div(accum).backward()
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        opt.zero_grad()
        sched.step()
    np.testing.assert_array_equal(seen, schedule.values(12))
