import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab.errors import InputError
from lrlab.optim import Lion, LionAR, _compiled
from lrlab.optim.lion_rotational import equilibrium_angle


def _reference_lionar(w0, grads, lr, wd, b1, b2, nesterov=False, ibc=False, r=0.9):
    """Row-by-row float64 LionAR written from Kosson et al. 2024 (arXiv:2410.23922); returns every step's weights."""
    w = w0.double().reshape(w0.shape[0], -1).clone()
    w -= w.mean(dim=1, keepdim=True)
    n0 = w.norm(dim=1)
    m = torch.zeros_like(w)
    a = torch.zeros(w.shape[0], dtype=torch.float64)
    kappa = b1 * b2 if nesterov else b1
    eta_r = (
        math.sqrt(math.pi / 2) * math.sqrt(2 * lr * wd) * math.sqrt((1 - kappa) ** 2 + kappa**2 * (1 - b2) / (1 + b2))
    )
    history = []
    for t, g in enumerate(grads, start=1):
        g = g.double().reshape(w.shape)
        if nesterov:
            m = m + (1 - b2) * (g - m)
            c = torch.sign(b1 * m + (1 - b1) * g)
        else:
            c = torch.sign(b1 * m + (1 - b1) * g)
            m = m + (1 - b2) * (g - m)
        f = (1 - b2**t) if ibc else 1.0
        new = torch.empty_like(w)
        for i in range(w.shape[0]):
            d = c[i] - c[i].mean()
            d = d - w[i] * torch.dot(d, w[i]) / n0[i] ** 2
            a[i] = r * a[i] + (1 - r) * torch.dot(d, d)
            a_hat = math.sqrt(a[i] / (1 - r**t))
            row = w[i] - f * eta_r * n0[i] * d / (a_hat + 1e-8)
            new[i] = row * n0[i] / row.norm()
        w = new
        history.append(w.reshape(w0.shape).clone())
    return history


def _grads(shape, steps, seed=0, bias=0.5):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) + bias for _ in range(steps)]


@pytest.mark.parametrize(("nesterov", "ibc"), [(False, False), (True, True)])
@pytest.mark.parametrize("shape", [(8, 16), (4, 3, 2, 2)])
def test_lionar_matches_the_row_by_row_reference(shape, nesterov, ibc):
    w0 = torch.randn(shape, generator=torch.Generator().manual_seed(5))
    grads = _grads(shape, 40)
    w = torch.nn.Parameter(w0.clone())
    opt = LionAR([w], lr=1e-2, weight_decay=0.1, betas=(0.9, 0.95), nesterov=nesterov, inverse_bias_correction=ibc)
    expected = _reference_lionar(w0, grads, 1e-2, 0.1, 0.9, 0.95, nesterov, ibc)
    for g, ref in zip(grads, expected, strict=True):
        w.grad = g
        opt.step()
        assert torch.allclose(w.detach().double(), ref, atol=2e-5)


def _row_stats(w):
    rows = w.detach().double().reshape(w.shape[0], -1)
    return rows.norm(dim=1), rows.mean(dim=1)


@pytest.mark.parametrize("fused", [False, True])
def test_lionar_invariants_every_step(fused, monkeypatch):
    """Row norms stay at n0, rows stay zero-mean, the update is orthogonal to the row, angle = equilibrium; on the
    foreach path and on the compiled one (whose new norm comes from row sums)."""
    kernels = []
    if fused:
        monkeypatch.setattr(_compiled, "MIN_ELEMENTS", 0)
        real = _compiled.run
        monkeypatch.setattr(_compiled, "run", lambda name, *a: kernels.append(name) or real(name, *a))
    lr, wd, betas = 3e-3, 0.1, (0.9, 0.99)
    gen = torch.Generator().manual_seed(2)
    w = torch.nn.Parameter(torch.randn(16, 64, generator=gen) + 1.0)  # rows start with a nonzero mean
    opt = LionAR([w], lr=lr, weight_decay=wd, betas=betas, fused=fused)
    eta_r = equilibrium_angle(lr, wd, betas, nesterov=False)
    n0, update_sq_ema, angles = None, torch.zeros(16, dtype=torch.float64), []
    for t in range(1, 101):
        w.grad = torch.randn(16, 64, generator=gen) + 0.2 * w.detach()
        m_prev = opt.state[w]["exp_avg"].clone() if t > 1 else torch.zeros(16, 64)
        before = w.detach().double().clone()
        opt.step()
        after = w.detach().double()
        if n0 is None:  # the first step centres the rows: compare with the centred start
            before = before - before.mean(dim=1, keepdim=True)
            n0 = before.norm(dim=1)
            assert torch.allclose(opt.state[w]["row_norm"].double().squeeze(1), n0, rtol=1e-6)
        norms, means = _row_stats(w)
        assert torch.allclose(norms, n0, rtol=1e-5)
        assert means.abs().max().item() < 1e-6 * n0.max().item()
        # the move, lifted back from the sphere, is orthogonal to the row and lies along -d
        c = torch.sign(0.9 * m_prev + 0.1 * w.grad).double()
        d = c - c.mean(dim=1, keepdim=True)
        d -= before * (d * before).sum(dim=1, keepdim=True) / n0[:, None] ** 2
        lifted = after * (n0**2 / (after * before).sum(dim=1))[:, None] - before
        assert (lifted * before).sum(dim=1).abs().max().item() < 1e-4 * n0.max().item() ** 2
        cosine = -(lifted * d).sum(dim=1) / (lifted.norm(dim=1) * d.norm(dim=1))
        assert cosine.min().item() > 1 - 1e-5
        radial = (after * before).sum(dim=1) / n0**2
        sine = (after - radial[:, None] * before).norm(dim=1) / n0
        angle = torch.atan2(sine, radial)  # arccos of the cosine is ill-conditioned in float32
        # exactly the rotation the RMS normalization asks for ...
        update_sq_ema = 0.9 * update_sq_ema + 0.1 * d.square().sum(dim=1)
        a_hat = (update_sq_ema / (1 - 0.9**t)).sqrt()
        assert torch.allclose(angle, torch.atan(eta_r * d.norm(dim=1) / a_hat), rtol=1e-3)
        # ... which is the equilibrium angle up to the step-to-step spread of ||d||
        assert (angle / eta_r - 1).abs().max().item() < 0.2
        assert angle.mean().item() == pytest.approx(eta_r, rel=0.06)
        angles.append(angle.mean().item())
    assert sum(angles) / len(angles) == pytest.approx(eta_r, rel=0.02)
    assert kernels == (["rotation_coefficients", "lion_rotational"] * 100 if fused else [])


def test_lionar_gives_vectors_plain_lion():
    gen = torch.Generator().manual_seed(4)
    bias_ar, bias_lion = torch.nn.Parameter(torch.randn(5, generator=gen)), None
    bias_lion = torch.nn.Parameter(bias_ar.detach().clone())
    matrix = torch.nn.Parameter(torch.randn(5, 4, generator=gen))
    opt_ar = LionAR([matrix, bias_ar], lr=1e-2, weight_decay=0.1)
    opt_lion = Lion([bias_lion], lr=1e-2, weight_decay=0.1)
    for _ in range(10):
        g = torch.randn(5, generator=gen)
        bias_ar.grad, bias_lion.grad, matrix.grad = g, g.clone(), torch.randn(5, 4, generator=gen)
        opt_ar.step()
        opt_lion.step()
    assert torch.equal(bias_ar, bias_lion)


def test_lionar_refuses_no_weight_decay_and_constant_rows():
    w = torch.nn.Parameter(torch.randn(3, 4))
    w.grad = torch.randn(3, 4)
    with pytest.raises(InputError, match=r"weight_decay=0\.0"):
        LionAR([w], lr=1e-3, weight_decay=0.0).step()
    flat_row = torch.nn.Parameter(torch.randn(3, 4))
    with torch.no_grad():
        flat_row[1] = 2.0
    flat_row.grad = torch.randn(3, 4)
    with pytest.raises(InputError, match="constant"):
        LionAR([flat_row], lr=1e-3).step()
    # a group with rotational=False is plain Lion and accepts both
    LionAR([{"params": [flat_row], "rotational": False, "weight_decay": 0.0}], lr=1e-3).step()
    assert not torch.isnan(flat_row).any()


shapes = st.one_of(
    st.tuples(st.integers(1, 9)),
    st.tuples(st.integers(1, 9), st.integers(2, 12)),
    st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),
)


@given(
    shape=shapes,
    lr=st.floats(1e-5, 1e-1),
    wd=st.floats(1e-3, 1.0),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.0, 0.999),
    nesterov=st.booleans(),
    ibc=st.booleans(),
    snr_gain=st.sampled_from([1.0, 4.0, 100.0]),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=40, deadline=None)
def test_lionar_random_shapes_and_hyperparameters(shape, lr, wd, beta1, beta2, nesterov, ibc, snr_gain, seed):
    gen = torch.Generator().manual_seed(seed)
    w = torch.nn.Parameter(torch.randn(shape, generator=gen))
    opt = LionAR(
        [w],
        lr=lr,
        weight_decay=wd,
        betas=(beta1, beta2),
        nesterov=nesterov,
        inverse_bias_correction=ibc,
        snr_gain=snr_gain,
    )
    rotating = len(shape) >= 2 and w.numel() // shape[0] >= 2
    for _ in range(8):
        w.grad = torch.randn(shape, generator=gen) * 10 ** float(torch.randint(-3, 3, (), generator=gen))
        opt.step()
        assert torch.isfinite(w).all()
        if rotating:
            norms, means = _row_stats(w)
            n0 = opt.state[w]["row_norm"].double().reshape(-1)
            assert torch.allclose(norms, n0, rtol=1e-5)
            assert means.abs().max().item() <= 1e-5 * n0.max().item()


@pytest.mark.parametrize("ibc", [False, True])
def test_lionar_step_at_lr_zero_leaves_weights_unchanged(ibc):
    """Schedules reach LR 0 (t/W warmup at t = 0, final=0); that must be a no-op, not a division by zero."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 4)
    opt = LionAR(layer.parameters(), lr=1e-3, weight_decay=0.1, inverse_bias_correction=ibc)
    layer(torch.randn(3, 8)).sum().backward()
    opt.step()  # the first step centres the rows
    before = [p.detach().clone() for p in layer.parameters()]
    opt.param_groups[0]["lr"] = 0.0
    layer(torch.randn(3, 8)).sum().backward()
    opt.step()
    for a, b in zip(before, layer.parameters(), strict=True):  # only the row renormalization's rounding remains
        torch.testing.assert_close(b.detach(), a, rtol=0, atol=1e-6)
