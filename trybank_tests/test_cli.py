from typer.testing import CliRunner

from trybank_assets.cli import app
from trybank_assets.settings import get_settings


def test_simulate_writes_one_bronze_file_per_day(tmp_path, monkeypatch):
    monkeypatch.setenv("TRYBANK_LAKE_ROOT", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["simulate", "--start", "2026-03-01", "--days", "3", "--customers", "50"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    files = sorted(tmp_path.glob("bronze/transactions/date=*/source=simulator/part-00000.jsonl"))
    assert [f.parent.parent.name for f in files] == ["date=2026-03-01", "date=2026-03-02", "date=2026-03-03"]
    total = sum(f.read_bytes().count(b"\n") for f in files)
    assert f"{total} transactions over 3 days (2026-03-01..2026-03-03)" in result.output


def test_simulate_rejects_a_bad_date():
    result = CliRunner().invoke(app, ["simulate", "--start", "2026-13-01"])
    assert result.exit_code == 2
    assert "--start" in result.output
