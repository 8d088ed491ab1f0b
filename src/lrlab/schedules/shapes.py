"""Shape functions shared by every schedule family: how warmup rises and how decay falls.

Each decay shape maps the *remaining* fraction of a decay phase, ``q = (end - t) / (end - start)`` (1 at the
start of the phase, 0 at its end), to the fraction of ``peak - final`` still left. Formulas are written in
forms that stay accurate to a few ulp near both ends (no ``1 + cos`` cancellation near ``q = 0``).
"""

from __future__ import annotations

import numpy as np

from lrlab.errors import InputError

WARMUP_SHAPES = ("linear", "cosine", "1-sqrt", "exp")
DECAY_SHAPES = ("linear", "cosine", "1-sqrt", "exp", "poly")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{name}={value!r} is not one of {', '.join(choices)}")


def warmup_lr(x: np.ndarray, shape: str, init: float, peak: float) -> np.ndarray:
    """LR at warmup progress ``x`` in [0, 1] (0 -> ``init``, 1 -> ``peak``).

    linear: init + (peak - init) x;  cosine: init + (peak - init) sin^2(pi x / 2) (= (1 - cos pi x) / 2);
    1-sqrt: init + (peak - init) (1 - sqrt(1 - x));  exp: init (peak / init)^x (geometric, needs init > 0).
    """
    if shape == "linear":
        frac = x
    elif shape == "cosine":
        frac = np.sin(0.5 * np.pi * x) ** 2
    elif shape == "1-sqrt":
        frac = 1.0 - np.sqrt(1.0 - x)
    else:  # exp
        return init * (peak / init) ** x
    return init + (peak - init) * frac


def decay_lr(q: np.ndarray, shape: str, peak: float, final: float, power: float = 1.0) -> np.ndarray:
    """LR at remaining decay fraction ``q`` in [0, 1] (1 -> ``peak``, 0 -> ``final``).

    With p = 1 - q the elapsed fraction:
    linear: final + (peak - final) q;  cosine: final + (peak - final) (1 + cos pi p) / 2, computed as sin^2(pi q / 2);
    1-sqrt: final + (peak - final) (1 - sqrt p), computed as q / (1 + sqrt p);
    poly: final + (peak - final) q^power;  exp: final (peak / final)^q (geometric, needs final > 0).
    """
    if shape == "linear":
        frac = q
    elif shape == "cosine":
        frac = np.sin(0.5 * np.pi * q) ** 2
    elif shape == "1-sqrt":
        frac = q / (1.0 + np.sqrt(1.0 - q))
    elif shape == "poly":
        frac = q**power
    else:  # exp
        return final * (peak / final) ** q
    return final + (peak - final) * frac
