"""Save and load a fitted law as versioned JSON, so that ``predict`` and ``optimize`` run without refitting.

Format (version 4; versions 2 and 3 are read too, with no model error)::

    {"format": "lrlab.law-fit", "version": 4, "law": "mpl", "options": {...}, "params": {"L0": ...},
     "cov": [[...]], "resid_std": ..., "model_error": ..., "huber_delta": ..., "objective": ...,
     "curves": {"name": {...}}, "info": {...}}

``info`` holds the fit window (``from_step``) and, for fits made through :mod:`lrlab.laws.select`, the
pilots-only protocol's scores of every candidate law (``selection``).

``cov`` is the parameter covariance in the fit's transformed space (log for positive parameters), ordered as
the law's parameter list. Plain JSON only: nothing is unpickled or evaluated.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from lrlab.errors import InputError, clip
from lrlab.files import json_ready, read_text, write_text
from lrlab.laws.fitting import Fit
from lrlab.laws.registry import make_law

FORMAT = "lrlab.law-fit"
# 2: mpl laws save their "warmup" option (version 1 fits predated it); 3: mpl-qexp saves "gamma";
# 4: "model_error" (the band's term for the law's own error, lrlab.laws.select)
VERSION = 4
READABLE = (2, 3, 4)
MAX_RESID_STD = 1.0  # of log losses: a residual scatter (or model error) of 100% is no fit (real fits: ~1e-3)
MAX_FIT_BYTES = 64 << 20  # a fit of many curves is a few kB; refuse to parse a huge file


def fit_to_dict(f: Fit) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "law": f.law.name,
        "options": f.law.options(),
        "params": f.theta,
        "cov": f.cov.tolist(),
        "resid_std": f.resid_std,
        "model_error": f.model_error,
        "huber_delta": f.huber_delta,
        "objective": f.objective,
        "curves": f.curves,
        "info": f.info,
    }


def save_fit(f: Fit, path: str | Path) -> None:
    """Write ``f`` as JSON to ``path`` atomically (the file is replaced whole, or not at all)."""
    write_text(path, json.dumps(json_ready(fit_to_dict(f)), indent=2, allow_nan=False, default=_plain) + "\n")


def _plain(value):
    """numpy scalars in ``info`` as plain numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot save {type(value).__name__} in a fit file")


def fit_from_dict(d: dict, where: str = "fit") -> Fit:
    """Rebuild a :class:`Fit`, checking every field a prediction uses: a malformed or tampered file is an
    :class:`InputError`, never a wrong prediction."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise InputError(f'{where}: not an lrlab law fit (expected "format": "{FORMAT}")')
    if d.get("version") not in READABLE:
        version = clip(repr(d.get("version")))
        raise InputError(f"{where}: unsupported version {version}; this lrlab reads versions 2 to 4")
    try:
        options = _table(d.get("options", {}), "options")
        if d["version"] == 2 and d["law"] == "mpl-qexp":
            options.setdefault("gamma", None)  # version 2's mpl-qexp always fitted its kernel's gamma
        law = make_law(str(d["law"]), **options)
        saved = _table(d["params"], "params")
        params = {n: _finite(saved[n], f"params.{n}") for n in law.names}
        cov = np.asarray(d["cov"], dtype=np.float64)
        resid = _finite(d["resid_std"], "resid_std")
        model_error = _finite(d["model_error"], "model_error") if d["version"] >= 4 else 0.0
        delta = _finite(d["huber_delta"], "huber_delta")
        objective = d.get("objective")
        objective = float("nan") if objective is None else _finite(objective, "objective")
    except KeyError as exc:
        raise InputError(f"{where}: missing key {clip(exc.args[0])!r}") from None
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"{where}: malformed value ({clip(exc, 120)})") from None
    if cov.shape != (len(law.names), len(law.names)) or not np.all(np.isfinite(cov)):
        raise InputError(f"{where}: cov must be a finite {len(law.names)}x{len(law.names)} matrix for {law.name!r}")
    for p in law.params:
        if not p.lo <= params[p.name] <= p.hi:
            raise InputError(f"{where}: params.{p.name} = {params[p.name]!r} is outside the law's [{p.lo:g}, {p.hi:g}]")
    if not 0 <= resid < MAX_RESID_STD or not 0 <= model_error < MAX_RESID_STD or not delta > 0:
        raise InputError(f"{where}: resid_std and model_error must lie in [0, {MAX_RESID_STD}) and huber_delta be > 0")
    eigen = np.linalg.eigvalsh(cov) if cov.size else np.zeros(0)
    symmetric = np.allclose(cov, cov.T, rtol=1e-6, atol=1e-12 * max(float(np.abs(cov).max(initial=0.0)), 1e-300))
    if not symmetric or (eigen.size and eigen.min() < -1e-9 * max(float(np.abs(eigen).max()), 1e-300)):
        raise InputError(f"{where}: cov is not a covariance (symmetric, positive semi-definite)")
    info = _table(d.get("info", {}), "info", where)
    warmup = info.get("warmup", 0)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise InputError(f"{where}: info.warmup must be a whole number of steps >= 0, got {clip(warmup)!r}")
    curves = _table(d.get("curves", {}), "curves", where)
    for name, metrics in curves.items():
        if not isinstance(metrics, dict) or not all(_is_number(v) for v in metrics.values()):
            raise InputError(f"{where}: curves.{clip(name)} must map metric names to numbers")
    return Fit(law, params, cov, resid, delta, curves, objective, info=info, model_error=model_error)


def _table(value, key: str, where: str | None = None) -> dict:
    if not isinstance(value, dict):
        prefix = f"{where}: " if where else ""
        raise InputError(f"{prefix}{key} must be a JSON object, got {type(value).__name__}")
    return dict(value)


def _is_number(value) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _finite(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{key} must be a finite number, got {clip(repr(value))}")
    return float(value)


def load_fit(path: str | Path) -> Fit:
    """Read a fit saved by :func:`save_fit` (plain JSON: nothing is unpickled or evaluated)."""
    path = Path(path)
    text = read_text(path, "fit", MAX_FIT_BYTES)
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply (not an lrlab fit)") from None
    return fit_from_dict(d, str(path))
