"""China's business-day calendar (工作日) for the servicing of leases: when a rent that falls due is late.

Three sources, the first that knows a day wins:

1. the days ops loaded from a year's published calendar (国务院办公厅关于放假安排的通知, published each November for
   the next year: ``leaseline servicing calendar load FILE``, a CSV of ``date,kind`` lines, ``kind`` ``holiday`` for
   a weekday off (休) or ``workday`` for a weekend worked (班, 调休)) — a year ops loaded is a published year;
2. the ``chinese-calendar`` package, which ships the published years it knows (:data:`PACKAGE_YEARS`: 2004–2026 in
   1.11.0) with each holiday's and make-up working day's name;
3. beyond both, the rule: Monday to Friday are business days, Saturday and Sunday are not. It is right for most
   days of a year not yet published (the National Day, Spring Festival and other holidays are not in it: load the
   year's calendar when the State Council publishes it; ``leaseline servicing date`` warns while the next year is
   missing).

Pure: the standard library and chinese-calendar only (no I/O); the loaded days are passed in.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import timedelta

import chinese_calendar  # type: ignore[import-untyped]  # the package ships no type information
from chinese_calendar import constants as _published

HOLIDAY, WORKDAY = "holiday", "workday"
KINDS = (HOLIDAY, WORKDAY)
#: the years whose official calendar the installed chinese-calendar package ships
PACKAGE_YEARS = range(min(d.year for d in _published.holidays), max(d.year for d in _published.holidays) + 1)
#: the most days a rent's last day can move past its due day (Spring Festival and National Day: 8 days off at most)
MAX_SEARCH_DAYS = 31


class CalendarFileError(ValueError):
    """A calendar file that cannot be loaded: ``line`` (1-based) and what is wrong with it."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line, self.message = line, message


@dataclass(frozen=True)
class CalendarDay:
    """A day as a calendar file states it: ``kind`` holiday or workday, with an optional name."""

    day: date
    kind: str
    name: str = ""


@dataclass(frozen=True)
class BusinessCalendar:
    """Which days are business days. ``loaded``: the days ops loaded (a day → ``True`` if it is a business day);
    ``loaded_years``: the years whose calendar ops loaded (each counts as published, its other days by the rule)."""

    loaded: Mapping[date, bool] = field(default_factory=dict)
    loaded_years: frozenset[int] = frozenset()

    def source(self, day: date) -> str:
        """Where the answer for ``day`` comes from: ``loaded``, ``package`` or ``rule``."""
        if day in self.loaded or day.year in self.loaded_years:
            return "loaded"
        return "package" if day.year in PACKAGE_YEARS else "rule"

    def is_business_day(self, day: date) -> bool:
        """Whether ``day`` is a business day in mainland China (a make-up Saturday is, a holiday Monday is not)."""
        if day in self.loaded:
            return self.loaded[day]
        if day.year in PACKAGE_YEARS and day.year not in self.loaded_years:
            return bool(chinese_calendar.is_workday(day))
        return day.weekday() < 5

    def on_or_after(self, day: date) -> date:
        """The first business day on or after ``day``."""
        for offset in range(MAX_SEARCH_DAYS + 1):
            candidate = day + timedelta(days=offset)
            if self.is_business_day(candidate):
                return candidate
        raise ValueError(f"no business day within {MAX_SEARCH_DAYS} days of {day.isoformat()}")

    def add_business_days(self, day: date, count: int) -> date:
        """The ``count``-th business day after ``day`` (``day`` itself for 0)."""
        if count < 0:
            raise ValueError("count must not be negative")
        found = day
        for _ in range(count):
            found = self.on_or_after(found + timedelta(days=1))
        return found

    def last_day_to_pay(self, due_on: date, grace_days: int) -> date:
        """The last day a rent due on ``due_on`` may be paid without being late: its due day, moved to the next business
        day when it is not one (a bank's direct debit runs on business days), then ``grace_days`` business days more.
        The rent is overdue, and the late charge runs (自逾期之日起), from the calendar day after it."""
        return self.add_business_days(self.on_or_after(due_on), grace_days)

    def published(self, year: int) -> bool:
        """Whether the official calendar of ``year`` is known (shipped by the package or loaded by ops)."""
        return year in PACKAGE_YEARS or year in self.loaded_years


def calendar_of(days: Iterable[CalendarDay]) -> BusinessCalendar:
    """The calendar with ``days`` loaded (as read back from the database)."""
    listed = list(days)
    return BusinessCalendar({d.day: d.kind == WORKDAY for d in listed}, frozenset(d.day.year for d in listed))


def parse_calendar_csv(text: str) -> list[CalendarDay]:
    """The days of a calendar file: ``date,kind[,name]`` per line (ISO date; ``holiday`` or ``workday``, 休 and 班
    accepted), an optional header line ``date,kind…``, blank lines and ``#`` comments ignored. A holiday's weekend
    days may be listed or not (the notice lists them); a day listed twice is an error. Raises
    :class:`CalendarFileError` naming the line."""
    aliases = {HOLIDAY: HOLIDAY, WORKDAY: WORKDAY, "休": HOLIDAY, "班": WORKDAY}
    found: dict[date, CalendarDay] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and cells[0].lower() == "date":
            continue
        if len(cells) < 2:
            raise CalendarFileError(number, "expected date,kind")
        try:
            day = date.fromisoformat(cells[0])
        except ValueError:
            raise CalendarFileError(number, f"{cells[0]!r} is not a date (YYYY-MM-DD)") from None
        kind = aliases.get(cells[1].lower())
        if kind is None:
            raise CalendarFileError(number, f"{cells[1]!r} is not holiday or workday")
        if day in found:
            raise CalendarFileError(number, f"{day.isoformat()} is listed twice")
        name = cells[2] if len(cells) > 2 else ""
        if len(name) > 64:
            raise CalendarFileError(number, "the name is longer than 64 characters")
        found[day] = CalendarDay(day, kind, name)
    if not found:
        raise CalendarFileError(0, "no days in the file")
    return sorted(found.values(), key=lambda d: d.day)
