"""Platt scaling: a fraud probability that means what it says.

Class weights and boosting push raw scores towards 0 and 1. A logistic fit of the labels on the
model's margin (its log-odds) on held-out days, p = sigmoid(a * margin + b), turns them into
probabilities: monotone when a > 0, so rankings (AUC, AP, card precision) are unchanged and only
the meaning of a score (and so a threshold) moves. The same two numbers are applied in Spark and
by the portable scorer, so both stay equal to 1e-9.
"""

import numpy as np


def fit_platt(margins: np.ndarray, labels: np.ndarray, iterations: int = 100) -> dict:
    """Maximum-likelihood (a, b) with Platt's smoothed targets, by Newton's method."""
    margins, labels = np.asarray(margins, float), np.asarray(labels, bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if not positives or not negatives:
        raise ValueError(f"calibration needs both classes, found {positives} fraud and {negatives} legitimate rows")
    target = np.where(labels, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))

    def loss(a: float, b: float) -> float:
        z = a * margins + b
        return float(np.sum(np.logaddexp(0.0, z) - target * z))

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(iterations):
        p = 0.5 * (1.0 + np.tanh(0.5 * (a * margins + b)))  # the sigmoid, without overflow
        w = np.maximum(p * (1.0 - p), 1e-12)
        gradient = np.array([np.sum((p - target) * margins), np.sum(p - target)])
        hessian = np.array([[np.sum(w * margins * margins), np.sum(w * margins)], [np.sum(w * margins), np.sum(w)]])
        step = np.linalg.solve(hessian + 1e-9 * np.eye(2), gradient)
        scale = 1.0
        while scale > 1e-6 and (trial := loss(a - scale * step[0], b - scale * step[1])) > current:
            scale /= 2  # backtracking: a full Newton step can overshoot far from the optimum
        a, b, current = a - scale * step[0], b - scale * step[1], trial
        if scale * np.max(np.abs(step)) < 1e-10:
            break
    if not a > 0:
        raise ValueError(f"calibration slope {a:.4g} is not positive: the model ranks the held-out days backwards")
    return {"kind": "platt", "a": float(a), "b": float(b)}


def calibrated_array(calibration: dict | None, margins: np.ndarray) -> np.ndarray:
    """Calibrated probabilities of margins (the uncalibrated probabilities' log-odds); None is no calibration."""
    a, b = (calibration["a"], calibration["b"]) if calibration else (1.0, 0.0)
    return 1.0 / (1.0 + np.exp(-(a * np.asarray(margins, float) + b)))
