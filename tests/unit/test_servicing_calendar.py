"""China's business-day calendar (servicing/calendar.py): the published years from chinese-calendar, the days ops load,
and beyond both the weekend rule; when a rent becomes late. The dates are the State Council's notices' own
(国办发明电〔2024〕12号 for 2025, 国办发明电〔2025〕7号 for 2026), not read back from the package."""

from __future__ import annotations

from datetime import date

import pytest

from servicing.calendar import PACKAGE_YEARS
from servicing.calendar import BusinessCalendar
from servicing.calendar import CalendarDay
from servicing.calendar import CalendarFileError
from servicing.calendar import calendar_of
from servicing.calendar import parse_calendar_csv

CHINA = BusinessCalendar()


def test_published_holidays_and_make_up_working_days_of_2025_and_2026() -> None:
    # 2025 National Day and Mid-Autumn: 1–8 October off, Sunday 28 September and Saturday 11 October worked
    assert not CHINA.is_business_day(date(2025, 10, 8))  # a Wednesday
    assert CHINA.is_business_day(date(2025, 9, 28)) and CHINA.is_business_day(date(2025, 10, 11))
    assert CHINA.is_business_day(date(2025, 10, 9))
    # 2026 Spring Festival: 15–23 February off, Saturdays 14 and 28 February worked
    assert not CHINA.is_business_day(date(2026, 2, 16))  # a Monday
    assert CHINA.is_business_day(date(2026, 2, 14)) and CHINA.is_business_day(date(2026, 2, 28))
    assert CHINA.source(date(2026, 2, 14)) == "package"


def test_a_rent_due_in_a_holiday_may_be_paid_on_the_first_business_day_after_it() -> None:
    # due on Sunday 15 February 2026 (the eve of the Spring Festival break): payable until Tuesday 24 February
    assert CHINA.last_day_to_pay(date(2026, 2, 15), 0) == date(2026, 2, 24)
    # due on a business day: that day; with 2 days' grace over a weekend: the Tuesday after
    assert CHINA.last_day_to_pay(date(2026, 3, 6), 0) == date(2026, 3, 6)
    assert CHINA.last_day_to_pay(date(2026, 3, 6), 2) == date(2026, 3, 10)
    # a make-up Saturday is a business day: a rent due on it is late the day after
    assert CHINA.last_day_to_pay(date(2026, 2, 28), 0) == date(2026, 2, 28)


def test_beyond_the_published_years_the_rule_is_monday_to_friday() -> None:
    beyond = max(PACKAGE_YEARS) + 1
    first = date(beyond, 1, 1)
    assert CHINA.source(first) == "rule" and not CHINA.published(beyond)
    for offset in range(14):
        day = date.fromordinal(first.toordinal() + offset)
        assert CHINA.is_business_day(day) == (day.weekday() < 5)
    assert CHINA.source(date(min(PACKAGE_YEARS) - 1, 6, 1)) == "rule"


def test_a_year_ops_loaded_replaces_the_rule_and_the_package() -> None:
    beyond = max(PACKAGE_YEARS) + 1
    text = ("date,kind,name\n"
            f"{beyond}-01-01,holiday,元旦\n"
            f"{beyond}-02-06,workday,春节调休\n"  # whatever weekday it falls on, ops' file says it is worked
            "# comments and blank lines are ignored\n\n"
            f"{beyond}-02-08,休\n")
    days = parse_calendar_csv(text)
    assert [d.kind for d in days] == ["holiday", "workday", "holiday"] and days[0].name == "元旦"
    loaded = calendar_of(days)
    assert loaded.published(beyond) and loaded.source(date(beyond, 3, 3)) == "loaded"
    assert not loaded.is_business_day(date(beyond, 1, 1)) and loaded.is_business_day(date(beyond, 2, 6))
    assert not loaded.is_business_day(date(beyond, 2, 8))
    # a published year ops load is their file's year: it overrides the package, its other days by the rule
    mine = calendar_of([CalendarDay(date(2026, 2, 16), "workday")])
    assert mine.is_business_day(date(2026, 2, 16)) and mine.is_business_day(date(2026, 2, 17))
    assert not mine.is_business_day(date(2026, 2, 21)) and mine.source(date(2026, 7, 1)) == "loaded"


@pytest.mark.parametrize(("text", "line"), [
    ("2027-01-01,holiday\n2027-13-01,holiday\n", 2),
    ("2027-01-01,festival\n", 1),
    ("2027-01-01\n", 1),
    ("2027-01-01,holiday\n2027-01-01,workday\n", 2),
    ("# nothing\n", 0),
])
def test_a_calendar_file_that_cannot_be_loaded_names_its_line(text: str, line: int) -> None:
    with pytest.raises(CalendarFileError) as caught:
        parse_calendar_csv(text)
    assert caught.value.line == line
