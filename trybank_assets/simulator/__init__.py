"""Deterministic card-transaction simulator (pure Python + numpy, no Dagster).

The same seed and day always give the same bytes, whatever other days are generated or in
which order: the population comes from the seed alone, and every piece of multi-day state
(compromised terminals and accounts) is derived from per-day seeded generators.
"""

from trybank_assets.simulator.generator import SimulatorConfig, simulate_day, write_day

__all__ = ["SimulatorConfig", "simulate_day", "write_day"]
