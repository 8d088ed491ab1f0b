r"""The SNR factor: a cheap per-tensor estimate of the gradient signal-to-noise ratio and the update factor.

Why: early in training the gradient's signal dominates its noise (the critical batch size is small), so a
fixed-size update lines up with the layer's inputs and changes its outputs (the relative representation
change, RRC) far more than the same update would later. Shrinking the update while the SNR is high holds
the RRC steadier, which is part of what a learning-rate warmup does (Kosson, Messmer, Jaggi 2024,
arXiv:2410.23922, who propose such a factor but did not publish its formula; this one is lrlab's design).

Model: near a point the minibatch gradient is g_t = G + xi_t with E xi = 0 and E||xi||^2 = N (the noise of
one minibatch gradient, tr Sigma / B). The SNR is rho = ||G||^2 / N (which is B / B_simple).

Estimate, per tensor, from what a Lion-family optimizer already holds (momentum m with EMA coefficient b):

    m_hat = m_{t-1} / (1 - b^(t-1))                            bias-corrected mean of the previous gradients
    q     = (1 - b)(1 + b^(t-1)) / ((1 + b)(1 - b^(t-1)))      sum of the squared EMA weights in m_hat
    E||g_t - m_hat||^2 = (1 + q) N                             the signal cancels; g_t is independent of m_hat
    E||g_t||^2         = ||G||^2 + N
    S_g <- r S_g + (1 - r) ||g_t||^2,   S_n <- r S_n + (1 - r) ||g_t - m_hat||^2 / (1 + q)       (r = 0.9)
    rho_hat = max(S_g - S_n, 0) / S_n

The factor, for a gain k >= 1 (k = 1 switches it off):

    s = sqrt((1 + rho_hat) / (1 + k rho_hat))       from 1 (pure noise) down to 1/sqrt(k) (pure signal)

Where it comes from: of a fixed-size update's squared norm a share rho/(1+rho) is signal and 1/(1+rho) noise.
A noise direction is random with respect to the layer's inputs x; the signal direction lines up with them and
changes w.x by sqrt(k) times more per unit norm (k lies between 1 and the fan-in). The squared RRC is then
(1 + k rho)/(1 + rho) times its pure-noise value, and s undoes that, holding the RRC at the level of a
noise-dominated update. k is not measured (that would need the layer inputs): it is the user's knob. For
sign-based updates (Lion) the split of the norm into signal and noise is an approximation.

Both EMAs start at step 2 with the same coefficient, so their bias corrections cancel in the ratio. Step 1 has
no m_hat and assumes the worst case, all signal: s = 1/sqrt(k). A gradient that drifts faster than the
momentum averages inflates the noise estimate, so the factor errs towards 1 (no shrinking), the safe side.

Cost per step: two ``_foreach_norm`` passes (over g and g - m_hat), one foreach subtraction that writes a
temporary the size of the gradients, and two float32 scalars of state per tensor (``snr_signal`` = S_g,
``snr_noise`` = S_n); no full-size state.
"""

from __future__ import annotations

import torch

SNR_EMA = 0.9  # r: the two norm EMAs follow the gradient over about 10 steps


def snr_factors(
    grads: list[torch.Tensor],
    momenta: list[torch.Tensor],
    states: list[dict[str, torch.Tensor]],
    beta: float,
    t: int,
    gain: float,
) -> list[torch.Tensor]:
    """Per-tensor factors s (0-d float32 tensors) for the 1-based step ``t``; updates the EMAs in ``states``.

    ``momenta`` must still hold m_{t-1} (call this before the momentum update). The EMAs start at zero at
    step 2 (or whenever the factor is switched on); equal starts make their bias corrections cancel.
    """
    if t == 1:
        return [torch.tensor(gain**-0.5, device=g.device) for g in grads]
    for state, g in zip(states, grads, strict=True):
        if "snr_signal" not in state:  # created here, so snr_gain can also be switched on mid-training
            state["snr_signal"] = torch.zeros((), dtype=torch.float32, device=g.device)
            state["snr_noise"] = torch.zeros((), dtype=torch.float32, device=g.device)
    bias = 1.0 - beta ** (t - 1)
    q = (1.0 - beta) * (1.0 + beta ** (t - 1)) / ((1.0 + beta) * bias)
    grad_sq = torch.stack(torch._foreach_norm(grads)).float() ** 2
    deviation = torch._foreach_add(grads, momenta, alpha=-1.0 / bias)
    noise_sq = torch.stack(torch._foreach_norm(deviation)).float() ** 2 / (1.0 + q)
    signal_ema = torch.stack([s["snr_signal"] for s in states]).lerp_(grad_sq, 1.0 - SNR_EMA)
    noise_ema = torch.stack([s["snr_noise"] for s in states]).lerp_(noise_sq, 1.0 - SNR_EMA)
    torch._foreach_copy_([s["snr_signal"] for s in states], list(signal_ema.unbind()))
    torch._foreach_copy_([s["snr_noise"] for s in states], list(noise_ema.unbind()))
    # s^2 = (1 + rho)/(1 + k rho) written as (S_n + signal)/(S_n + k signal): finite when S_n = 0 (no noise),
    # and 1 when the gradient is exactly zero.
    signal = (signal_ema - noise_ema).clamp_(min=0.0)
    tiny = torch.finfo(torch.float32).tiny
    return list(((noise_ema + signal + tiny) / (noise_ema + gain * signal + tiny)).sqrt_().unbind())
