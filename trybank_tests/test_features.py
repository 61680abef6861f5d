import pytest

from trybank_assets.features import FEATURE_NAMES, FEATURES, PythonFeatureOps, derive_features

COLD_START = {
    "amount_cents": 12_345,
    "event_us": 1_773_792_000_000_000,  # 2026-03-18 00:00 UTC, a Wednesday
    "customer_previous_us": None,
    "customer_cents_sq_30": 0,
    "customer_international_30": 0,
    **{f"customer_{k}_{n}": 0 for k in ("count", "cents") for n in (1, 7, 30)},
    **{f"terminal_{k}_{n}": 0 for k in ("count", "fraud") for n in (1, 7, 30)},
}


def test_every_declared_feature_is_derived_in_order():
    assert tuple(derive_features(COLD_START, PythonFeatureOps())) == FEATURE_NAMES
    assert len(set(FEATURE_NAMES)) == len(FEATURES)
    assert all(f.description for f in FEATURES)


def test_cold_start_values_are_neutral():
    f = derive_features(COLD_START, PythonFeatureOps())
    assert f["amount"] == 123.45
    assert f["amount_to_mean_ratio_30d"] == 1.0 and f["amount_zscore_30d"] == 0.0
    assert f["seconds_since_previous"] == 30 * 86_400
    assert f["hour_of_day"] == 0.0 and f["is_night"] == 1.0 and f["is_weekend"] == 0.0
    assert f["terminal_fraud_risk_30d"] == 0.0


def test_formulas_by_hand():
    raw = COLD_START | {
        "customer_count_30": 4,
        "customer_cents_30": 40_000,  # mean 100.00
        "customer_cents_sq_30": 2 * 8_000**2 + 2 * 12_000**2,  # two at 80.00, two at 120.00: std 20.00
        "customer_international_30": 1,
        "customer_previous_us": COLD_START["event_us"] - 90_000_000,
        "terminal_count_7": 8,
        "terminal_fraud_7": 2,
    }
    f = derive_features(raw, PythonFeatureOps())
    assert f["customer_mean_amount_30d"] == 100.0
    assert f["amount_to_mean_ratio_30d"] == pytest.approx(1.2345)
    assert f["amount_zscore_30d"] == pytest.approx((12_345 - 10_000) / 2_000)
    assert f["international_ratio_30d"] == 0.25
    assert f["seconds_since_previous"] == 90.0
    assert f["terminal_fraud_risk_7d"] == 0.25
