"""Learning-rate areas the loss-curve laws are built on, all O(T) or vectorized.

Conventions (shared by every law in :mod:`lrlab.laws`):

- ``lr`` is the per-step learning rate, ``lr[t]`` used by optimizer update ``t`` (0-based), warmup included.
- The loss observed at step ``s`` reflects updates ``0..s`` inclusive, so areas at ``s`` sum ``lr[0..s]``.
- The *peak index* ``p`` is the first step where ``lr`` reaches its maximum; the steps before it are the warmup.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

from lrlab.errors import InputError

# Chunks of the MPL double sum hold at most this many (observation, step) pairs: about 32 MiB of float64.
_CHUNK_ELEMENTS = 1 << 22
# The fast quadrature's (observation, bin) cells of one curve: the kept ones take 32 bytes each, 1.6 GB at the
# limit, which is about 150,000 records of a 24,000-step run (~330 bins a record); the public curves have at most
# 562 records. They are built _CHUNK_CELLS at a time, so the temporaries stay near 100 MB.
MAX_BIN_CELLS = 50_000_000
_CHUNK_CELLS = 1 << 20


def peak_index(lr: np.ndarray) -> int:
    """First step at which ``lr`` reaches its maximum (the end of warmup)."""
    return int(np.argmax(lr))


def flat_warmup(lr: np.ndarray) -> np.ndarray:
    """``lr`` with every warmup step replaced by the peak LR (the momentum paper's warmup convention)."""
    p = peak_index(lr)
    out = np.array(lr, dtype=np.float64)
    out[:p] = out[p]
    return out


def forward_area(lr: np.ndarray) -> np.ndarray:
    """S1(s) = sum_{i<=s} lr_i for every s (units: LR x steps)."""
    return np.cumsum(np.asarray(lr, dtype=np.float64))


def lr_drops(lr: np.ndarray) -> np.ndarray:
    """delta_i = lr_{i-1} - lr_i (positive when the LR falls), with delta_0 = 0."""
    lr = np.asarray(lr, dtype=np.float64)
    d = np.zeros_like(lr)
    d[1:] = lr[:-1] - lr[1:]
    return d


def annealing_area(lr: np.ndarray, lam: float) -> np.ndarray:
    """S2(s) = sum_{i<=s} m_i with m_i = lam m_{i-1} + (lr_{i-1} - lr_i), m_0 = 0 (Tissue et al.).

    The momentum m is a first-order IIR filter of the LR drops, evaluated by ``scipy.signal.lfilter`` in O(T).
    """
    return np.cumsum(lfilter([1.0], [1.0, -lam], lr_drops(lr)))


def recent_lr(lr: np.ndarray, lam: float) -> np.ndarray:
    """v_s = lam v_{s-1} + (1 - lam) lr_s with v_{-1} = lr_0: the LR averaged over the last ~1 / (1 - lam) steps.

    It carries the momentum law's annealing area: S2(s) = (lr_0 - v_s) / (1 - lam) exactly (one IIR filter).
    """
    lr = np.asarray(lr, dtype=np.float64)
    return lfilter([1.0 - lam], [1.0, -lam], lr, zi=[lam * lr[0]])[0]


def mpl_loss_drop(
    lr: np.ndarray, steps: np.ndarray, c: float, beta: float, gamma: float, warmup: bool = True
) -> np.ndarray:
    """The multi-power law's loss drop without its amplitude B, exactly, at each observed step ``s``:

        LD(s)/B = sum_{k0 <= k <= s} (lr_{k-1} - lr_k) * G(lr_k^-gamma * S_k(s)),   S_k(s) = sum_{k<=i<=s} lr_i,
        G(x) = 1 - (1 + c x)^-beta     (beta = inf: G(x) = 1 - exp(-c x), see :func:`kernel`).

    ``warmup=True`` (the authors' code, k0 = 1): the warmup's rising LR enters as negative drops;
    ``warmup=False`` (the paper's formula, k0 = p + 1 with ``p`` the peak index): only drops after the peak.
    Only steps with a non-zero drop enter the sum; the (observation, step) pairs are evaluated in numpy
    chunks, never in Python loops over steps.
    """
    lr = np.asarray(lr, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.int64)
    prefix = forward_area(lr)
    drops = _counted_drops(lr, warmup)
    k = np.flatnonzero(drops)
    out = np.zeros(len(steps))
    if len(k) == 0:
        return out
    weight = drops[k]
    scale = _safe_lr(lr[k]) ** -gamma
    before = prefix[k - 1]
    rows = max(1, _CHUNK_ELEMENTS // len(k))
    for start in range(0, len(steps), rows):
        s = steps[start : start + rows]
        span = np.maximum(prefix[s][:, None] - before[None, :], 0.0)
        g = kernel(c * scale[None, :] * span, beta)
        out[start : start + rows] = np.where(k[None, :] <= s[:, None], g, 0.0) @ weight
    return out


def _counted_drops(lr: np.ndarray, warmup: bool) -> np.ndarray:
    """The drops that enter the loss-drop sum: all of them (warmup's rises as negative drops), or post-peak."""
    drops = lr_drops(lr)
    if not warmup:
        drops[: peak_index(lr) + 1] = 0.0
    return drops


def kernel(cx: np.ndarray, beta: float) -> np.ndarray:
    """G = 1 - (1 + cx)^-beta, and its beta -> inf limit 1 - exp(-cx) when ``beta`` is ``math.inf``.

    (Strictly, 1 - (1 + cx/beta)^-beta -> 1 - exp(-cx); the exponential kernel is that limit with c rescaled.)
    """
    if math.isinf(beta):
        return -np.expm1(-cx)
    return -np.expm1(-beta * np.log1p(cx))


def _safe_lr(lr: np.ndarray) -> np.ndarray:
    """LR floored at 1e-30 so that lr^-gamma stays finite (an LR of 0 then gives G ~ 1, its limit)."""
    return np.maximum(lr, 1e-30)


class BinnedLossDrop:
    """A fast quadrature of :func:`mpl_loss_drop` for fitting: fixed per (schedule, steps), cheap per parameter.

    For each observed step ``s`` the drops are grouped into bins that are narrow in the distance ``d = s - k``
    (one step wide for ``d < 16``, then growing by 5%) and, over the warmup and any later re-warmup, also in ``k``
    itself (the same rule from the stretch's start, so that no bin spans a large relative change of a rising LR):
    the common refinement of the
    two partitions. Inside a bin the sum becomes ``W * G(x)`` with ``W`` the bin's total drop and ``x``
    built from the drop-weighted means of ``log lr_k`` and ``S_k(s)`` (exact for a single drop, second order in
    the bin width otherwise). Rising and falling drops are binned apart so that the weights never cancel.
    Tests hold it to the exact sum within a small tolerance.
    """

    def __init__(
        self, lr: np.ndarray, steps: np.ndarray, warmup: bool = True, unit_bins: int = 16, growth: float = 1.05
    ):
        lr = np.asarray(lr, dtype=np.float64)
        steps = np.asarray(steps, dtype=np.int64)
        prefix = forward_area(lr)
        drops = _counted_drops(lr, warmup)
        log_lr = np.log(_safe_lr(lr))
        before = np.concatenate([[0.0], prefix[:-1]])  # before[k] = sum_{i<k} lr_i
        edges = _geometric_edges(int(steps.max(initial=0)) + 1, unit_bins, growth)
        # cut points c in k: a bin holds c_j < k <= c_{j+1}; distance cuts s - edges, and the same edges in k
        # over every rising stretch (the warmup up to the peak, and any later re-warmup), where the LR changes
        # by large factors
        in_k = np.concatenate([start + edges[edges <= length] for start, length in _rising_stretches(lr)])
        cells = len(steps) * (len(edges) + len(in_k))
        if cells > MAX_BIN_CELLS:  # the kept cells take 32 bytes each: refuse before allocating them
            window = -(-cells // MAX_BIN_CELLS)
            raise InputError(
                f"{len(steps):,} loss records need {cells:,} quadrature cells, above the limit of {MAX_BIN_CELLS:,}; "
                f"average blocks of {window} or more records into one, or use the momentum law",
                "curves",
            )
        sums = [
            np.concatenate([[0.0], np.cumsum(part * f)])
            for part in (np.maximum(drops, 0.0), np.minimum(drops, 0.0))
            for f in (1.0, log_lr, before)
        ]
        # observation rows in chunks, so that the temporaries (about 15 arrays a cell) stay ~100 MB whatever the curve
        per_chunk = max(1, _CHUNK_CELLS // (len(edges) + len(in_k)))
        parts = [
            self._cells(steps[a : a + per_chunk], a, edges, in_k, sums, prefix) for a in range(0, len(steps), per_chunk)
        ]
        self.rows, self.weight, self.log_lr, self.span = (np.concatenate(p) for p in zip(*parts, strict=True))
        self.n = len(steps)

    @staticmethod
    def _cells(steps, offset, edges, in_k, sums, prefix) -> tuple[np.ndarray, ...]:
        """The (row, weight, mean log lr, span) of the non-empty bins of the observation rows ``steps``."""
        cuts = np.concatenate([steps[:, None] - edges[None, :], np.broadcast_to(in_k, (len(steps), len(in_k)))], axis=1)
        cuts = np.sort(np.clip(cuts, -1, steps[:, None]), axis=1)
        lo, hi = cuts[:, :-1] + 1, cuts[:, 1:] + 1
        weights, means_log, means_before = [], [], []
        for cw, cl, cb in (sums[:3], sums[3:]):  # rising and falling drops apart, so that weights never cancel
            w = cw[hi] - cw[lo]
            nz = w != 0.0
            safe_w = np.where(nz, w, 1.0)
            weights.append(w)
            means_log.append(np.where(nz, (cl[hi] - cl[lo]) / safe_w, 0.0))
            means_before.append(np.where(nz, (cb[hi] - cb[lo]) / safe_w, 0.0))
        # keep only the (step, bin) cells that hold a drop: a two-stage schedule leaves one per step
        weight = np.concatenate(weights, axis=1)
        rows, cols = np.nonzero(weight)
        span = prefix[steps][:, None] - np.concatenate(means_before, axis=1)
        log_mean = np.concatenate(means_log, axis=1)
        return rows + offset, weight[rows, cols], log_mean[rows, cols], np.maximum(span[rows, cols], 0.0)

    def __call__(self, c: float, beta: float, gamma: float) -> np.ndarray:
        x = np.exp(-gamma * self.log_lr) * self.span
        g = kernel(c * x, beta)
        return np.bincount(self.rows, weights=g * self.weight, minlength=self.n)


def _rising_stretches(lr: np.ndarray) -> list[tuple[int, int]]:
    """(cut before the stretch, length + 1) for the warmup (k = 0 up to the peak) and every later run of rising LR."""
    out = [(-1, peak_index(lr) + 1)]
    rising = np.flatnonzero(np.diff(lr) > 0) + 1  # k with lr_k > lr_{k-1}
    rising = rising[rising > peak_index(lr)]
    if rising.size:
        breaks = np.flatnonzero(np.diff(rising) > 1)
        for first, last in zip(rising[np.r_[0, breaks + 1]], rising[np.r_[breaks, rising.size - 1]], strict=True):
            out.append((int(first) - 1, int(last - first) + 2))
    return out


def _geometric_edges(limit: int, unit_bins: int, growth: float) -> np.ndarray:
    """Bin edges 0, 1, ..., unit_bins, then growing geometrically until past ``limit``."""
    edges = list(range(unit_bins + 1))
    while edges[-1] < limit:
        edges.append(max(edges[-1] + 1, int(np.ceil(edges[-1] * growth))))
    return np.asarray(edges, dtype=np.int64)
