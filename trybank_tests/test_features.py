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
    **{f"{who}_{k}_{s}": 0 for who in ("customer", "terminal") for k in ("count", "cents") for s in ("10min", "1h")},
    "customer_terminal_seen": 0,
    "terminal_recent_count": 0,
    "terminal_recent_cents": 0,
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
    assert f["customer_txn_count_10min"] == 0.0 and f["terminal_amount_1h"] == 0.0
    assert f["new_terminal_30d"] == 1.0
    assert f["terminal_mean_amount_30d"] == 0.0 and f["amount_to_terminal_mean_ratio_30d"] == 1.0


def test_formulas_by_hand():
    raw = COLD_START | {
        "customer_count_30": 4,
        "customer_cents_30": 40_000,  # mean 100.00
        "customer_cents_sq_30": 2 * 8_000**2 + 2 * 12_000**2,  # two at 80.00, two at 120.00: std 20.00
        "customer_international_30": 1,
        "customer_previous_us": COLD_START["event_us"] - 90_000_000,
        "terminal_count_7": 8,
        "terminal_fraud_7": 2,
        "customer_count_10min": 3,
        "customer_cents_10min": 450,
        "terminal_count_1h": 2,
        "terminal_cents_1h": 1_999,
        "customer_terminal_seen": 1,
        "terminal_recent_count": 40,
        "terminal_recent_cents": 100_000,  # mean 25.00
    }
    f = derive_features(raw, PythonFeatureOps())
    assert f["customer_mean_amount_30d"] == 100.0
    assert f["amount_to_mean_ratio_30d"] == pytest.approx(1.2345)
    assert f["amount_zscore_30d"] == pytest.approx((12_345 - 10_000) / 2_000)
    assert f["international_ratio_30d"] == 0.25
    assert f["seconds_since_previous"] == 90.0
    assert f["terminal_fraud_risk_7d"] == 0.25
    assert f["customer_txn_count_10min"] == 3.0 and f["customer_amount_10min"] == 4.5
    assert f["terminal_txn_count_1h"] == 2.0 and f["terminal_amount_1h"] == 19.99
    assert f["new_terminal_30d"] == 0.0
    assert f["terminal_mean_amount_30d"] == 25.0
    assert f["amount_to_terminal_mean_ratio_30d"] == pytest.approx(123.45 / 25.0)


def test_every_feature_has_a_stable_unique_reason_code_and_a_sentence():
    from trybank_assets.features import FEATURES

    codes = [f.code for f in FEATURES]
    assert len(set(codes)) == len(codes) and all(c.isupper() for c in codes)
    values = dict.fromkeys(FEATURE_NAMES, 0.0) | {
        "amount": 1899.0,
        "customer_mean_amount_30d": 98.7,
        "amount_to_mean_ratio_30d": 19.24,
        "amount_zscore_30d": 4.26,
        "seconds_since_previous": 5_400.0,
        "terminal_fraud_risk_7d": 0.125,
        "customer_txn_count_1d": 3.0,
        "is_night": 1.0,
        "customer_txn_count_10min": 6.0,
        "terminal_amount_1h": 312.5,
        "new_terminal_30d": 1.0,
        "terminal_mean_amount_30d": 42.0,
        "amount_to_terminal_mean_ratio_30d": 45.21,
    }
    texts = {f.code: f.explain(values) for f in FEATURES}
    assert all(texts.values())
    assert texts["AMOUNT"] == "the amount is €1,899.00"
    assert texts["AMOUNT_VS_30D_MEAN"] == "the amount is 19.2 times the customer's 30-day average of €98.70"
    assert texts["AMOUNT_ZSCORE_30D"] == "the amount is +4.3 standard deviations from the customer's 30-day amounts"
    assert texts["TIME_SINCE_PREVIOUS"] == "90 minutes since the customer's previous transaction"
    assert (
        texts["TERMINAL_FRAUD_RATE_7D"]
        == "12.5% of the terminal's transactions in the 7 days before last week were fraud"
    )
    assert texts["CUSTOMER_TXNS_1D"] == "3 transactions of the customer in the previous day and earlier today"
    assert texts["NIGHT"] == "made at night (before 06:00 UTC)" and texts["WEEKEND"] == "made on a weekday"
    assert texts["CUSTOMER_TXNS_10MIN"] == "6 transactions of the customer in the 10 minutes before"
    assert texts["TERMINAL_AMOUNT_1H"] == "the terminal's transactions in the hour before total €312.50"
    assert texts["FIRST_TIME_AT_TERMINAL_30D"] == "the customer's first transaction at this terminal in 30 days"
    assert texts["AMOUNT_VS_TERMINAL_30D_MEAN"] == "the amount is 45.2 times the terminal's 30-day average of €42.00"
    cold = values | {"seconds_since_previous": 30 * 86_400.0}
    assert next(f for f in FEATURES if f.code == "TIME_SINCE_PREVIOUS").explain(cold) == (
        "no transaction of the customer in the last 30 days"
    )
