"""A report as tables, rendered three ways from the same cells: the page (pwa/templates/books/_table.html), CSV and XLSX
downloads (XlsxWriter). A money cell is integer fen (:class:`Money`): the page shows ``12,345.60``, the CSV
``12345.60``, the XLSX the number with the ``#,##0.00`` format — written as its exact decimal text (a Decimal), never
a float."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal

from books.reports import yuan

#: Excel opens a UTF-8 CSV as UTF-8 (the Chinese names readable) only when it starts with the byte-order mark
BOM = "\ufeff"
#: sheet names: at most 31 characters, none of []:*?/\ (Excel's rules)
_SHEET_BAD = str.maketrans({c: " " for c in "[]:*?/\\"})


@dataclass(frozen=True)
class Money:
    fen: int

    def grouped(self) -> str:
        """``-12,345.60``: yuan with thousands separators, exact."""
        text = yuan(self.fen)
        sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
        whole, cents = digits.split(".")
        return f"{sign}{int(whole):,}.{cents}"


Cell = str | int | Money | None


@dataclass(frozen=True)
class Table:
    """One table: its title, the columns' heads and the rows (``total``: the rows, at the end, that are totals)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    total: int = 0
    testid: str = ""
    #: per row, a ``data-*`` key for the page (e.g. the account), or ""
    keys: Sequence[str] = field(default_factory=tuple)

    def is_money(self, index: int) -> bool:
        return any(isinstance(row[index], Money) for row in self.rows if index < len(row))


def text_of(cell: Cell) -> str:
    """A cell as the CSV writes it."""
    if cell is None:
        return ""
    if isinstance(cell, Money):
        return yuan(cell.fen)
    return str(cell)


def to_csv(tables: Sequence[Table], heading: Sequence[str] = ()) -> str:
    """The tables one after another (a blank row between), each under its title; ``heading``: lines before them (the
    report's name, its date)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for line in heading:
        writer.writerow([line])
    for i, table in enumerate(tables):
        if i or heading:
            writer.writerow([])
        writer.writerow([table.title])
        writer.writerow(list(table.columns))
        for row in table.rows:
            writer.writerow([text_of(cell) for cell in row])
    return BOM + out.getvalue()


def to_xlsx(tables: Sequence[Table], heading: Sequence[str] = ()) -> bytes:
    """One sheet per table (its title the sheet's name), ``heading`` above each; money as numbers to the fen."""
    import xlsxwriter  # imported here: only a download needs it

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
                                     "strings_to_urls": False})
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0.00"})
    money_bold = book.add_format({"num_format": "#,##0.00", "bold": True})
    names: set[str] = set()
    for table in tables:
        name = table.title.translate(_SHEET_BAD)[:28] or "Sheet"
        while name in names:
            name = name[:26] + f"~{len(names)}"
        names.add(name)
        sheet = book.add_worksheet(name)
        r = 0
        for line in heading:
            sheet.write_string(r, 0, line, bold)
            r += 1
        if heading:
            r += 1
        for c, head in enumerate(table.columns):
            sheet.write_string(r, c, head, bold)
        sheet.set_column(0, max(len(table.columns) - 1, 0), 16)
        first_total = len(table.rows) - table.total
        for i, row in enumerate(table.rows):
            r += 1
            for c, cell in enumerate(row):
                if isinstance(cell, Money):
                    # a Decimal: XlsxWriter writes it with format "{:.16G}", its exact digits (12345.60), not a float's
                    sheet.write_number(r, c, Decimal(cell.fen) / 100, money_bold if i >= first_total else money)
                elif isinstance(cell, int):
                    sheet.write_number(r, c, cell)
                elif cell is not None:
                    sheet.write_string(r, c, cell, bold if i >= first_total else None)
    book.close()
    return out.getvalue()
