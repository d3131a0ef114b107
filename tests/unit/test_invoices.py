"""E-invoices, pure parts (issue 19 §3): the sandbox platform's 20-digit numbers and its checks of a request (the
buyer's ID number by GB 11643's check digit, the lines' tax, the totals), the request's documented shape, and the
invoice lines made from what was paid — by books/vat.py, never a tax of our own."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

from books.vat import included_tax
from books.vat import load_tax_policy
from books.vat import rent_tax
from infra.invoice_platform import InvoiceRejected
from infra.invoice_platform import IssueRequest
from infra.invoice_platform import Line
from infra.invoice_platform import Party
from infra.invoice_platform import RedLetter
from infra.invoice_platform import is_invoice_number
from infra.invoice_platform import yuan
from infra.invoice_sandbox import CHANNEL
from infra.invoice_sandbox import check_request
from infra.invoice_sandbox import invoice_number
from infra.invoicing import facts_amount
from infra.invoicing import item_name
from infra.invoicing import lines_for
from infra.invoicing import reduced
from infra.invoicing import structure_of
from kyc.idnumber import check_digit

SELLER = Party("领航融资租赁有限公司", tax_id="91350100M000100Y43")
#: a well-formed ID number (GB 11643: region 110101, born 1990-03-07, sequence 123, its check digit)
GOOD_ID = "11010119900307123" + check_digit("11010119900307123")


def wrong_check(number: str) -> str:
    """``number`` with another check character (the first of 0–9, X that is not its own)."""
    return number[:17] + next(c for c in "0123456789X" if c != number[17])


def request(*, buyer: Party | None = None, lines: tuple[Line, ...] | None = None, red: RedLetter | None = None,
            key: str = "req-1") -> IssueRequest:
    rule = load_tax_policy().rule("direct", date(2026, 4, 10))
    taxed = rent_tax(rule, 1_234_567, 234_567)
    return IssueRequest(key, SELLER, buyer or Party("张三", id_number=GOOD_ID, individual=True),
                        lines or (Line(item_name(rule), rule.tax_code, taxed.taxable_net, rule.rate, taxed.tax,
                                       "第3期租金"),), red)


# -- numbers ---------------------------------------------------------------------------------------------------------
def test_invoice_numbers_are_20_digits_of_year_province_channel_and_sequence() -> None:
    number = invoice_number(date(2026, 4, 10), SELLER.tax_id, 1)
    assert number == "2635" + CHANNEL + "000000000000001"
    assert len(number) == 20 and is_invoice_number(number)
    assert invoice_number(date(2027, 1, 1), SELLER.tax_id, 123_456_789_012_345)[:5] == "2735" + CHANNEL
    assert invoice_number(date(2026, 4, 10), "91AB0100M000100Y43", 7)[2:4] == "00"  # no province digits: 00
    assert [invoice_number(date(2026, 4, 10), SELLER.tax_id, n) for n in (9, 10)] == sorted(
        invoice_number(date(2026, 4, 10), SELLER.tax_id, n) for n in (10, 9))
    for bad in (0, 10 ** 15):
        with pytest.raises(ValueError):
            invoice_number(date(2026, 4, 10), SELLER.tax_id, bad)
    assert not is_invoice_number("2635900000000000001")  # 19 digits
    assert not is_invoice_number("26359000000000000A01")


# -- GB 11643 -------------------------------------------------------------------------------------------------------
def test_the_check_digit_is_iso_7064_mod_11_2() -> None:
    # the worked example of GB 11643-1999's annex: 11010519491231002 → X
    assert check_digit("11010519491231002") == "X"
    assert check_digit("44052418800101001") == "4"
    # every single-digit change of the first 17 changes the check character (MOD 11-2 catches them all)
    base = "11010119900307123"
    for i in range(17):
        for d in "0123456789":
            if d != base[i]:
                assert check_digit(base[:i] + d + base[i + 1:]) != check_digit(base)


def test_the_sandbox_rejects_a_buyer_id_number_failing_its_check_digit() -> None:
    check_request(request().payload())  # the good one passes
    with pytest.raises(InvoiceRejected) as refused:
        check_request(request(buyer=Party("张三", id_number=wrong_check(GOOD_ID), individual=True)).payload())
    assert refused.value.code == "SBX4003" and "GB 11643" in str(refused.value)
    with pytest.raises(InvoiceRejected) as malformed:
        check_request(request(buyer=Party("张三", id_number="1101011990030712", individual=True)).payload())
    assert malformed.value.code == "SBX4002"
    # no ID number: an individual may be invoiced by name alone; no name: refused
    check_request(request(buyer=Party("张三", individual=True)).payload())
    with pytest.raises(InvoiceRejected) as nameless:
        check_request(request(buyer=Party(" ", id_number=GOOD_ID, individual=True)).payload())
    assert nameless.value.code == "SBX4001"


def test_the_sandbox_checks_the_lines_and_totals() -> None:
    rule = load_tax_policy().rule("direct", date(2026, 4, 10))
    off = Line(item_name(rule), rule.tax_code, 100_000, rule.rate, 13_007, "")  # 7 fen off 13,000: beyond tolerance
    with pytest.raises(InvoiceRejected) as tax:
        check_request(request(lines=(off,)).payload())
    assert tax.value.code == "SBX4101"
    within = Line(item_name(rule), rule.tax_code, 100_000, rule.rate, 13_006, "")
    check_request(request(lines=(within,)).payload())
    body = request().payload()
    body["jshj"] = yuan(1)
    with pytest.raises(InvoiceRejected) as totals:
        check_request(body)
    assert totals.value.code == "SBX4102"
    nameless = request().payload()
    nameless["mxxx"][0]["spmc"] = "融资租赁"  # not *分类简称*名称
    with pytest.raises(InvoiceRejected) as item:
        check_request(nameless)
    assert item.value.code == "SBX4101"
    bad_seller = request().payload()
    bad_seller["xsfnsrsbh"] = "91350100M000100Y44"  # GB 32100 check character wrong
    with pytest.raises(InvoiceRejected) as seller:
        check_request(bad_seller)
    assert seller.value.code == "SBX4201"


# -- the request's shape --------------------------------------------------------------------------------------------
def test_a_request_has_the_documented_face() -> None:
    rule = load_tax_policy().rule("direct", date(2026, 4, 10))
    body = request().payload()
    taxed = rent_tax(rule, 1_234_567, 234_567)
    assert body["lsh"] == "req-1" and body["lzfpbz"] == "0" and body["fppz"] == "82"
    assert (body["xsfmc"], body["xsfnsrsbh"]) == (SELLER.name, SELLER.tax_id)
    assert (body["gmfmc"], body["gmfzjlx"], body["gmfzjhm"], body["zrrbs"]) == ("张三", "201", GOOD_ID, "Y")
    [line] = body["mxxx"]
    assert line["spmc"] == f"*{rule.tax_short}*{rule.item_zh}" and line["spmc"].startswith("*")
    assert line["sphfwssflbm"] == rule.tax_code and line["slv"] == str(rule.rate) == "0.13"
    assert (line["je"], line["se"]) == (yuan(taxed.net), yuan(taxed.tax))
    assert body["jshj"] == "12345.67" and Decimal(body["hjje"]) + Decimal(body["hjse"]) == Decimal("12345.67")
    red = request(red=RedLetter("26359000000000000001", date(2026, 4, 10), "01"),
                  lines=tuple(Line.from_dict(json.loads(json.dumps(line.as_dict()))).negated()
                              for line in request().lines)).payload()
    assert red["lzfpbz"] == "1" and red["lzfphm"] == "26359000000000000001" and red["chyydm"] == "01"
    assert red["lzkprq"] == "2026-04-10" and red["jshj"] == "-12345.67"
    check_request(red)  # a red one's negative lines pass the same checks


# -- lines from what was paid ---------------------------------------------------------------------------------------
def test_lines_come_from_the_tax_policy() -> None:
    policy = load_tax_policy()
    facts = {"structure": "direct", "parts": [
        {"kind": "rent", "amount": 532_211, "interest": 61_234, "tax_point": "2026-04-10", "label": "第3期租金"},
        {"kind": "late_charge", "amount": 1_597, "tax_point": "2026-04-14", "label": "第3期租金逾期违约金"}]}
    rent_line, charge_line = lines_for(facts, policy)
    rule = policy.rule("direct", date(2026, 4, 10))
    taxed = rent_tax(rule, 532_211, 61_234)
    assert (rent_line.amount, rent_line.tax, rent_line.rate) == (taxed.net, taxed.tax, rule.rate)
    assert rent_line.total == 532_211 and rent_line.specification == "第3期租金"
    assert charge_line.tax == included_tax(policy.rule("direct", date(2026, 4, 14)), 1_597)
    assert charge_line.total == 1_597
    assert sum(line.total for line in lines_for(facts, policy)) == facts_amount(facts) == 533_808
    # the rate of the rule in force on the tax point: a rent due in 2018 at 16%, in 2017 at 17%
    old = {"structure": "direct", "parts": [{"kind": "rent", "amount": 116_000, "interest": 0,
                                             "tax_point": "2018-06-01"}]}
    assert lines_for(old, policy)[0].rate == Decimal("0.16") and lines_for(old, policy)[0].tax == 16_000
    # a leaseback: only the interest is taxed (贷款服务), the principal is not on the invoice
    leaseback = {"structure": "leaseback", "parts": [{"kind": "rent", "amount": 500_000, "interest": 106_000,
                                                      "tax_point": "2026-04-10"}]}
    [line] = lines_for(leaseback, policy)
    lb = rent_tax(policy.rule("leaseback", date(2026, 4, 10)), 500_000, 106_000)
    assert (line.amount, line.tax) == (lb.taxable_net, lb.tax) and line.total == 106_000


def test_a_refund_reduces_what_a_reissue_covers() -> None:
    facts = {"structure": "direct", "parts": [{"kind": "rent", "amount": 10_000, "interest": 3_001,
                                               "tax_point": "2026-04-10"}]}
    kept = reduced(facts, 2_500)
    assert kept["parts"][0]["amount"] == 7_500 and kept["parts"][0]["interest"] == 2_251  # 3,001 × 0.75, half up
    assert reduced(facts, 10_000)["parts"] == [] and reduced(facts, 12_000)["parts"] == []
    assert facts["parts"][0]["amount"] == 10_000  # the original facts untouched


def test_the_lease_structure_defaults_to_a_direct_lease() -> None:
    assert structure_of(SimpleNamespace(terms="{}")) == "direct"  # type: ignore[arg-type]
    assert structure_of(SimpleNamespace(terms='{"structure": "leaseback"}')) == "leaseback"  # type: ignore[arg-type]
    assert structure_of(SimpleNamespace(terms="not json")) == "direct"  # type: ignore[arg-type]


# -- the settings ---------------------------------------------------------------------------------------------------
def test_the_invoices_name_the_lessor_of_the_contracts_and_wrong_settings_are_refused() -> None:
    import tomllib
    from pathlib import Path

    from bff.config import ConfigError
    from bff.config import Settings

    lessor = tomllib.loads((Path(__file__).resolve().parents[2] / "contract/lessor.toml").read_text("utf-8"))
    settings = Settings.from_env({})
    assert (settings.invoice_seller_name, settings.invoice_seller_credit_code) == (lessor["name"],
                                                                                 lessor["credit_code"])
    assert (settings.invoice_platform, settings.invoice_poll_seconds) == ("sandbox", 60)
    chosen = Settings.from_env({"LEASELINE_INVOICE_SELLER_CREDIT_CODE": "914403001922038216",
                                "LEASELINE_INVOICE_POLL_SECONDS": "5"})
    assert (chosen.invoice_seller_credit_code, chosen.invoice_poll_seconds) == ("914403001922038216", 5)
    for bad in ({"LEASELINE_INVOICE_PLATFORM": "baiwang"}, {"LEASELINE_INVOICE_SELLER_NAME": " "},
                {"LEASELINE_INVOICE_SELLER_CREDIT_CODE": "91350100M000100Y44"},
                {"LEASELINE_INVOICE_POLL_SECONDS": "0"}):
        with pytest.raises(ConfigError):
            Settings.from_env(bad)
