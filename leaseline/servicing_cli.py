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


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, in the singular for one: 1 lease, 2 leases (``plural`` when not ``noun`` + s)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


@contextmanager
def _servicing(demo: bool = False) -> Iterator[Any]:
    """The close of business on the configured database (disposed afterwards); database errors as one line. ``demo``:
    the texts and automatic collections the close defers go at once, at any hour (the days a demo closes are not
    today: rolled forward at night, it would otherwise show them only after 09:00)."""
    from dataclasses import replace
    from datetime import time

    from bff.servicing.close import CloseOfBusiness
    from bff.servicing.hooks import servicing_hooks
    from infra.db import Database
    from infra.servicing import SqlServicing
    from plans.policy import load_policy

    settings = _settings()
    policy = load_policy(settings.policy)
    if demo:
        policy = replace(policy, reminders=replace(policy.reminders, send_from=time(0), send_until=time.max))
    database = Database(settings.database_url)
    try:
        with _database_errors():
            # the worker's hooks too (bff/servicing/hooks.py): reminders deferred (the worker sends them), arrears
            # and the M3 flag kept, automatic collections started and failed ones tried again (the worker collects
            # them, by day)
            yield CloseOfBusiness(SqlServicing(database),
                                  hooks=servicing_hooks(database, policy))
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
                                           "production too; elsewhere they may be closed anyway), and send the "
                                           "texts and collections it defers at once, at any hour.")
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
    with _servicing(demo) as close:
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
            click.echo(f"{outcome.business_date.isoformat()}: {state} — {counted(run.leases, 'lease')}, "
                       f"{run.marked_due} due, {run.marked_overdue} overdue, late charges ¥{run.penalty / 100:.2f}")
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


@servicing_group.command("backfill")
@click.option("--paid-through", default=None,
              help="Rents due on or before this date (YYYY-MM-DD) were collected outside Leaseline; default: the day "
                   "before the business date.")
@click.option("--dry-run", is_flag=True, help="Say what would be opened; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def servicing_backfill(paid_through: str | None, dry_run: bool, as_json: bool) -> None:
    """Open the lease in force of each handover signed before servicing began, from its record as the contract
    service states it; the rents due through --paid-through are booked as collected outside Leaseline (book what was
    not collected by hand afterwards). Exit 1 when a record could not be read or fetched (run it again later)."""
    from datetime import timedelta

    from bff.bootstrap import bootstrap
    from bff.config import ConfigError
    from bff.payments.common import utc_now
    from bff.servicing.backfill import backfill
    from infra.servicing import SqlServicing

    through = _day(paid_through, "--paid-through")
    try:
        services = bootstrap(_settings())
    except ConfigError as exc:
        raise Fail(str(exc)) from None
    try:
        with _database_errors():
            business_date = SqlServicing(services.db).business_date()
            if through is None:
                through = business_date - timedelta(days=1)
            if through >= business_date:  # a rent due today or later cannot have been collected before servicing
                raise Fail(f"--paid-through: {through.isoformat()} is not before the business date "
                           f"{business_date.isoformat()}")
            outcomes = backfill(services, paid_through=through, now=utc_now(), dry_run=dry_run)
    finally:
        services.db.dispose()
    failed = [o for o in outcomes if o.result in ("unavailable", "refused", "unreadable")]
    if as_json:
        click.echo(json.dumps({"paid_through": through.isoformat(), "dry_run": dry_run,
                               "leases": [o.as_dict() for o in outcomes]}, ensure_ascii=False))
    else:
        for o in outcomes:
            click.echo(f"{o.application_id}: {o.result}" + (f" lease {o.lease_id}" if o.lease_id else "")
                       + (f", {o.collected_outside} rents (¥{o.amount_fen / 100:,.2f}) collected outside through "
                          f"{through.isoformat()}" if o.result in ("opened", "would_open") else "")
                       + (f" ({o.detail})" if o.detail else ""))
        opened = sum(o.result == "opened" for o in outcomes)
        click.echo(f"{counted(opened, 'lease')} opened, {len(failed)} not readable now"
                   + (" (dry run: nothing changed)" if dry_run else ""))
    if failed:
        raise SystemExit(1)


@servicing_group.command("credit-report")
@click.option("--period", required=True, help="The month to report, YYYY-MM (as of its last day).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def servicing_credit_report(period: str, as_json: bool) -> None:
    """Build the month's credit report (征信报送: each lease's status as of the month's last day), submit it to the
    credit bureau (the sandbox by default) and print the bureau's answer, as the first close of the next month's job
    does. A month submitted before is printed as it was, not submitted again. Names are printed masked; the file itself
    is printed nowhere. Exit 1 when the bureau refused the file or could not be reached (run it again later)."""
    from bff.bootstrap import bootstrap
    from bff.config import ConfigError
    from bff.servicing.credit_reports import credit_reporting
    from infra.credit_bureau import CreditBureauUnavailable
    from servicing.credit_report import Period
    from servicing.credit_report import PeriodError

    try:
        month = Period.parse(period)
    except PeriodError as exc:
        raise Fail(f"--period: {exc}") from None
    try:
        services = bootstrap(_settings())
    except ConfigError as exc:
        raise Fail(str(exc)) from None
    try:
        with _database_errors():
            if month.last >= _today(services):
                raise Fail(f"--period: {month} has not ended (its last day, {month.last.isoformat()}, is not closed)")
            try:
                outcome = credit_reporting(services).run(str(month))
            except CreditBureauUnavailable as exc:
                raise Fail(f"the credit bureau could not be reached ({exc}): nothing is known to be received; run "
                           f"it again (the same month is never submitted twice)") from None
    finally:
        services.db.dispose()
    r = outcome.report
    if as_json:
        click.echo(json.dumps({"period": r.period, "as_of": r.as_of.isoformat(), "already_submitted": outcome.already,
                               "status": r.status, "records": r.record_count, "status_counts": r.status_counts,
                               "withheld_overdue": r.withheld, "file_sha256": r.file_sha256, "batch_no": r.batch_no,
                               "accepted": r.accepted, "rejected": r.rejected, "errors": r.errors,
                               "detail": r.detail}, ensure_ascii=False))
    else:
        state = "submitted before, not sent again" if outcome.already else r.status
        statuses = ", ".join(f"{k} {v}" for k, v in r.status_counts.items()) or "none"
        click.echo(f"{r.period} (as of {r.as_of.isoformat()}): {state} — {r.record_count} records "
                   f"({statuses}), batch {r.batch_no or '—'}: "
                   f"{r.accepted} accepted, {r.rejected} rejected"
                   + (f"; {r.withheld} overdue rents withheld (no notice in time)" if r.withheld else "")
                   + (f" ({r.detail})" if r.detail else ""))
        for e in r.errors:
            click.echo(f"  rejected {e['account_id']} {e['name']}: {e['code']} {e['message']}")
    if r.status != "submitted":
        raise SystemExit(1)


def _today(services: Any) -> date:
    """The business date: a month is reported once its last day is closed (the business date is past it)."""
    from infra.servicing import SqlServicing

    return SqlServicing(services.db).business_date()
