import pytest
import torch
from lion_pytorch import Lion as ReferenceLion
from optimdata import make_net

from lrlab.errors import InputError
from lrlab.optim import Lion, LionA
from lrlab.optim.snr import snr_factors


def test_lion_matches_lion_pytorch_over_50_steps(run):
    def groups(net):
        return [{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 3e-4}]

    kwargs = dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.5)
    ref = run(lambda net: ReferenceLion(groups(net), **kwargs))
    ours = run(lambda net: Lion(groups(net), **kwargs))
    assert torch.allclose(ours, ref, rtol=0, atol=1e-6)


def _slow_lion(grads, w0, lr, b1, b2, wd, nesterov, ibc):
    """One-tensor float64 Lion written from the update equations, for cross-checks."""
    w, m = w0.double().clone(), torch.zeros_like(w0, dtype=torch.float64)
    for t, g in enumerate(grads, start=1):
        g = g.double()
        if nesterov:
            m = b2 * m + (1 - b2) * g
            c = torch.sign(b1 * m + (1 - b1) * g)
        else:
            c = torch.sign(b1 * m + (1 - b1) * g)
            m = b2 * m + (1 - b2) * g
        f = 1 - b2**t if ibc else 1.0
        w = w * (1 - lr * wd) - lr * f * c
    return w


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("ibc", [False, True])
def test_lion_options_match_the_update_equations(nesterov, ibc):
    gen = torch.Generator().manual_seed(3)
    grads = [torch.randn(5, 7, generator=gen) + 0.3 for _ in range(30)]
    w0 = torch.randn(5, 7, generator=gen)
    w = torch.nn.Parameter(w0.clone())
    opt = Lion([w], lr=1e-2, beta=0.95, weight_decay=0.1, nesterov=nesterov, inverse_bias_correction=ibc)
    for g in grads:
        w.grad = g
        opt.step()
    expected = _slow_lion(grads, w0, 1e-2, 0.95, 0.95, 0.1, nesterov, ibc)
    assert torch.allclose(w.detach().double(), expected, atol=1e-5)


def test_inverse_bias_correction_gives_a_slow_start():
    w = torch.nn.Parameter(torch.zeros(4))
    opt = Lion([w], lr=1.0, beta=0.98, inverse_bias_correction=True)
    moves = []
    for _ in range(3):
        w.grad = torch.ones(4)
        before = w.detach().clone()
        opt.step()
        moves.append((before - w.detach()).abs().max().item())
    assert moves == pytest.approx([1 - 0.98, 1 - 0.98**2, 1 - 0.98**3], rel=1e-6)


@pytest.mark.parametrize("per_neuron", [False, True])
def test_liona_update_norm_is_exact_even_with_zero_gradients(per_neuron):
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.randn(6, 10, generator=gen))
    bias = torch.nn.Parameter(torch.randn(6, generator=gen))
    lr = 1e-2
    opt = LionA([w, bias], lr=lr, per_neuron=per_neuron)
    for _ in range(5):
        g = torch.randn(6, 10, generator=gen)
        g[:, :4] = 0.0  # columns that never get a gradient: Lion's sign has zeros there
        g[0] = 0.0
        g[0, 0] = 1.0  # a row with a single nonzero entry
        before, before_bias = w.detach().clone(), bias.detach().clone()
        w.grad, bias.grad = g, torch.randn(6, generator=gen)
        opt.step()
        delta = before - w.detach()
        if per_neuron:
            assert torch.allclose(delta.norm(dim=1), torch.full((6,), lr * 10**0.5), rtol=1e-5)
        else:
            assert delta.norm().item() == pytest.approx(lr * 60**0.5, rel=1e-5)
        assert (before_bias - bias.detach()).norm().item() == pytest.approx(lr * 6**0.5, rel=1e-5)


def _rho_from_factor(s: float, gain: float) -> float:
    return (1 - s**2) / (gain * s**2 - 1)


@pytest.mark.parametrize("true_rho", [0.05, 0.5, 4.0])
def test_snr_estimate_recovers_a_known_signal_to_noise_ratio(true_rho):
    """g = G + noise with ||G||^2 / E||noise||^2 = rho: the averaged estimate lands near rho."""
    gen = torch.Generator().manual_seed(7)
    n, beta, gain = 20000, 0.9, 10.0
    signal = torch.randn(n, generator=gen)
    signal *= (true_rho * n) ** 0.5 / signal.norm()  # ||G||^2 = rho * n; noise has E||xi||^2 = n
    m = torch.zeros(n)
    state = {"snr_signal": torch.zeros(()), "snr_noise": torch.zeros(())}
    estimates = []
    for t in range(1, 200):
        g = signal + torch.randn(n, generator=gen)
        (s,) = snr_factors([g], [m], [state], beta, t, gain)
        m.lerp_(g, 1 - beta)
        if t > 50:
            estimates.append(_rho_from_factor(s.item(), gain))
    assert sum(estimates) / len(estimates) == pytest.approx(true_rho, rel=0.1)


def test_snr_factor_shrinks_coherent_updates_and_spares_noise():
    gen = torch.Generator().manual_seed(1)
    gain = 16.0
    coherent, noisy = torch.nn.Parameter(torch.zeros(500)), torch.nn.Parameter(torch.zeros(500))
    opt = Lion([coherent, noisy], lr=1.0, snr_gain=gain)
    direction = torch.randn(500, generator=gen)
    for _ in range(40):
        coherent.grad = direction.clone()
        noisy.grad = torch.randn(500, generator=gen)
        before = coherent.detach().clone(), noisy.detach().clone()
        opt.step()
    coherent_move = (before[0] - coherent.detach()).abs().max().item()
    noisy_move = (before[1] - noisy.detach()).abs().max().item()
    assert coherent_move == pytest.approx(gain**-0.5, rel=1e-3)  # no noise: the full shrink
    assert noisy_move > 0.9  # pure noise: almost no shrink


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"snr_gain": 0.5}, "snr_gain=0.5"), ({"beta": 1.0}, r"betas\[0\]=1.0"), ({"lr": -1.0}, "lr=-1.0")],
)
def test_bad_lion_hyperparameters_raise_input_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        Lion(make_net().parameters(), **kwargs)
