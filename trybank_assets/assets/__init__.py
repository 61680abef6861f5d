import warnings

from dagster import BetaWarning, PreviewWarning

# Beta and preview in Dagster 1.13, used on purpose: one run per backfill range, and its check results per day.
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")
warnings.filterwarnings("ignore", category=PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")
