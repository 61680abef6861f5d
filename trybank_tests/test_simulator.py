from collections import Counter
from datetime import date, timedelta

from trybank_assets.bronze_contract import BRONZE_FIELDS
from trybank_assets.simulator import SimulatorConfig, simulate_day, write_day
from trybank_assets.simulator.generator import FRAUD_SCENARIOS, encode_records

CONFIG = SimulatorConfig(seed=7, n_customers=1000)
DAY = date(2026, 3, 15)


def test_same_seed_and_day_give_identical_bytes(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_day(CONFIG, DAY, first)
    write_day(SimulatorConfig(seed=7, n_customers=1000), DAY, second)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes().count(b"\n") > 1000


def test_a_day_does_not_depend_on_which_other_days_were_generated():
    alone = encode_records(simulate_day(SimulatorConfig(seed=7, n_customers=1000), DAY))
    fresh = SimulatorConfig(seed=7, n_customers=1000)
    for back in (40, 3, 1):  # other days first, in another order
        simulate_day(fresh, DAY - timedelta(days=back))
    assert encode_records(simulate_day(fresh, DAY)) == alone


def test_another_seed_gives_another_day():
    assert encode_records(simulate_day(SimulatorConfig(seed=8, n_customers=1000), DAY)) != encode_records(
        simulate_day(CONFIG, DAY)
    )


def test_records_follow_the_bronze_contract():
    records = simulate_day(CONFIG, DAY)
    assert all(tuple(r) == BRONZE_FIELDS for r in records)
    assert all(r["event_time"].startswith(DAY.isoformat()) and r["event_time"].endswith("Z") for r in records)
    assert len({r["transaction_id"] for r in records}) == len(records)
    assert all(r["amount"] > 0 for r in records)
    assert all((r["fraud_scenario"] is None) != r["is_fraud"] for r in records)
    times = [r["event_time"] for r in records]
    assert times == sorted(times)


def test_a_month_has_every_scenario_and_a_realistic_fraud_rate():
    scenarios: Counter = Counter()
    total = 0
    for i in range(30):
        records = simulate_day(CONFIG, DAY + timedelta(days=i))
        total += len(records)
        scenarios.update(r["fraud_scenario"] for r in records if r["is_fraud"])
    assert set(scenarios) == set(FRAUD_SCENARIOS)
    rate = sum(scenarios.values()) / total
    assert 0.004 <= rate <= 0.012, rate


def test_compromised_terminal_frauds_every_transaction_there():
    records = simulate_day(CONFIG, DAY)
    compromised = {r["terminal_id"] for r in records if r["fraud_scenario"] == "compromised_terminal"}
    assert compromised
    assert all(r["is_fraud"] for r in records if r["terminal_id"] in compromised)
