from datetime import date
from decimal import Decimal

from trybank_assets.lib.metadata import markdown_table


def test_markdown_table_keeps_each_value_in_its_cell():
    rows = [
        {"id": "a|b", "day": date(2026, 3, 1), "amount": Decimal("12.50"), "note": "two\nlines", "x": None},
        {"id": "back\\slash", "day": date(2026, 3, 2), "amount": Decimal("0"), "note": "", "x": 1.5},
    ]
    table = markdown_table(["id", "day", "amount", "note", "x"], rows).splitlines()
    assert table == [
        "| id | day | amount | note | x |",
        "| --- | --- | --- | --- | --- |",
        "| a\\|b | 2026-03-01 | 12.5 | two lines | null |",
        "| back\\\\slash | 2026-03-02 | 0.0 |  | 1.5 |",
    ]
