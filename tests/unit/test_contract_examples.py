"""The example contracts in docs/contracts/ (issue 16: one per timing and a deposit-free one, for review) are what
the template renders today: regenerate them with ``python -m contract.document.examples docs/contracts`` after a
change to the contract's text or the product file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from contract.document import from_snapshot
from contract.document.examples import examples
from contract.document.render import render_html

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "contracts"


@pytest.mark.parametrize("name", sorted(examples()))
def test_the_example_in_docs_is_the_contract_rendered_today(name: str) -> None:
    shown = (DOCS / f"{name}.html").read_text(encoding="utf-8")
    assert shown == render_html(from_snapshot(examples()[name])), (
        f"docs/contracts/{name}.html is out of date: python -m contract.document.examples docs/contracts")
    assert (DOCS / f"{name}.pdf").read_bytes().startswith(b"%PDF-")


def test_there_is_one_example_per_timing_and_a_deposit_free_one() -> None:
    plans = [data["plan"] for data in examples().values()]
    assert {p["timing"] for p in plans} == {"arrears", "advance"} and any(p["deposit_free"] for p in plans)
