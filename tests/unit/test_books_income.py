"""books/income.py: a lease's finance income by month — the schedule's interest spread by day, cumulative rounded
once — against an independent reference that walks the calendar day by day in exact fractions, for both timings, a
re-amortised schedule and a settled one; the effective-interest figure at the implicit rate beside it."""

from __future__ import annotations

from datetime import date
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from books.income import LeaseSchedule
from books.income import Rent
from books.income import half_up
from books.income import implicit_rate
from books.income import month_end
from books.income import month_income
from books.income import monthly_income
from books.income import recognised_through
from plans.money import fen as to_fen
from plans.quote import build_schedule
from plans.quote import level_rent
from plans.timeline import timeline

D = Decimal


def fen(amount: Decimal) -> int:
    return int(amount * 100)


def lease(start: date, principal: str, residual: str, term: int, rate: str, timing: str) -> LeaseSchedule:
    """A lease as the contract's schedule builds it (plans/quote.py), with its dated rents and the final rent."""
    p, b, r = D(principal), D(residual), D(rate)
    rows = build_schedule(p, b, term, r, timing, to_fen(level_rent(p, b, term, r, timing)))  # type: ignore[arg-type]
    dates = timeline(start, term, timing)  # type: ignore[arg-type]
    rents = [Rent(d, fen(row.interest), fen(row.payment)) for row, d in zip(rows, dates.rent_dates, strict=True)]
    rents.append(Rent(dates.ends_on, 0, fen(b)))
    return LeaseSchedule(start, dates.ends_on, timing, tuple(rents))


def reference(schedule: LeaseSchedule) -> dict[str, int]:
    """Day by day: each rent's interest ÷ its period's days added on every day of its period (arrears: the previous
    due date or the start up to the day before its own; advance: its due date up to the day before the next rent's or
    the end), the running total rounded half-up at each month's last day; a month's figure is the difference."""
    rents = sorted(schedule.rents, key=lambda r: r.due_on)
    per_day: dict[date, Fraction] = {}
    for k, rent in enumerate(rents):
        if schedule.timing == "advance":
            nxt = [r.due_on for r in rents[k + 1:] if r.due_on > rent.due_on]
            start, end = rent.due_on, nxt[0] if nxt else schedule.ends_on
        else:
            prev = [r.due_on for r in rents[:k] if r.due_on < rent.due_on]
            start, end = prev[-1] if prev else schedule.starts_on, rent.due_on
        days = (end - start).days
        if not rent.interest:
            continue
        if days == 0:
            per_day[start] = per_day.get(start, Fraction(0)) + rent.interest
            continue
        day = start
        while day < end:
            per_day[day] = per_day.get(day, Fraction(0)) + Fraction(rent.interest, days)
            day += timedelta(days=1)
    out: dict[str, int] = {}
    running, before = Fraction(0), 0
    day, last = schedule.starts_on, max(per_day)
    while True:
        running += per_day.get(day, Fraction(0))
        if (day + timedelta(days=1)).day == 1:
            now = int(running + Fraction(1, 2))
            out[f"{day.year:04d}-{day.month:02d}"] = now - before
            before = now
            if day >= last:
                return out
        day += timedelta(days=1)


@pytest.mark.parametrize("timing", ["arrears", "advance"])
def test_a_lease_month_by_month_matches_the_day_by_day_reference_to_the_fen(timing: str) -> None:
    s = lease(date(2026, 1, 31), "150000.00", "30000.00", 36, "0.0688", timing)
    months = monthly_income(s)
    assert {m.month: m.amount for m in months} == reference(s)
    assert sum(m.amount for m in months) == s.interest
    assert all(m.amount >= 0 for m in months)
    # the first month of a lease starting on the 31st earns one day in arrears; in advance rent 1 starts at once
    assert months[0].month == "2026-01" and months[0].amount > 0


def test_worked_by_hand() -> None:
    # two rents in arrears: 31 fen over 31 days (Jan 1 → Feb 1), 28 fen over 28 days (Feb 1 → Mar 1); 10 fen over 4 days
    # of a rent due on Mar 5 (Mar 1 → Mar 5)
    s = LeaseSchedule(date(2026, 1, 1), date(2026, 3, 5), "arrears",
                      (Rent(date(2026, 2, 1), 31, 100), Rent(date(2026, 3, 1), 28, 100),
                       Rent(date(2026, 3, 5), 10, 100)))
    assert [(m.month, m.amount) for m in monthly_income(s)] == [("2026-01", 31), ("2026-02", 28), ("2026-03", 10)]
    # one fen over three days: the month ends a third of the way in → 0, then the rest
    s = LeaseSchedule(date(2026, 1, 30), date(2026, 2, 2), "arrears", (Rent(date(2026, 2, 2), 1, 1),))
    assert [m.amount for m in monthly_income(s)] == [1, 0]  # 2/3 fen rounds up once, the month after takes 0
    s = LeaseSchedule(date(2026, 1, 31), date(2026, 2, 3), "arrears", (Rent(date(2026, 2, 3), 1, 1),))
    assert [m.amount for m in monthly_income(s)] == [0, 1]  # 1/3 fen rounds down


def test_a_month_is_the_rounded_cumulative_less_what_was_recognised() -> None:
    s = lease(date(2026, 3, 15), "100000.00", "0.00", 12, "0.08", "arrears")
    assert month_income(s, "2026-03", 0) == recognised_through(s, date(2026, 3, 31)) > 0
    assert month_income(s, "2026-04", recognised_through(s, date(2026, 3, 31))) == \
        recognised_through(s, date(2026, 4, 30)) - recognised_through(s, date(2026, 3, 31))
    # never negative (a re-amortisation left less than was recognised), never beyond Σ interest
    assert month_income(s, "2026-04", 10**9) == 0
    assert month_income(s, "2030-01", 0) == s.interest
    assert month_income(s, "2030-01", s.interest) == 0
    assert month_income(s, "2026-02", 0) == 0  # before the start


def test_a_re_amortised_schedule_spreads_what_it_holds_now() -> None:
    s = lease(date(2026, 1, 10), "120000.00", "20000.00", 24, "0.07", "arrears")
    rents = list(s.rents)
    # a shorter term after rent 6: rents 7–10 rewritten with less interest, 11–24 cancelled (zeroed)
    for k in range(6, 10):
        rents[k] = Rent(rents[k].due_on, rents[k].interest // 2, rents[k].amount)
    for k in range(10, 24):
        rents[k] = Rent(rents[k].due_on, 0, 0)
    after = LeaseSchedule(s.starts_on, s.ends_on, s.timing, tuple(rents))
    months = monthly_income(after)
    assert {m.month: m.amount for m in months} == {k: v for k, v in reference(after).items()}
    assert sum(m.amount for m in months) == after.interest < s.interest
    # recognised under the old schedule through a month end beyond what the new one holds there: that month and the
    # next give nothing back and take nothing more until the new spread catches up
    old = recognised_through(s, date(2026, 9, 30))
    assert old > recognised_through(after, date(2026, 9, 30))
    assert month_income(after, "2026-10", old) == max(0, recognised_through(after, date(2026, 10, 31)) - old)


def test_a_settled_lease_never_recognises_the_interest_waived() -> None:
    s = lease(date(2026, 1, 10), "80000.00", "0.00", 12, "0.07", "arrears")
    kept = tuple(r if r.due_on <= date(2026, 5, 20) else Rent(r.due_on, 0, 0) for r in s.rents)
    settled = LeaseSchedule(s.starts_on, s.ends_on, s.timing, kept)
    assert month_income(settled, "2027-12", 0) == sum(r.interest for r in s.rents[:4]) == settled.interest


@pytest.mark.parametrize("timing", ["arrears", "advance"])
def test_the_effective_figure_at_the_implicit_rate_differs_only_by_rounding(timing: str) -> None:
    s = lease(date(2026, 2, 28), "200000.00", "40000.00", 48, "0.0599", timing)
    principal = sum(r.amount for r in s.rents) - s.interest
    assert principal == 20_000_000
    assert implicit_rate(s, principal) * 12 == pytest.approx(0.0599, abs=1e-6)
    months = monthly_income(s, principal)
    assert sum(m.effective for m in months) == pytest.approx(s.interest, abs=2)
    assert max(abs(m.difference) for m in months) <= 48  # the schedule rounds each rent's interest to the fen
    assert all(m.difference == m.effective - m.amount for m in months)


def test_with_a_fee_the_difference_is_shown() -> None:
    s = lease(date(2026, 1, 1), "100000.00", "0.00", 12, "0.06", "arrears")
    principal = sum(r.amount for r in s.rents) - s.interest
    months = monthly_income(s, principal - 100_000)  # ¥1,000 of fees received: a smaller net investment
    assert sum(m.effective for m in months) == pytest.approx(s.interest + 100_000, abs=2)
    assert sum(m.difference for m in months) == pytest.approx(100_000, abs=2)
    assert months[0].difference > months[-1].difference > 0  # front-loaded, as the effective method is


def test_month_end_and_rounding() -> None:
    assert month_end("2028-02") == date(2028, 2, 29)
    assert month_end("2026-12") == date(2026, 12, 31)
    for bad in ("2026-13", "2026-1", "x"):
        with pytest.raises(ValueError):
            month_end(bad)
    assert half_up(Fraction(1, 2)) == 1 and half_up(Fraction(49, 100)) == 0 and half_up(Fraction(-1, 2)) == -1


@settings(max_examples=40, deadline=None)
@given(st.dates(date(2024, 1, 1), date(2030, 12, 31)), st.integers(3, 60), st.sampled_from(["arrears", "advance"]),
       st.integers(1_000_000, 50_000_000), st.integers(0, 40), st.integers(100, 2_400))
def test_any_lease_matches_the_reference(start: date, term: int, timing: str, principal: int, residual_pct: int,
                                         rate_bp: int) -> None:
    p = D(principal) / 100
    s = lease(start, f"{p:.2f}", f"{(p * residual_pct / 100).quantize(D('0.01')):.2f}", term,
              str(D(rate_bp) / 10_000), timing)
    months = monthly_income(s)
    assert {m.month: m.amount for m in months} == reference(s)
    assert sum(m.amount for m in months) == s.interest
