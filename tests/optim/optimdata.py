"""Helpers for the optimizer tests: a small network, batches, a training loop (a module name unique across tests/)."""

import torch


def make_net(seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 3))
    return net.to(dtype)


def batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 6, generator=gen), torch.randn(8, 3, generator=gen)) for _ in range(n)]


def train(net: torch.nn.Module, opt: torch.optim.Optimizer, data: list) -> list[float]:
    """Run one step per batch (mean squared error); return the losses."""
    losses = []
    for x, y in data:
        opt.zero_grad()
        loss = (net(x.to(next(net.parameters()).dtype)).float() - y).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def flat(net: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten() for p in net.parameters()])
