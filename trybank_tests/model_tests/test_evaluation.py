import numpy as np
import pytest

from trybank_assets.model.evaluation import (
    average_precision,
    best_f1_threshold,
    card_precision_at_k,
    recall_at_fpr,
    roc_auc,
)


def test_roc_auc_by_hand():
    # pairs (pos, neg): 0.9>0.1, 0.9>0.5, 0.4<0.5, 0.4>0.1 -> 3 of 4
    assert roc_auc(np.array([0.9, 0.4, 0.5, 0.1]), np.array([1, 1, 0, 0])) == 0.75
    assert roc_auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5


def test_average_precision_by_hand():
    # ranked: 1 (P=1), 0, 1 (P=2/3): AP = 0.5*1 + 0.5*2/3
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1])) == pytest.approx(0.5 + 1 / 3)


def test_recall_at_fpr_and_threshold():
    scores = np.array([0.95, 0.9, 0.8, 0.7, *np.linspace(0.0, 0.85, 100)])
    labels = np.array([1, 1, 1, 1, *[0] * 100])
    # one false alarm allowed (1% of 100): 0.85 ranks above 0.8 and 0.7
    assert recall_at_fpr(scores, labels, 0.01) == 0.5
    assert best_f1_threshold(np.array([0.9, 0.8, 0.3, 0.2]), np.array([1, 1, 0, 0])) == 0.8


def test_card_precision_at_k_by_hand():
    days = np.array([1, 1, 1, 1, 1, 2, 2, 2, 2])
    customers = np.array(["a", "a", "b", "c", "d", "a", "b", "c", "d"])
    scores = np.array([0.9, 0.1, 0.8, 0.7, 0.1, 0.99, 0.6, 0.5, 0.4])
    labels = np.array([0, 1, 1, 0, 0, 1, 0, 1, 0])
    # day 1 top-2: a (max 0.9, has a fraud), b (fraud) -> 2/2
    # day 2: a and b were defrauded on day 1 and are left out; top-2 of c, d: c (fraud), d -> 1/2
    assert card_precision_at_k(days, customers, scores, labels, k=2) == pytest.approx((1.0 + 0.5) / 2)
