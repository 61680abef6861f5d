"""Gold's numpy path against the Python twins: the same figures and the same bits."""

import random
import struct
import subprocess
import sys

import numpy as np

from trybank_assets.assets.history_arrays import NumpyFeatureOps, _order_by
from trybank_assets.features import FEATURE_NAMES, PythonFeatureOps, derive_features
from trybank_tests.test_features import COLD_START


def random_raw(rng: random.Random) -> dict:
    """Raw inputs with the edge cases the formulas branch on: no history, one transaction, equal amounts."""
    count30 = rng.choice([0, 1, 2, rng.randint(3, 400)])
    cents = rng.choice([1, 99, 12_345, rng.randint(1, 5_000_000)])
    same = rng.random() < 0.2  # every amount equal: a variance of rounding noise only
    mean = cents if same else rng.randint(1, 500_000)
    raw = {key: rng.randint(0, 50) for key in COLD_START}
    raw |= {
        "amount_cents": cents,
        "event_us": rng.randint(0, 2**52),
        "customer_previous_us": None if rng.random() < 0.3 else rng.randint(0, 2**52),
        "customer_count_30": count30,
        "customer_cents_30": count30 * mean,
        "customer_cents_sq_30": count30 * mean * mean + (0 if same else rng.randint(0, 10**12)),
        "customer_international_30": rng.randint(0, count30),
        "customer_terminal_seen": rng.randint(0, 1),
        "terminal_recent_count": rng.choice([0, rng.randint(1, 900)]),
        "terminal_recent_cents": rng.randint(0, 10**9),
    }
    return raw


def bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


def test_numpy_features_equal_python_ones_bit_for_bit():
    rng = random.Random(7)
    raws = [random_raw(rng) for _ in range(5_000)]
    columns = {key: np.array([raw[key] or 0 for raw in raws], dtype=np.int64) for key in COLD_START}
    previous = [raw["customer_previous_us"] for raw in raws]
    columns["customer_previous_us"] = np.ma.masked_array(
        [p or 0 for p in previous], mask=[p is None for p in previous], dtype=np.int64
    )
    numpy_features = derive_features(columns, NumpyFeatureOps())
    for i, raw in enumerate(raws):
        python_features = derive_features(raw, PythonFeatureOps())
        for name in FEATURE_NAMES:
            assert bits(numpy_features[name][i]) == bits(python_features[name]), (name, raw)


def test_rows_are_ordered_by_key_then_value_whether_or_not_both_fit_one_sort_key():
    rng = np.random.default_rng(3)
    key = rng.integers(0, 50, 10_000)
    # Event times of a range fit one int64 key beside 50 keys; values up to 2**61 do not (a lexsort then).
    for value in (rng.integers(0, 40 * 86_400 * 10**6, 10_000), rng.integers(0, 2**61, 10_000)):
        order = _order_by(key, value)
        assert sorted(order.tolist()) == list(range(10_000))
        ordered = list(zip(key[order].tolist(), value[order].tolist(), strict=True))
        assert ordered == sorted(zip(key.tolist(), value.tolist(), strict=True))
    assert len(_order_by(np.zeros(0, np.int64), np.zeros(0, np.int64))) == 0


def test_gold_workers_import_no_dagster():
    """Each fresh Python worker of gold's mapInArrow imports this module: Dagster would add ~1.2 s to it, and a
    one-day run waits for its single worker (its first call measured 7.7 s with it, 4.4 s without)."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, trybank_assets.assets.history_arrays; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'dagster'" not in loaded and "'pyspark'" not in loaded
