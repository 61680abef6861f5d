"""Fraud-detection metrics over plain numpy arrays (no Spark): what the model is judged by."""

from datetime import timedelta

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


def known_compromised(days: np.ndarray, customers: np.ndarray, first_fraud_day: dict, delay_days: int) -> np.ndarray:
    """Rows whose customer was already known to be defrauded on their day: a fraud of theirs on
    any day up to ``day - delay - 1`` (its label has arrived by then). The literature's protocol
    takes these cards out of the test set: they are blocked, not scored."""
    days, customers = np.asarray(days), np.asarray(customers)
    horizon = timedelta(days=delay_days + 1)
    return np.array(
        [
            (first := first_fraud_day.get(c)) is not None and first <= d - horizon
            for d, c in zip(days, customers, strict=True)
        ],
        dtype=bool,
    )


def protocol_rows(scored: dict[str, np.ndarray], first_fraud_day: dict, delay_days: int) -> dict[str, np.ndarray]:
    """The ``scored`` rows the protocol judges: those of customers not yet known to be compromised."""
    keep = ~known_compromised(scored["date"], scored["customer_id"], first_fraud_day, delay_days)
    return {name: values[keep] for name, values in scored.items()}


def expected_cost_threshold(
    scores: np.ndarray, labels: np.ndarray, amounts: np.ndarray, missed_share: float, review_cost: float
) -> float:
    """The threshold with the lowest expected cost: every flagged transaction costs a review, every
    missed fraud ``missed_share`` of its amount."""
    scores, labels, amounts = np.asarray(scores, float), np.asarray(labels, bool), np.asarray(amounts, float)
    order = np.argsort(-scores, kind="mergesort")
    s, fraud_amount = scores[order], np.where(labels[order], amounts[order], 0.0)
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    caught = np.cumsum(fraud_amount)[last_of_tie]
    cost = (last_of_tie + 1) * review_cost + missed_share * (fraud_amount.sum() - caught)
    best = int(np.argmin(cost))
    # Flagging nothing can be cheapest: then no score reaches the threshold.
    if missed_share * fraud_amount.sum() <= cost[best]:
        return float(np.nextafter(s[0], np.inf)) if len(s) else 1.0
    return float(s[last_of_tie][best])


def ranking_metrics(scored: dict[str, np.ndarray], threshold: float, k: int) -> dict:
    """Ranking and threshold figures over ``scored`` rows: ``probability``, ``label``, ``date``,
    ``customer_id`` and ``amount`` arrays."""
    scores, labels = scored["probability"], scored["label"].astype(bool)
    flagged = scores >= threshold
    fraud_amount = float(scored["amount"][labels].sum())
    caught = float(scored["amount"][labels & flagged].sum())
    return {
        "rows": len(scores),
        "frauds": int(labels.sum()),
        "roc_auc": roc_auc(scores, labels),
        "average_precision": average_precision(scores, labels),
        "card_precision_at_100": card_precision_at_k(scored["date"], scored["customer_id"], scores, labels, k),
        # A perfect ranking's value: few customers are newly defrauded per day, so this caps the metric.
        "card_precision_at_100_best_possible": card_precision_at_k(
            scored["date"], scored["customer_id"], labels.astype(float), labels, k
        ),
        "recall_at_1pct_fpr": recall_at_fpr(scores, labels, 0.01),
        "recall_at_threshold": float(flagged[labels].mean()) if labels.any() else float("nan"),
        "precision_at_threshold": float(labels[flagged].mean()) if flagged.any() else float("nan"),
        "fraud_amount_caught": round(caught, 2),
        "fraud_amount_caught_share": caught / fraud_amount if fraud_amount else float("nan"),
    }


def protocol_metrics(
    scored: dict[str, np.ndarray], threshold: float, k: int, first_fraud_day: dict, delay_days: int
) -> dict:
    """``ranking_metrics`` under the fraud-detection literature's protocol (headline, and the
    promotion gate's basis) and over all rows (secondary)."""
    kept = protocol_rows(scored, first_fraud_day, delay_days)
    removed = len(scored["probability"]) - len(kept["probability"])
    return {
        "protocol": {**ranking_metrics(kept, threshold, k), "known_compromised_rows_removed": removed},
        "all_rows": ranking_metrics(scored, threshold, k),
    }
