"""The contract's text for reading on a phone (issue 17 §2): the PDF's HTML prints exactly the text the service hands
out, with that text's SHA-256; its sections and key terms come from the contract; the BFF keeps only what a
contract's text uses (no style, no script, no link), its ids and classes prefixed."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bff.applications.reading import UnsafeText
from bff.applications.reading import exact_percent
from bff.applications.reading import sanitised
from contract.document import from_snapshot
from contract.document.examples import examples
from contract.document.reading import key_terms
from contract.document.reading import sections
from contract.document.render import render_html
from contract.document.render import render_text
from contract.document.render import text_sha256
from tests.unit.test_contract_document import example_snapshot
from tests.unit.test_contract_document import generated_before


@pytest.mark.parametrize("name", sorted(examples()))
def test_the_pdf_s_html_prints_the_text_byte_for_byte_with_its_fingerprint(name: str) -> None:
    draft = from_snapshot(examples()[name])
    text = render_text(draft)
    html = render_html(draft)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert text_sha256(text) == digest and text in html and f"正文指纹 SHA-256：{digest}" in html
    assert html.index(digest) < html.index(text)  # above the text, outside what it fingerprints
    # the final text (signed: no DRAFT mark) has the same text, so the same fingerprint
    final = from_snapshot({**examples()[name], "signed": True})
    assert render_text(final) == text and "DRAFT" in html and "DRAFT" not in render_html(final)
    assert "style=" not in text and "<script" not in text and "草稿" not in text


def test_the_sections_are_the_contract_s_clauses_in_order() -> None:
    found = sections(render_text(from_snapshot(examples()["arrears-36-balloon-30"])))
    assert [s["id"] for s in found][:4] == ["parties", "vehicle", "term", "rent"]
    assert found[0]["title"] == "第一条 合同当事人"
    assert found[-1] == {"id": "annex-1", "title": "附件一：租金支付计划表"}
    assert "key-facts" not in [s["id"] for s in found]  # no heading of its own


def test_the_key_terms_are_the_contract_s_figures() -> None:
    data = from_snapshot(examples()["deposit-free-36"])
    terms = key_terms(data)
    assert terms["monthly_payment"] == f"{data.plan.monthly_payment:.2f}" and terms["term"] == data.plan.term
    assert terms["deposit_free"] and terms["card_hold"]["days"] == data.plan.card_hold.days  # type: ignore[union-attr]
    assert terms["early_settlement"]["any_day"] and terms["default"]["overdue_periods"] >= 1
    assert Decimal(terms["late_fee_daily_rate"]) == data.plan.late_fee_daily_rate


def test_a_contract_generated_before_the_stated_terms_still_has_its_key_terms() -> None:
    old = key_terms(from_snapshot(generated_before(example_snapshot(), "early_settlement")))
    assert old["early_settlement"] == {"notice_working_days": 5, "fee_rate": "0.00", "any_day": False}


def test_the_bff_keeps_a_contract_s_text_as_it_is_with_its_names_prefixed() -> None:
    clean = ('<section id="rent"><h2 class="bold x">第四条</h2><p>a &lt;b&gt;<br/>c</p>'
             '<table><tr><td colspan="3" rowspan="2">d</td></tr></table><span class="ok">f</span></section>')
    assert sanitised(clean) == ('<section id="ct-rent"><h3 class="ct-bold ct-x">第四条</h3><p>a &lt;b&gt;<br>c</p>'
                                '<table><tr><td colspan="3" rowspan="2">d</td></tr></table>'
                                '<span class="ct-ok">f</span></section>')


@pytest.mark.parametrize("dirty", [
    '<p>a<svg>b</p><p>c</p>',  # an unclosed dropped element would swallow the rest of the text
    '<p>a<script>alert(1)</script>b</p>',  # an element it does not keep: the words around it would change
    '<p>a<a href="javascript:x">c</a></p>',
    '<p>a<img src=x>b</p>',
    '<p>a</p></div></section><p>b</p>',  # stray end tags would close the page's own containers
    '<section><p>a</section>',  # an end tag that is not the open element's
    '<section><p>a</p>',  # left open
    '<p style="color:red">a</p>',  # an attribute it does not keep
    '<p onclick="x()">a</p>',
    '<span id="bad id">a</span>',
    '<td colspan="x">a</td>',
])
def test_the_bff_refuses_a_text_it_would_have_to_change(dirty: str) -> None:
    with pytest.raises(UnsafeText):
        sanitised(dirty)


def test_a_repeated_id_is_kept_only_the_first_time() -> None:
    assert sanitised('<p id="a">x</p><p id="a">y</p><p id="b" id="c">z</p>') == (
        '<p id="ct-a">x</p><p>y</p><p id="ct-b">z</p>')


def test_a_cell_spans_at_most_six_columns() -> None:
    assert sanitised('<table><tr><td colspan="99" rowspan="7">a</td></tr></table>') == (
        '<table><tr><td colspan="6" rowspan="6">a</td></tr></table>')


def test_each_figure_of_the_schedule_carries_its_column_s_label() -> None:
    """The phone shows the schedule as cards, each figure under its label: the label is the cell's own (data-label,
    the column's heading), not words the stylesheet would have to repeat."""
    text = render_text(from_snapshot(examples()["arrears-36-balloon-30"]))
    schedule = text[text.index('class="schedule"'):]
    for label in ("租金", "本金", "利息", "剩余本金"):
        assert schedule.count(f'data-label="{label}"') == schedule.count('<td class="c">') // 2 + 1  # rows + totals
    css = (Path(__file__).parents[2] / "pwa/static/css/contract-text.css").read_text(encoding="utf-8")
    assert 'content: "租金"' not in css and "attr(data-label)" in css


def test_rates_are_shown_in_full() -> None:
    assert exact_percent(Decimal("0.000493")) == "0.0493%" and exact_percent(Decimal("0.24")) == "24.00%"


def _served(document_sha256: str) -> dict[str, Any]:
    """What the contract service answers for an example contract's text, for the PDF of hash ``document_sha256``."""
    data = from_snapshot(examples()["deposit-free-36"])
    text = render_text(data)
    return {"html": text, "sha256": text_sha256(text), "document_sha256": document_sha256,
            "sections": sections(text), "terms": key_terms(data)}


@pytest.mark.parametrize(("document_sha256", "state"), [("a" * 64, "ready"), ("b" * 64, "error")])
def test_the_text_is_shown_only_for_the_pdf_the_bff_serves(monkeypatch: pytest.MonkeyPatch, document_sha256: str,
                                                           state: str) -> None:
    """The service's reading copy is of the PDF it names (document_sha256): the page says "the same as the PDF" only
    when that is the contract's current PDF as the BFF knows it (its signed one once signed), the one it serves."""
    from flask import Flask
    from flask_babel import Babel

    from bff.applications import reading

    client = SimpleNamespace(text=lambda _contract_id: _served(document_sha256))
    monkeypatch.setattr(reading, "services", lambda: SimpleNamespace(contracts=SimpleNamespace(client=client)))
    monkeypatch.setattr(reading, "log_document_view", lambda _app, _kind: None)
    app = SimpleNamespace(contract_id="c" * 32, contract={"draft_sha256": "d" * 64, "signed_sha256": "a" * 64})
    flask = Flask(__name__)
    Babel(flask)
    with flask.test_request_context():
        assert reading.contract_reading(app).state == state  # type: ignore[arg-type, union-attr]
