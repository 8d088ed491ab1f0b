"""Behaviour every lrlab optimizer shares with torch.optim: state_dict, closures, dtypes, groups, registry."""

import copy
import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from optimdata import batches, flat, make_net, train

from lrlab.optim import OPTIMIZERS, AdamW, GIAdamW, Lion, LionA, LionAR

CONFIGS = {
    "adamw": (AdamW, {"lr": 1e-2, "weight_decay": 0.1}),
    "giadamw": (GIAdamW, {"lr": 1e-2, "weight_decay": 0.1}),
    "lion": (Lion, {"lr": 1e-2, "weight_decay": 0.1, "nesterov": True, "snr_gain": 8.0}),
    "liona": (LionA, {"lr": 1e-2, "weight_decay": 0.1, "per_neuron": True, "inverse_bias_correction": True}),
    "lionar": (
        LionAR,
        {
            "lr": 1e-2,
            "weight_decay": 0.1,
            "beta": 0.98,
            "nesterov": True,
            "inverse_bias_correction": True,
            "snr_gain": 8.0,
        },
    ),
}


def test_registry_names_every_class_and_builds_from_lr_and_weight_decay():
    assert OPTIMIZERS == {"adamw": AdamW, "giadamw": GIAdamW, "lion": Lion, "liona": LionA, "lionar": LionAR}
    for cls in OPTIMIZERS.values():
        opt = cls(make_net().parameters(), lr=2e-3, weight_decay=0.05)
        assert isinstance(opt, torch.optim.Optimizer)
        assert (opt.param_groups[0]["lr"], opt.param_groups[0]["weight_decay"]) == (2e-3, 0.05)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("via_bytes", [False, True])
def test_state_dict_round_trip_mid_training_gives_identical_parameters(name, via_bytes):
    cls, kwargs = CONFIGS[name]
    data = batches(20)
    net = make_net()
    opt = cls(net.parameters(), **kwargs)
    train(net, opt, data[:10])
    saved_net, saved_opt = copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict())
    if via_bytes:
        buffer = io.BytesIO()
        torch.save(saved_opt, buffer)
        buffer.seek(0)
        saved_opt = torch.load(buffer, weights_only=True)
    train(net, opt, data[10:])
    resumed = make_net(seed=9)
    resumed.load_state_dict(saved_net)
    resumed_opt = cls(resumed.parameters(), **kwargs)
    resumed_opt.load_state_dict(saved_opt)
    train(resumed, resumed_opt, data[10:])
    assert torch.equal(flat(resumed), flat(net))
    for group in resumed_opt.state_dict()["param_groups"]:  # only plain numbers besides the params
        assert all(isinstance(v, (int, float, bool, str, tuple, list)) for v in group.values())


@pytest.mark.parametrize("name", CONFIGS)
def test_bfloat16_parameters_train_with_float32_state(name):
    cls, kwargs = CONFIGS[name]
    net32, net16 = make_net(), make_net(dtype=torch.bfloat16)
    opt32, opt16 = cls(net32.parameters(), **kwargs), cls(net16.parameters(), **kwargs)
    data = batches(1) * 20  # one batch, so the loss must fall
    losses32, losses16 = train(net32, opt32, data), train(net16, opt16, data)
    assert all(p.dtype == torch.bfloat16 for p in net16.parameters())
    for state in opt16.state.values():
        assert all(v.dtype == torch.float32 for v in state.values())
    assert all(torch.isfinite(torch.tensor(losses16)))
    assert losses16[-1] < losses16[1]  # from the second step: LionAR's first step centres the rows
    assert losses16[-1] == pytest.approx(losses32[-1], rel=0.1)
    # the float32 state survives a round trip (torch.optim would cast it to bfloat16)
    reloaded = cls(net16.parameters(), **kwargs)
    reloaded.load_state_dict(opt16.state_dict())
    for p in net16.parameters():
        for key, value in opt16.state[p].items():
            assert reloaded.state[p][key].dtype == torch.float32
            assert torch.equal(reloaded.state[p][key], value)
            assert reloaded.state[p][key].data_ptr() != value.data_ptr()


@pytest.mark.parametrize("name", CONFIGS)
def test_closure_loss_is_returned_and_zero_grad_clears(name):
    cls, kwargs = CONFIGS[name]
    net = make_net()
    opt = cls(net.parameters(), **kwargs)
    ((x, y),) = batches(1)

    def closure():
        opt.zero_grad()
        loss = (net(x) - y).square().mean()
        loss.backward()
        return loss

    losses = [opt.step(closure).item() for _ in range(8)]
    assert losses[0] == pytest.approx((make_net()(x) - y).square().mean().item())
    assert losses[-1] < losses[1]  # from the second step: LionAR's first step centres the rows
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("name", CONFIGS)
def test_maximize_ascends_what_minimize_descends(name):
    cls, kwargs = CONFIGS[name]
    nets = [make_net(), make_net()]
    opts = [cls(nets[0].parameters(), **kwargs), cls(nets[1].parameters(), maximize=True, **kwargs)]
    for x, y in batches(10):
        for sign, net, opt in zip((1.0, -1.0), nets, opts, strict=True):
            opt.zero_grad()
            (sign * (net(x) - y).square().mean()).backward()
            opt.step()
    assert torch.allclose(flat(nets[0]), flat(nets[1]), atol=1e-6)


@pytest.mark.parametrize("name", CONFIGS)
def test_param_groups_use_their_own_hyperparameters(name):
    cls, kwargs = CONFIGS[name]
    net = make_net()
    frozen = [p.detach().clone() for p in net[2].parameters()]
    groups = [{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 1e-12, "weight_decay": 0.0}]
    if name == "lionar":
        groups[1]["rotational"] = False  # zero weight decay needs plain Lion
    opt = cls(groups, **kwargs)
    first = [p.detach().clone() for p in net[0].parameters()]
    train(net, opt, batches(5))
    assert all(torch.allclose(a, b, atol=1e-9) for a, b in zip(frozen, net[2].parameters(), strict=True))
    assert all(not torch.allclose(a, b) for a, b in zip(first, net[0].parameters(), strict=True))


def test_parameters_without_gradients_are_skipped_and_keep_their_own_step_count():
    net = make_net()
    opt = Lion(net.parameters(), lr=1e-3, inverse_bias_correction=True)
    untouched = net[2].bias
    before = untouched.detach().clone()
    for x, y in batches(3):
        opt.zero_grad()
        (net(x) - y).square().mean().backward()
        untouched.grad = None
        opt.step()
    assert torch.equal(untouched.detach(), before)
    assert untouched not in opt.state or not opt.state[untouched]
    untouched.grad = torch.ones_like(untouched)
    net[0].weight.grad = torch.ones_like(net[0].weight)
    opt.step()
    assert int(opt.state[untouched]["step"]) == 1 and int(opt.state[net[0].weight]["step"]) == 4


shapes = st.one_of(
    st.tuples(st.integers(1, 9)),
    st.tuples(st.integers(1, 9), st.integers(1, 12)),
    st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),
)


@given(
    name=st.sampled_from(sorted(CONFIGS)),
    shape=shapes,
    lr=st.floats(1e-5, 1e-1),
    wd=st.floats(1e-3, 1.0),
    beta=st.floats(0.0, 0.999),
    dtype=st.sampled_from([torch.float32, torch.bfloat16]),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=40, deadline=None)
def test_random_shapes_and_hyperparameters_stay_finite(name, shape, lr, wd, beta, dtype, seed):
    cls, kwargs = CONFIGS[name]
    kwargs = {**kwargs, "lr": lr, "weight_decay": wd}
    kwargs["betas"] = (beta, 0.999 if "adamw" in name else beta)
    kwargs.pop("beta", None)
    gen = torch.Generator().manual_seed(seed)
    w = torch.nn.Parameter(torch.randn(shape, generator=gen).to(dtype))
    opt = cls([w], **kwargs)
    for _ in range(6):
        w.grad = (torch.randn(shape, generator=gen) * 10 ** float(torch.randint(-4, 4, (), generator=gen))).to(dtype)
        opt.step()
        assert w.dtype == dtype
        assert torch.isfinite(w).all()


@pytest.mark.parametrize("name", CONFIGS)
def test_cpu_chunking_does_not_change_the_result(name, monkeypatch):
    """One tensor per foreach run and one run for all give bit-identical parameters."""
    from lrlab.optim import _foreach

    cls, kwargs = CONFIGS[name]
    results = []
    for chunk in (1, 10**9):
        monkeypatch.setattr(_foreach, "CPU_CHUNK_ELEMENTS", chunk)
        net = make_net()
        train(net, cls(net.parameters(), **kwargs), batches(10))
        results.append(flat(net))
    assert torch.equal(results[0], results[1])


def test_float64_snr_state_survives_a_state_dict_round_trip():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3).double()
    opt = Lion(model.parameters(), lr=1e-3, snr_gain=4.0)
    for _ in range(3):
        model(torch.randn(2, 4, dtype=torch.float64)).sum().backward()
        opt.step()
        opt.zero_grad()
    fresh = Lion(model.parameters(), lr=1e-3, snr_gain=4.0)
    fresh.load_state_dict(opt.state_dict())
    assert all(s["snr_signal"].dtype == torch.float32 for s in fresh.state.values())
    model(torch.randn(2, 4, dtype=torch.float64)).sum().backward()
    fresh.step()  # used to fail: the scalar EMAs came back as float64
    assert all(torch.isfinite(p).all() for p in model.parameters())
