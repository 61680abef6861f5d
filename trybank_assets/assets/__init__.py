import warnings

from dagster import BetaWarning

# backfill_policy is beta in Dagster 1.13 and used on purpose (one run per backfill range).
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")
