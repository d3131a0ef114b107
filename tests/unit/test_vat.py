"""books.vat: the tax policy file (rules by structure and date, sourced, provisional values flagged) and the tax a rent
or a lump sum carries — checked against an independent reference (Decimal arithmetic at 60 digits, ROUND_HALF_UP, from
the rate's definition τ/(1+τ)) and against figures worked by hand."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import date
from decimal import ROUND_HALF_UP
from decimal import Decimal
from decimal import localcontext
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from books.vat import POLICY_FILE
from books.vat import NoRuleInForce
from books.vat import Rule
from books.vat import TaxPolicyError
from books.vat import included_tax
from books.vat import load_tax_policy
from books.vat import parse_tax_policy
from books.vat import rent_tax

POLICY = load_tax_policy()


def reference(amount: int, rate: str) -> int:
    """half_up(amount × rate / (1 + rate)) by Decimal at 60 digits: another arithmetic than books.vat's integers."""
    with localcontext() as ctx:
        ctx.prec = 60
        exact = Decimal(amount) * Decimal(rate) / (Decimal(1) + Decimal(rate))
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_the_shipped_policy_is_versioned_and_every_rule_cites_listed_sources() -> None:
    assert POLICY.version == "2026.12-2"
    for rule in POLICY.rules:
        assert rule.sources and all(sid in POLICY.sources for sid in rule.sources)
        assert rule.item_zh and rule.item_en
        # a value missing or unconfirmed is said so, field by field
        assert set(rule.provisional_fields) <= {f.name for f in dataclasses.fields(Rule)}
        if not rule.tax_code:
            assert rule.provisional and "tax_code" in rule.provisional_fields
    for source in POLICY.sources.values():
        assert source.document and source.article
        assert source.read_at or source.provisional


@pytest.mark.parametrize(("structure", "on", "rate", "base"), [
    ("direct", date(2016, 5, 1), "0.17", "consideration"),
    ("direct", date(2018, 4, 30), "0.17", "consideration"),
    ("direct", date(2018, 5, 1), "0.16", "consideration"),
    ("direct", date(2019, 3, 31), "0.16", "consideration"),
    ("direct", date(2019, 4, 1), "0.13", "consideration"),
    ("direct", date(2025, 12, 31), "0.13", "consideration"),
    ("direct", date(2026, 1, 1), "0.13", "consideration"),
    ("direct", date(2040, 1, 1), "0.13", "consideration"),
    ("leaseback", date(2016, 5, 1), "0.06", "interest"),
    ("leaseback", date(2019, 4, 1), "0.06", "interest"),
    ("leaseback", date(2026, 12, 7), "0.06", "interest"),
])
def test_the_rule_in_force_on_the_tax_point(structure: str, on: date, rate: str, base: str) -> None:
    rule = POLICY.rule(structure, on)
    assert (rule.structure, rule.rate, rule.base) == (structure, Decimal(rate), base)
    assert rule.effective_from <= on and (rule.effective_to is None or on <= rule.effective_to)
    # a rent: the earlier of the contract's payment date and the day it is received in full (附件1 第四十五条); paid
    # ahead (预收款): the day received; a lump sum: the day received
    assert rule.tax_point == "earlier_of_contract_payment_date_and_received"
    assert rule.advance_tax_point == "received" and rule.lump_sum_tax_point == "received"
    assert "cs2016-36-a1-art45-advance" in rule.sources


def test_the_advance_receipt_rule_cites_where_it_was_confirmed() -> None:
    source = POLICY.sources["cs2016-36-a1-art45-advance"]
    assert "预收款" in source.says and source.document == "财税〔2016〕36号"
    assert "https://m.livelovelifegateway.com/tiku/shiti/5587174.html" in source.read_at


def test_the_policy_says_the_time_before_2016_05_was_vat_too_not_business_tax() -> None:
    text = POLICY_FILE.read_text(encoding="utf-8")
    assert "(营业税/the earlier 试点)" not in text
    assert "before 2016-05-01" in text and "17%" in text


def test_a_direct_lease_is_invoiced_as_finance_leasing_of_movables() -> None:
    rule = POLICY.rule("direct", date(2026, 12, 7))
    assert (rule.item_zh, rule.tax_code, rule.tax_short) == ("有形动产融资租赁服务", "3040501010000000000", "融资租赁")
    assert rule.provisional and "tax_code" in rule.provisional_fields


def test_no_rule_before_the_vat_reform_nor_for_an_unknown_structure() -> None:
    with pytest.raises(NoRuleInForce, match="direct lease in force on 2016-04-30"):
        POLICY.rule("direct", date(2016, 4, 30))
    with pytest.raises(NoRuleInForce, match="operating"):
        POLICY.rule("operating", date(2026, 1, 1))


def test_worked_by_hand() -> None:
    rule = POLICY.rule("direct", date(2026, 12, 7))  # 13%
    # 113.00 yuan with 10.00 of interest: 11300 × 13/113 = 1300 exactly; 1000 × 13/113 = 115.04 → 115
    tax = rent_tax(rule, 11300, 1000)
    assert (tax.taxable, tax.tax, tax.tax_on_interest, tax.tax_on_principal, tax.net) == (11300, 1300, 115, 1185,
                                                                                          10000)
    assert (tax.net_interest, tax.principal, tax.taxable_net) == (885, 10300, 10000)
    # 3,456.78 yuan: 345678 / 113 = 3059 + 11/113; × 13 = 39767 + 143/113 = 39768.27 → 39768
    # its interest 512.34: 51234 × 13 / 113 = 666042 / 113 = 5894.18 → 5894
    tax = rent_tax(rule, 345678, 51234)
    assert (tax.tax, tax.tax_on_interest, tax.tax_on_principal) == (39768, 5894, 33874)
    # 1.00 yuan: 100 × 13/113 = 11.50 (11.504…) → 12; 1 fen of interest: 0.115 → 0
    assert (rent_tax(rule, 100, 1).tax, rent_tax(rule, 100, 1).tax_on_interest) == (12, 0)
    # a sale-and-leaseback at 6% taxes the interest only: 1060 × 6/106 = 60
    back = rent_tax(POLICY.rule("leaseback", date(2026, 12, 7)), 11300, 1060)
    assert (back.taxable, back.tax, back.tax_on_interest, back.tax_on_principal, back.net) == (1060, 60, 60, 0, 11240)
    # at 17% (2017): 11700 × 17/117 = 1700
    assert rent_tax(POLICY.rule("direct", date(2017, 6, 1)), 11700, 0).tax == 1700


def test_halves_round_away_from_zero() -> None:
    # no half can arise at 13%, 16%, 17% or 6% (the denominators 113, 29, 117, 53 are odd and prime to 2·rate's
    # numerator): a rate of 0.6 (τ/(1+τ) = 3/8) shows the rounding itself
    rule = dataclasses.replace(POLICY.rule("direct", date(2026, 1, 1)), rate=Decimal("0.6"))
    assert [included_tax(rule, a) for a in (4, 12, 1, -4, -12)] == [2, 5, 0, -2, -5]  # 1.5, 4.5, 0.375, −1.5, −4.5
    assert [reference(a, "0.6") for a in (4, 12, 1, -4, -12)] == [2, 5, 0, -2, -5]


@given(amount=st.integers(0, 10**12), share=st.fractions(0, 1),
       on=st.dates(date(2016, 5, 1), date(2040, 12, 31)), structure=st.sampled_from(["direct", "leaseback"]))
def test_against_the_reference(amount: int, share: object, on: date, structure: str) -> None:
    interest = int(amount * share)  # type: ignore[operator]
    rule = POLICY.rule(structure, on)
    tax = rent_tax(rule, amount, interest)
    rate = str(rule.rate)
    assert tax.tax_on_interest == reference(interest, rate) == included_tax(rule, interest)
    if structure == "direct":
        assert tax.tax == reference(amount, rate) and tax.taxable == amount
    else:
        assert tax.tax == tax.tax_on_interest and tax.tax_on_principal == 0 and tax.taxable == interest
    assert tax.tax == tax.tax_on_interest + tax.tax_on_principal and tax.net == amount - tax.tax
    assert 0 <= tax.tax_on_interest <= interest and 0 <= tax.tax_on_principal <= amount - interest


def test_a_rent_is_integer_fen_with_its_interest_within_it() -> None:
    rule = POLICY.rule("direct", date(2026, 1, 1))
    with pytest.raises(ValueError, match="interest"):
        rent_tax(rule, 100, 101)
    with pytest.raises(ValueError, match="interest"):
        rent_tax(rule, 100, -1)
    with pytest.raises(TypeError):
        rent_tax(rule, Decimal("1.00"), 0)  # type: ignore[arg-type]


def shipped() -> dict[str, object]:
    with POLICY_FILE.open("rb") as fh:
        return tomllib.load(fh)


def test_a_broken_policy_is_refused_with_its_reason() -> None:
    raw = shipped()
    rules = raw["rules"]
    assert isinstance(rules, list)

    def with_rule(n: int, **changes: object) -> dict[str, object]:
        return {**raw, "rules": [({**r, **changes} if i == n else r) for i, r in enumerate(rules)]}

    with pytest.raises(TaxPolicyError, match="overlap"):
        parse_tax_policy(with_rule(0, effective_to="2018-05-01"))
    with pytest.raises(TaxPolicyError, match="decimal string"):
        parse_tax_policy(with_rule(0, rate=0.17))
    with pytest.raises(TaxPolicyError, match="not listed"):
        parse_tax_policy(with_rule(0, sources=["nowhere"]))
    with pytest.raises(TaxPolicyError, match="not marked provisional"):
        parse_tax_policy(with_rule(0, tax_code="", provisional_fields=[]))
    with pytest.raises(TaxPolicyError, match="base"):
        parse_tax_policy(with_rule(0, base="gross"))
    with pytest.raises(TaxPolicyError, match="no version"):
        parse_tax_policy({**raw, "version": ""})


def test_load_reads_another_file(tmp_path: Path) -> None:
    text = POLICY_FILE.read_text(encoding="utf-8").replace('version = "2026.12-2"', 'version = "test-1"')
    (tmp_path / "policy.toml").write_text(text, encoding="utf-8")
    assert load_tax_policy(tmp_path / "policy.toml").version == "test-1"
    assert load_tax_policy() is POLICY
