"""``trybank``: the commands a user types."""

import re
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
import yaml
from tqdm import tqdm

from trybank_assets.file_import import (
    MAPPABLE,
    ColumnMapping,
    ImportFileError,
    ImportOptions,
    detect_format,
    import_file,
    read_rows,
)
from trybank_assets.lake_layout import LakeLayout
from trybank_assets.settings import get_settings
from trybank_assets.simulator import SimulatorConfig, write_day

# No rich markup: it would swallow the "[default: …]" in help texts as if it were a tag.
app = typer.Typer(help="TryBank fraud lakehouse.", no_args_is_help=True, add_completion=False, rich_markup_mode=None)


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
    lake = LakeLayout(str(settings.lake_root))
    total = 0
    with tqdm(total=days, unit="day", desc="simulating") as bar:
        for i in range(days):
            day = first + timedelta(days=i)
            total += write_day(config, day, lake.simulated_bronze_file(day))
            bar.set_postfix(day=day.isoformat(), transactions=total)
            bar.update()
    typer.echo(f"{total} transactions over {days} days ({first}..{last}) in {lake.bronze_transactions}")


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="CSV, JSON-lines or Parquet file of transactions.")],
    name: Annotated[
        str | None, typer.Option(help="Import name: rows land under source=import-<name> [default: from the file].")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="YAML file: 'columns:' bronze field → column, optional 'defaults:' and 'name:'.")
    ] = None,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="FIELD=COLUMN, repeatable; wins over --mapping.")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="csv, jsonl or parquet; gzip is detected [default: from the suffix, through .gz]."
        ),
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="IANA zone of timestamps without an offset, e.g. Europe/Amsterdam.")
    ] = "UTC",
    time_format: Annotated[
        str | None, typer.Option(help="strptime pattern for non-ISO timestamps, e.g. '%d/%m/%Y %H:%M'.")
    ] = None,
    max_reject_rate: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Exit non-zero (after writing what was accepted) above this share of rejects."
        ),
    ] = 0.01,
) -> None:
    """Import external transactions into bronze, split by UTC day; bad rows are rejected with line and reason."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise typer.BadParameter(f"unknown time zone {timezone!r}", param_hint="--timezone") from exc
    columns: dict[str, str] = {}
    defaults: dict[str, str] = {}
    if mapping is not None:
        try:
            from_file, file_name = ColumnMapping.from_yaml(mapping)
        except (OSError, yaml.YAMLError, ImportFileError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--mapping") from exc
        columns, defaults, name = dict(from_file.columns), dict(from_file.defaults), name or file_name
    for item in map_ or []:
        field_name, sep, column = item.partition("=")
        if not sep or not field_name or not column:
            raise typer.BadParameter(f"{item!r} is not FIELD=COLUMN", param_hint="--map")
        columns[field_name.strip()] = column.strip()
    name = name or re.sub(r"[^a-z0-9_-]+", "-", file.stem.lower()).strip("-") or "file"
    if not columns:
        header = _header(file, fmt)
        columns = {f: f for f in MAPPABLE if f in header}  # a file already in the bronze layout

    settings = get_settings()
    lake = LakeLayout(str(settings.lake_root))
    options = ImportOptions(
        naive_zone=zone,
        time_format=time_format,
        partitions_start=settings.partitions_start,
        max_future=timedelta(seconds=settings.api_max_future_seconds),
        workers=settings.import_workers,
    )
    try:
        with tqdm(unit=" rows", desc=f"importing {file.name}", unit_scale=True) as bar:
            summary = import_file(file, lake, name, ColumnMapping(columns, defaults), fmt, options, bar.update)
    except ImportFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for reject in summary.first_rejects:
        typer.echo(f"rejected {reject}", err=True)
    if summary.rejected > len(summary.first_rejects):
        typer.echo(f"... and {summary.rejected - len(summary.first_rejects)} more", err=True)
    if summary.reject_file:
        typer.echo(f"rejected rows with their reasons: {summary.reject_file}")
    typer.echo(f"{file}: {summary.line()} → source=import-{name}")
    if summary.reject_rate > max_reject_rate:
        typer.echo(
            f"error: {summary.reject_rate:.2%} of the rows were rejected, above --max-reject-rate "
            f"{max_reject_rate:.2%}; the accepted rows are in bronze, see the reasons above",
            err=True,
        )
        raise typer.Exit(1)


def _header(file: Path, fmt: str | None) -> list[str]:
    try:
        names, _ = read_rows(file, fmt or detect_format(file))
    except (OSError, ImportFileError) as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from exc
    return names


@app.command("spark-server")
def spark_server(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Spark Connect port (0: any free one).")] = 15002,
) -> None:
    """Serve Spark Connect from one long-lived local Spark with the lake's settings (TRYBANK_SPARK_*,
    TRYBANK_SPARK_CONNECT_TOKEN): runs with TRYBANK_SPARK_REMOTE pointed at it share its warm JVM and Python
    workers instead of starting their own. Prints "port N" once serving; runs until stopped."""
    from pyspark.sql import SparkSession

    from trybank_assets.resources.spark import connect_server_conf

    session = SparkSession.builder.config(map=connect_server_conf(get_settings(), host, port)).getOrCreate()
    service = getattr(getattr(session._jvm.org.apache.spark.sql.connect.service, "SparkConnectService$"), "MODULE$")
    typer.echo(f"port {service.localPort()}")
    threading.Event().wait()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [default: TRYBANK_API_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: TRYBANK_API_PORT].")] = None,
) -> None:
    """Run the scoring API (one uvicorn worker, uvloop + httptools, keep-alive and read timeouts)."""
    import uvicorn

    from trybank_serving.http_protocol import server_options

    settings = get_settings()
    uvicorn.run(
        "trybank_serving.app:app",
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=1,
        loop="uvloop",
        access_log=False,
        **server_options(settings),
    )
