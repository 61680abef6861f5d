"""``trybank``: the commands a user types (simulate now; ingest and serve come with their issues)."""

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer
from tqdm import tqdm

from trybank_assets.resources.lake import LakeResource
from trybank_assets.settings import get_settings
from trybank_assets.simulator import SimulatorConfig, write_day

app = typer.Typer(help="TryBank fraud lakehouse.", no_args_is_help=True, add_completion=False)


def _yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


@app.callback()
def main() -> None:
    """TryBank fraud lakehouse. Settings come from TRYBANK_* environment variables."""


@app.command()
def simulate(
    start: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First UTC day [default: DAYS up to yesterday].")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=3660, help="Number of days to simulate.")] = 60,
    customers: Annotated[
        int | None, typer.Option(min=10, help="Customers [default: TRYBANK_SIMULATOR_CUSTOMERS].")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed [default: TRYBANK_SIMULATOR_SEED].")] = None,
) -> None:
    """Write simulated transactions to bronze, one JSON-lines file per day (same seed, same bytes)."""
    settings = get_settings()
    first = start.date() if start else _yesterday() - timedelta(days=days - 1)
    last = first + timedelta(days=days - 1)
    config = SimulatorConfig(
        seed=settings.simulator_seed if seed is None else seed,
        n_customers=settings.simulator_customers if customers is None else customers,
    )
    lake = LakeResource(root=str(settings.lake_root))
    total = 0
    with tqdm(total=days, unit="day", desc="simulating") as bar:
        for i in range(days):
            day = first + timedelta(days=i)
            total += write_day(config, day, lake.simulated_bronze_file(day))
            bar.set_postfix(day=day.isoformat(), transactions=total)
            bar.update()
    typer.echo(f"{total} transactions over {days} days ({first}..{last}) in {lake.bronze_transactions}")
