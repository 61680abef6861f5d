"""Population stability: how far served scores and features have moved from what a model was judged on.

A model's baseline holds, for its score and each feature, decile edges of the test window and the
share of test rows in each bin: (-inf, e0], (e0, e1], ..., (e_last, inf). Discrete features (counts,
flags) have fewer distinct edges and so fewer bins. The population stability index of a day is
sum((p - q) * ln(p / q)) over the bins, with p the day's shares and q the baseline's; by the usual
rule below 0.1 is stable and above 0.25 a shift worth a look.
"""

import math
from collections.abc import Mapping

import numpy as np

SCORE = "fraud_probability"
# Set by the calendar, not by who transacts: every weekday would drift from a window with weekends.
CALENDAR_FEATURES = frozenset({"is_weekend"})
_MIN_SHARE = 1e-4  # an empty bin would make ln(p / q) infinite


def reference_bins(values: np.ndarray, bins: int = 10) -> dict:
    # "lower": edges are observed values, so a flag or a count keeps clean, whole-number edges
    edges = np.unique(np.quantile(values, np.arange(1, bins) / bins, method="lower"))
    return {"edges": edges.tolist(), "shares": bin_shares(edges, values).tolist()}


def bin_shares(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    # A value's bin is the number of edges strictly below it; prediction_log counts bins the same way.
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / counts.sum()


def population_stability(reference_shares: list[float], counts: Mapping[int, int]) -> float:
    """PSI of observed ``counts`` per bin index against the baseline's shares."""
    total = sum(counts.values())
    psi = 0.0
    for index, expected in enumerate(reference_shares):
        observed = max(counts.get(index, 0) / total, _MIN_SHARE)
        expected = max(expected, _MIN_SHARE)
        psi += (observed - expected) * math.log(observed / expected)
    return psi


def baseline(scores: np.ndarray, features: Mapping[str, np.ndarray], threshold: float, window: list[str]) -> dict:
    """What ``prediction_log``'s drift checks compare each served day with."""
    monitored = {name: reference_bins(v) for name, v in features.items() if name not in CALENDAR_FEATURES}
    return {
        "window": window,
        "rows": len(scores),
        "decline_rate": float(np.mean(scores >= threshold)),
        "series": {SCORE: reference_bins(scores), **monitored},
    }
