"""The population stability index written out longhand, apart from src/reference.py, for the
tests that check the service's, the report's and the alarms' figures against it."""

from __future__ import annotations

import math


def psi(counts, expected, smoothing: float) -> float:
    """Sum over bins of (a - e) * ln(a / e), a a bin's count plus ``smoothing`` over the total."""
    total = sum(counts) + smoothing * len(counts)
    value = 0.0
    for count, share in zip(counts, expected, strict=True):
        observed = (count + smoothing) / total
        value += (observed - share) * math.log(observed / share)
    return value
