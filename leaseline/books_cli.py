"""``leaseline books`` — the general ledger out of the database (issue 19 §5): the Beancount export that ``bean-check``
verifies, and the trial balance at a date. Registered on ``leaseline`` by the last lines of leaseline/cli.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import suppress
from datetime import MAXYEAR
from datetime import date
from pathlib import Path
from typing import Any

import click

from leaseline.cli import Fail
from leaseline.cli import _database_errors
from leaseline.cli import _settings
from leaseline.cli import main


@contextmanager
def _snapshot() -> Iterator[Any]:
    """One read-only snapshot of the configured database (disposed afterwards); database errors as one line."""
    from infra.books_export import snapshot
    from infra.db import Database

    database = Database(_settings().database_url)
    try:
        with _database_errors(), snapshot(database) as conn:
            yield conn
    finally:
        database.dispose()


def _business_date() -> date:
    """The business date (the day whose close of business runs next): the books' today for every process — in a demo
    rolled forward it runs ahead of the wall clock."""
    from infra.db import Database
    from infra.servicing import current_business_date

    database = Database(_settings().database_url)
    try:
        with _database_errors(), database.session() as session:
            return current_business_date(session)
    finally:
        database.dispose()


def _day(value: str | None, option: str, *, default: date, latest: date | None = None, why: str = "") -> date:
    """``value`` as a date (``default`` when None): at most ``latest`` when given (the business date: ``why`` says
    what a later day would get wrong), and never in the calendar's last year (the day after it, which the books
    compute, could not be written)."""
    if value is None:
        return default
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None
    if latest is not None and day > latest:
        raise Fail(f"{option}: {value} is after the business date {latest.isoformat()}: {why}") from None
    if day.year >= MAXYEAR:
        raise Fail(f"{option}: {value} is beyond the dates the books can hold (before {MAXYEAR}-01-01)") from None
    return day


def _up_to_today(value: str | None, option: str, why: str) -> date:
    """``value`` as a date up to the business date (its default): the books' figures beyond it are those of days the
    close has not reached (``why``: what they would get wrong)."""
    today = _business_date()
    return _day(value, option, default=today, latest=today, why=why)


def _target(target: str) -> Path:
    """The file ``--to`` names: not empty, not a directory (a path ending in '/' or naming one)."""
    if not target.strip() or target.endswith(("/", "\\")):
        raise Fail(f"--to: {target!r} names no file (give a file name, e.g. books.beancount)")
    path = Path(target)
    if path.is_dir():
        raise Fail(f"--to: {target} is a directory (give a file name in it, e.g. {path / 'books.beancount'})")
    if path.exists() and not path.is_file():  # a device, a pipe: the export replaces a file, never those
        raise Fail(f"--to: {target} is not a regular file")
    return path


@main.group("books")
def books_group() -> None:
    """The general ledger: the Beancount export, the trial balance."""


@books_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["beancount"]), default="beancount", show_default=True,
              help="The file's format (Beancount v3: bean-check verifies it, Fava shows it).")
@click.option("--to", "target", required=True, help="The file to write (replaced when it exists).")
@click.option("--summary", is_flag=True,
              help="One transaction per day and kind of event, one posting per account (large portfolios).")
@click.option("--through", default=None, help="Balance assertions for each month ended by this date (YYYY-MM-DD; "
                                              "default and latest: the business date).")
def books_export(fmt: str, target: str, summary: bool, through: str | None) -> None:
    """Write the whole ledger as a Beancount file: the accounts opened with their zh/en names, every entry (or the
    daily summaries), and balance assertions for every account at each month end taken from the sub-ledgers (the
    journal's own balance where no sub-ledger covers an account yet: the file says so). Check it with
    `bean-check FILE`."""
    from infra.books_export import export

    end = _up_to_today(through, "--through", "a month that has not ended has no balance to assert")
    path = _target(target)
    partial = path.with_name(path.name + ".part")
    try:
        with _snapshot() as conn, partial.open("w", encoding="utf-8") as out:
            done = export(conn, out, end, summary=summary)
        partial.replace(path)
    except OSError as exc:
        raise Fail(f"--to: cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with suppress(OSError):  # nothing was made where nothing could be
            partial.unlink(missing_ok=True)
    kind = "daily summaries" if summary else "entries"
    click.echo(f"wrote {path}: {done.entries:,} {kind}, {done.assertions:,} balance assertions through "
               f"{end.isoformat()} ({done.from_journal:,} at the journal's own balance, no sub-ledger yet) in "
               f"{done.seconds:.1f} s; check it with: bean-check {path}")


@books_group.command("trial-balance")
@click.option("--date", "on", default=None, help="Closing balances at the end of this day (YYYY-MM-DD; default "
                                                 "the business date).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def books_trial_balance(on: str | None, as_json: bool) -> None:
    """Each account's closing balance at the end of --date, in the debit or the credit column, signed debit-positive
    in `balance` (Beancount's sign: a credit balance is negative), and the two columns' totals."""
    from books.chart import load_chart
    from books.trial_balance import trial_balance
    from infra.books_export import balances_through

    day = _day(on, "--date", default=_business_date())
    with _snapshot() as conn:
        report = trial_balance(load_chart(), balances_through(conn, day))
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    click.echo(f"trial balance at the end of {day.isoformat()}")
    width = max([len(row["account"]) for row in report["accounts"]] + [len("total")])
    for row in report["accounts"]:
        click.echo(f"  {row['account']:<{width}}  {row['debit']:>16}  {row['credit']:>16}")
    click.echo(f"  {'total':<{width}}  {report['total_debit']:>16}  {report['total_credit']:>16}")


@books_group.command("reconcile")
@click.option("--date", "on", default=None, help="Balances through the end of this day (YYYY-MM-DD; default and "
                                                 "latest: the business date).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def books_reconcile(on: str | None, as_json: bool) -> None:
    """Each lease's receivable, unearned income and VAT pending in the ledger against what its instalments say (the
    lease sub-ledger, infra/books_reconcile.py) at any date up to the business date: every difference printed; exit 1
    when there is any."""
    from sqlalchemy.orm import Session

    from books.beancount import amount
    from infra.books_reconcile import lease_differences

    day = _up_to_today(on, "--date", "the close has not reached its rents' tax points (their VAT still Pending), "
                                     "which would show as differences")
    with _snapshot() as conn, Session(bind=conn) as session:
        found = lease_differences(session, on=day)
    rows = [{"lease_id": d.lease_id, "account": d.account, "ledger": amount(d.ledger), "schedule": amount(d.schedule),
             "difference": amount(d.difference)} for d in found]
    if as_json:
        click.echo(json.dumps({"date": day.isoformat(), "differences": rows}, ensure_ascii=False))
    elif not rows:
        click.echo(f"the lease sub-ledger reconciles at the end of {day.isoformat()}: no difference")
    else:
        click.echo(f"{len(rows)} difference{'s' if len(rows) > 1 else ''} at the end of {day.isoformat()} "
                   "(ledger − schedule):")
        for row in rows:
            click.echo(f"  {row['lease_id']}  {row['account']}  ledger {row['ledger']}  schedule {row['schedule']}  "
                       f"difference {row['difference']}")
    if rows:
        raise SystemExit(1)


@books_group.command("fund-dealer")
@click.argument("lease", required=False)
@click.option("--amount", default=None, help="What the bank paid the dealer for the car (yuan, e.g. 123456.78): "
                                             "the lease's payable to its dealer, to the fen.")
@click.option("--on", "paid_on", default=None, help="The day the bank paid (YYYY-MM-DD; default the business "
                                                    "date).")
@click.option("--reference", default="", help="The bank's reference of the transfer.")
@click.option("--by", "by", default=None, help="Who records it (for the audit log).")
@click.option("--due", is_flag=True, help="List the leases whose dealer is still owed for the car instead.")
def books_fund_dealer(lease: str | None, amount: str | None, paid_on: str | None, reference: str, by: str | None,
                      due: bool) -> None:
    """Record that the bank paid a lease's dealer for the car (放款; LEASE: its id or contract number): Dr the dealers'
    payable / Cr the disbursements bank account (infra/dealer_funding.py), once. --due lists what is still owed."""
    from decimal import Decimal
    from decimal import InvalidOperation

    from bff.payments.common import utc_now
    from infra.db import Database
    from infra.dealer_funding import FundingRefused
    from infra.dealer_funding import fund_dealer
    from infra.dealer_funding import fundings_due

    database = Database(_settings().database_url)
    try:
        with _database_errors():
            if due:
                owed = fundings_due(database)
                for f in owed:
                    click.echo(f"  {f.contract_number}  {f.lease_id}  dealer {f.dealer_id}  from "
                               f"{f.starts_on.isoformat()}  owed {f.owed / 100:,.2f}")
                click.echo(f"{len(owed):,} lease{'' if len(owed) == 1 else 's'} whose dealer is owed for the car: "
                           f"{sum(f.owed for f in owed) / 100:,.2f}")
                return
            if not lease or amount is None or not by:
                raise Fail("give LEASE, --amount and --by (or --due to list what is owed)")
            try:
                fen = Decimal(amount) * 100
            except InvalidOperation:
                raise Fail(f"--amount: {amount!r} is not an amount in yuan") from None
            if fen != fen.to_integral_value():
                raise Fail(f"--amount: {amount!r} is not an amount to the fen")
            today = _business_date()
            day = _day(paid_on, "--on", default=today)
            try:
                done = fund_dealer(database, lease, amount=int(fen), paid_on=day, today=today, reference=reference,
                                   actor_label=by, now=utc_now())
            except FundingRefused as exc:
                raise Fail(str(exc)) from None
    finally:
        database.dispose()
    click.echo(f"lease {done.contract_number}: its dealer {done.dealer_id} paid {done.paid / 100:,.2f} for the car "
               f"(dealer_funding:{done.lease_id}); still owed {done.owed / 100:,.2f}")


@books_group.command("close-month")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def books_close_month(as_json: bool) -> None:
    """Where the books' periods stand (infra/month_close.py): the business date, the last closed month, the next
    month to close and what blocks it (its checks run now), the requests waiting for approval. Asking for a close and
    approving it happen on the ops desk (/books), signed in: four eyes are two users who proved who they are, which a
    terminal cannot tell."""
    from books.reports import month_of
    from infra.db import Database
    from infra.month_close import MonthClose

    def month(day: date | None) -> str | None:
        return month_of(day) if day is not None else None

    database = Database(_settings().database_url)
    try:
        with _database_errors():
            o = MonthClose(database).overview(fresh=True)
    finally:
        database.dispose()
    blockers = [{"code": b.code, **b.detail} for b in o.check.blockers] if o.check is not None else []
    pending = [{"id": r.id, "month": month(r.month), "requested_by": r.requested_by_label,
                "requested_at": r.requested_at.isoformat()} for r in o.pending]
    if as_json:
        click.echo(json.dumps({"business_date": o.today.isoformat(), "last_closed": month(o.last_closed),
                               "next": {"month": month(o.next_month), "blockers": blockers}, "pending": pending},
                              ensure_ascii=False))
        return
    click.echo(f"business date {o.today.isoformat()}; last closed {month(o.last_closed) or 'none'}")
    if o.next_month is not None:
        said = ", ".join(b["code"] for b in blockers) or "nothing blocks it"
        click.echo(f"next to close {month(o.next_month)}: {said}")
    for r in pending:
        click.echo(f"  waiting: {r['month']} asked by {r['requested_by']} (#{r['id']})")
    click.echo("asking for a close and approving it (another ops user) happen signed in on the ops desk: /books")


@books_group.command("vat-catchup")
@click.option("--lease", "leases", multiple=True, help="Only this lease (its id or contract number; repeatable).")
@click.option("--dry-run", is_flag=True, help="Count what would be posted; post nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def books_vat_catchup(leases: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Bring VAT into the books of the leases in force that commenced before it (infra/vat_catchup.py): each one's
    commencement VAT, the tax points of the rents the close has passed, the income recognised gross taken back — keyed,
    so a second run posts nothing. Leases that ended or were settled before VAT are counted and left as they are."""
    from bff.payments.common import utc_now
    from infra.db import Database
    from infra.vat_catchup import catch_up

    database = Database(_settings().database_url)
    try:
        with _database_errors():
            done = catch_up(database, utc_now(), dry_run=dry_run, only=list(leases) or None)
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps(done.as_dict(), ensure_ascii=False))
        return
    would = "would bring" if dry_run else "brought"
    click.echo(f"{would} VAT into {done.leases:,} lease{'' if done.leases == 1 else 's'}: {done.entries:,} entries, "
               f"{done.pending / 100:,.2f} put in Pending, {done.output / 100:,.2f} moved to Output by the tax points, "
               f"{done.income_reversed / 100:,.2f} of income recognised with its VAT taken back; {done.closed:,} "
               "ended or settled before VAT left as they are")
