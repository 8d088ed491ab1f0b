"""The Lion family's ``fused=True`` path (torch.compile kernels) against the foreach path and lion-pytorch."""

import inspect
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lion_pytorch import Lion as ReferenceLion
from optimdata import batches, flat, make_net, train
from torch._inductor.exc import CppCompileError

from lrlab.optim import Lion, LionA, LionAR, _compiled

CASES = {
    "lion": (Lion, {"lr": 1e-2, "weight_decay": 0.1}),
    "lion-nesterov-ibc-snr": (
        Lion,
        {"lr": 1e-2, "weight_decay": 0.1, "nesterov": True, "inverse_bias_correction": True, "snr_gain": 8.0},
    ),
    "liona-per-neuron": (LionA, {"lr": 1e-2, "weight_decay": 0.1, "per_neuron": True}),
    "liona-per-tensor-snr": (LionA, {"lr": 1e-2, "weight_decay": 0.1, "per_neuron": False, "snr_gain": 4.0}),
    "lionar": (LionAR, {"lr": 1e-2, "weight_decay": 0.1}),
    "lionar-nesterov-ibc-snr": (
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


@pytest.fixture
def compiled_runs(monkeypatch):
    """The list of kernels that ran compiled."""
    ran = []
    real = _compiled.run

    def spy(name, *args):
        ok, out = real(name, *args)
        if ok:
            ran.append(name)
        return ok, out

    monkeypatch.setattr(_compiled, "run", spy)
    return ran


@pytest.fixture
def calls(compiled_runs, monkeypatch):
    """Every tensor fuses (the test net's are small); the list of kernels that ran compiled."""
    monkeypatch.setattr(_compiled, "MIN_ELEMENTS", 0)
    return compiled_runs


def _groups(net):
    """Two groups with their own LR, so that per-group hyperparameters reach the kernels."""
    return [{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 3e-3}]


def _train(cls, kwargs, fused, steps=15, dtype=torch.float32):
    net = make_net(0, dtype)
    opt = cls(_groups(net), fused=fused, **kwargs)
    train(net, opt, batches(steps))
    return flat(net), opt


@pytest.mark.parametrize("case", CASES)
def test_fused_matches_the_foreach_path(case, calls):
    cls, kwargs = CASES[case]
    fused, fused_opt = _train(cls, kwargs, fused=True)
    assert calls, "the compiled kernel never ran"
    plain, plain_opt = _train(cls, kwargs, fused=False)
    assert torch.allclose(fused, plain, rtol=0, atol=2e-6)
    for a, b in zip(fused_opt.state.values(), plain_opt.state.values(), strict=True):
        for key in a:
            assert torch.allclose(a[key].double(), b[key].double(), rtol=1e-5, atol=1e-7), key


def test_fused_float64_matches_the_foreach_path(calls):
    cls, kwargs = CASES["lionar-nesterov-ibc-snr"]
    fused, _ = _train(cls, kwargs, fused=True, dtype=torch.float64)
    plain, _ = _train(cls, kwargs, fused=False, dtype=torch.float64)
    assert calls
    assert torch.allclose(fused.double(), plain.double(), rtol=0, atol=1e-6)


def test_fused_lion_matches_lion_pytorch(calls):
    kwargs = dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.5)
    steps = batches(50)
    ref_net, ours_net = make_net(), make_net()
    train(ref_net, ReferenceLion(_groups(ref_net), **kwargs), steps)
    train(ours_net, Lion(_groups(ours_net), fused=True, **kwargs), steps)
    assert calls
    assert torch.allclose(flat(ours_net), flat(ref_net), rtol=0, atol=1e-6)


def test_only_large_contiguous_float_cpu_tensors_fuse():
    big = torch.zeros(_compiled.MIN_ELEMENTS)
    assert _compiled.fusable(big, big, big)
    assert not _compiled.fusable(big[:-1], big[:-1], big[:-1])  # too small
    assert not _compiled.fusable(big.half(), big.half(), big.half())
    assert not _compiled.fusable(big, big.double(), big)  # mixed dtypes
    matrix = torch.zeros(128, _compiled.MIN_ELEMENTS // 64)
    assert not _compiled.fusable(matrix.t(), matrix.t(), matrix.t())  # not contiguous
    meta = torch.zeros(_compiled.MIN_ELEMENTS, device="meta")
    assert not _compiled.fusable(meta, meta, meta)


@pytest.mark.parametrize("cls", [Lion, LionA])  # LionAR's state set-up reads its row norms (.item()): not on meta
def test_non_cpu_parameters_keep_the_foreach_path(cls, monkeypatch):
    """The GPU path: a device other than the CPU never reaches a compiled kernel (meta stands in for cuda; LionAR
    dispatches through the same Lion._fused)."""
    monkeypatch.setattr(_compiled, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(_compiled, "run", lambda *a: pytest.fail("a compiled kernel ran on a meta tensor"))
    w = torch.nn.Parameter(torch.randn(64, 32, device="meta"))
    opt = cls([w], lr=1e-3, weight_decay=0.1, fused=True)
    w.grad = torch.randn(64, 32, device="meta")
    opt.step()
    assert opt.state[w]["exp_avg"].device.type == "meta"


def test_a_group_mixing_large_and_small_tensors_gets_the_same_update(compiled_runs):
    """With the default threshold a matrix fuses and its bias does not; the result is the foreach path's."""

    def run(fused):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(256, 128), torch.nn.Tanh(), torch.nn.Linear(128, 4))
        opt = LionAR(net.parameters(), lr=1e-3, weight_decay=0.1, fused=fused)
        gen = torch.Generator().manual_seed(1)
        for _ in range(5):
            opt.zero_grad()
            net(torch.randn(16, 256, generator=gen)).square().mean().backward()
            opt.step()
        return torch.cat([p.detach().flatten() for p in net.parameters()])

    fused = run(True)
    assert (
        compiled_runs == ["rotation_coefficients", "lion_rotational"] * 5
    )  # the 256 x 128 matrix; its bias and the small layer do not
    assert torch.allclose(fused, run(False), rtol=0, atol=1e-6)


def _raising(exc):
    """A stand-in for ``_compiled._compiled`` whose kernels raise ``exc`` before writing anything."""

    def kernel(*args):
        raise exc

    return lambda name: kernel


@pytest.mark.parametrize("cls", [Lion, LionA, LionAR])
def test_a_kernel_that_cannot_compile_warns_once_and_falls_back(cls, monkeypatch):
    monkeypatch.setattr(_compiled, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(_compiled, "_compiled", _raising(CppCompileError(["c++"], "c++: not found")))
    monkeypatch.setattr(_compiled, "_failed", set())
    monkeypatch.setattr(_compiled, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fused, _ = _train(cls, {"lr": 1e-2, "weight_decay": 0.1}, fused=True)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    kernels = {"lion"} if cls is Lion else {"sign_counts"} if cls is LionA else {"lion", "rotation_coefficients"}
    assert len(messages) == len(kernels) and all("could not be compiled" in m for m in messages)
    assert _compiled._failed == kernels
    plain, _ = _train(cls, {"lr": 1e-2, "weight_decay": 0.1}, fused=False)
    assert torch.equal(fused, plain)


@pytest.mark.parametrize(("cls", "second"), [(LionA, "lion_normalized"), (LionAR, "lion_rotational")])
def test_a_second_pass_that_cannot_compile_leaves_the_first_passs_work_unused(cls, second, monkeypatch):
    """LionA and LionAR take two calls, row sums (read only) and then the update: when only the update fails to
    compile, the step is the foreach path's, with nothing applied twice or half."""
    monkeypatch.setattr(_compiled, "MIN_ELEMENTS", 0)
    real, asked = _compiled._compiled, []

    def kernel(name):
        asked.append(name)
        return _raising(CppCompileError(["c++"], "no"))(name) if name == second else real(name)

    monkeypatch.setattr(_compiled, "_compiled", kernel)
    monkeypatch.setattr(_compiled, "_failed", set())
    monkeypatch.setattr(_compiled, "_warned", set())
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        fused, _ = _train(cls, {"lr": 1e-2, "weight_decay": 0.1}, fused=True)
    assert second in _compiled._failed
    first = {"lion_normalized": "sign_counts", "lion_rotational": "rotation_coefficients"}[second]
    assert asked.count(first) == asked.count(second) == 1  # once one failed, neither pass is tried again
    plain, _ = _train(cls, {"lr": 1e-2, "weight_decay": 0.1}, fused=False)
    assert torch.allclose(fused, plain, rtol=0, atol=2e-6)


def test_an_error_that_is_not_a_compile_failure_is_raised(monkeypatch):
    monkeypatch.setattr(_compiled, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(_compiled, "_compiled", _raising(ValueError("a bug in a kernel")))
    with pytest.raises(ValueError, match="a bug in a kernel"):
        _train(Lion, {"lr": 1e-2, "weight_decay": 0.1}, fused=True)


@pytest.mark.parametrize("cls", [Lion, LionAR])
def test_past_the_recompile_limit_calls_take_the_foreach_path(cls, monkeypatch):
    """Parameters without a gradient in some steps give lists of changing length or of other tensors (a compile
    each); past torch._dynamo's recompile limit the optimizer keeps training, on the foreach path for those calls."""
    monkeypatch.setattr(_compiled, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(_compiled, "_warned", set())

    def run(fused):
        gen = torch.Generator().manual_seed(4)
        ws = [torch.nn.Parameter(torch.randn(4, 5 + i, generator=gen)) for i in range(6)]
        opt = cls(ws, lr=1e-2, weight_decay=0.1, fused=fused)
        for step in range(8):
            for i, w in enumerate(ws):  # a different subset of the tensors has a gradient each step
                w.grad = torch.randn(w.shape, generator=gen) if (i + step) % 3 else None
            opt.step()
        return torch.cat([w.detach().flatten() for w in ws])

    with warnings.catch_warnings(record=True) as caught, torch._dynamo.config.patch(recompile_limit=1):
        warnings.simplefilter("always")
        fused = run(True)
    limits = [str(w.message) for w in caught if "recompile_limit" in str(w.message)]
    assert len(limits) == 1  # one warning, however many calls fell back
    assert torch.allclose(fused, run(False), rtol=0, atol=1e-5)


@pytest.fixture
def fresh_dynamo():
    """Dynamo's caches, automatic-dynamic memory and counters empty before and after the test."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    yield torch._dynamo.utils.counters
    torch._dynamo.reset()


@pytest.mark.parametrize("cls", [Lion, LionA, LionAR])
def test_new_model_sizes_compile_once_more_with_symbolic_sizes(cls, compiled_runs, fresh_dynamo):
    """The first model compiles with its sizes fixed; a second model's other sizes recompile once with them
    symbolic; a third model and the first one again need no compile: two graphs per kernel, every call compiled
    (with ``dynamic=True`` there would be one graph, with ``dynamic=False`` a third, past the limit here)."""
    for rows, cols in [(130, 140), (150, 160), (170, 190), (130, 140)]:
        ws = [torch.nn.Parameter(torch.randn(rows, cols)), torch.nn.Parameter(torch.randn(cols, rows))]
        opt = cls(ws, lr=1e-2, weight_decay=0.1, fused=True)
        for _ in range(2):
            for w in ws:
                w.grad = torch.randn(w.shape)
            with torch._dynamo.config.patch(recompile_limit=2):
                opt.step()
    kernels = 1 if cls is Lion else 2
    assert len(compiled_runs) == 4 * 2 * kernels  # a call that took the foreach path is not counted
    assert fresh_dynamo["stats"]["unique_graphs"] == 2 * kernels


def test_a_first_models_calls_keep_its_fixed_size_graph(compiled_runs, fresh_dynamo, monkeypatch):
    """After a second model's sizes compile a symbolic graph, the first model's calls match only their own
    fixed-size graph (dynamo tries the newest graph first; without the exclusion guard the symbolic one, slower,
    would serve both). Read from dynamo's cache entries (a debug API of torch 2.13)."""
    from torch._C._dynamo.eval_frame import _debug_get_cache_entry_list

    calls = []
    real = _compiled.run
    monkeypatch.setattr(_compiled, "run", lambda name, *args: (calls.append(args), real(name, *args))[1])
    for rows, cols in [(130, 140), (150, 160)]:
        ws = [torch.nn.Parameter(torch.randn(rows, cols)), torch.nn.Parameter(torch.randn(cols, rows))]
        for w in ws:
            w.grad = torch.randn(w.shape)
        Lion(ws, lr=1e-2, weight_decay=0.1, fused=True).step()
    kernel = _compiled._KERNELS["lion"]
    symbolic, fixed = _debug_get_cache_entry_list(kernel.__code__)  # newest first
    names = list(inspect.signature(kernel).parameters)
    with torch.no_grad():
        first, second = (dict(zip(names, args, strict=True)) for args in calls)
        assert [symbolic.guard_manager.check(first), fixed.guard_manager.check(first)] == [False, True]
        assert symbolic.guard_manager.check(second)


@settings(max_examples=20, deadline=None)
@given(
    shape=st.sampled_from([(2, 3), (5, 7), (16, 33), (3, 4, 2, 2), (40,)]),
    cls=st.sampled_from([Lion, LionA, LionAR]),
    lr=st.floats(1e-4, 3e-2),
    wd=st.floats(0.01, 0.5),
    beta1=st.floats(0.5, 0.99),
    beta2=st.floats(0.5, 0.999),
    nesterov=st.booleans(),
    ibc=st.booleans(),
    snr_gain=st.sampled_from([1.0, 8.0]),
    seed=st.integers(0, 2**16),
)
def test_fused_matches_foreach_on_random_shapes_and_hyperparameters(
    shape, cls, lr, wd, beta1, beta2, nesterov, ibc, snr_gain, seed
):
    options = dict(lr=lr, weight_decay=wd, betas=(beta1, beta2), nesterov=nesterov)
    options.update(inverse_bias_correction=ibc, snr_gain=snr_gain)
    gen = torch.Generator().manual_seed(seed)
    start = torch.randn(shape, generator=gen)
    grads = [torch.randn(shape, generator=gen) + 0.3 for _ in range(6)]
    results, ran = [], []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_compiled, "MIN_ELEMENTS", 0)
        real = _compiled.run
        patch.setattr(_compiled, "run", lambda name, *a: (out := real(name, *a), ran.append(out[0]))[0])
        for fused in (True, False):
            w = torch.nn.Parameter(start.clone())
            opt = cls([w], fused=fused, **options)
            for g in grads:
                w.grad = g.clone()
                opt.step()
            results.append(w.detach())
    assert ran and all(ran)  # the fused run compiled (after the first shape, sizes are symbolic)
    assert torch.allclose(results[0], results[1], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(Lion, {}), (LionA, {}), (LionA, {"per_neuron": True}), (LionAR, {}), (LionAR, {"nesterov": True})],
)
def test_tensors_of_every_rank_get_the_foreach_update(cls, kwargs, calls, fresh_dynamo):
    """Conv kernels (4-D), 3-D tensors, matrices and vectors: the kernels see them as they are or as rows (dynamo
    fresh: this file's earlier compiles must not count towards its recompile limit)."""
    shapes = [(6, 3, 3, 3), (4, 5, 7), (8, 12), (12,)]

    def run(fused):
        gen = torch.Generator().manual_seed(3)
        ws = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
        opt = cls(ws, lr=1e-2, weight_decay=0.1, fused=fused, **kwargs)
        for _ in range(6):
            for w in ws:
                w.grad = torch.randn(w.shape, generator=gen)
            opt.step()
        return torch.cat([w.detach().flatten() for w in ws])

    fused = run(True)
    assert calls
    assert torch.allclose(fused, run(False), rtol=0, atol=2e-6)
