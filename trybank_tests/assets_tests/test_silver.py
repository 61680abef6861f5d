import json
import uuid
from datetime import date, timedelta

from dagster import materialize

from trybank_assets.assets.bronze import bronze_transactions
from trybank_assets.assets.demo import simulated_transactions
from trybank_assets.assets.silver import (
    DEDUP_DAYS,
    QUARANTINE_SCHEMA,
    SILVER_SCHEMA,
    clean_transactions,
    read_bronze,
    silver_transactions,
)
from trybank_assets.bronze_contract import RULES
from trybank_assets.lib.spark_tables import read_days, read_quarantine_days
from trybank_assets.resources.lake import LakeResource
from trybank_tests.conftest import range_tags

DAY = date(2026, 3, 10)


def _good(**overrides) -> dict:
    record = {
        "transaction_id": str(uuid.uuid4()),
        "event_time": "2026-03-10T12:00:00.000Z",
        "customer_id": "C1",
        "terminal_id": "T1",
        "amount": 12.5,
        "currency": "EUR",
        "merchant_country": "NL",
        "customer_country": "NL",
        "channel": "pos",
        "merchant_category": "grocery",
        "is_fraud": False,
        "fraud_scenario": None,
        "source_transaction_id": None,
    }
    return record | overrides


# Valid under the bronze contract though an older rule refused them: amount → cents, and the
# normalized values silver stores.
EDGE_ROWS = {
    "zero_amount": (_good(amount=0.0), {"amount_cents": 0}),
    "float_artefact": (_good(amount=85.64999999999999), {"amount_cents": 8565}),
    "denormal_is_zero": (_good(amount=5e-324), {"amount_cents": 0}),
    "decimal_text": (_good(amount="12.340000001"), {"amount_cents": 1234}),
    "open_vocabulary": (
        _good(currency="jpy", channel="Contactless", merchant_category="bnpl", customer_country="nl"),
        {"currency": "JPY", "channel": "contactless", "merchant_category": "bnpl", "customer_country": "NL"},
    ),
    "source_id_kept": (_good(source_transaction_id="A1"), {"source_transaction_id": "A1"}),
    "zone_offset": (_good(event_time="2026-03-10T14:30:00.5+02:30"), {"amount_cents": 1250}),
    "zone_offset_without_colon": (_good(event_time="2026-03-10T09:00:00-0300"), {"amount_cents": 1250}),
}


# One row per rule, each breaking only that rule.
BAD_ROWS = {
    "missing_transaction_id": _good(transaction_id=""),
    "invalid_transaction_id": _good(transaction_id="not-a-uuid"),
    "missing_customer_id": _good(customer_id="  "),
    "invalid_customer_id": _good(customer_id="C" * 65),
    "missing_terminal_id": _good(terminal_id=None),
    "invalid_source_transaction_id": _good(source_transaction_id="S" * 65),
    "missing_event_time": _good(event_time=None),
    "event_time_without_zone": _good(event_time="2026-03-10T12:00:00"),
    "invalid_event_time": _good(event_time="2026-03-10T25:00:00Z"),
    "event_time_outside_partition": _good(event_time="2026-03-11T00:00:00Z"),
    "missing_amount": _good(amount=None),
    "invalid_amount": _good(amount="twelve"),
    "amount_negative": _good(amount=-3),
    "amount_too_large": _good(amount=5e9),
    "amount_sub_cent": _good(amount=12.345),
    "unknown_currency": _good(currency="EURO"),
    "invalid_merchant_country": _good(merchant_country="Netherlands"),
    "invalid_customer_country": _good(customer_country="ZZ"),
    "invalid_channel": _good(channel="x" * 41),
    "invalid_merchant_category": _good(merchant_category="casino!"),
    "invalid_is_fraud": _good(is_fraud="maybe"),
}
EDGE_IDS = {name: row["transaction_id"] for name, (row, _) in EDGE_ROWS.items()}
SILVER_ROWS = 3 + len(EDGE_ROWS)
QUARANTINED_ROWS = len(BAD_ROWS) + 3  # two malformed lines and one conflicting duplicate
DUPLICATES = 3


def _write_bronze(lake: LakeResource, source: str, lines: list[str], day: date = DAY) -> None:
    folder = lake.bronze_source_dir(day, source)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part-00000.jsonl").write_text("".join(line + "\n" for line in lines))


def _hand_made_bronze(lake: LakeResource) -> dict[str, dict]:
    good = {name: _good(customer_id=f"C{i}") for i, name in enumerate(["a", "b", "c"])}
    conflict = good["c"] | {"amount": 99.0}
    edges = [row for row, _ in EDGE_ROWS.values()]
    lines = [json.dumps(r) for r in [*good.values(), *edges, *BAD_ROWS.values()]]
    lines += [json.dumps(good["a"]), json.dumps(good["a"])]  # two exact retries
    lines += ['{"transaction_id": "broken', "NaN"]  # malformed JSON
    _write_bronze(lake, "api", lines)
    _write_bronze(lake, "import-partner", [json.dumps(good["b"]), json.dumps(conflict)])
    # Outside any source folder: not bronze, which is date=D/source=S/*.jsonl, so never read.
    (lake.bronze_day(DAY) / "stray.jsonl").write_text(json.dumps(_good()) + "\n")
    return good


def test_each_invalid_class_is_quarantined_with_its_reason(spark, lake_root):
    lake = LakeResource(root=str(lake_root))
    good = _hand_made_bronze(lake)
    raw = read_bronze(spark, lake, [DAY])
    cleaned = clean_transactions(raw)

    silver = {r["transaction_id"]: r for r in cleaned.silver.collect()}
    assert set(silver) == {r["transaction_id"] for r in good.values()} | set(EDGE_IDS.values())
    assert silver[good["a"]["transaction_id"]]["amount_cents"] == 1250
    for name, (_, expected) in EDGE_ROWS.items():
        row = silver[EDGE_IDS[name]]
        assert {k: row[k] for k in expected} == expected, name
    quarantine = cleaned.quarantine.collect()
    reasons = sorted(r["reason"] for r in quarantine)
    expected = sorted([*BAD_ROWS, "malformed_json", "malformed_json", "conflicting_duplicate"])
    assert reasons == expected
    by_reason = {r["reason"]: r for r in quarantine}
    for reason, row in BAD_ROWS.items():
        assert by_reason[reason]["transaction_id"] == row["transaction_id"], reason
        assert by_reason[reason]["reason_text"] == RULES[reason]
    assert by_reason["malformed_json"]["raw_record"] is not None
    # exact copies of "a" (2 retries) and of "b" (same content from a second source)
    assert cleaned.duplicates_dropped.count() == 3
    assert raw.count() == len(silver) + len(quarantine) + 3


def test_a_copy_differing_only_by_a_null_field_conflicts_and_an_exact_copy_with_nulls_is_dropped(spark, lake_root):
    lake = LakeResource(root=str(lake_root))
    kept = _good(source_transaction_id=None, fraud_scenario=None)
    filled = kept | {"fraud_scenario": "card_testing"}
    _write_bronze(lake, "api", [json.dumps(kept), json.dumps(kept), json.dumps(filled)])
    cleaned = clean_transactions(read_bronze(spark, lake, [DAY]))

    assert [r["fraud_scenario"] for r in cleaned.silver.collect()] == [None]
    assert [(r["fraud_scenario"], r["reason"]) for r in cleaned.quarantine.collect()] == [
        ("card_testing", "conflicting_duplicate")
    ]
    assert cleaned.duplicates_dropped.count() == 1


def test_a_source_folder_named_with_glob_characters_is_read_as_named(spark, lake_root):
    lake = LakeResource(root=str(lake_root))
    row = _good()
    _write_bronze(lake, "partner[eu]{1}*?", [json.dumps(row)])
    _write_bronze(lake, "partner", [json.dumps(_good())])
    read = {r["transaction_id"]: r["source"] for r in read_bronze(spark, lake, [DAY]).collect()}
    assert len(read) == 2 and read[row["transaction_id"]] == "partner[eu]{1}*?"


def test_silver_asset_writes_quarantine_and_reconciles(spark, lake_root, resources, instance):
    lake = LakeResource(root=str(lake_root))
    _hand_made_bronze(lake)
    result = materialize([silver_transactions], resources=resources, partition_key=DAY.isoformat(), instance=instance)
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert all(c.passed for c in checks.values()), checks
    balance = checks["reconciles_with_bronze"].metadata
    assert balance["bronze_rows"].value == SILVER_ROWS + QUARANTINED_ROWS + DUPLICATES
    assert (balance["silver_rows"].value, balance["quarantined_rows"].value, balance["duplicates_dropped"].value) == (
        SILVER_ROWS,
        QUARANTINED_ROWS,
        DUPLICATES,
    )
    assert read_quarantine_days(spark, lake.silver_transactions, [DAY], QUARANTINE_SCHEMA).count() == QUARANTINED_ROWS
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert (metadata["delta_version"].value, metadata["delta_operation"].value) == (0, "WRITE")


def test_rerunning_a_day_replaces_it_and_keeps_other_sources(spark, lake_root, resources, instance):
    lake = LakeResource(root=str(lake_root))
    _write_bronze(lake, "api", [json.dumps(_good())])
    key = DAY.isoformat()
    for _ in range(2):
        assert materialize(
            [simulated_transactions, bronze_transactions, silver_transactions],
            resources=resources,
            partition_key=key,
            instance=instance,
        ).success
    silver = read_days(spark, lake.silver_transactions, [DAY], SILVER_SCHEMA)
    simulated = lake.simulated_bronze_file(DAY).read_bytes().count(b"\n")
    assert silver.count() == simulated + 1
    assert silver.select("transaction_id").distinct().count() == silver.count()
    assert (lake.bronze_source_dir(DAY, "api") / "part-00000.jsonl").exists()


NEXT_DAY = DAY + timedelta(days=1)


def _moved_transaction(lake: LakeResource) -> tuple[dict, dict]:
    """A transaction on DAY, and the bank's correction of it a day later under the same id (another file,
    from a source whose name sorts first), each day with one other transaction."""
    original = _good(source_transaction_id="A7")
    corrected = original | {"event_time": "2026-03-11T09:00:00.000Z", "amount": 13.5}
    _write_bronze(lake, "import-bank", [json.dumps(original), json.dumps(_good())])
    _write_bronze(
        lake,
        "import-a-correction",
        [json.dumps(corrected), json.dumps(_good(event_time="2026-03-11T10:00:00Z"))],
        NEXT_DAY,
    )
    return original, corrected


def _silver_days(resources, instance, first: date, last: date):
    result = materialize([silver_transactions], resources=resources, tags=range_tags(first, last), instance=instance)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [(c.check_name, c.partition, c.description) for c in checks]
    return result.get_asset_materialization_events()[0].materialization.metadata


def _where_kept(spark, lake: LakeResource, transaction_id: str) -> tuple[list, list]:
    """The days silver keeps ``transaction_id`` on, and the reasons it is quarantined for, of both days."""
    days = [DAY, NEXT_DAY]
    kept = read_days(spark, lake.silver_transactions, days, SILVER_SCHEMA).where(f"transaction_id = '{transaction_id}'")
    quarantined = read_quarantine_days(spark, lake.silver_transactions, days, QUARANTINE_SCHEMA).where(
        f"transaction_id = '{transaction_id}'"
    )
    return sorted(r["date"] for r in kept.collect()), sorted((r["date"], r["reason"]) for r in quarantined.collect())


def test_one_run_keeps_a_moved_transaction_on_its_earliest_day(spark, lake_root, resources, instance):
    lake = LakeResource(root=str(lake_root))
    original, _ = _moved_transaction(lake)
    _silver_days(resources, instance, DAY, NEXT_DAY)
    assert _where_kept(spark, lake, original["transaction_id"]) == ([DAY], [(NEXT_DAY, "conflicting_duplicate")])


def test_a_transaction_kept_on_an_earlier_day_is_quarantined_by_a_later_days_run(spark, lake_root, resources, instance):
    """The late-data path: a correction lands on another day after the first day's silver was written, and only
    that day is materialized. Silver does not keep the id twice."""
    lake = LakeResource(root=str(lake_root))
    original, _ = _moved_transaction(lake)
    _silver_days(resources, instance, DAY, DAY)
    later = _silver_days(resources, instance, NEXT_DAY, NEXT_DAY)
    assert _where_kept(spark, lake, original["transaction_id"]) == ([DAY], [(NEXT_DAY, "conflicting_duplicate")])
    assert (later["silver_rows"].value, later["quarantined_rows"].value) == (1, 1)
    assert later["repeated_on_later_days"].value == {}


def test_an_earlier_day_materialized_last_names_the_later_day_to_run_again(spark, lake_root, resources, instance):
    lake = LakeResource(root=str(lake_root))
    original, _ = _moved_transaction(lake)
    _silver_days(resources, instance, NEXT_DAY, NEXT_DAY)
    earlier = _silver_days(resources, instance, DAY, DAY)
    assert earlier["repeated_on_later_days"].value == {NEXT_DAY.isoformat(): 1}
    assert _where_kept(spark, lake, original["transaction_id"]) == ([DAY, NEXT_DAY], [])
    _silver_days(resources, instance, NEXT_DAY, NEXT_DAY)
    assert _where_kept(spark, lake, original["transaction_id"]) == ([DAY], [(NEXT_DAY, "conflicting_duplicate")])


def test_a_run_between_two_kept_copies_beyond_the_horizon_names_no_day(spark, lake_root, resources, instance):
    """An id kept on two days further apart than DEDUP_DAYS (separate runs keep both): a run of a day between
    them has nothing to say about either, as re-running one would not change it."""
    lake = LakeResource(root=str(lake_root))
    repeated, far = _good(), DAY + timedelta(days=DEDUP_DAYS + 1)
    _write_bronze(lake, "import-bank", [json.dumps(repeated)])
    _write_bronze(lake, "import-bank", [json.dumps(repeated | {"event_time": f"{far}T12:00:00Z"})], far)
    middle = DAY + timedelta(days=4)
    _write_bronze(lake, "import-bank", [json.dumps(_good(event_time=f"{middle}T12:00:00Z"))], middle)
    for day in (DAY, far):
        _silver_days(resources, instance, day, day)
    assert _silver_days(resources, instance, middle, middle)["repeated_on_later_days"].value == {}
