"""Request and response bodies of the API."""

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from trybank_assets.schemas import CHANNELS, CURRENCIES, MAX_AMOUNT, MERCHANT_CATEGORIES
from trybank_assets.settings import get_settings

MAX_FUTURE = timedelta(seconds=get_settings().api_max_future_seconds)

Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class TransactionIn(BaseModel):
    """A card transaction as the bank's switch sends it (no fraud label)."""

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
    event_time: AwareDatetime = Field(description="ISO-8601 with a zone; stored in UTC.")
    customer_id: Identifier
    terminal_id: Identifier
    amount: float = Field(gt=0, le=MAX_AMOUNT, allow_inf_nan=False, description="In currency units, at most cents.")
    currency: Literal[CURRENCIES] = "EUR"
    merchant_country: CountryCode | None = None
    customer_country: CountryCode | None = None
    channel: Literal[CHANNELS] | None = None
    merchant_category: Literal[MERCHANT_CATEGORIES] | None = None

    @field_validator("event_time")
    @classmethod
    def _utc_not_future(cls, value: datetime) -> datetime:
        value = value.astimezone(UTC)
        if value > datetime.now(UTC) + MAX_FUTURE:
            raise ValueError(f"event_time is more than {int(MAX_FUTURE.total_seconds())} s in the future")
        return value

    @field_validator("amount")
    @classmethod
    def _cents(cls, value: float) -> float:
        if not math.isclose(value * 100, round(value * 100), rel_tol=0, abs_tol=1e-6):
            raise ValueError("amount has more than two decimals")
        return value

    @property
    def amount_cents(self) -> int:
        return round(self.amount * 100)

    @property
    def event_us(self) -> int:
        return (self.event_time - _EPOCH) // _MICROSECOND

    def bronze_record(self) -> dict:
        return {
            "transaction_id": str(self.transaction_id),
            "event_time": self.event_time.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "customer_id": self.customer_id,
            "terminal_id": self.terminal_id,
            "amount": self.amount,
            "currency": self.currency,
            "merchant_country": self.merchant_country,
            "customer_country": self.customer_country,
            "channel": self.channel,
            "merchant_category": self.merchant_category,
            "is_fraud": None,
            "fraud_scenario": None,
        }


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
    feature: str
    value: float
    contribution: float
    description: str


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
