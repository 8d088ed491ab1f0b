"""Gradient noise scale: the two-batch estimator vs per-example gradients computed explicitly."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab.errors import InputError
from lrlab.probes import GNSProbe, noise_scale_estimates
from lrlab.train.callbacks import StepContext


def _population(n=64, d=5, seed=0):
    """Per-example gradients of a linear least-squares model, computed one example at a time."""
    torch.manual_seed(seed)
    x, y = torch.randn(n, d), torch.randn(n, 1) + 2.0
    w = torch.nn.Parameter(torch.zeros(d, 1))
    grads = []
    for i in range(n):
        loss = 0.5 * ((x[i : i + 1] @ w - y[i : i + 1]) ** 2).sum()
        (g,) = torch.autograd.grad(loss, w)
        grads.append(g.reshape(-1).double().numpy())
    return np.array(grads)


def test_estimator_is_unbiased_against_per_example_gradients():
    g = _population()
    mean = g.mean(0)
    true_g2 = mean @ mean
    true_trace = ((g - mean) ** 2).sum(1).mean()  # tr Sigma of one example's gradient
    rng = np.random.default_rng(0)
    b_small, b_big, draws = 4, 32, 20_000
    est = []
    for _ in range(draws):
        small = g[rng.integers(0, len(g), b_small)].mean(0)
        big = g[rng.integers(0, len(g), b_big)].mean(0)
        est.append(noise_scale_estimates(small @ small, big @ big, b_small, b_big))
    est = np.array(est)
    mean_est, std_err = est.mean(0), est.std(0) / np.sqrt(draws)
    # unbiased: the sample mean of the estimates lies within 4 standard errors of the truth
    assert abs(mean_est[0] - true_g2) < 4 * std_err[0]
    assert abs(mean_est[1] - true_trace) < 4 * std_err[1]
    assert std_err[1] < 0.05 * true_trace  # and the check is tight enough to catch a real bias


@settings(max_examples=50, deadline=None)
@given(st.floats(0.1, 10), st.floats(0.0, 10), st.integers(1, 64), st.integers(2, 8))
def test_estimator_inverts_the_expected_norms(g2, trace, b_small, factor):
    """E|G_B|^2 = |G|^2 + tr(Sigma)/B, so feeding exact expectations must return (|G|^2, tr Sigma)."""
    b_big = b_small * factor
    est = noise_scale_estimates(g2 + trace / b_small, g2 + trace / b_big, b_small, b_big)
    np.testing.assert_allclose(est, (g2, trace), rtol=1e-9, atol=1e-9)


def test_estimator_rejects_bad_batch_sizes():
    with pytest.raises(InputError):
        noise_scale_estimates(1.0, 1.0, 8, 8)


def _Ctx(model, batch, step=0, **fields):
    return StepContext(model, None, step, 1e-3, batch, **fields)


def _explicit(model, micro, loss_of):
    """(|G|^2, tr Sigma) from each micro-batch's own gradient, computed one by one."""
    explicit = []
    for x, y in micro:
        gs = torch.autograd.grad(loss_of(x, y), list(model.parameters()))
        explicit.append(torch.cat([g.reshape(-1) for g in gs]).double())
    small_sq = np.mean([float(g @ g) for g in explicit])
    mean = torch.stack(explicit).mean(0)
    rows = micro[0][0].shape[0]
    return noise_scale_estimates(small_sq, float(mean @ mean), rows, rows * len(micro))


def _setup():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3)
    micro = [(torch.randn(4, 6), torch.randn(4, 3)) for _ in range(3)]
    return model, micro, lambda x, y: torch.nn.functional.mse_loss(model(x), y)


def test_probe_measures_micro_batch_gradients_like_explicit_computation():
    model, micro, loss_of = _setup()
    expected = _explicit(model, micro, loss_of)
    probe, ctx = GNSProbe(every=1), _Ctx(model, micro)
    probe.on_step_start(ctx)
    for x, y in micro:
        (loss_of(x, y) / len(micro)).backward()
    probe.after_backward(ctx)
    assert ctx.row["gns/grad_sq"] == pytest.approx(expected[0], rel=1e-5)
    assert ctx.row["gns/trace"] == pytest.approx(expected[1], rel=1e-5)
    assert ctx.row["gns"] == pytest.approx(expected[1] / expected[0], rel=1e-5)
    assert all(not p._post_accumulate_grad_hooks for p in model.parameters())


def test_gradients_clipped_before_after_backward_give_the_raw_estimate():
    """A loop that clips (scales) .grad before the probe's after_backward, announcing its micro-batch count
    instead of handing them over (lrlab.integrations' HF Trainer): the last pass is read in hooks, so the
    estimate is the raw gradients' one; the batch size comes from the model's keyword inputs."""
    model, micro, loss_of = _setup()
    expected = _explicit(model, micro, loss_of)
    forward = model.forward
    model.forward = lambda input: forward(input)  # called as model(input=x), as the HF Trainer's model(**inputs)
    probe = GNSProbe(every=1)
    ctx = _Ctx(model, [], micro_batches=len(micro), grads_changed_before_after_backward=True)
    probe.on_step_start(ctx)
    for x, y in micro:
        (torch.nn.functional.mse_loss(model(input=x), y) / len(micro)).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1e-3)
    probe.after_backward(ctx)
    assert ctx.row["gns/grad_sq"] == pytest.approx(expected[0], rel=1e-5)
    assert ctx.row["gns/trace"] == pytest.approx(expected[1], rel=1e-5)
    assert all(not p._post_accumulate_grad_hooks for p in model.parameters())


@pytest.mark.parametrize("hooked", [False, True])
def test_a_step_with_fewer_passes_than_announced_logs_nothing(hooked):
    model, micro, loss_of = _setup()
    probe = GNSProbe(every=1)
    ctx = _Ctx(model, [], micro_batches=3, grads_changed_before_after_backward=hooked)
    probe.on_step_start(ctx)
    for x, y in micro[:2]:  # an epoch's short last update
        (loss_of(x, y) / 2).backward()
    probe.after_backward(ctx)
    assert ctx.row == {}
    ctx = _Ctx(model, micro, step=1)
    probe.on_step_start(ctx)  # the next step measures again
    for x, y in micro:
        (loss_of(x, y) / 3).backward()
    probe.after_backward(ctx)
    assert ctx.row["gns/grad_sq"] > 0


def test_probe_needs_accumulation():
    model = torch.nn.Linear(2, 1)
    with pytest.raises(InputError, match="grad_accum"):
        GNSProbe().on_step_start(_Ctx(model, [(torch.zeros(1, 2), torch.zeros(1, 1))]))


def test_a_skipped_micro_batch_or_an_overflow_leaves_the_estimates_alone():
    """A micro-batch whose backward never ran (a loop that skipped it) and a step whose gradients overflowed
    (fp16) record nothing, and the next step's estimate is the one it would have been without them."""
    model, micro, loss_of = _setup()
    expected = _explicit(model, micro, loss_of)
    probe = GNSProbe(every=1)
    for step, hooked in enumerate((False, True)):
        ctx = _Ctx(model, [], step=step, micro_batches=3, grads_changed_before_after_backward=hooked)
        probe.on_step_start(ctx)
        for i, (x, y) in enumerate(micro):
            loss = loss_of(x, y) / 3
            if i != 1:  # micro-batch 1 runs its forward pass but is skipped
                loss.backward()
        probe.after_backward(ctx)
        assert ctx.row == {}
        model.zero_grad()
    for step, scale in ((2, float("inf")), (3, 1 / 3)):  # an overflowing step, then a plain one
        model.zero_grad()
        ctx = _Ctx(model, micro, step=step)
        probe.on_step_start(ctx)
        for x, y in micro:
            (loss_of(x, y) * scale).backward()
        probe.after_backward(ctx)
        assert (ctx.row == {}) == (step == 2)
    assert ctx.row["gns/grad_sq"] == pytest.approx(expected[0], rel=1e-5)  # the EMAs' first value
    assert ctx.row["gns/trace"] == pytest.approx(expected[1], rel=1e-5)


def test_a_parameter_whose_hook_fires_twice_in_the_last_pass_is_counted_once():
    """Reentrant checkpointing runs a shared layer's backward in two segments, so its post-accumulate-grad hook
    fires twice in one pass; the last firing holds the whole gradient."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 4)
    model = torch.nn.Sequential(layer)

    def loss_of(x, y):
        h = torch.utils.checkpoint.checkpoint(layer, x, use_reentrant=True)
        h = torch.utils.checkpoint.checkpoint(layer, torch.tanh(h), use_reentrant=True)
        return torch.nn.functional.mse_loss(h, y)

    def plain(x, y):  # the same loss without checkpointing (autograd.grad cannot see through reentrant segments)
        return torch.nn.functional.mse_loss(layer(torch.tanh(layer(x))), y)

    micro = [(torch.randn(4, 4, requires_grad=True), torch.randn(4, 4)) for _ in range(2)]
    expected = _explicit(model, micro, plain)
    probe = GNSProbe(every=1)
    ctx = _Ctx(model, [], micro_batches=2, grads_changed_before_after_backward=True)
    probe.on_step_start(ctx)
    for x, y in micro:
        model(x)  # marks the micro-batch's start (the checkpointed passes call the layer, not the model)
        (loss_of(x, y) / 2).backward()
    probe.after_backward(ctx)
    assert ctx.row["gns/grad_sq"] == pytest.approx(expected[0], rel=1e-5)
    assert ctx.row["gns/trace"] == pytest.approx(expected[1], rel=1e-5)
