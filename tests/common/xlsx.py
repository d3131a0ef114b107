"""An XLSX file read with the standard library alone (zip + XML, ECMA-376 SpreadsheetML), independently of the writer:
each sheet's name and its rows of cells — shared or inline strings as text, numbers as the exact decimal text of
their ``<v>`` (Decimal), never through a float."""

from __future__ import annotations

import io
import re
import zipfile
from decimal import Decimal
from xml.etree import ElementTree

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
      "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships"}
REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"

Cell = str | Decimal | None


def _column(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref)
    assert letters, ref
    n = 0
    for ch in letters.group(0):
        n = n * 26 + ord(ch) - 64
    return n - 1


def read_xlsx(data: bytes) -> dict[str, list[list[Cell]]]:
    """Sheet name → rows (each a list of cells, None where a row has a gap), in the workbook's order."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        shared: list[str] = []
        if "xl/sharedStrings.xml" in z.namelist():
            for si in ElementTree.fromstring(z.read("xl/sharedStrings.xml")).findall("m:si", NS):
                shared.append("".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")))
        rels = {r.get("Id"): r.get("Target") for r in ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
                .iter(f"{REL}Relationship")}
        sheets: dict[str, list[list[Cell]]] = {}
        for sheet in ElementTree.fromstring(z.read("xl/workbook.xml")).iter(f"{{{NS['m']}}}sheet"):
            target = str(rels[sheet.get(f"{{{NS['r']}}}id")]).lstrip("/")
            path = target if target.startswith("xl/") else f"xl/{target}"
            rows: list[list[Cell]] = []
            for row in ElementTree.fromstring(z.read(path)).iter(f"{{{NS['m']}}}row"):
                cells: list[Cell] = []
                for c in row.findall("m:c", NS):
                    index = _column(str(c.get("r")))
                    cells += [None] * (index - len(cells))
                    kind, v = c.get("t"), c.find("m:v", NS)
                    if kind == "s" and v is not None:
                        cells.append(shared[int(str(v.text))])
                    elif kind == "inlineStr":
                        cells.append("".join(t.text or "" for t in c.iter(f"{{{NS['m']}}}t")))
                    elif v is not None and v.text is not None:
                        cells.append(v.text if kind == "str" else Decimal(v.text))
                    else:
                        cells.append(None)
                rows.append(cells)
            sheets[str(sheet.get("name"))] = rows
        return sheets
