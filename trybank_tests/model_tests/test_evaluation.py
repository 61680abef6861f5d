from datetime import date, timedelta

import numpy as np
import pytest

from trybank_assets.model.evaluation import (
    average_precision,
    best_f1_threshold,
    card_precision_at_k,
    expected_cost_threshold,
    known_compromised,
    protocol_metrics,
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


def test_known_compromised_customers_leave_the_test_day_once_their_label_has_arrived():
    d = [date(2026, 3, 1) + timedelta(days=i) for i in range(12)]
    first_fraud = {"a": d[0], "b": d[5], "c": d[9]}
    # delay 2: a fraud on day X is known from day X + 3 on
    days = np.array([d[2], d[3], d[8], d[9], d[10], d[11], d[11]])
    customers = np.array(["a", "a", "b", "b", "c", "c", "z"])
    assert known_compromised(days, customers, first_fraud, delay_days=2).tolist() == [
        False,  # a on d2: its d0 fraud is not known before d3
        True,
        True,  # b on d8: d5 + 3
        True,
        False,  # c's own first fraud day and the next: not yet known
        False,
        False,  # never defrauded
    ]


def test_protocol_metrics_by_hand():
    d1, d2 = date(2026, 3, 10), date(2026, 3, 11)
    scored = {
        "date": np.array([d1, d1, d1, d2, d2, d2]),
        "customer_id": np.array(["known", "x", "y", "known", "x", "y"]),
        "probability": np.array([0.99, 0.2, 0.6, 0.98, 0.7, 0.1]),
        "label": np.array([1.0, 0.0, 1.0, 1.0, 1.0, 0.0]),
        "amount": np.array([100.0, 5.0, 40.0, 100.0, 60.0, 5.0]),
    }
    # "known" was defrauded on 03-01: with a 7-day delay that is known by 03-10 and 03-11.
    metrics = protocol_metrics(scored, threshold=0.5, k=1, first_fraud_day={"known": date(2026, 3, 1)}, delay_days=7)
    protocol, all_rows = metrics["protocol"], metrics["all_rows"]
    assert protocol["known_compromised_rows_removed"] == 2 and protocol["rows"] == 4
    # Left: x 0.2 (legit), y 0.6 (fraud), x 0.7 (fraud), y 0.1 (legit): both frauds outrank both legits.
    assert protocol["roc_auc"] == 1.0 and protocol["average_precision"] == 1.0
    # Day 1 top-1: y (fraud). Day 2: y was found defrauded on day 1 and leaves; top-1 is x (fraud).
    assert protocol["card_precision_at_100"] == 1.0
    assert (protocol["fraud_amount_caught"], protocol["fraud_amount_caught_share"]) == (100.0, 1.0)
    # All rows: "known" scores highest each day and is a fraud each day, so the ranking looks as good,
    # but it catches the blocked card's 200 again.
    assert all_rows["rows"] == 6 and all_rows["fraud_amount_caught"] == 300.0


def test_expected_cost_threshold_weighs_missed_amounts_against_reviews():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([1, 0, 1, 0, 0])
    amounts = np.array([1000.0, 10.0, 8.0, 10.0, 10.0])
    # Reviews cost 5: catching the 1000 is worth it, the 8 behind a false alarm is not.
    assert expected_cost_threshold(scores, labels, amounts, missed_share=1.0, review_cost=5.0) == 0.9
    # Reviews for free: flag down to the last fraud.
    assert expected_cost_threshold(scores, labels, amounts, missed_share=1.0, review_cost=0.0) == 0.7
    # Reviews dearer than any fraud: flag nothing.
    assert expected_cost_threshold(scores, labels, amounts, missed_share=1.0, review_cost=5000.0) > 0.9
