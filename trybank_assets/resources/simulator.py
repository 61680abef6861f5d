from dagster import ConfigurableResource

from trybank_assets.simulator import SimulatorConfig


class SimulatorResource(ConfigurableResource):
    """Seed and size of the simulated bank; the same values always give the same bytes."""

    seed: int
    n_customers: int

    @property
    def config(self) -> SimulatorConfig:
        return SimulatorConfig(seed=self.seed, n_customers=self.n_customers)
