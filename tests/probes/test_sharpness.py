"""Power iteration on Hessian-vector products vs the exact Hessian of a small network (slow obvious reference)."""

import numpy as np
import pytest
import torch
from torch.func import functional_call

from lrlab.probes import adam_preconditioner, sharpness, top_eigenvalue


def _net_and_data(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    x, y = torch.randn(16, 3), torch.randn(16, 2)
    return net, x, y


def _dense_hessian(net, x, y):
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    def loss(theta):
        parts, i = {}, 0
        for n, s in zip(names, shapes, strict=True):
            parts[n] = theta[i : i + s.numel()].reshape(s)
            i += s.numel()
        return torch.nn.functional.mse_loss(functional_call(net, parts, (x,)), y)

    return torch.autograd.functional.hessian(loss, flat).double().numpy()


def test_top_eigenvalue_matches_dense_hessian():
    net, x, y = _net_and_data()
    top = np.linalg.eigvalsh(_dense_hessian(net, x, y)).max()
    est, iters = sharpness(lambda: torch.nn.functional.mse_loss(net(x), y), list(net.parameters()), iters=500, tol=1e-7)
    assert est == pytest.approx(top, rel=1e-3)
    assert iters < 500


def test_preconditioned_sharpness_matches_dense_reference():
    net, x, y = _net_and_data(1)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    params = list(net.parameters())
    pre = adam_preconditioner(opt, params)
    p = torch.cat([t.reshape(-1) for t in pre]).double().numpy()
    # reference: P = (sqrt(v / (1 - b2^t)) + eps) (1 - b1^t), written out from the optimizer state by hand
    v = torch.cat([opt.state[q]["exp_avg_sq"].reshape(-1) for q in params]).double().numpy()
    np.testing.assert_allclose(p, (np.sqrt(v / (1 - 0.95**3)) + 1e-8) * (1 - 0.9**3), rtol=1e-6)
    h = _dense_hessian(net, x, y)
    top = np.linalg.eigvals(np.diag(1 / p) @ h).real.max()
    est, _ = sharpness(lambda: torch.nn.functional.mse_loss(net(x), y), params, pre, iters=2000, tol=1e-9)
    assert est == pytest.approx(top, rel=1e-3)


def test_preconditioner_absent_before_first_adam_step():
    net, _, _ = _net_and_data()
    assert adam_preconditioner(torch.optim.AdamW(net.parameters()), list(net.parameters())) is None
    assert adam_preconditioner(torch.optim.SGD(net.parameters(), lr=0.1), list(net.parameters())) is None


def test_power_iteration_on_known_matrix_and_rng_untouched():
    m = torch.diag(torch.tensor([5.0, -1.0, 2.0, 0.5]))
    state = torch.random.get_rng_state()
    eig, _ = top_eigenvalue(lambda v: [m @ v[0]], [torch.zeros(4)], iters=1000, tol=1e-10)
    assert eig == pytest.approx(5.0, rel=1e-6)
    assert torch.equal(state, torch.random.get_rng_state())


def test_dominant_negative_eigenvalue_is_shifted_away():
    m = torch.diag(torch.tensor([1.0, -10.0, 0.5, -3.0]))
    eig, _ = top_eigenvalue(lambda v: [m @ v[0]], [torch.zeros(4)], iters=2000, tol=1e-12)
    assert eig == pytest.approx(1.0, rel=1e-4)  # float32: the shifted run computes 11 - 10
