"""``leaseline servicing`` — the lease in force (issue 18): the business date, the daily close of business and the
business calendar. Registered on ``leaseline`` by the last line of leaseline/cli.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import click

from leaseline.cli import Fail
from leaseline.cli import _database_errors
from leaseline.cli import _settings
from leaseline.cli import main


@contextmanager
def _servicing() -> Iterator[Any]:
    """The close of business on the configured database (disposed afterwards); database errors as one line."""
    from bff.servicing.close import CloseOfBusiness
    from bff.servicing.hooks import servicing_hooks
    from infra.db import Database
    from infra.servicing import SqlServicing
    from plans.policy import load_policy

    settings = _settings()
    database = Database(settings.database_url)
    try:
        with _database_errors():
            # the worker's hooks too (bff/servicing/hooks.py): reminders deferred (the worker sends them), arrears
            # and the M3 flag kept, automatic collections started and failed ones tried again (the worker collects
            # them, by day)
            yield CloseOfBusiness(SqlServicing(database),
                                  hooks=servicing_hooks(database, load_policy(settings.policy)))
    finally:
        database.dispose()


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


@main.group("servicing")
def servicing_group() -> None:
    """The lease in force: business date, close of business, business calendar."""


@servicing_group.command("date")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def servicing_date(as_json: bool) -> None:
    """Print the business date (the day whose close of business runs next) and whether China's calendar is known
    for it and the next year (chinese-calendar's years, or loaded with `leaseline servicing calendar load`)."""
    with _servicing() as close:
        day = close.business_date()
        calendar = close.repo.calendar()
    years = {str(y): calendar.published(y) for y in (day.year, day.year + 1)}
    if as_json:
        click.echo(json.dumps({"business_date": day.isoformat(), "business_day": calendar.is_business_day(day),
                               "calendar_published": years}))
        return
    click.echo(day.isoformat())
    for year, known in years.items():
        if not known:
            click.echo(f"warning: no published calendar for {year}: weekends only until ops load it "
                       f"(leaseline servicing calendar load FILE)", err=True)


@servicing_group.command("close")
@click.option("--date", "on", default=None, help="Run (or replay) the close of this business date, YYYY-MM-DD.")
@click.option("--until", default=None, help="Close every date from the business date through this one, day by day.")
@click.option("--demo", is_flag=True, help="A demo rolled forward: close days that have not ended in Beijing (in "
                                           "production too; elsewhere they may be closed anyway).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per date closed.")
def servicing_close(on: str | None, until: str | None, demo: bool, as_json: bool) -> None:
    """Close of business: mark rents due and overdue, accrue late charges, then move the business date on. A date
    closed before changes nothing; a run that stopped midway resumes. Without options: the business date. In
    production only the days that have ended in Beijing are closed (--demo: any)."""
    from bff.payments.common import utc_now
    from bff.servicing.close import MAX_ROLL_DAYS
    from bff.servicing.close import SHANGHAI
    from bff.servicing.close import NotTheBusinessDate
    from bff.servicing.close import has_ended

    day, last = _day(on, "--date"), _day(until, "--until")
    if day is not None and last is not None:
        raise Fail("give --date or --until, not both")
    production = _settings().env == "production"
    with _servicing() as close:
        latest = last or day or close.business_date()
        now = utc_now()
        if production and not demo and not has_ended(latest, now):
            raise Fail(f"{latest.isoformat()} has not ended in Beijing (today is "
                       f"{now.astimezone(SHANGHAI).date().isoformat()}): production closes only the days that have "
                       f"ended (the worker does, after midnight); --demo to roll a demo forward")
        try:
            if last is not None:
                business = close.business_date()
                if last < business:
                    raise Fail(f"--until: {last.isoformat()} is before the business date {business.isoformat()}")
                if (last - business).days >= MAX_ROLL_DAYS:
                    raise Fail(f"--until: at most {MAX_ROLL_DAYS} days at a time")
                outcomes = close.close_until(last)
            else:
                outcomes = [close.close(day or close.business_date())]
        except NotTheBusinessDate as exc:
            raise Fail(f"{exc} (close the dates before it first: --until)") from None
        current = close.business_date()
    for outcome in outcomes:
        run = outcome.run
        if as_json:
            click.echo(json.dumps({"business_date": outcome.business_date.isoformat(),
                                   "already_closed": outcome.already, "done": outcome.done,
                                   "leases": run.leases, "batches": run.batches,
                                   "runs": run.runs, "marked_due": run.marked_due,
                                   "marked_overdue": run.marked_overdue, "late_charges_fen": run.penalty}))
        else:
            state = "already closed, nothing changed" if outcome.already else "closed" if outcome.done else \
                "left to the run that holds the rest of its leases"
            click.echo(f"{outcome.business_date.isoformat()}: {state} — {run.leases} leases, {run.marked_due} due, "
                       f"{run.marked_overdue} overdue, late charges ¥{run.penalty / 100:.2f}")
    if not as_json:
        click.echo(f"business date: {current.isoformat()}")


@servicing_group.group("calendar")
def calendar_group() -> None:
    """China's business-day calendar (official holidays and make-up working days)."""


@calendar_group.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def calendar_load(file: Path) -> None:
    """Load a year's published calendar from FILE, a CSV of `date,kind[,name]` lines (kind: holiday for a weekday
    off, workday for a weekend worked); it replaces what was loaded for the same years and takes precedence over the
    chinese-calendar package."""
    from servicing.calendar import CalendarFileError
    from servicing.calendar import parse_calendar_csv

    try:
        days = parse_calendar_csv(file.read_text(encoding="utf-8-sig"))
    except (CalendarFileError, UnicodeDecodeError) as exc:
        raise Fail(f"{file.name}: {exc}") from None
    from bff.payments.common import utc_now

    with _servicing() as close:
        count = close.repo.load_calendar(days, file.name, utc_now())
    years = sorted({d.day.year for d in days})
    click.echo(f"{count} days loaded for {', '.join(map(str, years))} "
               f"({sum(d.kind == 'holiday' for d in days)} holidays, {sum(d.kind == 'workday' for d in days)} "
               f"make-up working days)")
