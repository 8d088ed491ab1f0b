"""Save and load a fitted law as versioned JSON, so that ``predict`` and ``optimize`` run without refitting.

Format (version 3; version 2 files are read too)::

    {"format": "lrlab.law-fit", "version": 3, "law": "mpl", "options": {...}, "params": {"L0": ...},
     "cov": [[...]], "resid_std": ..., "huber_delta": ..., "objective": ..., "curves": {"name": {...}},
     "info": {...}}

``cov`` is the parameter covariance in the fit's transformed space (log for positive parameters), ordered as
the law's parameter list. Plain JSON only: nothing is unpickled or evaluated.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from lrlab.errors import InputError
from lrlab.laws.fitting import Fit
from lrlab.laws.registry import make_law

FORMAT = "lrlab.law-fit"
VERSION = 3  # 2: mpl laws save their "warmup" option (version 1 fits predated it); 3: mpl-qexp saves "gamma"
READABLE = (2, 3)


def fit_to_dict(f: Fit) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "law": f.law.name,
        "options": f.law.options(),
        "params": f.theta,
        "cov": f.cov.tolist(),
        "resid_std": f.resid_std,
        "huber_delta": f.huber_delta,
        "objective": f.objective,
        "curves": f.curves,
        "info": f.info,
    }


def save_fit(f: Fit, path: str | Path) -> None:
    Path(path).write_text(json.dumps(fit_to_dict(f), indent=2) + "\n")


def fit_from_dict(d: dict, where: str = "fit") -> Fit:
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise InputError(f'{where}: not an lrlab law fit (expected "format": "{FORMAT}")')
    if d.get("version") not in READABLE:
        raise InputError(f"{where}: unsupported version {d.get('version')!r}; this lrlab reads versions 2 and 3")
    try:
        options = dict(d.get("options", {}))
        if d["version"] == 2 and d["law"] == "mpl-qexp":
            options.setdefault("gamma", None)  # version 2's mpl-qexp always fitted its kernel's gamma
        law = make_law(str(d["law"]), **options)
        params = {n: float(d["params"][n]) for n in law.names}
        cov = np.asarray(d["cov"], dtype=np.float64)
        resid = float(d["resid_std"])
        delta = float(d["huber_delta"])
    except KeyError as exc:
        raise InputError(f"{where}: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: malformed value ({exc})") from None
    if cov.shape != (len(law.names), len(law.names)) or not all(math.isfinite(v) for v in params.values()):
        raise InputError(f"{where}: params/cov do not match law {law.name!r} ({len(law.names)} parameters)")
    return Fit(
        law,
        params,
        cov,
        resid,
        delta,
        dict(d.get("curves", {})),
        float(d.get("objective", "nan")),
        info=dict(d.get("info", {})),
    )


def load_fit(path: str | Path) -> Fit:
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read fit file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    return fit_from_dict(d, str(path))
