"""The GPT: cross-checked against Hugging Face's GPT-2 with the same weights, causality, QK-norm, init."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab.train.model import GPT, PRESETS, GPTConfig, preset_config


def _gpt2_with_our_weights(model: GPT) -> torch.nn.Module:
    """A transformers GPT2LMHeadModel carrying ``model``'s weights (GPT-2's Conv1D stores W transposed)."""
    import transformers  # a dev dependency: missing, this test fails rather than skips

    c = model.cfg
    hf_cfg = transformers.GPT2Config(
        vocab_size=c.vocab_size,
        n_positions=c.block_size,
        n_embd=c.n_embd,
        n_layer=c.n_layer,
        n_head=c.n_head,
        activation_function="gelu",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
    ours = model.state_dict()
    mapped = {"transformer.wte.weight": ours["wte.weight"], "transformer.wpe.weight": ours["wpe.weight"]}
    for name, tensor in ours.items():
        if name.startswith("blocks."):
            hf_name = "transformer.h." + name.removeprefix("blocks.")
            is_conv = name.endswith("weight") and ("c_attn" in name or "c_proj" in name or "c_fc" in name)
            mapped[hf_name] = tensor.t() if is_conv else tensor
        elif name.startswith("ln_f."):
            mapped["transformer." + name] = tensor
    mapped["lm_head.weight"] = ours["wte.weight"]
    missing, unexpected = hf.load_state_dict(mapped, strict=False)
    assert not unexpected and all(".attn.bias" in m or "masked_bias" in m for m in missing), missing
    return hf


def test_logits_match_transformers_gpt2():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=97, block_size=24, n_layer=2, n_head=4, n_embd=32, bias=True)).eval()
    with torch.no_grad():  # non-trivial biases and gains, so a mapping mistake cannot hide behind zeros
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.normal_(mean=1.0 if "ln" in name else 0.0, std=0.1)
    idx = torch.randint(0, 97, (3, 24))
    with torch.no_grad():
        expected = _gpt2_with_our_weights(model)(idx).logits
        assert torch.allclose(model(idx), expected, atol=1e-5, rtol=1e-4)


@settings(max_examples=20, deadline=None)
@given(cut=st.integers(1, 15), seed=st.integers(0, 2**16))
def test_causal_future_tokens_do_not_change_past_logits(cut, seed):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(block_size=16, n_embd=32, n_head=2, qk_norm=bool(seed % 2))).eval()
    a = torch.randint(0, 256, (2, 16))
    b = a.clone()
    b[:, cut:] = torch.randint(0, 256, (2, 16 - cut))
    with torch.no_grad():
        assert torch.allclose(model(a)[:, :cut], model(b)[:, :cut], atol=1e-6)


@settings(max_examples=5, deadline=None)
@given(scale=st.floats(0.1, 10.0))
def test_qk_norm_makes_attention_invariant_to_query_key_scale(scale):
    torch.manual_seed(1)
    model = GPT(GPTConfig(block_size=16, n_embd=32, n_head=2, qk_norm=True)).eval()
    idx = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        for block in model.blocks:  # q, k variances far above LayerNorm's eps, so eps cannot matter
            block.attn.c_attn.weight.normal_(std=1.0)
        before = model(idx)
        for block in model.blocks:  # the first 2/3 of c_attn's rows produce q and k
            block.attn.c_attn.weight[: 2 * 32].mul_(scale)
        assert torch.allclose(model(idx), before, atol=1e-4)


def test_tied_embeddings_and_gpt2_init():
    torch.manual_seed(0)
    model = GPT(preset_config("mini"))
    assert model.lm_head.weight is model.wte.weight
    assert model.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    residual = model.blocks[0].mlp.c_proj.weight.std().item()
    assert residual == pytest.approx(0.02 / math.sqrt(2 * model.cfg.n_layer), rel=0.05)
    assert model.blocks[0].mlp.c_fc.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_initial_loss_is_log_vocab_and_presets_span_up_to_10m():
    torch.manual_seed(0)
    model = GPT(preset_config("tiny", block_size=32))
    loss = model(torch.randint(0, 256, (8, 32)), torch.randint(0, 256, (8, 32))).item()
    assert loss == pytest.approx(math.log(256), abs=0.05)  # small init: near-uniform predictions
    counts = {name: GPT(preset_config(name)).num_params() for name in PRESETS}
    assert counts == dict(sorted(counts.items(), key=lambda kv: kv[1]))  # presets listed in size order
    assert counts["tiny"] < 200_000 and 8_000_000 < counts["medium"] < 10_500_000


def test_bad_sizes_and_lengths_raise():
    with pytest.raises(ValueError, match="not divisible"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="exceeds block_size"):
        GPT(GPTConfig(block_size=8))(torch.zeros(1, 9, dtype=torch.long))
