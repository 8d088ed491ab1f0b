"""A GPT in the nanoGPT mould: pre-LayerNorm blocks, causal SDPA attention, GELU MLP, tied embeddings.

Initialization follows GPT-2: every weight ~ N(0, 0.02), and the two projections that write into the residual
stream (attention ``c_proj`` and MLP ``c_proj``) ~ N(0, 0.02 / sqrt(2 n_layer)) so the residual variance does
not grow with depth. Optional QK-norm applies a LayerNorm over the head dimension to queries and keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# name -> (n_layer, n_head, n_embd). Parameter counts for the byte vocabulary (256) at seq_len 256.
PRESETS: dict[str, tuple[int, int, int]] = {
    "tiny": (2, 2, 64),  # 0.13M: trains at > 40k tokens/s on 2 CPU cores
    "mini": (4, 4, 128),  # 0.85M
    "small": (6, 6, 192),  # 2.76M
    "medium": (8, 8, 320),  # 10.0M
}


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 256
    block_size: int = 256  # longest sequence the position embedding covers
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    bias: bool = False
    qk_norm: bool = False

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        head_dim = cfg.n_embd // cfg.n_head
        self.q_norm = nn.LayerNorm(head_dim, bias=cfg.bias) if cfg.qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(head_dim, bias=cfg.bias) if cfg.qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).view(b, t, 3, self.n_head, c // self.n_head).transpose(1, 3).unbind(2)
        y = F.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """``GPT(cfg)(idx, targets)`` -> mean next-token cross-entropy in nats (``targets`` given) or logits."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied input and output embeddings
        self.apply(self._init_weights)
        residual_std = 0.02 / math.sqrt(2 * cfg.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def optimizer_groups(self, weight_decay: float, decay_embeddings: bool = True) -> list[dict]:
        """Param groups for a torch optimizer, as nanoGPT's ``configure_optimizers``: the weight matrices of the
        blocks with ``weight_decay``, the embeddings (the tied ``wte``/``lm_head`` and ``wpe``) with it only when
        ``decay_embeddings``, and biases and LayerNorm gains never. Empty groups are left out (torch rejects them).
        """
        embeddings = {id(self.wte.weight), id(self.wpe.weight)}
        decay, no_decay = [], []
        for p in self.parameters():  # each tensor once: the tied lm_head weight is wte's
            is_embedding = id(p) in embeddings
            (decay if p.ndim >= 2 and (decay_embeddings or not is_embedding) else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return [g for g in groups if g["params"]]

    def num_params(self) -> int:
        """Trainable parameters, the tied embedding counted once."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.cfg.block_size:
            raise ValueError(f"sequence length {t} exceeds block_size {self.cfg.block_size}")
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


def preset_config(name: str, **overrides) -> GPTConfig:
    """The :data:`PRESETS` sizes for ``name`` with any field of :class:`GPTConfig` overridden."""
    n_layer, n_head, n_embd = PRESETS[name]
    return GPTConfig(**{"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd, **overrides})
