"""The late charges a settlement books when it is paid (infra/settlements.py ``charges_owed``), without a database: the
quote counts them through its settlement day as the most that may be owed, but the lease is settled on the business
date its payment is booked, so only what is owed then is booked — those accrued and unpaid (a hand payment between the
quote and the settlement's paid part of them) and the days before the payment's day not yet accrued, never beyond the
settlement day; a rent paid with the settlement by its last day to pay is never late. Reckoned by hand on the lease
page's tests' lease (¥1,000.00 rents, 0.0493 % a day on the overdue rent) and calendar (1–3 May 2030 off)."""

from __future__ import annotations

from datetime import date

from infra.settlements import charges_owed
from infra.settlements import late_charges_through
from tests.unit.test_lease_page import CALENDAR
from tests.unit.test_lease_page import lease
from tests.unit.test_lease_page import rent

SETTLES_ON = date(2030, 5, 9)


def test_a_rent_paid_with_the_settlement_by_its_last_day_to_pay_owes_no_late_charge() -> None:
    # due 1 May (a holiday): its last day to pay is Monday 6 May; the quote for 9 May counts 7, 8 and 9 May
    due = rent(2, date(2030, 5, 1), state="due")
    assert late_charges_through(lease(), [due], SETTLES_ON, CALENDAR) == 148  # ¥1.479 → ¥1.48
    assert charges_owed(lease(), [due], date(2030, 5, 6), SETTLES_ON, CALENDAR) == 0  # paid on its last day
    assert charges_owed(lease(), [due], date(2030, 5, 2), SETTLES_ON, CALENDAR) == 0
    # paid on 7 May: late from 7 May, but a payment counts for its day (as the close counts it): nothing for it
    assert charges_owed(lease(), [due], date(2030, 5, 7), SETTLES_ON, CALENDAR) == 0
    # paid on 8 May with no close run since (still 'due'): 7 May only, ¥0.493 → ¥0.49
    assert charges_owed(lease(), [due], date(2030, 5, 8), SETTLES_ON, CALENDAR) == 49


def test_charges_accrued_by_the_close_count_as_they_stand_after_a_hand_payment() -> None:
    # overdue since 11 April, charged by the closes through 7 May (27 days: ¥1,000.00 × 0.000493 × 27 = ¥13.311 →
    # ¥13.31), ¥5.00 of it paid by hand after the quote (a hand payment goes to the late charge first)
    late = rent(
        1,
        date(2030, 4, 10),
        state="overdue",
        overdue_since=date(2030, 4, 11),
        penalty_through=date(2030, 5, 7),
        penalty_accrued=1_331,
        paid_penalty=500,
    )
    # the quote on 7 May counted all of it and 8, 9 May to come: ¥14.297 → ¥14.30 through 9 May
    assert 1_331 + late_charges_through(lease(), [late], SETTLES_ON, CALENDAR) == 1_430
    # paid on 8 May: what is unpaid of the charge accrued, nothing for 8 May itself
    assert charges_owed(lease(), [late], date(2030, 5, 8), SETTLES_ON, CALENDAR) == 1_331 - 500
    # a close that has not run for 8 May when it is paid on 9 May: 8 May is owed (¥13.804 − ¥13.311 → 1,380 − 1,331)
    assert charges_owed(lease(), [late], date(2030, 5, 9), SETTLES_ON, CALENDAR) == 1_331 - 500 + (1_380 - 1_331)


def test_never_beyond_the_settlement_day_and_waived_or_replaced_rents_owe_nothing() -> None:
    late = rent(
        1,
        date(2030, 4, 10),
        state="overdue",
        overdue_since=date(2030, 4, 11),
        penalty_through=date(2030, 4, 30),
        penalty_accrued=986,
    )  # 20 days: ¥9.86
    due = rent(2, date(2030, 5, 1), state="due")
    # booked on 12 May (a late answer for a payment started on the 9th): counted through 9 May only —
    # rent 1 through 9 May ¥14.30 in all, rent 2 for 7–9 May ¥1.48
    assert charges_owed(lease(), [late, due], date(2030, 5, 12), SETTLES_ON, CALENDAR) == 1_430 + 148
    waived = rent(
        3,
        date(2030, 4, 10),
        state="waived",
        overdue_since=date(2030, 4, 11),
        penalty_through=date(2030, 4, 30),
        penalty_accrued=986,
    )
    paid = rent(
        4,
        date(2030, 4, 10),
        state="paid",
        paid_principal=95_000,
        paid_interest=5_000,
        penalty_accrued=986,
        paid_penalty=986,
    )
    assert charges_owed(lease(), [waived, paid], date(2030, 5, 9), SETTLES_ON, CALENDAR) == 0
