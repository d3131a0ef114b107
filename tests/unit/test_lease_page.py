"""The lease page's figures (bff/servicing/lease_page.py), without a database: the dated schedule the quote runs on
is the priced plan's to the fen, a rent paid ahead (in full or in part) is not charged again by the quote, the late
charges still to come through a settlement day follow the business calendar (a rent due on a holiday is late only
after the next business day) and add up with those accrued to the once-rounded total, and the settlement dates a
contract allows (its notice in working days, rent days only for older contracts, none left near the term's end) —
reckoned by hand on a calendar loaded for 2030 (1–3 May off, weekends by the rule)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from bff.servicing.lease_page import DateRefused
from bff.servicing.lease_page import dated
from bff.servicing.lease_page import late_charges_to_come
from bff.servicing.lease_page import quote
from bff.servicing.lease_page import settlement_date
from bff.servicing.lease_page import settlement_dates
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.servicing import lease_plan
from servicing.calendar import HOLIDAY
from servicing.calendar import CalendarDay
from servicing.calendar import calendar_of
from servicing.instalments import dated_schedule
from tests.common.leases import priced
from tests.integration.test_servicing_close import record

CALENDAR = calendar_of([CalendarDay(date(2030, 5, d), HOLIDAY, "劳动节") for d in (1, 2, 3)])


def lease(**overrides: object) -> LeaseRow:
    values: dict[str, object] = dict(
        id="l-1", application_id="a-1", starts_on=date(2030, 1, 15), ends_on=date(2031, 1, 15), term=12,
        timing="arrears", financed_amount=16_000_000, residual=0, deposit=1_000_000, nominal_rate=Decimal("0.0599"),
        late_fee_daily_rate=Decimal("0.000493"), late_fee_base="overdue_amount", grace_days=0,
        default_cost_cap=Decimal("0.24"), settlement_any_day=True, settlement_fee_rate=Decimal("0.03"),
        settlement_day_count="ACT/360", settlement_notice_working_days=5, status="active")
    values.update(overrides)
    return LeaseRow(**values)


def rent(number: int, due_on: date, amount: int = 100_000, **overrides: object) -> InstalmentRow:
    values: dict[str, object] = dict(
        number=number, kind="rent", due_on=due_on, amount=amount, principal=amount - 5_000, interest=5_000,
        state="pending", paid_principal=0, paid_interest=0, paid_penalty=0, waived=0, penalty_accrued=0)
    values.update(overrides)
    return InstalmentRow(**values)


def test_the_quote_runs_on_the_priced_plan_s_dated_schedule_to_the_fen() -> None:
    starts_on = date(2028, 1, 31)  # rents on month ends, 29 February among them
    plan = lease_plan(record(starts_on, residual_ratio="0.2"))
    row = lease(starts_on=plan.starts_on, ends_on=plan.ends_on,
                financed_amount=int(Decimal(plan.terms["financed_amount"]) * 100),
                residual=int(Decimal(plan.terms["residual"]) * 100))
    rows = [InstalmentRow(number=i.number, kind=i.kind, due_on=i.due_on, amount=i.amount, principal=i.principal,
                          interest=i.interest) for i in plan.instalments]
    assert dated(row, rows) == dated_schedule(priced(), starts_on)


def test_late_charges_to_come_follow_the_business_calendar_and_the_once_rounded_total() -> None:
    # rent due on 1 May 2030, a holiday: its last day to pay is Monday 6 May, late from Tuesday 7 May
    due = rent(2, date(2030, 5, 1), state="due")
    assert late_charges_to_come(lease(), [due], date(2030, 5, 6), CALENDAR) == 0
    # 7, 8, 9 May: ¥1,000.00 × 0.000493 × 3 = ¥1.479 → ¥1.48
    assert late_charges_to_come(lease(), [due], date(2030, 5, 9), CALENDAR) == 148
    # overdue since 11 April, charged through 30 April (20 days: ¥9.86); through 9 May it is 29 days: ¥14.297 → ¥14.30
    late = rent(1, date(2030, 4, 10), state="overdue", overdue_since=date(2030, 4, 11),
                penalty_through=date(2030, 4, 30), penalty_accrued=986)
    assert late_charges_to_come(lease(), [late, due], date(2030, 5, 9), CALENDAR) == (1430 - 986) + 148
    # what was paid counts: half the rent paid leaves half to charge (¥500.00 × 0.000493 × 3 = ¥0.7395 → ¥0.74)
    half = rent(2, date(2030, 5, 1), state="partly_paid", paid_interest=5_000, paid_principal=45_000)
    assert late_charges_to_come(lease(), [half], date(2030, 5, 9), CALENDAR) == 74
    # paid, waived, or not due by the day: nothing
    paid = rent(2, date(2030, 5, 1), state="paid", paid_interest=5_000, paid_principal=95_000)
    waived = rent(3, date(2030, 5, 1), state="waived")
    later = rent(4, date(2030, 5, 10), state="pending")
    assert late_charges_to_come(lease(), [paid, waived, later], date(2030, 5, 9), CALENDAR) == 0


def test_the_settlement_dates_the_contract_allows() -> None:
    rows = [rent(n, date(2030, n, 15)) for n in range(1, 13)]
    business_date = date(2030, 5, 16)  # Thursday: 5 working days on is Thursday 23 May
    dates = settlement_dates(lease(), rows, business_date, CALENDAR)
    assert (dates.earliest, dates.latest, dates.rent_days) == (date(2030, 5, 23), date(2031, 1, 14), None)
    assert settlement_date("2030-05-23", dates) == date(2030, 5, 23)
    for typed, code in (("2030-05-22", "range"), ("2031-01-15", "range"), ("23/05/2030", "date"), ("", "date")):
        with pytest.raises(DateRefused) as refused:
            settlement_date(typed, dates)
        assert refused.value.error.code == code and refused.value.error.field == "settle_on", typed

    # an older contract settles on rent days only: the first after the notice is 15 June
    legacy = settlement_dates(lease(settlement_any_day=False), rows, business_date, CALENDAR)
    assert legacy.earliest == date(2030, 6, 15) and legacy.rent_days and legacy.rent_days[0] == date(2030, 6, 15)
    assert settlement_date("2030-07-15", legacy) == date(2030, 7, 15)
    with pytest.raises(DateRefused) as refused:
        settlement_date("2030-06-14", legacy)
    assert refused.value.error.code == "rent_day"

    # near the term's end nothing is early any more: from its last day on it is the end of the term
    assert settlement_dates(lease(ends_on=date(2030, 5, 24)), rows, business_date, CALENDAR).earliest == date(
        2030, 5, 23)
    ended = settlement_dates(lease(ends_on=date(2030, 5, 23)), rows, business_date, CALENDAR)
    assert ended.earliest is None
    with pytest.raises(DateRefused) as refused:
        settlement_date("2030-05-22", ended)
    assert refused.value.error.code == "too_late"


def test_a_rent_paid_ahead_is_not_charged_again_by_the_settlement_quote() -> None:
    """Rent 4 paid ahead in full and rent 5 in part (interest first, as the policy allocates): the quote on 20 April
    (after rent 3's day, before rent 4's) counts their principal paid off the outstanding principal before the interest
    and the fee, and gives back the interest paid ahead as its own line — reckoned by hand below."""
    plan = lease_plan(record(date(2030, 1, 15), residual_ratio="0.2"))
    row = lease(starts_on=plan.starts_on, ends_on=plan.ends_on,
                financed_amount=int(Decimal(plan.terms["financed_amount"]) * 100),
                residual=int(Decimal(plan.terms["residual"]) * 100))

    def rows(paid_ahead: bool) -> list[InstalmentRow]:
        made = [rent(i.number, i.due_on, i.amount, kind=i.kind, principal=i.principal, interest=i.interest)
                for i in plan.instalments]
        for r in made[:4 if paid_ahead else 3]:
            r.state, r.paid_principal, r.paid_interest = "paid", r.principal, r.interest
        if paid_ahead:  # rent 5: its interest and 300.00 yuan of its principal (it stays pending until due)
            made[4].paid_interest, made[4].paid_principal = made[4].interest, 30_000
        return made

    on, no = date(2030, 4, 20), CALENDAR
    before, after = quote(row, rows(False), on, no), quote(row, rows(True), on, no)
    four, five = rows(True)[3:5]
    principal_ahead = four.principal + 30_000  # fen
    interest_ahead = four.interest + five.interest
    # by hand, in fen: the principal less what was paid ahead, 5 days of interest on it (ACT/360, 5.99 %), 3 % fee
    outstanding = int(before.outstanding_principal * 100) - principal_ahead
    interest = (2 * outstanding * 599 * 5 + 360 * 10_000) // (2 * 360 * 10_000)
    fee = (2 * outstanding * 3 + 100) // 200
    assert after.outstanding_principal == Decimal(outstanding) / 100
    assert (after.accrued_interest, after.early_settlement_fee) == (Decimal(interest) / 100, Decimal(fee) / 100)
    [credit] = [line for line in after.lines if line.code == "paid_ahead"]
    assert credit.amount == -Decimal(interest_ahead) / 100 and credit.label_zh == "已提前支付的租金"
    assert after.amount_due == (Decimal(outstanding + interest + fee - interest_ahead) / 100
                                + after.arrears + after.penalties - after.deposit_offset)
    assert after.amount_due < before.amount_due - Decimal(principal_ahead + interest_ahead) / 100
    assert not [line for line in before.lines if line.code == "paid_ahead"]  # nothing paid ahead: no such line
