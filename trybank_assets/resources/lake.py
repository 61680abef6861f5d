from dagster import ConfigurableResource

from trybank_assets.lake_layout import LakePaths


class LakeResource(LakePaths, ConfigurableResource):
    """The lake under ``root`` (``data_lake/`` by default) for assets; paths come from ``LakePaths``."""

    root: str
