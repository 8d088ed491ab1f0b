import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from optimdata import batches, make_net, train

from lrlab.errors import InputError
from lrlab.optim import AdamW, GIAdamW


def _groups(net, lr, wd):
    first, second = list(net[0].parameters()), list(net[2].parameters())
    return [{"params": first}, {"params": second, "lr": lr / 3, "weight_decay": wd * 2}]


@pytest.mark.parametrize("maximize", [False, True])
def test_zero_init_matches_torch_adamw_over_50_steps(run, maximize):
    kwargs = dict(lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, maximize=maximize)
    ref = run(lambda net: torch.optim.AdamW(_groups(net, 3e-3, 0.1), foreach=True, **kwargs))
    ours = run(lambda net: AdamW(_groups(net, 3e-3, 0.1), **kwargs))
    assert torch.allclose(ours, ref, rtol=0, atol=1e-6)


@given(
    lr=st.floats(1e-4, 1e-1),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.5, 0.9999),
    wd=st.floats(0.0, 1.0),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3]),
)
@settings(max_examples=15, deadline=None)
def test_zero_init_matches_torch_for_random_hyperparameters(lr, beta1, beta2, wd, eps):
    results = []
    for cls in (torch.optim.AdamW, AdamW):
        net = make_net()
        opt = cls(net.parameters(), lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=wd)
        train(net, opt, batches(10))
        results.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    assert torch.isfinite(results[1]).all()
    assert torch.allclose(results[1], results[0], rtol=1e-5, atol=1e-6)


def test_gi_differs_only_in_the_second_moment_start():
    """m is identical; v_GI - v_zero = b2^t g_0^2 exactly (the start decays geometrically)."""
    beta2 = 0.95
    nets = [make_net(), make_net()]
    opts = [AdamW(nets[0].parameters(), lr=1e-3, betas=(0.9, beta2)), GIAdamW(nets[1].parameters(), lr=1e-3)]
    opts[1].param_groups[0]["betas"] = (0.9, beta2)
    data = batches(1) * 4  # the same batch, so both nets see the same gradients while they are close
    first_grads = None
    for t, (x, y) in enumerate(data, start=1):
        for net, opt in zip(nets, opts, strict=True):
            opt.zero_grad()
            (net(x) - y).square().mean().backward()
        if first_grads is None:
            first_grads = [p.grad.clone() for p in nets[0].parameters()]
        # give both optimizers the same gradients so only the start of v can differ
        for p0, p1 in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
            p1.grad = p0.grad.clone()
        for opt in opts:
            opt.step()
        for p0, p1, g0 in zip(nets[0].parameters(), nets[1].parameters(), first_grads, strict=True):
            s0, s1 = opts[0].state[p0], opts[1].state[p1]
            assert torch.equal(s0["exp_avg"], s1["exp_avg"])
            expected = beta2**t * g0.square()
            assert torch.allclose(s1["exp_avg_sq"] - s0["exp_avg_sq"], expected, rtol=1e-5, atol=1e-12)


def test_gi_first_step_is_shrunk_by_sqrt_one_minus_beta2():
    """v_0 = g^2 and v_1 = g^2, so the first update is lr g / (|g| / sqrt(1 - b2) + eps)."""
    lr, beta2 = 1e-2, 0.99
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = GIAdamW([w], lr=lr, betas=(0.9, beta2), eps=0.0, weight_decay=0.0)
    w.grad = torch.tensor([0.5, -4.0, 1e-3])
    opt.step()
    expected = torch.tensor([1.0, -2.0, 3.0]) - lr * (1 - beta2) ** 0.5 * torch.sign(w.grad)
    assert torch.allclose(w.detach(), expected, atol=1e-7)
    # Adam with v_0 = 0 would have moved each entry by exactly lr
    w.grad = torch.tensor([0.5, -4.0, 1e-3])
    before = w.detach().clone()
    opt.step()  # t = 2: m_2 = (1 - b1^2) g, v_2 = g^2 -> update lr sqrt(1 - b2^2) sign(g)
    assert torch.allclose(before - w.detach(), lr * (1 - beta2**2) ** 0.5 * torch.sign(w.grad), atol=1e-7)


def test_init_second_moment_uses_the_closure_batch():
    net = make_net()
    opt = GIAdamW(net.parameters(), lr=1e-3)
    (x0, y0), (x1, y1) = batches(2)

    def closure():
        opt.zero_grad()
        loss = (net(x0) - y0).square().mean()
        loss.backward()
        return loss

    loss = opt.init_second_moment(closure)
    assert loss.item() > 0
    init = {p: p.grad.square() for p in net.parameters()}
    opt.zero_grad()
    (net(x1) - y1).square().mean().backward()
    opt.step()
    for p in net.parameters():
        expected = 0.999 * init[p] + 0.001 * p.grad.square()
        assert torch.allclose(opt.state[p]["exp_avg_sq"], expected, rtol=1e-6)
    with pytest.raises(InputError, match="before the first step"):
        opt.init_second_moment(closure)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.0}, "lr=0.0"),
        ({"betas": (0.9, 1.0)}, r"betas\[1\]=1.0"),
        ({"weight_decay": -1.0}, "weight_decay=-1.0"),
        ({"v_init": "ones"}, "v_init='ones'"),
    ],
)
def test_bad_hyperparameters_raise_input_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        AdamW(make_net().parameters(), **kwargs)


@pytest.mark.parametrize("maximize", [False, True])
def test_on_cpu_adamw_is_torch_fused_adamw_bit_for_bit(run, maximize):
    kwargs = dict(lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, maximize=maximize)
    ref = run(lambda net: torch.optim.AdamW(_groups(net, 3e-3, 0.1), fused=True, **kwargs), steps=30)
    ours = run(lambda net: AdamW(_groups(net, 3e-3, 0.1), **kwargs), steps=30)
    assert torch.equal(ours, ref)


def test_gi_adamw_is_torch_fused_adamw_with_v_started_at_the_first_gradient_squared():
    """The independent reference: torch's own fused AdamW whose state is set to (m, v) = (0, g_0^2) before its
    first step, where g_0 is the first step's gradient (GI-AdamW's default)."""
    data = batches(20)
    nets = [make_net(), make_net()]
    ref = torch.optim.AdamW(nets[0].parameters(), lr=3e-3, weight_decay=0.1, fused=True)
    ours = GIAdamW(nets[1].parameters(), lr=3e-3, weight_decay=0.1)
    for i, (x, y) in enumerate(data):
        for net, opt in zip(nets, (ref, ours), strict=True):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            if i == 0 and opt is ref:
                for p in net.parameters():
                    ref.state[p] = {
                        "step": torch.tensor(0.0),
                        "exp_avg": torch.zeros_like(p),
                        "exp_avg_sq": p.grad.detach() ** 2,
                    }
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_fused_kernel_runs_on_cpu_and_the_foreach_ops_elsewhere(monkeypatch):
    """Dispatch: CPU (and CUDA) parameters go to torch._fused_adamw_ with the step on their device; a device
    without the kernel ("meta", standing in for any other) takes the foreach path and keeps shapes."""
    calls = []
    real = torch._fused_adamw_

    def spy(params, *args, **kwargs):
        calls.append((params[0].device.type, args[4][0].device.type, float(args[4][0])))
        return real(params, *args, **kwargs)

    monkeypatch.setattr(torch, "_fused_adamw_", spy)
    for device in ("cpu", "meta"):
        p = torch.nn.Parameter(torch.ones(3, 2, device=device))
        opt = AdamW([p], lr=1e-3)
        for _ in range(2):
            p.grad = torch.ones_like(p)
            opt.step()
        assert p.shape == (3, 2) and p.device.type == device
    assert calls == [("cpu", "cpu", 1.0), ("cpu", "cpu", 2.0)]


@pytest.mark.parametrize("layout", ["transposed", "expanded", "channels_last"])
def test_a_gradient_laid_out_unlike_its_parameter_still_gets_the_right_update(layout):
    """The fused kernel walks storage, so such tensors take the foreach ops; the reference is torch's
    single-tensor AdamW on the same values made contiguous."""
    gen = torch.Generator().manual_seed(0)
    shape = (2, 3, 4, 5) if layout == "channels_last" else (4, 3)
    start = torch.randn(shape, generator=gen)
    ours, ref = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    if layout == "channels_last":
        ours.data = ours.data.to(memory_format=torch.channels_last)
    opt, ref_opt = AdamW([ours], lr=0.1), torch.optim.AdamW([ref], lr=0.1, foreach=False)
    for _ in range(3):
        g = {
            "transposed": lambda: torch.randn(3, 4, generator=gen).t(),
            "expanded": lambda: torch.randn(1, 3, generator=gen).expand(4, 3),
            "channels_last": lambda: torch.randn(shape, generator=gen),
        }[layout]()
        ours.grad, ref.grad = g, g.contiguous().clone()
        opt.step()
        ref_opt.step()
    assert torch.allclose(ours, ref, rtol=0, atol=1e-6)


def test_one_group_with_float32_and_float64_parameters_steps_each_in_its_dtype():
    gen = torch.Generator().manual_seed(1)
    params = [torch.nn.Parameter(torch.randn(3, 4, generator=gen, dtype=d)) for d in (torch.float32, torch.float64)]
    refs = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt, ref_opt = AdamW(params, lr=0.05), torch.optim.AdamW(refs, lr=0.05, fused=True)
    for _ in range(3):
        for p, r in zip(params, refs, strict=True):
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            r.grad = p.grad.clone()
        opt.step()
        ref_opt.step()
    for p, r in zip(params, refs, strict=True):
        assert p.dtype == r.dtype and torch.equal(p, r)
