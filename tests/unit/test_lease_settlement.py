"""The end of a lease's term and its settlement (bff/payments/machine.py): when the term ends, when the
security is in place, and what settling moves — never more than the deposit holds, never more than deducted; and the
amounts ops type on the closing and refund forms (bff/payments/forms.py)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bff.payments.forms import yuan_to_fen
from bff.payments.machine import SettlementPlan
from bff.payments.machine import add_months
from bff.payments.machine import deduction_limit
from bff.payments.machine import due_for_closing
from bff.payments.machine import hold_lapsed_unsecured
from bff.payments.machine import plan_settlement
from bff.payments.machine import secured
from bff.payments.machine import term_end


@pytest.mark.parametrize(("start", "months", "end"), [
    (date(2026, 3, 15), 36, date(2029, 3, 15)),  # the same calendar day, term months later
    (date(2026, 1, 31), 1, date(2026, 2, 28)),  # a shorter month: its last day
    (date(2027, 1, 31), 13, date(2028, 2, 29)),  # a leap year's February
    (date(2026, 11, 30), 3, date(2027, 2, 28)),  # across the year
    (date(2026, 12, 1), 12, date(2027, 12, 1)),
    (date(2028, 2, 29), 12, date(2029, 2, 28)),
])
def test_the_term_ends_on_the_same_day_term_months_after_the_handover(start: date, months: int, end: date) -> None:
    assert term_end(start, months) == end


def test_a_term_has_at_least_one_month() -> None:
    with pytest.raises(ValueError):
        term_end(date(2026, 1, 1), 0)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)), st.integers(1, 120))
def test_add_months_lands_in_the_right_month_never_later_in_it(start: date, months: int) -> None:
    end = add_months(start, months)
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
    assert end.day <= start.day and (end.day == start.day or end.day >= 28)


def test_a_lease_is_due_for_closing_from_its_end_day_on() -> None:
    ends = date(2029, 3, 15)
    assert not due_for_closing(ends, date(2029, 3, 14))
    assert due_for_closing(ends, ends)
    assert due_for_closing(ends, date(2030, 1, 1))


@pytest.mark.parametrize(("lines", "expected"), [
    ([("upfront", "succeeded"), ("deposit", "succeeded")], True),
    ([("upfront", "succeeded"), ("hold", "held")], True),
    ([("upfront", "succeeded"), ("deposit", "pending")], False),
    # the hold lapsed: a deposit of the same amount was added; either one paid secures the lease
    ([("upfront", "succeeded"), ("hold", "expired"), ("deposit", "pending")], False),
    ([("upfront", "succeeded"), ("hold", "expired"), ("deposit", "succeeded")], True),
    ([("upfront", "succeeded"), ("hold", "held"), ("deposit", "pending")], True),
    ([("upfront", "failed"), ("hold", "held")], False),
    ([], False),
])
def test_the_security_is_in_place_by_the_rule_of_check_ready(lines: list[tuple[str, str]], expected: bool) -> None:
    assert secured(lines) is expected


def test_without_a_deduction_the_whole_deposit_is_refunded_and_a_hold_released() -> None:
    assert plan_settlement(0, 1_000_000, 0) == SettlementPlan(refund=1_000_000, capture=0, release=False, uncovered=0)
    assert plan_settlement(0, 0, 1_000_000) == SettlementPlan(refund=0, capture=0, release=True, uncovered=0)
    assert plan_settlement(0, 0, 0) == SettlementPlan(refund=0, capture=0, release=False, uncovered=0)


def test_a_deduction_comes_out_of_the_deposit_first_then_out_of_a_live_hold() -> None:
    assert plan_settlement(123_45, 1_000_000, 0) == SettlementPlan(1_000_000 - 123_45, 0, False, 0)
    assert plan_settlement(1_000_000, 1_000_000, 0) == SettlementPlan(0, 0, False, 0)
    assert plan_settlement(300, 0, 1_000) == SettlementPlan(refund=0, capture=300, release=False, uncovered=0)
    assert plan_settlement(1_500, 1_000, 1_000) == SettlementPlan(refund=0, capture=500, release=False, uncovered=0)
    # more than is left (a refund by hand since the closing): the customer never pays more than the deduction
    assert plan_settlement(1_500, 1_000, 0) == SettlementPlan(refund=0, capture=0, release=False, uncovered=500)


def test_the_deduction_limit_is_the_security_still_held() -> None:
    assert deduction_limit(1_000, 0) == 1_000
    assert deduction_limit(0, 2_000) == 2_000
    assert deduction_limit(-5, -5) == 0
    with pytest.raises(ValueError):
        plan_settlement(-1, 1_000, 0)


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**9))
def test_settling_never_moves_more_than_held_nor_more_than_deducted(deduction: int, deposit: int, hold: int) -> None:
    plan = plan_settlement(deduction, deposit, hold)
    assert 0 <= plan.refund <= deposit
    assert 0 <= plan.capture <= hold
    assert not (plan.release and plan.capture)
    # what is kept plus what nothing covers is exactly the deduction
    assert (deposit - plan.refund) + plan.capture + plan.uncovered == deduction
    if deduction <= deduction_limit(deposit, hold):
        assert plan.uncovered == 0


@pytest.mark.parametrize(("lines", "expected"), [
    ([("upfront", "succeeded"), ("hold", "expired")], True),  # lapsed after the handover: nothing replaces it
    ([("upfront", "succeeded"), ("hold", "expired"), ("deposit", "pending")], True),
    ([("upfront", "succeeded"), ("hold", "expired"), ("deposit", "succeeded")], False),  # the deposit secures it
    ([("upfront", "succeeded"), ("hold", "held")], False),
    ([("upfront", "succeeded"), ("deposit", "succeeded")], False),
    ([], False),
])
def test_a_lapsed_hold_with_no_deposit_in_its_place_leaves_the_lease_unsecured(lines: list[tuple[str, str]],
                                                                               expected: bool) -> None:
    assert hold_lapsed_unsecured(lines) is expected


@pytest.mark.parametrize(("typed", "fen"), [
    ("123.45", 12_345), ("¥1,234.5", 123_450), ("￥ 7 ", 700), ("1e2", 10_000), ("1.230", 123), ("0", 0),
    ("10000000", 1_000_000_000),
])
def test_an_amount_in_yuan_of_at_most_two_decimals_is_fen(typed: str, fen: int) -> None:
    assert yuan_to_fen(typed) == fen


@pytest.mark.parametrize("typed", [
    "", "abc", "1.234", "0.001", "-5", "10000000.01",
    # Decimal parses these; 1e30 (and any amount past 28 digits) cannot even be quantized to fen
    "1e30", "1E+999999999", "-1e30", "1e-30", "1e-999999999", "NaN", "sNaN", "Infinity", "-Infinity",
    "1" * 40,
])
def test_what_is_not_an_amount_is_refused_never_an_error(typed: str) -> None:
    assert yuan_to_fen(typed) is None


def test_an_empty_field_and_the_least_amount_are_the_caller_s() -> None:
    assert yuan_to_fen("", blank=0) == 0 and yuan_to_fen("  ", blank=0) == 0  # a deduction left empty: none
    assert yuan_to_fen("0", least=1) is None and yuan_to_fen("0.01", least=1) == 1  # a refund: more than 0


def test_the_mortgage_release_is_opened_dated_the_day_the_settlement_was_paid() -> None:
    """servicing.settled (bff/servicing/settled.py) may run days after the settlement was paid (the worker away,
    retries), and the settlement day (the quote's, the lease's ``settled_on``) may be days after both (the contract's
    notice): the dealer's release task is dated the business date the payment was booked (the quote's ``paid_on``), so
    the release form's first day (the day it opened) is never after its last (the business date) — dated the future
    settlement day, the release could not be recorded until then. A quote paid before ``paid_on`` was kept: the
    business date the job runs on."""
    from types import SimpleNamespace
    from typing import Any

    from bff.servicing.settled import LeaseDocuments
    from infra.lease_documents import READY

    opened: list[tuple[str, str, date]] = []
    paid_on: list[date | None] = [date(2027, 6, 15)]

    class Repo:
        def lease(self, lease_id: str) -> Any:
            return SimpleNamespace(id=lease_id, dealer_id="d1", status="settled", settled_on=date(2027, 6, 22))

        def quote(self, quote_id: str) -> Any:
            return SimpleNamespace(id=quote_id, lease_id="L1", status="paid", paid_on=paid_on[0])

        def business_date(self) -> date:
            return date(2027, 6, 19)  # the job ran four days after the payment, three before the settlement day

        def open_release(self, lease_id: str, dealer_id: str, opened_on: date) -> bool:
            opened.append((lease_id, dealer_id, opened_on))
            return True

        def ensure(self, lease_id: str, kind: str, subject_id: str) -> Any:
            return SimpleNamespace(status=READY)  # the certificate signed already: nothing more to do

    documents = LeaseDocuments(Repo(), None, None, lambda _: None, lambda _: "")  # type: ignore[arg-type]
    documents.settled("L1", "Q1")
    paid_on[0] = None
    documents.settled("L1", "Q1")
    assert opened == [("L1", "d1", date(2027, 6, 15)), ("L1", "d1", date(2027, 6, 19))]
