"""The transaction record contract shared by the simulator, the lake and serving (no Spark import)."""

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
)

HOME_COUNTRIES = ("NL", "DE", "BE", "FR", "ES")
CURRENCIES = ("EUR", "USD", "GBP")
CHANNELS = ("pos", "ecommerce", "atm")
MERCHANT_CATEGORIES = (
    "grocery",
    "restaurant",
    "fuel",
    "retail",
    "travel",
    "electronics",
    "digital_goods",
    "cash_withdrawal",
)
FRAUD_SCENARIOS = (
    "amount_outlier",
    "compromised_terminal",
    "account_takeover",
    "card_testing",
    "foreign_fraud",
)

# Larger amounts are rejected as absurd rather than scored.
MAX_AMOUNT = 1_000_000
