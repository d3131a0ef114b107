"""``leaseline books income --month YYYY-MM`` — a month's finance income posted by hand (issue 19 §1,
infra/finance_income.py): what the ``books.finance_income`` job posts when the close finishes the month's last day,
once per lease and month (run again it posts nothing). Registered on ``leaseline books`` (leaseline/books_cli.py) by
the last lines of leaseline/cli.py."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING

import click

from leaseline.books_cli import _business_date
from leaseline.books_cli import books_group
from leaseline.cli import Fail
from leaseline.cli import _database_errors
from leaseline.cli import _settings

if TYPE_CHECKING:
    from infra.db import Database


@books_group.command("income")
@click.option("--month", required=True, help="A month that has ended by the business date (YYYY-MM): the close of "
                                              "business has run its last day.")
@click.option("--lease", "leases", multiple=True, help="Only this lease (repeatable); every lease by default.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def books_income(month: str, leases: tuple[str, ...], as_json: bool) -> None:
    """Post MONTH's finance income of every lease (the schedule's interest spread by day; the effective-interest
    figure and its difference shown in each entry's memo), once per lease and month. MONTH has ended by the business
    date (whether the books' month close has locked it is another matter: /books)."""
    from bff.payments.common import utc_now
    from books.income import month_end
    from infra.db import Database
    from infra.finance_income import MonthNotClosed
    from infra.finance_income import recognise_month

    try:
        end = month_end(month)
    except ValueError as exc:
        raise Fail(f"--month: {exc}") from None
    database = Database(_settings().database_url)
    try:
        with _database_errors():
            unknown = _unknown_leases(database, leases)
            if unknown:
                raise Fail(f"--lease: no such lease: {', '.join(unknown)}")
            try:
                result = recognise_month(database, month, utc_now(), only=list(leases) or None)
            except MonthNotClosed:  # "closed" is the books' four-eyes month close: this is the calendar's
                raise Fail(f"--month: {month} has not ended by the business date {_business_date().isoformat()}: its "
                           f"income is posted once the close of business has run its last day, {end.isoformat()}"
                           ) from None
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps({"month": result.month, "leases": result.leases, "posted": result.posted,
                               "amount": f"{Decimal(result.amount) / 100:.2f}",
                               "difference": f"{Decimal(result.difference) / 100:.2f}"}))
        return
    amount, difference = Decimal(result.amount) / 100, Decimal(result.difference) / 100
    click.echo(f"{result.month}: {result.posted:,} entries posted, ¥{amount:,.2f} of finance income "
               f"({result.leases:,} leases read; effective-interest difference ¥{difference:,.2f})")


def _unknown_leases(database: Database, leases: tuple[str, ...]) -> list[str]:
    """The ids of ``leases`` that name no lease (in the order given)."""
    from sqlalchemy import select

    from infra.db.models import LeaseRow

    if not leases:
        return []
    with database.session() as session:
        known = set(session.scalars(select(LeaseRow.id).where(LeaseRow.id.in_(list(leases)))))
    return [lease for lease in dict.fromkeys(leases) if lease not in known]
