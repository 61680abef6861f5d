import math

import numpy as np
import pytest

from trybank_assets.model.drift import SCORE, baseline, bin_shares, population_stability, reference_bins


def test_bins_are_deciles_and_discrete_values_get_fewer():
    values = np.arange(1, 101, dtype=float)
    bins = reference_bins(values)
    assert bins["edges"] == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
    assert bins["shares"] == pytest.approx([0.1] * 10)
    # a flag has one edge: (-inf, 0] and (0, inf)
    flag = reference_bins(np.array([0.0] * 90 + [1.0] * 10))
    assert flag == {"edges": [0.0], "shares": [0.9, 0.1]}


def test_a_value_on_an_edge_falls_in_the_bin_below():
    assert bin_shares(np.array([1.0, 2.0]), np.array([1.0, 1.5, 2.0, 2.5])).tolist() == [0.25, 0.5, 0.25]


def test_population_stability_by_hand():
    shares = [0.5, 0.5]
    assert population_stability(shares, {0: 30, 1: 30}) == 0.0
    # observed 0.8 / 0.2 against 0.5 / 0.5
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert population_stability(shares, {0: 80, 1: 20}) == pytest.approx(expected)
    # an empty bin counts as a share of 1e-4, not as an infinite log ratio
    floored = (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert population_stability(shares, {0: 100}) == pytest.approx(floored)


def test_same_population_is_stable_and_a_shifted_one_is_not():
    rng = np.random.default_rng(7)
    reference = reference_bins(rng.lognormal(3.5, 1.0, 20_000))
    edges = np.array(reference["edges"])

    def psi(sample: np.ndarray) -> float:
        counts = np.bincount(np.searchsorted(edges, sample, side="left"), minlength=len(edges) + 1)
        return population_stability(reference["shares"], dict(enumerate(counts.tolist())))

    assert psi(rng.lognormal(3.5, 1.0, 2_000)) < 0.02
    assert psi(rng.lognormal(4.5, 1.0, 2_000)) > 0.25


def test_baseline_holds_the_score_every_feature_and_the_decline_rate():
    scores = np.array([0.1, 0.2, 0.95, 0.99])
    features = {"amount": np.array([1.0, 2.0, 3.0, 4.0]), "is_weekend": np.array([0.0, 0.0, 1.0, 1.0])}
    result = baseline(scores, features, 0.9, ["2026-03-14", "2026-03-16"])
    assert result["decline_rate"] == 0.5 and result["rows"] == 4
    assert set(result["series"]) == {SCORE, "amount"}  # the calendar decides is_weekend, not the customers
