"""Credit reporting, pure (issue 18 §7): the month's status record of a lease across month ends (February, a leap
year), the legend's repayment status character, the rule that an overdue rent is reported only after its notice,
settled and ended leases' last record, and the file's yuan."""

from __future__ import annotations

import json
from datetime import date
from datetime import timedelta

import pytest

from servicing.credit_report import LAYOUT
from servicing.credit_report import InstalmentFacts
from servicing.credit_report import LeaseFacts
from servicing.credit_report import Movement
from servicing.credit_report import Period
from servicing.credit_report import PeriodError
from servicing.credit_report import Subject
from servicing.credit_report import notice_day
from servicing.credit_report import period_ended_by
from servicing.credit_report import render_file
from servicing.credit_report import status_character
from servicing.credit_report import status_record

ONE_DAY = timedelta(days=1)
#: 12 rents of 1 000.00 (800.00 principal) and a final rent of 2 400.00; 12 000.00 financed
RENT, PRINCIPAL, FINAL = 100_000, 80_000, 240_000


def paid(on: date, fen: int = RENT, principal: int = PRINCIPAL) -> Movement:
    return Movement(on, "payment", -principal, -(fen - principal), 0)


def lease(starts_on: date = date(2028, 1, 31), *, paid_through: int = 0, late: dict[int, date] | None = None,
          extra: dict[int, tuple[Movement, ...]] | None = None, status: str = "active",
          closed_on: date | None = None) -> LeaseFacts:
    """Rents in arrears due on the 31st, month ends clamped (29 February in 2028); rents 1…paid_through paid on their
    day; ``late``: rent → first overdue day (unpaid unless ``extra`` pays it)."""
    dues = [date(2028, m, 1) for m in range(2, 13)] + [date(2029, 1, 1)]
    dues = [(d.replace(day=28) + timedelta(days=4)).replace(day=1) - ONE_DAY for d in dues]  # month ends
    rents = []
    for n, due in enumerate(dues, start=1):
        moves = (paid(due),) if n <= paid_through else ()
        rents.append(InstalmentFacts(n, due, RENT, PRINCIPAL, (late or {}).get(n), moves + (extra or {}).get(n, ())))
    rents.append(InstalmentFacts(13, dues[-1], FINAL, FINAL, None, ()))
    return LeaseFacts("LL-2028-0001", starts_on, dues[-1], 12 * PRINCIPAL + FINAL, status, closed_on, tuple(rents))


def test_periods_parse_and_know_their_month_ends_in_leap_years() -> None:
    assert Period.parse("2028-02").last == date(2028, 2, 29)
    assert Period.parse("2027-02").last == date(2027, 2, 28)
    assert str(Period.parse("2026-12")) == "2026-12" and Period(2026, 1).previous() == Period(2025, 12)
    for bad in ("2026-13", "2026-4", "26-04", "2026/04", "", "2026-04-01"):
        with pytest.raises(PeriodError):
            Period.parse(bad)
    assert notice_day(Period(2028, 2)) == date(2028, 2, 22)
    assert period_ended_by(date(2028, 3, 1)) == Period(2028, 2)
    assert period_ended_by(date(2029, 1, 1)) == Period(2028, 12)
    assert period_ended_by(date(2028, 3, 2)) is None


@pytest.mark.parametrize(("days", "char"), [(1, "1"), (30, "1"), (31, "2"), (60, "2"), (61, "3"), (150, "5"),
                                            (151, "6"), (180, "6"), (181, "7"), (900, "7")])
def test_the_legend_s_digit_counts_thirty_days_a_step(days: int, char: str) -> None:
    assert status_character(days) == char


def test_the_opening_month_has_nothing_due_and_a_paid_month_is_normal() -> None:
    opened = status_record(lease(), Period(2028, 1), noticed=False)
    assert opened is not None
    assert (opened.repayment_status, opened.account_status, opened.amount_due, opened.balance) == (
        "*", "normal", 0, 12 * PRINCIPAL + FINAL)
    assert status_record(lease(), Period(2027, 12), noticed=False) is None  # before the term: no record
    feb = status_record(lease(paid_through=1), Period(2028, 2), noticed=False)
    assert feb is not None
    assert (feb.repayment_status, feb.amount_due, feb.amount_paid, feb.balance, feb.overdue_periods) == (
        "N", RENT, RENT, 11 * PRINCIPAL + FINAL, 0)


def test_a_payment_after_the_month_end_does_not_change_the_month_s_record() -> None:
    """Rent 1 (due 29 Feb 2028) paid on 1 March: unpaid at February's end, though not yet overdue (its first overdue
    day is 1 March): February's record is normal with nothing paid; March's shows the payment."""
    late_payer = lease(late={1: date(2028, 3, 1)}, extra={1: (paid(date(2028, 3, 1)),)})
    feb = status_record(late_payer, Period(2028, 2), noticed=True)
    march = status_record(late_payer, Period(2028, 3), noticed=True)
    assert feb is not None and march is not None
    assert (feb.repayment_status, feb.amount_paid, feb.overdue_periods, feb.balance) == ("N", 0, 0, 12 * PRINCIPAL
                                                                                         + FINAL)
    assert (march.repayment_status, march.amount_paid, march.amount_due) == ("N", RENT, RENT)


def test_an_overdue_rent_is_reported_only_once_its_lessee_was_told_before_the_notice_day() -> None:
    """Rent 2 (due 31 March) unpaid, overdue from 1 April: in April it was overdue on the notice day (23 April) —
    reported ``1`` when the notice was sent, withheld (``N``) when not; rent 3 (due 30 April) is unpaid at the month
    end but not overdue yet."""
    behind = lease(paid_through=1, late={2: date(2028, 4, 1)})
    told = status_record(behind, Period(2028, 4), noticed=True)
    untold = status_record(behind, Period(2028, 4), noticed=False)
    assert told is not None and untold is not None
    assert (told.repayment_status, told.account_status, told.overdue_periods, told.overdue_amount) == (
        "1", "overdue", 1, RENT)
    assert (untold.repayment_status, untold.account_status, untold.overdue_periods, untold.withheld_overdue) == (
        "N", "normal", 0, 1)
    assert told.balance == untold.balance == 11 * PRINCIPAL + FINAL


def test_a_rent_fallen_overdue_after_the_notice_day_waits_for_the_next_month() -> None:
    """Overdue from 24 February 2028 (after the notice day, 22 February): not reported in February even though the
    lease was told (of something else); in March, still unpaid, it is 37 days past due: ``2``, its principal in the
    31–60 column."""
    behind = lease(late={1: date(2028, 2, 24)})
    feb = status_record(behind, Period(2028, 2), noticed=True)
    march = status_record(behind, Period(2028, 3), noticed=True)
    assert feb is not None and march is not None
    assert (feb.repayment_status, feb.overdue_periods, feb.withheld_overdue) == ("N", 0, 1)
    assert (march.repayment_status, march.overdue_periods, march.overdue_principal_31_60) == ("2", 1, PRINCIPAL)


def test_buckets_of_overdue_principal_and_a_part_payment() -> None:
    """Rent 1 overdue from 1 March 2028, 50.00 of its principal paid: by 31 July it is 153 days past due (``6``), its
    unpaid principal in 91–180; rent 2 (from 1 April, 122 days) too; rent 3 (1 May, 92 days): 91–180; rent 4 (1 June,
    61 days): 61–90; rent 5 (1 July, 31 days): 31–60."""
    behind = lease(late={1: date(2028, 3, 1), 2: date(2028, 4, 1), 3: date(2028, 5, 1), 4: date(2028, 6, 1),
                         5: date(2028, 7, 1)},
                   extra={1: (Movement(date(2028, 3, 10), "payment", -5_000, 0, 0),)})
    july = status_record(behind, Period(2028, 7), noticed=True)
    assert july is not None
    assert july.repayment_status == "6" and july.overdue_periods == 5
    assert july.overdue_principal_91_180 == (PRINCIPAL - 5_000) + PRINCIPAL + PRINCIPAL
    assert july.overdue_principal_61_90 == PRINCIPAL
    assert july.overdue_principal_31_60 == PRINCIPAL  # rent 5: 31 days on 31 July
    assert july.overdue_amount == 5 * RENT - 5_000
    assert july.overdue_principal_over_180 == 0


def test_a_settled_lease_reports_c_in_its_month_and_nothing_after() -> None:
    settled_on = date(2028, 5, 15)
    payoff = Movement(settled_on, "settlement", -(9 * PRINCIPAL + FINAL), 0, 0)
    done = lease(paid_through=3, extra={13: (payoff,)}, status="settled", closed_on=settled_on)
    # the settlement pays the final rent's principal and the rents not yet due are waived off the schedule
    done = LeaseFacts(done.contract_number, done.starts_on, done.ends_on, done.financed_amount, done.status,
                      done.closed_on, tuple(i if i.number <= 3 else InstalmentFacts(
                          i.number, i.due_on, i.amount, i.principal, None,
                          (Movement(settled_on, "settlement" if i.number == 13 else "waiver", -i.principal,
                                    -(i.amount - i.principal), 0),)) for i in done.instalments),
                      (Movement(settled_on, "settlement_fee", 0, 0, -3_000),))
    april = status_record(done, Period(2028, 4), noticed=False)
    may = status_record(done, Period(2028, 5), noticed=False)
    assert april is not None and may is not None
    assert april.repayment_status == "N" and april.closed_on is None
    assert (may.repayment_status, may.account_status, may.balance, may.closed_on) == ("C", "settled", 0, settled_on)
    assert may.amount_paid == FINAL + 3_000  # the settlement and its fee paid; the waived rents are not payments
    assert status_record(done, Period(2028, 6), noticed=False) is None


def test_an_ended_lease_with_rent_still_owed_reports_g() -> None:
    ended = lease(paid_through=11, late={12: date(2029, 1, 1)}, status="ended", closed_on=date(2029, 1, 10))
    record = status_record(ended, Period(2029, 1), noticed=True)
    assert record is not None
    assert (record.repayment_status, record.account_status) == ("G", "ended")


def test_the_file_carries_yuan_with_two_decimals_the_subject_and_a_provisional_layout() -> None:
    record = status_record(lease(paid_through=1), Period(2028, 2), noticed=False)
    assert record is not None
    body = render_file(Period(2028, 2), "领航融资租赁有限公司", [(record, Subject("韩梅梅", "11010519491231002X"))])
    document = json.loads(body)
    assert document["layout"] == LAYOUT and document["provisional"] is True and document["as_of"] == "2028-02-29"
    (line,) = document["records"]
    assert line["name"] == "韩梅梅" and line["id_number"] == "11010519491231002X"
    assert (line["balance"], line["amount_due"], line["financed_amount"]) == ("11200.00", "1000.00", "12000.00")
    assert line["open_date"] == "2028-01-31" and line["repayment_status"] == "N" and "withheld_overdue" not in line
    assert render_file(Period(2028, 2), "领航融资租赁有限公司",
                       [(record, Subject("韩梅梅", "11010519491231002X"))]) == body


def test_a_settlement_the_deposit_more_than_covers_reports_what_paid_the_debt_never_a_negative_amount() -> None:
    # two rents of ¥1,000 (¥990 principal) left, deposit ¥5,000: the quote is a refund (infra/settlements.py books the
    # deposit as a + line so that the lines add up to the amount due): the deposit paid the debt, as at end of term
    settled_on = date(2028, 6, 10)
    gone = (Movement(settled_on, "settlement", -99_000, 0, 0), Movement(settled_on, "waiver", 0, -1_000, 0))
    rents = (InstalmentFacts(1, date(2028, 5, 31), 100_000, 99_000, None,
                             (Movement(date(2028, 5, 31), "payment", -99_000, -1_000, 0),)),
             InstalmentFacts(2, date(2028, 6, 30), 100_000, 99_000, None, gone),
             InstalmentFacts(3, date(2028, 7, 31), 100_000, 99_000, None, gone))
    own = (Movement(settled_on, "settlement_interest", 0, -500, 0),
           Movement(settled_on, "settlement_fee", 0, 0, -5_940),
           Movement(settled_on, "settlement_deposit", 500_000, 0, 0))
    facts = LeaseFacts("LL-1", date(2028, 4, 30), date(2028, 7, 31), 297_000, "settled", settled_on, rents, own)
    june = status_record(facts, Period(2028, 6), noticed=False)
    assert june is not None and june.repayment_status == "C"
    assert june.amount_paid == 2 * 99_000 + 500 + 5_940  # the principal settled, its interest and the fee
    # a deposit line with nothing else paid in the month: nothing paid, never less
    alone = LeaseFacts("LL-1", date(2028, 4, 30), date(2028, 7, 31), 297_000, "settled", settled_on,
                       rents[:1], (Movement(settled_on, "settlement_deposit", 500_000, 0, 0),))
    record = status_record(alone, Period(2028, 6), noticed=False)
    assert record is not None and record.amount_paid == 0
