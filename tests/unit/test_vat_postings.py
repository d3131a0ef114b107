"""The VAT postings, pure (issue 19 §3): the commencement's VAT entry, a rent's tax point, late charges received net of
their tax, and finance income spread net of VAT — each figure against an independent reference (Fraction arithmetic
from the rate's definition, τ/(1+τ), rounded half up) or worked by hand."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from books.accounts import LATE_CHARGES
from books.accounts import UNEARNED
from books.accounts import VAT_INPUT
from books.accounts import VAT_OUTPUT
from books.accounts import VAT_PENDING
from books.chart import load_chart
from books.entries import Entry
from books.entries import check
from books.income import LeaseSchedule
from books.income import Rent
from books.income import monthly_income
from books.income import recognised_through
from books.lease import Applied
from books.lease import commencement_vat
from books.lease import receipt
from books.lease import rent_taxes
from books.lease import structure_of
from books.lease import tax_point
from books.vat import NoRuleInForce

TAU = {"direct": Fraction(13, 100), "leaseback": Fraction(6, 100)}  # the rates in force in 2026


def ref(amount: int, rate: Fraction) -> int:
    """half_up(amount·τ/(1+τ)), from the definition (amounts here are ≥ 0)."""
    return int(Fraction(amount) * rate / (1 + rate) + Fraction(1, 2))


def lines(item: Entry | None) -> dict[str, tuple[int, int]]:
    assert item is not None
    check(load_chart(), item)
    return {li.account: (li.debit, li.credit) for li in item.lines}


# a lease of three rents in arrears and a final rent (fen): due date, amount, interest
RENTS = [(date(2026, 2, 10), 3_456_78, 512_34), (date(2026, 3, 10), 3_456_78, 345_67),
         (date(2026, 4, 10), 3_456_78, 174_80), (date(2026, 4, 10), 20_000_00, 0)]


def test_the_commencement_puts_each_rent_s_tax_in_pending_against_input_vat_and_unearned_income() -> None:
    taxes = rent_taxes("direct", RENTS)
    made = commencement_vat("L1", "D1", date(2026, 1, 10), taxes)
    assert made is not None and made.key == "lease:L1:vat" and made.kind == "vat_commenced"
    assert made.value_date == date(2026, 1, 10) and made.lease_id == "L1"
    tax = sum(ref(a, TAU["direct"]) for _, a, _ in RENTS)
    on_interest = sum(ref(i, TAU["direct"]) for _, _, i in RENTS)
    assert lines(made) == {VAT_INPUT: (tax - on_interest, 0), UNEARNED: (on_interest, 0), VAT_PENDING: (0, tax)}
    # by hand: 345678 × 13/113 = 39768.27 → 39768 a rent; 2000000 × 13/113 = 230088.496 → 230088 (the final rent)
    # interest 51234 → 5894.18 → 5894; 34567 → 3976.73 → 3977; 17480 → 2010.97 → 2011
    assert (tax, on_interest) == (3 * 39768 + 230088, 5894 + 3977 + 2011)
    assert commencement_vat("L1", "D1", date(2026, 1, 10), []) is None


def test_a_leaseback_s_pending_vat_is_the_interest_s_only() -> None:
    made = commencement_vat("L2", "D1", date(2026, 1, 10), rent_taxes("leaseback", RENTS))
    on_interest = sum(ref(i, TAU["leaseback"]) for _, _, i in RENTS)
    assert lines(made) == {UNEARNED: (on_interest, 0), VAT_PENDING: (0, on_interest)}


def test_the_rule_is_the_one_in_force_on_each_rent_s_due_date() -> None:
    # a lease running across 2019-04-01: 16% before, 13% from that day
    taxes = rent_taxes("direct", [(date(2019, 3, 31), 11_600, 0), (date(2019, 4, 1), 11_300, 0)])
    assert [t.tax for t in taxes] == [1_600, 1_300]
    with pytest.raises(NoRuleInForce):
        rent_taxes("direct", [(date(2016, 4, 30), 100, 0)])


def test_a_rent_s_tax_point_moves_its_tax_from_pending_to_output() -> None:
    made = tax_point(77, "L1", "D1", date(2026, 3, 10), 39768)
    assert made is not None and made.key == "vat:77" and made.kind == "vat_tax_point"
    assert made.value_date == date(2026, 3, 10) and made.lease_id == "L1" and made.dealer_id == "D1"
    assert lines(made) == {VAT_PENDING: (39768, 0), VAT_OUTPUT: (0, 39768)}
    assert tax_point(78, "L1", "D1", date(2026, 3, 10), 0) is None  # a rent of no tax posts nothing


@given(st.integers(0, 10**9), st.sampled_from(["direct", "leaseback"]))
def test_late_charges_received_are_income_net_of_their_tax(penalty: int, structure: str) -> None:
    made = receipt("R", "L", "D", source="stripe", value_date=date(2026, 6, 1), amount=penalty + 100,
                   applied=[Applied("rent", 100, 0, penalty)], structure=structure)
    if not penalty:
        assert VAT_OUTPUT not in lines(made) and LATE_CHARGES not in lines(made)
        return
    tax = ref(penalty, TAU[structure])  # a 价外费用: taxed whole under either structure
    found = lines(made)
    assert found[LATE_CHARGES] == (0, penalty - tax) if penalty - tax else LATE_CHARGES not in found
    assert found.get(VAT_OUTPUT, (0, 0)) == (0, tax)


def test_the_structure_a_lease_s_terms_state_direct_when_none() -> None:
    assert structure_of({}) == "direct" and structure_of({"structure": None}) == "direct"
    assert structure_of({"structure": "leaseback"}) == "leaseback"


def test_finance_income_is_spread_net_of_vat_and_adds_up_to_the_net_interest() -> None:
    taxes = rent_taxes("direct", RENTS)
    schedule = LeaseSchedule(date(2026, 1, 10), date(2026, 4, 10), "arrears", tuple(
        Rent(due, interest, amount, t.tax, t.tax_on_interest) for (due, amount, interest), t in zip(
            RENTS, taxes, strict=True)))
    net = sum(i - ref(i, TAU["direct"]) for _, _, i in RENTS)
    assert schedule.interest == net == 51234 + 34567 + 17480 - (5894 + 3977 + 2011)
    months = monthly_income(schedule)
    assert sum(m.amount for m in months) == net
    assert recognised_through(schedule, date(2026, 4, 10)) == net
    # January: 22 of rent 1's 31 days (10 Jan – 10 Feb), of its net interest 51234 − 5894 = 45340: 32176.77 → 32177
    assert months[0].month == "2026-01" and months[0].amount == 32177 == int(Fraction(45340 * 22, 31) + Fraction(1, 2))
    # the effective-interest figure runs on the net flows: over the term it earns the same Σ net interest
    assert abs(sum(m.effective for m in months) - net) <= 1
    # given without its tax, a rent is spread gross as before
    gross = LeaseSchedule(schedule.starts_on, schedule.ends_on, "arrears",
                          tuple(Rent(due, interest, amount) for due, amount, interest in RENTS))
    assert gross.interest == 51234 + 34567 + 17480
