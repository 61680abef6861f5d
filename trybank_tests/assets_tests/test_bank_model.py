"""The test bank's model is worth testing with: it ranks frauds of days it never trained on well above
chance, so tests that compare models or scores compare something."""

from datetime import date, timedelta

import numpy as np

from trybank_assets.assets.gold import GOLD_SCHEMA
from trybank_assets.features import FEATURE_NAMES
from trybank_assets.lib.spark_tables import read_days
from trybank_assets.model.scorer import load_scorer
from trybank_tests.conftest import BANK_LAST, SMALL_TRAINING

MIN_ROC_AUC = 0.75  # chance is 0.5


def _roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The share of (fraud, legitimate) pairs the scores order right, ties counting half."""
    frauds, legitimate = scores[labels][:, None], scores[~labels][None, :]
    return float(np.mean((frauds > legitimate) + 0.5 * (frauds == legitimate)))


def test_the_served_model_beats_chance_on_its_test_window(spark, trained_bank):
    lake = trained_bank["lake"]
    last = date.fromisoformat(BANK_LAST)
    days = [last - timedelta(days=i) for i in range(SMALL_TRAINING.test_days)]
    rows = read_days(spark, lake.transaction_features, days, GOLD_SCHEMA).where("is_fraud IS NOT NULL").collect()
    scorer = load_scorer(lake.fraud_model_registry / "current" / "scorer.json")
    scores = np.array([scorer.probability([r[n] for n in FEATURE_NAMES]) for r in rows])
    labels = np.array([r["is_fraud"] for r in rows])
    assert labels.sum() >= 15, "too few frauds to judge"
    assert _roc_auc(scores, labels) >= MIN_ROC_AUC
