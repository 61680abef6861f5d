"""Request and response bodies of the API."""

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from trybank_assets import bronze_contract as contract
from trybank_assets.settings import TrybankSettings, get_settings

Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=contract.MAX_ID_LENGTH)]
Code = Annotated[str, StringConstraints(max_length=8)]
Label = Annotated[str, StringConstraints(max_length=200)]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _contract(check, *args):
    """A bronze-contract check inside a pydantic validator: its rule code becomes the error type."""
    try:
        return check(*args)
    except contract.RecordRejected as exc:
        raise PydanticCustomError(exc.rule, exc.text) from None


def accepted_event_window(settings: TrybankSettings, now: datetime) -> tuple[datetime, datetime]:
    """The event times the API acknowledges: no older than the lateness allowed (nor before the first
    partition), no further ahead than the clock skew allowed. Anything else no asset would read."""
    earliest, latest = contract.event_window(now, settings.api_max_lateness_days, settings.api_max_future_seconds)
    return max(earliest, datetime.combine(settings.partitions_start, time(), UTC)), latest


class TransactionIn(BaseModel):
    """A card transaction as the bank's switch sends it (no fraud label).

    Validated by the bronze record contract (`trybank_assets.bronze_contract`), the same rules as the
    file import and silver; a refused value is a 422 whose error `type` is the rule's code.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "transaction_id": "5b6f1c1e-8f1e-4a43-9f0c-6f9d2c1b7a10",
                    "event_time": "2026-11-25T09:30:12.345Z",
                    "customer_id": "C0000042",
                    "terminal_id": "T0001234",
                    "amount": 129.95,
                    "currency": "EUR",
                    "merchant_country": "NL",
                    "customer_country": "NL",
                    "channel": "pos",
                    "merchant_category": "electronics",
                }
            ]
        },
    )

    transaction_id: UUID
    event_time: AwareDatetime = Field(
        description=(
            "ISO-8601 with a zone; stored in UTC. Accepted from now - TRYBANK_API_MAX_LATENESS_DAYS "
            "(default 7) to now + TRYBANK_API_MAX_FUTURE_SECONDS (default 300)."
        )
    )
    customer_id: Identifier
    terminal_id: Identifier
    amount: float = Field(
        ge=0,
        le=contract.MAX_AMOUNT,
        allow_inf_nan=False,
        description="In currency units; whole cents (a number within 1e-6 of a cent is that cent); zero is valid.",
    )
    currency: Code = Field(default="EUR", description="ISO 4217 code.")
    merchant_country: Code | None = Field(default=None, description="ISO 3166 alpha-2 code.")
    customer_country: Code | None = Field(default=None, description="ISO 3166 alpha-2 code.")
    channel: Label | None = Field(default=None, description="Free lower-case label, e.g. pos, ecommerce, atm.")
    merchant_category: Label | None = Field(default=None, description="Free lower-case label, e.g. grocery.")

    @field_validator("event_time")
    @classmethod
    def _utc_in_window(cls, value: datetime, info: ValidationInfo) -> datetime:
        value = _contract(contract.to_utc, value)
        settings = info.context if isinstance(info.context, TrybankSettings) else get_settings()
        return _contract(contract.check_event_window, value, *accepted_event_window(settings, datetime.now(UTC)))

    @field_validator("amount")
    @classmethod
    def _whole_cents(cls, value: float) -> float:
        return contract.amount_of_cents(_contract(contract.amount_cents, value))

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return _contract(contract.currency_code, value)

    @field_validator("merchant_country", "customer_country")
    @classmethod
    def _country(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _contract(contract.country_code, value, info.field_name)

    @field_validator("channel", "merchant_category")
    @classmethod
    def _label(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _contract(contract.label, value, info.field_name)

    @property
    def amount_cents(self) -> int:
        return round(self.amount * 100)

    @property
    def event_us(self) -> int:
        return (self.event_time - _EPOCH) // _MICROSECOND

    def bronze_record(self) -> dict:
        return contract.bronze_record(
            transaction_id=str(self.transaction_id),
            event_time=self.event_time,
            customer_id=self.customer_id,
            terminal_id=self.terminal_id,
            amount_cents=self.amount_cents,
            currency=self.currency,
            merchant_country=self.merchant_country,
            customer_country=self.customer_country,
            channel=self.channel,
            merchant_category=self.merchant_category,
        )


class TransactionBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transactions: list[TransactionIn] = Field(min_length=1)


class IngestResult(BaseModel):
    transaction_id: UUID
    bronze_day: str
    received_at: str


class IngestBatchResult(BaseModel):
    results: list[IngestResult]


class Reason(BaseModel):
    code: str = Field(description="Stable reason code; the list is in the description of POST /predict.")
    text: str = Field(description="The reason in words, with the value as a person reads it.")
    feature: str
    value: float
    contribution: float = Field(description="The feature's share of the score's log-odds (calibrated).")


class PredictResponse(BaseModel):
    transaction_id: UUID
    fraud_probability: float
    decision: Literal["decline", "approve"]
    threshold: float
    model_version: str
    reasons: list[Reason]


class LoadRefusal(BaseModel):
    """A model or online store that failed its checks: not loaded, the last good one serves."""

    source: str = Field(description="The model version or the store file.")
    reason: str
    at: str = Field(description="When it was first refused (UTC).")


class ModelInfo(BaseModel):
    version: str
    algorithm: str
    threshold: float
    metrics: dict
    train_window: list[str]
    test_window: list[str]
    loaded_at: str
    last_load_error: LoadRefusal | None = Field(
        description="The promoted version that was refused since this one loaded, if any."
    )
