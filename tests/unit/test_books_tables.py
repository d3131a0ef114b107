"""A report's tables as the page, the CSV and the XLSX write them (bff/books/tables.py): the same amounts to the fen,
read back with the standard library (tests/common/xlsx.py), large and negative ones included."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from bff.books.tables import BOM
from bff.books.tables import Money
from bff.books.tables import Table
from bff.books.tables import to_csv
from bff.books.tables import to_xlsx
from tests.common.xlsx import read_xlsx

AMOUNTS = [0, 1, -1, 5, 10, 99, 100, -12_345_60, 1_234_567_89, 99_999_999_999_999_99, -10_000_000_000_000_00]


def test_money_is_grouped_yuan_to_the_fen() -> None:
    assert [Money(f).grouped() for f in (0, 5, -5, 123_456, -123_456_789, 100_000_000)] == [
        "0.00", "0.05", "-0.05", "1,234.56", "-1,234,567.89", "1,000,000.00"]


def test_csv_and_xlsx_hold_the_same_amounts_exactly() -> None:
    table = Table("试算平衡表", ["科目", "借方"], [[f"a{i}", Money(f)] for i, f in enumerate(AMOUNTS)]
                  + [["合计", Money(sum(AMOUNTS))]], total=1)
    other = Table("Other: [x]?", ["Month", "Amount"], [["2026-01", Money(7)]])
    text = to_csv([table, other], ["heading"])
    assert text.startswith(BOM)
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[:4] == [["heading"], [], ["试算平衡表"], ["科目", "借方"]]
    assert [Decimal(r[1]) * 100 for r in rows[4:4 + len(AMOUNTS) + 1]] == [*AMOUNTS, sum(AMOUNTS)]
    sheets = read_xlsx(to_xlsx([table, other], ["heading"]))
    assert list(sheets) == ["试算平衡表", "Other   x  "]  # Excel forbids []:*?/\ in a sheet's name
    first = sheets["试算平衡表"]
    assert first[0] == ["heading"] and first[1] == ["科目", "借方"]
    assert [r[1] for r in first[2:]] == [Decimal(f) / 100 for f in [*AMOUNTS, sum(AMOUNTS)]]
