"""Shortest exact text for spec values, so that ``parse(str(s)) == s`` and specs stay readable."""

from __future__ import annotations

import numpy as np


def format_value(value: object) -> str:
    """1e-3 -> '1e-3', 0.5 -> '0.5', 100 -> '100', (3000, 6000) -> '3000/6000'; floats round-trip exactly."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, tuple):
        return "/".join(format_value(v) for v in value)
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e6:
            return str(int(value))
        plain = repr(value)
        mantissa, exponent = np.format_float_scientific(value, unique=True, trim="-").split("e")
        scientific = f"{mantissa}e{int(exponent)}"
        return min(plain, scientific, key=len)
    return str(value)
