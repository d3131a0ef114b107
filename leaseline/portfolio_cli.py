"""``leaseline demo portfolio`` — a synthetic portfolio of leases in force for the servicing's bench (issue 18,
Targets; infra/synthetic_portfolio.py). Registered on ``leaseline demo`` by the last line of leaseline/cli.py."""

from __future__ import annotations

import click

from leaseline.cli import Fail
from leaseline.cli import _database_errors
from leaseline.cli import _settings
from leaseline.cli import demo


@demo.command("portfolio")
@click.option("--leases", type=int, default=None, help="How many synthetic leases to load (1 to 1,000,000).")
@click.option("--seed", type=int, default=18, show_default=True, help="The same seed draws the same portfolio.")
@click.option("--drop", is_flag=True, help="Remove the synthetic portfolio (its leases, instalments, movements; the "
                                            "journal, append-only, keeps its entries: a reload posts under new ids).")
def demo_portfolio(leases: int | None, seed: int, drop: bool) -> None:
    """Load N synthetic leases in force with their instalments (dealer "合成组合 synthetic portfolio", numbers SYN-…,
    never mixed with the demo's leases): terms of 12 to 60 months, rents in advance or arrears, commencement dates
    over the last five years, as the closes through the day before the business date left them — most rents paid,
    some leases behind, overdue with their late charges, some partly paid — with their books: each commencement, the
    dealer paid for the car, the rents paid as collected outside Leaseline (the lease sub-ledger reconciles)."""
    from infra.db import Database
    from infra.synthetic_portfolio import MAX_LEASES
    from infra.synthetic_portfolio import PortfolioExists
    from infra.synthetic_portfolio import drop_portfolio
    from infra.synthetic_portfolio import load_portfolio

    if drop == (leases is not None):
        raise Fail("give --leases N to load a portfolio, or --drop to remove it")
    if leases is not None and not 1 <= leases <= MAX_LEASES:
        raise Fail(f"--leases: from 1 to {MAX_LEASES:,}")
    from bff.payments.common import utc_now

    database = Database(_settings().database_url)
    try:
        with _database_errors():
            if drop:
                click.echo(f"removed the synthetic portfolio: {drop_portfolio(database):,} leases")
                return
            assert leases is not None
            try:
                loaded = load_portfolio(database, leases, seed, utc_now())
            except PortfolioExists as exc:
                raise Fail(str(exc)) from None
    finally:
        database.dispose()
    click.echo(f"loaded {loaded.leases:,} synthetic leases, {loaded.instalments:,} instalments, "
               f"{loaded.movements:,} movements in {loaded.seconds:.1f} s, as of the business date "
               f"{loaded.as_of.isoformat()}: {loaded.overdue:,} rents overdue, {loaded.partly_paid:,} partly paid")
