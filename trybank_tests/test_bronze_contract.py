from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from trybank_assets import bronze_contract as contract
from trybank_assets.bronze_contract import RULES, RecordRejected


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        ("85.64999999999999", 8565),  # float64's nearest value to 85.65, as text
        (85.64999999999999, 8565),
        ("12.340000001", 1234),
        (12.340000001, 1234),
        ("5e-324", 0),
        (5e-324, 0),
        ("0", 0),
        (0.0, 0),
        (-0.0, 0),
        ("0.00", 0),
        (0.1 + 0.2, 30),
        ("1000000.00", 100_000_000),
        ("  19.99 ", 1999),
        (Decimal("7.1"), 710),
        (3, 300),
    ],
)
def test_amounts_become_whole_cents(value, cents):
    assert contract.amount_cents(value) == cents


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("12.345", "amount_sub_cent"),
        (12.345, "amount_sub_cent"),
        ("0.001", "amount_sub_cent"),
        ("12.34001", "amount_sub_cent"),
        ("-0.01", "amount_negative"),
        (-3.0, "amount_negative"),
        ("1000000.01", "amount_too_large"),
        (5e12, "amount_too_large"),
        ("1e400", "amount_too_large"),
        ("NaN", "invalid_amount"),
        (float("inf"), "invalid_amount"),
        ("twelve", "invalid_amount"),
        ("", "invalid_amount"),
    ],
)
def test_refused_amounts_name_their_rule(value, rule):
    with pytest.raises(RecordRejected) as refused:
        contract.amount_cents(value)
    assert refused.value.rule == rule
    assert refused.value.text.startswith(RULES[rule])


def test_decimal_text_is_parsed_exactly_not_through_a_float():
    # Digits a float cannot hold are still read: within 1e-6 of a cent is that cent, past it is not.
    assert contract.amount_cents("0.300000000000000000000000001") == 30
    with pytest.raises(RecordRejected, match="amount_sub_cent"):
        contract.amount_cents("0.3000011")


def test_amount_of_cents_is_the_shortest_decimal():
    assert [repr(contract.amount_of_cents(c)) for c in (8565, 0, 1, 100_000_000, 1234)] == [
        "85.65",
        "0.0",
        "0.01",
        "1000000.0",
        "12.34",
    ]


def test_event_times_are_utc_with_microseconds():
    assert contract.format_event_time(contract.parse_event_time("2026-03-10T23:30:00+02:00")) == (
        "2026-03-10T21:30:00.000000Z"
    )
    amsterdam = contract.parse_event_time("2026-07-01 00:15:00.5", ZoneInfo("Europe/Amsterdam"))
    assert contract.format_event_time(amsterdam) == "2026-06-30T22:15:00.500000Z"
    assert contract.parse_event_time("10/03/2026", time_format="%d/%m/%Y") == datetime(2026, 3, 10, tzinfo=UTC)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "yesterday", ""])
def test_event_times_out_of_range_or_unreadable_are_refused(text):
    with pytest.raises(RecordRejected) as refused:
        contract.parse_event_time(text)
    assert refused.value.rule == "invalid_event_time"


def test_event_window():
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    earliest, latest = contract.event_window(now, 7, 300)
    assert contract.check_event_window(earliest, earliest, latest) == earliest
    with pytest.raises(RecordRejected, match="event_time_too_old"):
        contract.check_event_window(datetime(1970, 1, 1, tzinfo=UTC), earliest, latest)
    with pytest.raises(RecordRejected, match="event_time_in_future"):
        contract.check_event_window(datetime(2026, 11, 26, 13, tzinfo=UTC), earliest, latest)


def test_open_vocabularies_from_iso_lists():
    assert [contract.currency_code(c) for c in ("JPY", "chf", " EUR ")] == ["JPY", "CHF", "EUR"]
    assert contract.country_code("br", "merchant_country") == "BR"
    for bad, check in [
        ("EURO", contract.currency_code),
        ("ZZ", lambda t: contract.country_code(t, "merchant_country")),
    ]:
        with pytest.raises(RecordRejected):
            check(bad)
    assert contract.label(" Contactless ", "channel") == "contactless"
    for bad in ("", "x" * 41, "drop table;"):
        with pytest.raises(RecordRejected, match="invalid_channel"):
            contract.label(bad, "channel")


def test_every_writer_builds_the_same_record_shape():
    record = contract.bronze_record(
        transaction_id="t",
        event_time=datetime(2026, 3, 10, tzinfo=UTC),
        customer_id="c",
        terminal_id="d",
        amount_cents=5,
    )
    assert tuple(record) == contract.BRONZE_FIELDS
    assert (record["amount"], record["event_time"], record["currency"]) == (0.05, "2026-03-10T00:00:00.000000Z", "EUR")
