"""Fraud-detection metrics over plain numpy arrays (no Spark): what the model is judged by."""

import numpy as np


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random fraud outranks a random legitimate transaction (ties count half)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average rank within ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _by_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending) with cumulative true and false positives at each."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order].astype(float)
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    return s[last_of_tie], tp, fp


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Step-wise area under the precision-recall curve: sum of (R_n - R_n-1) * P_n."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    if not labels.any():
        return float("nan")
    _, tp, fp = _by_threshold(scores, labels)
    precision = tp / (tp + fp)
    recall = tp / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def recall_at_fpr(scores: np.ndarray, labels: np.ndarray, max_fpr: float = 0.01) -> float:
    """Share of fraud caught at the strictest threshold keeping false alarms within ``max_fpr``."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    _, tp, fp = _by_threshold(scores, labels)
    allowed = fp / max((~labels).sum(), 1) <= max_fpr
    return float(tp[allowed].max() / labels.sum()) if allowed.any() and labels.any() else 0.0


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """Score threshold (flag when score >= it) with the best F1."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    thresholds, tp, fp = _by_threshold(scores, labels)
    f1 = 2 * tp / (tp + fp + labels.sum())
    return float(thresholds[int(np.argmax(f1))])


def card_precision_at_k(
    days: np.ndarray, customers: np.ndarray, scores: np.ndarray, labels: np.ndarray, k: int = 100
) -> float:
    """Mean over days of the fraud share among the k customers with the highest score that day.

    A customer's score for a day is their highest transaction score, their label whether any of
    their transactions that day was fraud. Customers already seen defrauded on an earlier day of
    the window are left out: investigators know them already.
    """
    days, customers = np.asarray(days), np.asarray(customers)
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    known: set = set()
    per_day = []
    for day in np.unique(days):
        today = days == day
        best: dict = {}
        frauded: set = set()
        for customer, score, label in zip(customers[today], scores[today], labels[today], strict=True):
            best[customer] = max(best.get(customer, -np.inf), score)
            if label:
                frauded.add(customer)
        ranked = sorted((c for c in best if c not in known), key=lambda c: (-best[c], c))[:k]
        per_day.append(sum(c in frauded for c in ranked) / k)
        known |= frauded
    return float(np.mean(per_day)) if per_day else float("nan")
