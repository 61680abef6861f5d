from datetime import date

import numpy as np
import pytest

from trybank_assets.model.calibration import calibrated_array, fit_platt
from trybank_assets.model.scorer import scorer_from_dict
from trybank_assets.model.windows import TrainingWindow, prequential_folds


def test_prequential_folds_walk_back_and_respect_the_delay():
    window = TrainingWindow(date(2026, 3, 1), date(2026, 3, 21), 7, date(2026, 3, 29), date(2026, 4, 4))
    folds = prequential_folds(window, fold_days=3, max_folds=3)
    assert [(f.valid_days[0].day, f.valid_days[-1].day) for f in folds] == [(19, 21), (16, 18), (13, 15)]
    # Fitted like the final model, on 21 days, which may reach before the training window.
    assert [(f.fit_days[0], f.fit_days[-1]) for f in folds] == [
        (date(2026, 2, 19), date(2026, 3, 11)),
        (date(2026, 2, 16), date(2026, 3, 8)),
        (date(2026, 2, 13), date(2026, 3, 5)),
    ]
    for fold in folds:
        assert (fold.valid_days[0] - fold.fit_days[-1]).days - 1 == 7
    # ...but not before the first day with data; validation stays inside the training window.
    clipped = prequential_folds(window, fold_days=3, max_folds=10, earliest_day=date(2026, 3, 1))
    assert [(f.fit_days[0].day, f.fit_days[-1].day) for f in clipped] == [(1, 11), (1, 8), (1, 5), (1, 2)]
    week = TrainingWindow(date(2026, 3, 8), date(2026, 3, 14), 7, date(2026, 3, 22), date(2026, 3, 28))
    assert [len(f.fit_days) for f in prequential_folds(week, 2, 3, earliest_day=date(2026, 2, 1))] == [7, 7, 7]
    short = TrainingWindow(date(2026, 3, 1), date(2026, 3, 6), 7, date(2026, 3, 14), date(2026, 3, 16))
    with pytest.raises(ValueError, match="too short"):
        prequential_folds(short, fold_days=2, max_folds=3, earliest_day=date(2026, 3, 1))


def test_platt_calibration_is_monotone_and_means_what_it_says():
    rng = np.random.default_rng(3)
    # A model whose margins are twice too confident: the true log-odds are margin / 2 - 1.
    margins = rng.normal(0.0, 3.0, 20_000)
    labels = rng.random(20_000) < 1.0 / (1.0 + np.exp(-(margins / 2.0 - 1.0)))
    calibration = fit_platt(margins, labels)
    assert calibration["a"] == pytest.approx(0.5, abs=0.05) and calibration["b"] == pytest.approx(-1.0, abs=0.1)
    probabilities = calibrated_array(calibration, np.sort(margins))
    assert np.all(np.diff(probabilities) >= 0)
    # Calibrated: within each decile of the score, the fraud rate matches the mean probability.
    order = np.argsort(margins)
    for chunk in np.array_split(order, 10):
        assert labels[chunk].mean() == pytest.approx(calibrated_array(calibration, margins[chunk]).mean(), abs=0.03)


def test_calibration_refuses_a_single_class_or_a_backwards_model():
    with pytest.raises(ValueError, match="both classes"):
        fit_platt(np.array([0.1, 0.2]), np.array([False, False]))
    with pytest.raises(ValueError, match="not positive"):
        fit_platt(np.array([-2.0, -1.0, 1.0, 2.0] * 10), np.array([True, True, False, False] * 10))


def test_the_portable_scorer_applies_the_calibration():
    spec = {"kind": "logistic_regression", "features": ["x"], "coefficients": [2.0], "intercept": -1.0}
    raw = scorer_from_dict(spec)
    calibrated = scorer_from_dict({**spec, "calibration": {"kind": "platt", "a": 0.5, "b": 0.25}})
    assert raw.probability([1.0]) == 1 / (1 + np.exp(-1.0))
    assert calibrated.probability([1.0]) == pytest.approx(1 / (1 + np.exp(-(0.5 * 1.0 + 0.25))), abs=1e-15)
