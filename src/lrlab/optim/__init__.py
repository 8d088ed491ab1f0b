"""Warmup-reducing optimizers that swap in for ``torch.optim.AdamW`` in one line.

    from lrlab.optim import LionAR
    opt = LionAR(model.parameters(), lr=3e-4, weight_decay=0.1, beta=0.98, nesterov=True,
                 inverse_bias_correction=True)

- :class:`AdamW` (``v_init="zero"`` is torch's AdamW) and :class:`GIAdamW` (second moment starts at g_0^2);
- :class:`Lion`, :class:`LionA` (exact update norm) and :class:`LionAR` (rotational: fixed row norms,
  equilibrium angular updates), all with ``beta``/``nesterov``/``inverse_bias_correction``/``snr_gain``.

:data:`OPTIMIZERS` maps lower-case names to the classes; every class takes ``(params, lr=..., weight_decay=...)``
keyword arguments like ``torch.optim``. See docs/optim.md for formulas, measurements and limits.
"""

from lrlab.optim.adamw import AdamW, GIAdamW
from lrlab.optim.lion import Lion, LionA
from lrlab.optim.lion_rotational import LionAR

OPTIMIZERS: dict[str, type] = {
    "adamw": AdamW,
    "giadamw": GIAdamW,
    "lion": Lion,
    "liona": LionA,
    "lionar": LionAR,
}

__all__ = ["OPTIMIZERS", "AdamW", "GIAdamW", "Lion", "LionA", "LionAR"]
