"""The lease's own postings in the general ledger (issue 19 §1–§2) on a real PostgreSQL database of its own: a lease
posts its commencement in the transaction that opens it (rent 1 paid at signing with it), a receipt posts once however
often it is booked, a surplus refunded posts once, rents collected outside Leaseline and a final rent paid off by a
refinancing post in their own transactions, and the lease sub-ledger (infra/books_reconcile.py) reconciles to the fen
after each — and reports the lease an extra posting puts out of line."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from fractions import Fraction
from typing import cast

import pytest
from sqlalchemy import func
from sqlalchemy import select

from books.accounts import VAT_INPUT
from books.accounts import VAT_OUTPUT
from books.accounts import VAT_PENDING
from books.entries import credit
from books.entries import debit
from books.entries import entry
from books.lease import BANK
from books.lease import DEALERS
from books.lease import LATE_CHARGES
from books.lease import RECEIVABLE
from books.lease import STRIPE_CLEARING
from books.lease import UNAPPLIED
from books.lease import UNEARNED
from infra.books import entry_of
from infra.books import post
from infra.books_reconcile import LeaseDifference
from infra.books_reconcile import lease_differences
from infra.collections import SqlCollections
from infra.db import Database
from infra.db.models import ApplicationRow
from infra.db.models import DealerGroupRow
from infra.db.models import DealerRow
from infra.db.models import EndOfTermRow
from infra.db.models import InstalmentRow
from infra.db.models import JournalEntryRow
from infra.db.models import LeaseRow
from infra.lease_backfill import SqlLeaseBackfill
from infra.servicing import SqlServicing
from infra.servicing import lease_plan
from infra.vat_points import post_tax_points
from plans.policy import load_policy
from servicing.allocation import Component
from tests.conftest import postgres_database
from tests.integration.test_servicing_close import DEALER
from tests.integration.test_servicing_close import open_lease
from tests.integration.test_servicing_close import record

pytestmark = pytest.mark.db
NOW = datetime(2026, 2, 10, 2, 0, tzinfo=UTC)
START = date(2026, 1, 10)
ORDER = cast(tuple[Component, ...], load_policy().allocation_order)


def books_database(prefix: str) -> Iterator[Database]:
    """A migrated database of its own with the test dealer."""
    from infra.db.migrate import upgrade

    for url in postgres_database(prefix):
        upgrade(url)
        database = Database(url)
        with database.session() as s:
            s.add(DealerGroupRow(id="g-books", name="books group"))
            s.flush()
            s.add(DealerRow(id=DEALER, group_id="g-books", name="books dealer", city="上海"))
        yield database
        database.dispose()


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    yield from books_database("leaseline_books_lease")


@dataclass(frozen=True)
class Lease:
    id: str
    row: LeaseRow
    instalments: list[InstalmentRow]


def lease_of(db: Database, lease_id: str) -> Lease:
    with db.session() as s:
        row = s.get(LeaseRow, lease_id)
        assert row is not None
        return Lease(lease_id, row, list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                                                  .order_by(InstalmentRow.number))))


def opened(db: Database, **kwargs: object) -> Lease:
    lease_id = open_lease(SqlServicing(db), record(START, **kwargs))  # type: ignore[arg-type]
    assert lease_id is not None
    return lease_of(db, lease_id)


def lines(db: Database, key: str) -> set[tuple[str, int, int, str | None]]:
    with db.session() as s:
        posted = entry_of(s, key)
    assert posted is not None, key
    return {(li.account, li.debit, li.credit, li.lease_id) for li in posted.lines}


def tax_points_through(db: Database, on: date) -> None:
    """What the closes through ``on`` post of the books (these tests run none): the tax point of every rent due by
    then (infra/vat_points.py; the leases here are never closed, so every due date up to ``on`` counts, once)."""
    with db.session() as s:
        post_tax_points(s, on, list(s.scalars(select(LeaseRow.id))), NOW)


def differences(db: Database, *lease_ids: str, on: date) -> list[LeaseDifference]:
    """The leases' differences at ``on``, the tax points of their rents due by then posted as the close would."""
    tax_points_through(db, on)
    with db.session() as s:
        return lease_differences(s, list(lease_ids), on=on)


def test_a_lease_posts_its_commencement_with_it_and_reconciles(db: Database) -> None:
    lease = opened(db, residual_ratio="0.2")
    amount = sum(i.amount for i in lease.instalments)
    interest = sum(i.interest for i in lease.instalments)
    principal = sum(i.principal for i in lease.instalments)
    assert principal == lease.row.financed_amount and amount == principal + interest
    assert lines(db, f"lease:{lease.id}:commenced") == {
        (RECEIVABLE, amount, 0, lease.id), (UNEARNED, 0, interest, lease.id), (DEALERS, 0, principal, lease.id)}
    with db.session() as s:
        key = f"lease:{lease.id}:commenced"
        head = s.execute(select(JournalEntryRow).where(JournalEntryRow.key == key)).scalar_one()
        assert (head.value_date, head.booked_on, head.dealer_id) == (START, START, DEALER)
        assert s.execute(select(func.count()).select_from(JournalEntryRow).where(
            JournalEntryRow.lease_id == lease.id)).scalar_one() == 2  # rents in arrears: nothing paid at signing
    # and the VAT its rents carry (issue 19 §3), each rent's at 13% from the definition, half up: Pending against the
    # input VAT (principal's share) and Unearned (interest's share)
    tax = sum(int(Fraction(i.amount * 13, 113) + Fraction(1, 2)) for i in lease.instalments)
    on_interest = sum(int(Fraction(i.interest * 13, 113) + Fraction(1, 2)) for i in lease.instalments)
    assert lines(db, f"lease:{lease.id}:vat") == {
        (VAT_INPUT, tax - on_interest, 0, lease.id), (UNEARNED, on_interest, 0, lease.id),
        (VAT_PENDING, 0, tax, lease.id)}
    assert differences(db, lease.id, on=START) == []
    assert differences(db, lease.id, on=START - timedelta(days=1)) == []  # before its start: nothing on either side


def test_rent_1_paid_at_signing_is_applied_from_the_upfront_payment(db: Database) -> None:
    lease = opened(db, timing="advance")
    first = lease.instalments[0]
    assert first.state == "paid" and first.due_on == START
    assert lines(db, f"lease:{lease.id}:paid_at_signing") == {(UNAPPLIED, first.amount, 0, lease.id),
                                                              (RECEIVABLE, 0, first.amount, lease.id)}
    assert differences(db, lease.id, on=START) == []


def test_a_receipt_posts_once_its_surplus_refund_once_and_the_lease_reconciles(db: Database) -> None:
    lease = opened(db)
    rent1 = lease.instalments[0]
    servicing, collections = SqlServicing(db), SqlCollections(db)
    servicing.start_business_date(rent1.due_on, NOW)
    order = ORDER
    key = f"books:{uuid.uuid4()}"
    paid = collections.book(lease_id=lease.id, amount=rent1.amount + 500, source="stripe", key=key, order=order,
                            reference="pi_books", now=NOW)
    again = collections.book(lease_id=lease.id, amount=rent1.amount + 500, source="stripe", key=key, order=order,
                             reference="pi_books", now=NOW)
    assert again.replay and again.id == paid.id and paid.surplus == 500
    assert lines(db, f"receipt:{paid.id}") == {
        (STRIPE_CLEARING, rent1.amount + 500, 0, lease.id), (RECEIVABLE, 0, rent1.amount, lease.id),
        (UNAPPLIED, 0, 500, lease.id)}
    with db.session() as s:  # the replay posted nothing: one receipt entry
        assert s.execute(select(func.count()).select_from(JournalEntryRow).where(
            JournalEntryRow.key.like(f"receipt:{paid.id}%"))).scalar_one() == 1
        assert post(s, [e for e in [entry_of(s, f"receipt:{paid.id}")] if e is not None], NOW) == []

    assert collections.finish_refund(paid.id, "succeeded", "re_books", NOW)
    assert not collections.finish_refund(paid.id, "succeeded", "re_books", NOW)
    assert lines(db, f"receipt:{paid.id}:refund") == {(UNAPPLIED, 500, 0, lease.id),
                                                      (STRIPE_CLEARING, 0, 500, lease.id)}

    # rent 2 paid in part by a direct debit: a late charge owed on it first (income when collected)
    rent2 = lease.instalments[1]
    servicing.start_business_date(rent2.due_on + timedelta(days=3), NOW)
    with db.session() as s:
        s.get(InstalmentRow, rent2.id).penalty_accrued = 123  # type: ignore[union-attr]
    part = collections.book(lease_id=lease.id, amount=10_000, source="direct_debit", key=f"books:{uuid.uuid4()}",
                            order=order, reference="ddsb_0_books", now=NOW)
    assert part.surplus == 0
    # the late charge is income net of its VAT (13%): 123 × 13 / 113 = 14.15 → 14 fen of output VAT
    assert lines(db, f"receipt:{part.id}") == {(BANK, 10_000, 0, lease.id), (RECEIVABLE, 0, 10_000 - 123, lease.id),
                                               (LATE_CHARGES, 0, 109, lease.id), (VAT_OUTPUT, 0, 14, lease.id)}

    day = rent2.due_on + timedelta(days=3)
    assert differences(db, lease.id, on=day) == []
    assert differences(db, lease.id, on=rent2.due_on) == []  # the day before the direct debit: as it stood then
    tax_points_through(db, day)
    with db.session() as s:  # every lease of the database (this module's), set-based: all reconcile
        assert lease_differences(s, on=day) == []

    # a posting the schedule does not know puts the lease out of line, by the fen
    wrong = entry(f"test:wrong:{lease.id}", "rent_collected", day, [debit(BANK, 1), credit(RECEIVABLE, 1)],
                  lease_id=lease.id)
    assert wrong is not None
    with db.session() as s:
        post(s, [wrong], NOW)
    owed = sum(i.amount for i in lease.instalments) - rent1.amount - (10_000 - 123)
    assert differences(db, lease.id, on=day) == [LeaseDifference(lease.id, RECEIVABLE, owed - 1, owed)]
    assert differences(db, lease.id, on=day - timedelta(days=1)) == []  # the wrong entry is dated later


def test_a_payment_for_a_closed_lease_is_held_and_refunded_whole(db: Database) -> None:
    lease = opened(db)
    with db.session() as s:
        s.get(LeaseRow, lease.id).status = "settled"  # type: ignore[union-attr]
    paid = SqlCollections(db).book(lease_id=lease.id, amount=2_500, source="stripe", key=f"books:{uuid.uuid4()}",
                                   order=ORDER, now=NOW)
    assert paid.refund_reason == "lease_closed"
    assert lines(db, f"receipt:{paid.id}") == {(STRIPE_CLEARING, 2_500, 0, lease.id), (UNAPPLIED, 0, 2_500, lease.id)}
    assert SqlCollections(db).finish_refund(paid.id, "failed", None, NOW)
    with db.session() as s:  # a refund that failed posts nothing
        assert entry_of(s, f"receipt:{paid.id}:refund") is None


def test_rents_collected_outside_leaseline_post_on_their_due_days(db: Database) -> None:
    handover = record(START, residual_ratio="0.2")
    application_id = str(uuid.uuid4())
    with db.session() as s:
        s.add(ApplicationRow(id=application_id, dealer_id=DEALER, status="delivered", vehicle_id="v", vehicle_label="v",
                             plan_code="p", plan_json="{}", draft_enc=""))
    done = SqlLeaseBackfill(db).open(application_id, DEALER, lease_plan(handover), date(2026, 4, 10), NOW)
    assert done is not None and done.collected_outside == 3
    lease = lease_of(db, done.lease_id)
    for rent in lease.instalments[:3]:
        key = f"collected_outside:{lease.id}:{rent.number}"
        assert lines(db, key) == {(BANK, rent.amount, 0, lease.id), (RECEIVABLE, 0, rent.amount, lease.id)}
        with db.session() as s:
            assert entry_of(s, key).value_date == rent.due_on  # type: ignore[union-attr]
    assert SqlLeaseBackfill(db).open(application_id, DEALER, lease_plan(handover), date(2026, 4, 10), NOW) is None
    assert differences(db, lease.id, on=date(2026, 4, 10)) == []
    assert differences(db, lease.id, on=date(2026, 3, 9)) == []  # rent 2 not yet collected that day


def test_a_refinancing_pays_the_old_final_rent_off_in_the_new_lease_transaction(db: Database) -> None:
    old = opened(db, residual_ratio="0.2")
    final = old.instalments[-1]
    assert final.kind == "final_rent"
    new_application = str(uuid.uuid4())
    with db.session() as s:
        s.get(InstalmentRow, final.id).penalty_accrued = 77  # type: ignore[union-attr]
        s.add(EndOfTermRow(lease_id=old.id, dealer_id=DEALER, option="refinance", status="chosen", chosen_on=START,
                           chosen_at=NOW, chosen_by="customer", terms=json.dumps({}),
                           refinance_application_id=new_application))
    new_id = open_lease(SqlServicing(db), record(old.row.ends_on), new_application)
    assert new_id is not None
    # the late charge paid off is income net of its VAT (13%): 77 × 13 / 113 = 8.86 → 9 fen
    assert lines(db, f"lease:{old.id}:refinanced") == {
        (DEALERS, final.amount + 77, 0, new_id), (RECEIVABLE, 0, final.amount, old.id), (LATE_CHARGES, 0, 68, old.id),
        (VAT_OUTPUT, 0, 9, old.id)}
    assert differences(db, old.id, new_id, on=old.row.ends_on) == []


def test_the_sub_ledger_holds_before_and_after_a_partial_prepayment_rewrites_the_schedule(db: Database) -> None:
    """The rents after a prepayment are rewritten in place: for a day before it, the check adds back what it took off
    (its principal, and the interest the rents held before less what they hold after, from the offer and the schedule
    applied); lane 2's posting (prepayment:<id>) is what the ledger holds from its day on."""
    from infra.collections import PREPAYMENT
    from infra.prepayments import SqlPrepayments

    lease = opened(db, residual_ratio="0.2")
    rent1 = lease.instalments[0]
    day = rent1.due_on + timedelta(days=5)
    SqlServicing(db).start_business_date(day, NOW)
    collections = SqlCollections(db)
    collections.book(lease_id=lease.id, amount=rent1.amount, source="stripe", key=f"books:{uuid.uuid4()}", order=ORDER,
                     now=NOW)
    repo = SqlPrepayments(db)
    offer = repo.offer(lease.id, 2_000_000, "customer", NOW)
    repo.choose(lease.id, offer.id, "shorter_term")
    key = f"books:prepay:{uuid.uuid4()}"
    attempt, _ = collections.start_attempt(lease_id=lease.id, amount=offer.total, channel="stripe", trigger="customer",
                                           key=key, business_date=day, now=NOW, purpose=PREPAYMENT,
                                           subject_id=offer.id)
    repo.attach(offer.id, attempt.id)
    paid = collections.book(lease_id=lease.id, amount=offer.total, source="stripe", key=key, order=ORDER,
                            attempt_id=attempt.id, now=NOW)
    assert paid.applied == offer.total and paid.surplus == 0
    assert lines(db, f"receipt:{paid.id}") == {(STRIPE_CLEARING, offer.total, 0, lease.id),
                                               (UNAPPLIED, 0, offer.total, lease.id)}
    after = lease_of(db, lease.id)
    assert any(i.state == "cancelled" for i in after.instalments)
    for on in (day - timedelta(days=1), day, day + timedelta(days=40)):
        assert differences(db, lease.id, on=on) == [], on


@pytest.fixture(scope="module")
def closed_db() -> Iterator[Database]:
    """A database of its own whose January is closed in the books mid-test (a closed month moves later postings)."""
    yield from books_database("leaseline_books_lease_closed")


def test_events_booked_late_in_a_closed_month_count_on_both_sides_from_the_day_they_are_booked(
        closed_db: Database) -> None:
    """January closed after one lease opened in it: a second lease opened on the same January day (rent 1 paid at
    signing with it: a movement dated in January) is booked on 1 February; the check sees neither side of it through
    31 January and both from 1 February, the first lease (booked before the close) on its own days all along, and the
    export of the ledger passes its sub-ledger balance assertions in beancount."""
    from beancount import loader

    from infra.books_export import export
    from infra.books_export import snapshot
    from infra.db.models import LedgerPeriodRow

    early = opened(closed_db, residual_ratio="0.2")
    with closed_db.session() as s:
        s.add(LedgerPeriodRow(month=date(2026, 1, 1), closed_by="books-a", approved_by="books-b"))
    late = opened(closed_db, residual_ratio="0.2", timing="advance")
    with closed_db.session() as s:
        head = s.execute(select(JournalEntryRow).where(
            JournalEntryRow.key == f"lease:{late.id}:commenced")).scalar_one()
        assert (head.value_date, head.booked_on) == (START, date(2026, 2, 1))
        assert entry_of(s, f"lease:{late.id}:paid_at_signing") is not None
    for on in (START, date(2026, 1, 31), date(2026, 2, 1), date(2026, 2, 28)):
        assert differences(closed_db, early.id, late.id, on=on) == [], on
    tax_points_through(closed_db, date(2026, 1, 31))
    with closed_db.session() as s:
        assert lease_differences(s, on=date(2026, 1, 31)) == []
    out = io.StringIO()
    with snapshot(closed_db) as conn:
        export(conn, out, date(2026, 2, 28))
    _entries, errors, _options = loader.load_string(out.getvalue())
    assert errors == []


def test_the_dealer_paid_for_the_car_is_recorded_once_by_ops_and_leaves_it_owed_nothing(db: Database) -> None:
    from click.testing import CliRunner
    from sqlalchemy import text

    from books.origination import dealer_share_paid
    from infra.dealer_funding import fundings_due
    from leaseline.cli import main

    lease = opened(db, residual_ratio="0.2")
    with db.session() as s:  # the down payment's share sent after the handover: its line names the lease
        post(s, [dealer_share_paid(f"pay-{lease.id}", 30_000_00, START, dealer_id=DEALER, lease_id=lease.id)], NOW)
    owed = {f.lease_id: f.owed for f in fundings_due(db)}
    assert owed[lease.id] == lease.row.financed_amount  # its commencement: the payable falling due (the car's only)

    def fund(*args: str) -> tuple[int, str]:
        done = CliRunner().invoke(main, ["books", "fund-dealer", *args], catch_exceptions=False,
                                  env={"LEASELINE_DATABASE_URL": db.engine.url.render_as_string(hide_password=False)})
        return done.exit_code, done.output

    yuan = f"{lease.row.financed_amount / 100:.2f}"
    code, said = fund(lease.id, "--amount", f"{lease.row.financed_amount / 100 - 1:.2f}", "--by", "ops")
    assert code == 2 and f"owed {lease.row.financed_amount / 100:.2f}" in said  # another amount: refused
    code, said = fund(lease.id, "--amount", yuan, "--by", "ops", "--on", "2025-12-31")
    assert code == 2 and "lease's start" in said  # before the lease: refused
    for _ in range(2):  # recorded once; the second answers what was recorded
        code, said = fund(lease.id, "--amount", yuan, "--reference", "BANK-7", "--by", "ops",
                          "--on", START.isoformat())
        assert code == 0 and "still owed 0.00" in said, said
    assert lines(db, f"dealer_funding:{lease.id}") == {
        (DEALERS, lease.row.financed_amount, 0, lease.id), ("Assets:Bank:Disbursements", 0, lease.row.financed_amount,
                                                             lease.id)}
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(JournalEntryRow)
                        .where(JournalEntryRow.key == f"dealer_funding:{lease.id}")) == 1
        assert s.scalar(text("SELECT count(*) FROM audit_events WHERE action = 'books.dealer_funded' "
                             "AND target = :lease"), {"lease": lease.id}) == 1
    assert lease.id not in {f.lease_id for f in fundings_due(db)}
    assert differences(db, lease.id, on=START) == []
    code, said = fund("no-such-lease", "--amount", "1", "--by", "ops")
    assert code == 2 and "no such lease" in said
