"""VAT on the events outside a rent's normal life, pure (issue 19 §3): an early settlement, a partial prepayment, the
end of the term (charges, the deposit applied, the returned car) and the fees of the origination. Every figure is
checked against an independent reference: the rate's definition in Fraction arithmetic, τ/(1+τ), rounded half up
(away from zero) — never books/vat.py's own functions — and the lease's accounts must end where the design says
(Pending emptied, Output what was charged)."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from books.accounts import DEPOSITS
from books.accounts import FEES
from books.accounts import INTEREST
from books.accounts import LATE_CHARGES
from books.accounts import RECEIVABLE
from books.accounts import UNEARNED
from books.accounts import VAT_INPUT
from books.accounts import VAT_OUTPUT
from books.accounts import VAT_PENDING
from books.accounts import VEHICLES_RETURNED
from books.chart import load_chart
from books.end_of_term import car_returned
from books.end_of_term import charged
from books.end_of_term import deposit_applied
from books.end_of_term import waived_tax
from books.entries import Entry
from books.entries import check
from books.origination import UpfrontParts
from books.origination import captured
from books.origination import deposit_kept
from books.origination import refunded
from books.prepayment import Prepaid
from books.prepayment import prepaid
from books.settlement import Settled
from books.settlement import settled
from books.vat import RentTax
from books.vat import load_tax_policy
from books.vat import rent_tax

DAY = date(2026, 12, 7)
POLICY = load_tax_policy()
DIRECT, LEASEBACK = POLICY.rule("direct", DAY), POLICY.rule("leaseback", DAY)
TAU = {"direct": Fraction(13, 100), "leaseback": Fraction(6, 100)}  # in force in 2026 (the policy's sources)


def ref(amount: int, structure: str = "direct") -> int:
    """half_up(amount·τ/(1+τ)), halves away from zero, from the definition."""
    value = Fraction(abs(amount)) * TAU[structure] / (1 + TAU[structure])
    return (1 if amount >= 0 else -1) * int(value + Fraction(1, 2))


def ref_rent(amount: int, interest: int, structure: str = "direct") -> tuple[int, int, int]:
    """(tax, tax_on_interest, tax_on_principal) of a rent, from the design's definition."""
    on_interest = ref(interest, structure)
    tax = ref(amount, structure) if structure == "direct" else on_interest
    return tax, on_interest, tax - on_interest


def net(entries: list[Entry], account: str) -> int:
    """debit − credit of ``account`` over ``entries`` (each checked against the chart first)."""
    for e in entries:
        check(load_chart(), e)
    return sum(li.debit - li.credit for e in entries for li in e.lines if li.account == account)


def taxes(rents: list[tuple[int, int]], structure: str = "direct") -> tuple[RentTax, ...]:
    rule = DIRECT if structure == "direct" else LEASEBACK
    return tuple(rent_tax(rule, a, i) for a, i in rents)


# -- an early settlement ----------------------------------------------------------------------------------------------
#: the rents a settlement replaces (amount, interest, fen): two rents and the final rent (all principal)
REPLACED = [(345_678, 41_234), (345_678, 20_517), (2_000_000, 0)]


def settlement(structure: str = "direct", **changes: object) -> Settled:
    # arrears paid 120; replaced rents' principal repaid and their interest waived; interest to the day 3,333, fee
    # 7,777, late charges 555; no deposit
    principal = sum(a - i for a, i in REPLACED)
    interest = sum(i for _, i in REPLACED)
    amount = 120 + principal + 3_333 + 7_777 + 555
    base: dict[str, object] = dict(
        amount_settled=amount, held=amount, deposit_offset=0, owed=120 + principal + interest,
        interest_replaced=interest, charges=555, accrued_interest=3_333, principal_difference=0, fee=7_777,
        kept_interest=9_000, recognised=8_000, rule=DIRECT if structure == "direct" else LEASEBACK,
        pending=taxes(REPLACED, structure))
    base.update(changes)
    return Settled("q1", "l1", "d1", DAY, **base)  # type: ignore[arg-type]


def test_a_settlement_taxes_its_own_charges_and_empties_the_replaced_rents_pending_vat() -> None:
    entries = settled(settlement())
    assert [(e.key, e.kind) for e in entries] == [
        ("settlement:q1", "settlement"), ("settlement:q1:vat", "vat_replaced"),
        ("income:l1:settlement:q1", "finance_income")]
    rents = [ref_rent(a, i) for a, i in REPLACED]
    own = ref(3_333) + ref(7_777) + ref(555)
    # Pending: every replaced rent's tax out; Output: the settlement's own tax and the replaced principal's
    assert net(entries, VAT_PENDING) == sum(t for t, _, _ in rents)
    assert net(entries, VAT_OUTPUT) == -(own + sum(p for _, _, p in rents))
    # the interest's share back to Unearned, which held the waived interest net: gross out, its tax back in
    assert net(entries, UNEARNED) == sum(i for _, i in REPLACED) - sum(i for _, i, _ in rents) + (9_000 - 8_000)
    assert net(entries, INTEREST) == -(3_333 - ref(3_333)) - (9_000 - 8_000)
    assert net(entries, FEES) == -(7_777 - ref(7_777))
    assert net(entries, LATE_CHARGES) == -(555 - ref(555))
    assert net(entries, VAT_INPUT) == 0
    assert sum(li.debit - li.credit for e in entries for li in e.lines) == 0


def test_a_leaseback_settlement_taxes_interest_only_and_never_the_principal() -> None:
    entries = settled(settlement("leaseback"))
    rents = [ref_rent(a, i, "leaseback") for a, i in REPLACED]
    assert all(p == 0 for _, _, p in rents)
    assert net(entries, VAT_PENDING) == sum(t for t, _, _ in rents)
    assert net(entries, VAT_OUTPUT) == -(ref(3_333, "leaseback") + ref(7_777, "leaseback") + ref(555, "leaseback"))
    assert net(entries, UNEARNED) == sum(i for _, i in REPLACED) - sum(t for t, _, _ in rents) + 1_000


def test_interest_given_back_in_advance_takes_its_tax_back_and_a_final_rent_already_taxed_gives_back_its_interest_s() \
        -> None:
    # in advance: the quote's principal difference gives back 5,000 of rent K's interest, more than the 1,200 accrued
    final_taxed = rent_tax(DIRECT, 2_030_000, 30_000)  # its due date came: its tax is in Output already
    rents_all = [*REPLACED[:2], (2_030_000, 30_000)]
    principal, interest = sum(a - i for a, i in rents_all), sum(i for _, i in rents_all)
    amount = 120 + principal + 1_200 - 5_000 + 7_777 + 555
    entries = settled(settlement(accrued_interest=1_200, principal_difference=-5_000, pending=taxes(REPLACED[:2]),
                                 taxed=(final_taxed,), amount_settled=amount, held=amount,
                                 owed=120 + principal + interest, interest_replaced=interest))
    rents = [ref_rent(a, i) for a, i in REPLACED[:2]]
    given_back = ref(1_200 - 5_000)
    assert given_back < 0
    assert net(entries, INTEREST) == -((1_200 - 5_000) - given_back) - 1_000
    assert net(entries, VAT_PENDING) == sum(t for t, _, _ in rents)
    # Output: the tax given back with the interest, the replaced principal taxed, the taxed final rent's interest share
    assert net(entries, VAT_OUTPUT) == -(given_back + ref(7_777) + ref(555) + sum(p for _, _, p in rents)) + ref(30_000)


def test_a_settlement_before_vat_posts_as_before() -> None:
    entries = settled(settlement(rule=None, pending=()))
    assert [e.key for e in entries] == ["settlement:q1", "income:l1:settlement:q1"]
    assert net(entries, VAT_OUTPUT) == 0 and net(entries, FEES) == -7_777


# -- a partial prepayment ---------------------------------------------------------------------------------------------
def test_a_prepayment_moves_the_pending_vat_to_the_new_schedule_and_taxes_the_principal_prepaid() -> None:
    before = [(345_678, 41_234), (345_678, 37_512), (345_678, 33_750), (2_000_000, 0)]
    # a shorter term: the principal of the rents after K less the 200,000 prepaid over two rents, the third cancelled
    after = [(362_269 + 30_111, 30_111), (362_269 + 15_300, 15_300), (0, 0), (2_000_000, 0)]
    assert sum(a - i for a, i in before) - sum(a - i for a, i in after) == 200_000
    p = Prepaid("p1", "l1", "d1", DAY, amount=200_000, accrued_interest=1_234, interest_dropped=67_085, excess=0,
                rule=DIRECT, before=taxes(before), after=taxes(after))
    entries = prepaid(p)
    assert [(e.key, e.kind) for e in entries] == [("prepayment:p1", "prepayment"),
                                                  ("prepayment:p1:vat", "vat_reamortised")]
    b, a = [ref_rent(*r) for r in before], [ref_rent(*r) for r in after]
    assert net(entries, VAT_PENDING) == sum(t for t, _, _ in b) - sum(t for t, _, _ in a)
    assert net(entries, VAT_OUTPUT) == -(ref(1_234) + sum(x for _, _, x in b) - sum(x for _, _, x in a))
    assert net(entries, UNEARNED) == 67_085 - (sum(i for _, i, _ in b) - sum(i for _, i, _ in a))
    assert net(entries, INTEREST) == -(1_234 - ref(1_234))
    assert net(entries, RECEIVABLE) == -(200_000 + 67_085)
    # the principal prepaid's tax, as the rents carry it: within a fen a rent of the lump sum's
    assert abs(-net(entries, VAT_OUTPUT) - ref(1_234) - ref(200_000)) <= len(before)
    # a negative interest line (interest paid ahead, credited): its tax comes off Output
    credit = prepaid(Prepaid("p2", "l1", "d1", DAY, amount=200_000, accrued_interest=-1_234, interest_dropped=0,
                             rule=DIRECT))
    assert net(credit, VAT_OUTPUT) == ref(1_234) and net(credit, INTEREST) == 1_234 - ref(1_234)


@given(st.lists(st.tuples(st.integers(0, 5_000_000), st.integers(0, 1_000_000)), min_size=1, max_size=6),
       st.lists(st.tuples(st.integers(0, 5_000_000), st.integers(0, 1_000_000)), min_size=1, max_size=6),
       st.sampled_from(["direct", "leaseback"]))
def test_a_re_amortisation_s_pending_vat_is_exactly_the_new_schedule_s(old: list[tuple[int, int]],
                                                                     new: list[tuple[int, int]],
                                                                     structure: str) -> None:
    rents_before = [(max(a, i), i) for a, i in old]
    rents_after = [(max(a, i), i) for a, i in new]
    entries = prepaid(Prepaid("p", "l", "d", DAY, amount=1, accrued_interest=0, interest_dropped=0,
                              before=taxes(rents_before, structure), after=taxes(rents_after, structure)))
    pending_before = sum(ref_rent(a, i, structure)[0] for a, i in rents_before)
    pending_after = sum(ref_rent(a, i, structure)[0] for a, i in rents_after)
    assert net(entries, VAT_PENDING) == pending_before - pending_after
    assert net(entries, VAT_OUTPUT) + net(entries, UNEARNED) + net(entries, VAT_PENDING) == 0


# -- the end of the term ----------------------------------------------------------------------------------------------
def test_the_end_of_term_s_charges_and_a_late_charge_the_deposit_pays_carry_their_vat() -> None:
    price = charged(9, "purchase_price", "l1", "d1", DAY, 1_000_000, DIRECT)
    assert price is not None
    assert net([price], VAT_OUTPUT) == -ref(1_000_000) == -115_044
    assert net([price], FEES) == -(1_000_000 - 115_044)
    assert net([price], "Assets:Receivable:Lessees") == 1_000_000
    charges = charged(10, "return_charges", "l1", "d1", DAY, 12_345, LEASEBACK)
    assert charges is not None and net([charges], VAT_OUTPUT) == -ref(12_345, "leaseback")
    applied = deposit_applied("l1", "d1", 8, "final_rent", DAY, principal=900, interest=50, penalty=1_234,
                              rule=DIRECT)
    assert applied is not None
    assert net([applied], LATE_CHARGES) == -(1_234 - ref(1_234)) and net([applied], VAT_OUTPUT) == -ref(1_234)
    assert net([applied], RECEIVABLE) == -950 and net([applied], DEPOSITS) == 2_184


def test_a_returned_car_takes_the_waived_final_rent_s_vat_out_of_pending_or_output() -> None:
    # the final rent: 2,030,000 of which 30,000 interest; 100,000 of it paid before (1,000 interest)
    whole, paid = rent_tax(DIRECT, 2_030_000, 30_000), rent_tax(DIRECT, 100_000, 1_000)
    waived = waived_tax(whole, paid)
    tax, on_interest = ref(2_030_000) - ref(100_000), ref(30_000) - ref(1_000)
    assert (waived.tax, waived.tax_on_interest, waived.tax_on_principal) == (tax, on_interest, tax - on_interest)
    entries = car_returned("l1", "d1", 8, DAY, principal=1_901_000, interest=29_000, earned=500, recognised=500,
                           waived=waived)
    assert [(e.key, e.kind) for e in entries] == [("car_returned:l1:8", "car_returned"),
                                                  ("car_returned:l1:8:vat", "vat_waived")]
    assert net(entries, VAT_PENDING) == tax
    # the car back at its principal less the principal's share of the tax (its cost without the VAT deducted)
    assert net(entries, VEHICLES_RETURNED) == 1_901_000 - (tax - on_interest)
    assert net(entries, UNEARNED) == 29_000 - on_interest
    assert net(entries, VAT_OUTPUT) == 0 and net(entries, VAT_INPUT) == 0
    # inspected after its due date: its tax point moved the tax to Output, which gives it back
    late = car_returned("l1", "d1", 8, DAY, principal=1_901_000, interest=29_000, earned=500, recognised=500,
                        waived=waived, taxed=True)
    assert net(late, VAT_OUTPUT) == tax and net(late, VAT_PENDING) == 0


# -- the origination's fees -------------------------------------------------------------------------------------------
def test_the_upfront_fees_are_income_net_and_their_refunds_give_back_exactly_the_tax_captured() -> None:
    parts = UpfrontParts(down_payment=3_000_000, fees=123_457, premiums=456_000, first_rent=345_678)
    made = captured("pay1", "upfront", parts.total, DAY, parts=parts, dealer_id="d1", rule=DIRECT)
    assert made is not None
    assert net([made], VAT_OUTPUT) == -ref(123_457) and net([made], FEES) == -(123_457 - ref(123_457))
    assert net([made], "Liabilities:Payable:Dealers") == -3_000_000
    # three refunds: part of the fees, the rest of them with some premiums, premiums only
    refunds, before = [], 0
    for n, amount in enumerate((50_001, 73_456 + 1_000, 10_000)):
        item = refunded(f"refund:{n}", "upfront", amount, DAY, before=before, parts=parts, rule=DIRECT)
        assert item is not None
        refunds.append(item)
        before += amount
    assert net(refunds[:1], VAT_OUTPUT) == ref(123_457) - ref(123_457 - 50_001)
    assert net(refunds, VAT_OUTPUT) == ref(123_457) and net([made, *refunds], FEES) == 0
    assert net(refunds[2:], VAT_OUTPUT) == 0 and net(refunds, "Liabilities:Payable:Insurers") == 11_000


def test_a_deduction_kept_from_the_deposit_or_a_hold_is_income_net_of_its_vat() -> None:
    kept = deposit_kept("app1", 12_345, DAY, dealer_id="d1", rule=DIRECT)
    assert kept is not None
    assert net([kept], DEPOSITS) == 12_345 and net([kept], VAT_OUTPUT) == -ref(12_345) == -1_420
    hold = captured("pay2", "hold", 5_000, DAY, kept=2_000, dealer_id="d1", rule=DIRECT)
    assert hold is not None
    assert net([hold], FEES) == -(2_000 - ref(2_000)) and net([hold], DEPOSITS) == -3_000
    assert net([hold], VAT_OUTPUT) == -ref(2_000)


def test_a_rent_s_tax_point_takes_the_rule_in_force_on_its_own_date_not_the_due_date_s() -> None:
    from books.vat import load_tax_policy
    from infra.vat_points import tax_point_of

    # a rent due 2019-04-10 (13%) received in full on 2019-03-29 (16%): its tax point is the receipt, its rule 16%
    made = tax_point_of(load_tax_policy(), "direct", 7, "L", "D", date(2019, 3, 29), date(2019, 4, 10), 11_600, 1_000)
    assert made is not None and made.value_date == date(2019, 3, 29)
    assert sum(li.credit for li in made.lines if li.account == VAT_OUTPUT) == 1_600  # 11,600 × 16/116


def test_a_receipt_taxes_each_rent_s_late_charge_on_its_own_as_the_rent_s_invoice_does() -> None:
    from books.lease import Applied
    from books.lease import receipt

    # one receipt pays two rents' 4 fen of late charges: each rent's 4 fen carries half_up(4 × 13/113) = 0, as each
    # rent's e-invoice line does (one rounding per rent and receipt), never one rounding of the 8 fen (1)
    made = receipt("r1", "L", "D", source="stripe", value_date=date(2026, 4, 20), amount=2 * (100_00 + 4),
                   applied=[Applied("rent", 90_00, 10_00, 4), Applied("rent", 90_00, 10_00, 4)])
    assert made is not None
    assert sum(li.credit - li.debit for li in made.lines if li.account == VAT_OUTPUT) == 0
    made = receipt("r2", "L", "D", source="stripe", value_date=date(2026, 4, 20), amount=2 * (100_00 + 9),
                   applied=[Applied("rent", 90_00, 10_00, 9), Applied("rent", 90_00, 10_00, 9)])
    assert made is not None  # 9 × 13/113 = 1.04 → 1 each
    assert sum(li.credit - li.debit for li in made.lines if li.account == VAT_OUTPUT) == 2
