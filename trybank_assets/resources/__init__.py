"""Resources keyed by name, built from the settings (embedded default or cluster by config)."""

from trybank_assets.resources.lake import LakeResource
from trybank_assets.resources.simulator import SimulatorResource
from trybank_assets.resources.spark import build_spark_resource
from trybank_assets.settings import TrybankSettings


def build_resources(settings: TrybankSettings) -> dict:
    return {
        "lake": LakeResource(root=str(settings.lake_root)),
        "spark": build_spark_resource(settings),
        "simulator": SimulatorResource(seed=settings.simulator_seed, n_customers=settings.simulator_customers),
    }
