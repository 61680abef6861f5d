"""The bronze transaction record: one contract for every writer (simulator, file import, API).

Spark-free and Dagster-free, so serving imports it without a JVM. It holds the field names, the
normalization every writer applies (amount → integer cents, event time → UTC with microseconds,
codes upper-case, labels lower-case) and the validation rules, each with a code and a reason text.
A writer that refuses a value raises ``RecordRejected`` with the rule's code; silver re-applies the
same rules in Spark (``assets/silver.py``), is the authority, and quarantines a row under the same
code, so a rejected row says the same thing wherever it was caught. A writer may add fields whose
name starts with ``_`` (the API's ``_received``) for its own bookkeeping; silver ignores them.
"""

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import pycountry

BRONZE_FIELDS = (
    "transaction_id",
    "event_time",
    "customer_id",
    "terminal_id",
    "amount",
    "currency",
    "merchant_country",
    "customer_country",
    "channel",
    "merchant_category",
    "is_fraud",
    "fraud_scenario",
    "source_transaction_id",
)

MAX_AMOUNT = 1_000_000  # in currency units; larger amounts are refused as absurd rather than scored
MAX_AMOUNT_CENTS = MAX_AMOUNT * 100
# A number this close to a whole cent is that cent: float64 artefacts such as 85.64999999999999.
CENT_TOLERANCE = Decimal("0.000001")
_FLOAT_TOLERANCE = float(CENT_TOLERANCE)
MAX_ID_LENGTH = 64
MAX_LABEL_LENGTH = 40
LABEL_PATTERN = rf"^[a-z0-9][a-z0-9 _./&-]{{0,{MAX_LABEL_LENGTH - 1}}}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_LABEL = re.compile(LABEL_PATTERN)

# ISO 4217 and ISO 3166-1 alpha-2 from a maintained package, not a hand-typed list.
CURRENCY_CODES = frozenset(c.alpha_3 for c in pycountry.currencies)
COUNTRY_CODES = frozenset(c.alpha_2 for c in pycountry.countries)

# Rule code → reason text. The code is what silver's quarantine, the import's reject file and the
# API's 422 (its error `type`) carry; the text is what a person reads.
RULES = {
    "malformed_json": "the line is not a JSON object",
    "missing_transaction_id": "transaction_id is missing",
    "invalid_transaction_id": "transaction_id is not a UUID",
    "missing_customer_id": "customer_id is missing",
    "invalid_customer_id": f"customer_id is longer than {MAX_ID_LENGTH} characters",
    "missing_terminal_id": "terminal_id is missing",
    "invalid_terminal_id": f"terminal_id is longer than {MAX_ID_LENGTH} characters",
    "invalid_source_transaction_id": f"source_transaction_id is longer than {MAX_ID_LENGTH} characters",
    "missing_event_time": "event_time is missing",
    "invalid_event_time": "event_time is not a valid timestamp",
    "event_time_without_zone": "event_time has no UTC offset",
    "event_time_outside_partition": "event_time is not on the UTC day of the bronze folder it was written to",
    "event_time_before_partitions_start": "event_time is before the first daily partition (TRYBANK_PARTITIONS_START)",
    "event_time_too_old": "event_time is older than the API accepts (TRYBANK_API_MAX_LATENESS_DAYS)",
    "event_time_in_future": "event_time is further ahead of the clock than accepted (TRYBANK_API_MAX_FUTURE_SECONDS)",
    "missing_amount": "amount is missing",
    "invalid_amount": "amount is not a finite number",
    "amount_negative": "amount is negative",
    "amount_too_large": f"amount is above {MAX_AMOUNT:,}",
    "amount_sub_cent": "amount has a fraction of a cent",
    "unknown_currency": "currency is not an ISO 4217 code",
    "invalid_merchant_country": "merchant_country is not an ISO 3166 alpha-2 code",
    "invalid_customer_country": "customer_country is not an ISO 3166 alpha-2 code",
    "invalid_channel": f"channel is not a lower-case label of at most {MAX_LABEL_LENGTH} characters",
    "invalid_merchant_category": (
        f"merchant_category is not a lower-case label of at most {MAX_LABEL_LENGTH} characters"
    ),
    "invalid_is_fraud": "is_fraud is not a boolean",
    "conflicting_duplicate": "another row has the same transaction_id and different content",
}

_TRUE, _FALSE = frozenset({"1", "true", "t", "yes", "y"}), frozenset({"0", "false", "f", "no", "n"})


class RecordRejected(ValueError):
    """A value breaks a rule of the contract; ``rule`` is its code in ``RULES``."""

    def __init__(self, rule: str, detail: str | None = None) -> None:
        self.rule = rule
        self.text = RULES[rule] + (f" ({detail})" if detail else "")
        super().__init__(f"{rule}: {self.text}")


def amount_cents(value: str | int | float | Decimal) -> int:
    """An amount in currency units as integer cents.

    Text is parsed exactly as a decimal (no float round-trip). Either way a number within
    ``CENT_TOLERANCE`` of a whole cent is that cent, zero is valid (card verifications), and
    negative, sub-cent, non-finite and absurd amounts are refused.
    """
    if isinstance(value, float):
        # Float arithmetic is exact enough here: below MAX_AMOUNT its error is ~1e-8 of a cent.
        if not math.isfinite(value):
            raise RecordRejected("invalid_amount", repr(value))
        if value < 0:
            raise RecordRejected("amount_negative", repr(value))
        if value > MAX_AMOUNT + _FLOAT_TOLERANCE:
            raise RecordRejected("amount_too_large", repr(value))
        cents = round(value * 100)
        if abs(value - cents / 100) > _FLOAT_TOLERANCE:
            raise RecordRejected("amount_sub_cent", repr(value))
        return cents
    if not isinstance(value, Decimal):
        try:
            value = Decimal(value.strip() if isinstance(value, str) else value)
        except (InvalidOperation, TypeError, ValueError):
            raise RecordRejected("invalid_amount", repr(value)) from None
    if not value.is_finite():
        raise RecordRejected("invalid_amount", str(value))
    if value < 0:
        raise RecordRejected("amount_negative", str(value))
    if value > MAX_AMOUNT + CENT_TOLERANCE:
        raise RecordRejected("amount_too_large", str(value))
    cents = (value * 100).to_integral_value()
    if abs(value - cents / 100) > CENT_TOLERANCE:
        raise RecordRejected("amount_sub_cent", str(value))
    return int(cents)


def amount_of_cents(cents: int) -> float:
    """The amount bronze stores: the float whose shortest repr is exactly the cents, e.g. 85.65."""
    return cents / 100


def to_utc(moment: datetime, naive_zone=UTC) -> datetime:
    """An aware UTC datetime; a naive one is read in ``naive_zone``. Raises RecordRejected when the
    instant is outside what a datetime can hold (e.g. 0001-01-01T00:00+01:00)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive_zone)
    if moment.tzinfo is UTC:
        return moment
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise RecordRejected("invalid_event_time", f"{moment.isoformat()} is out of range") from None


def parse_event_time(text: str, naive_zone=UTC, time_format: str | None = None) -> datetime:
    """ISO-8601 (or ``time_format``, a strptime pattern) text as an aware UTC datetime."""
    try:
        moment = datetime.strptime(text, time_format) if time_format else datetime.fromisoformat(text)
    except ValueError:
        expected = f"the format {time_format!r}" if time_format else "ISO-8601"
        raise RecordRejected("invalid_event_time", f"{text!r} is not {expected}") from None
    return to_utc(moment, naive_zone)


def format_event_time(moment: datetime) -> str:
    """The one text form of an event time in bronze: UTC, microseconds, ``Z``."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def check_event_window(moment: datetime, earliest: datetime, latest: datetime) -> datetime:
    """``moment`` (aware UTC) if it lies in [earliest, latest], else the rule it breaks."""
    if moment < earliest:
        raise RecordRejected("event_time_too_old", f"before {format_event_time(earliest)}")
    if moment > latest:
        raise RecordRejected("event_time_in_future", f"after {format_event_time(latest)}")
    return moment


def event_window(now: datetime, max_lateness_days: float, max_future_seconds: float) -> tuple[datetime, datetime]:
    return now - timedelta(days=max_lateness_days), now + timedelta(seconds=max_future_seconds)


def identifier(text: str, name: str) -> str:
    text = text.strip()
    if not text:
        raise RecordRejected(f"missing_{name}")
    if len(text) > MAX_ID_LENGTH:
        raise RecordRejected(f"invalid_{name}", f"{len(text)} characters")
    return text


def currency_code(text: str) -> str:
    code = text.strip().upper()
    if code not in CURRENCY_CODES:
        raise RecordRejected("unknown_currency", repr(text))
    return code


def country_code(text: str, name: str) -> str:
    code = text.strip().upper()
    if code not in COUNTRY_CODES:
        raise RecordRejected(f"invalid_{name}", repr(text))
    return code


def label(text: str, name: str) -> str:
    """A free vocabulary value (channel, merchant category): trimmed, lower-case, bounded."""
    value = text.strip().lower()
    if not _LABEL.match(value):
        raise RecordRejected(f"invalid_{name}", repr(text[:80]))
    return value


def fraud_flag(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise RecordRejected("invalid_is_fraud", repr(value))


def bronze_record(
    *,
    transaction_id: str,
    event_time: datetime,
    customer_id: str,
    terminal_id: str,
    amount_cents: int,
    currency: str = "EUR",
    merchant_country: str | None = None,
    customer_country: str | None = None,
    channel: str | None = None,
    merchant_category: str | None = None,
    is_fraud: bool | None = None,
    fraud_scenario: str | None = None,
    source_transaction_id: str | None = None,
) -> dict:
    """One bronze line's object, from values a writer has already validated, in field order."""
    return {
        "transaction_id": transaction_id,
        "event_time": format_event_time(event_time),
        "customer_id": customer_id,
        "terminal_id": terminal_id,
        "amount": amount_of_cents(amount_cents),
        "currency": currency,
        "merchant_country": merchant_country,
        "customer_country": customer_country,
        "channel": channel,
        "merchant_category": merchant_category,
        "is_fraud": is_fraud,
        "fraud_scenario": fraud_scenario if is_fraud else None,
        "source_transaction_id": source_transaction_id,
    }
