"""E-invoices (数电发票, issue 19 §3) on a real PostgreSQL database of their own: the sandbox invoice platform's
behaviour (numbered specimens issued at once, the same key the same invoice, a buyer's ID number failing GB 11643's
check digit rejected in the platform's shape and nothing kept, a delayed result issued at a later poll, red-letter
invoices against an issued one, the specimen's PDF); a rent paid in full asking for its invoice in the receipt's own
transaction (nothing of either when it rolls back); the task issuing a request once however often it runs (twice, at
the same time, after a lost answer); a rejection kept for ops and sent again once put right; a settlement paid asking
for one invoice of what it charged (with what earlier payments paid of a rent never paid in full); a correction
reversing an invoice and reissuing it; and a refund of an invoiced rent reversing its invoice, reissued for what was
kept."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy import text

from bff.servicing.invoices import InvoiceIssuing
from bff.servicing.invoices import InvoiceRequestRejected
from books.vat import load_tax_policy
from books.vat import rent_tax
from infra.audit import SqlAuditLog
from infra.collections import SqlCollections
from infra.db import Database
from infra.db.models import ApplicationRow
from infra.db.models import AuditEventRow
from infra.db.models import DealerGroupRow
from infra.db.models import DealerRow
from infra.db.models import InstalmentRow
from infra.db.models import InvoiceRequestRow
from infra.db.models import LeaseReceiptRow
from infra.db.models import SandboxInvoiceRow
from infra.db.models import SettlementQuoteRow
from infra.invoice_platform import InvoiceRejected
from infra.invoice_platform import IssueRequest
from infra.invoice_platform import Line
from infra.invoice_platform import Party
from infra.invoice_platform import RedLetter
from infra.invoice_platform import is_invoice_number
from infra.invoice_sandbox import DELAY_MARK
from infra.invoice_sandbox import SandboxInvoicePlatform
from infra.invoicing import SqlInvoices
from infra.invoicing import item_name
from infra.invoicing import lines_for
from infra.pii import PiiVault
from infra.servicing import SqlServicing
from kyc.idnumber import check_digit
from kyc.masking import mask_id_number
from plans.policy import load_policy
from tests.conftest import postgres_database
from tests.integration.test_servicing_close import open_lease
from tests.integration.test_servicing_close import record

pytestmark = pytest.mark.db
DEALER = "d-invoices"
SELLER = Party("领航融资租赁有限公司", tax_id="91350100M000100Y43")
GOOD_ID = "11010119900307123" + check_digit("11010119900307123")
BAD_ID = GOOD_ID[:17] + next(c for c in "0123456789X" if c != GOOD_ID[17])
STARTS = date(2026, 3, 10)  # rent 1 due 10 April (in arrears)
NOW = datetime(2026, 4, 10, 4, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    from infra.db.migrate import upgrade

    for found in postgres_database("leaseline_invoices"):
        upgrade(found)
        yield found


@pytest.fixture
def world(url: str) -> Iterator[dict[str, Any]]:
    """Empty servicing and invoice tables, a dealer, the sandbox platform and the task on them."""
    db = Database(url)
    with db.session() as s:
        s.execute(text("TRUNCATE invoice_requests, sandbox_invoices, lease_receipts, collection_attempts, "
                       "settlement_quotes, servicing_movements, instalments, leases, close_runs, audit_events, "
                       "applications CASCADE"))
        s.execute(text("DELETE FROM procrastinate_jobs"))
        if s.get(DealerRow, DEALER) is None:
            s.add(DealerGroupRow(id="g-invoices", name="invoices group"))
            s.flush()
            s.add(DealerRow(id=DEALER, group_id="g-invoices", name="invoices dealer", city="上海"))
    vault = PiiVault(os.urandom(32))
    platform = SandboxInvoicePlatform(db, clock=lambda: NOW)
    task = InvoiceIssuing(db, platform, vault, SELLER, SqlAuditLog(db), poll_seconds=30, clock=lambda: NOW)
    yield {"db": db, "vault": vault, "platform": platform, "task": task, "repo": SqlInvoices(db)}
    db.dispose()


def lessee(w: dict[str, Any], name: str = "张三", id_number: str = GOOD_ID, *, timing: str = "arrears") -> str:
    """A lease of a lessee whose application's answers name them (encrypted as the app keeps them); its id."""
    application_id = str(uuid.uuid4())
    draft = w["vault"].encrypt(json.dumps({"name": name, "id_number": id_number}), f"application:{application_id}")
    with w["db"].session() as s:
        s.add(ApplicationRow(id=application_id, dealer_id=DEALER, status="delivered", vehicle_id="v",
                             vehicle_label="v", plan_code="p", plan_json="{}", draft_enc=draft, customer_name=name))
    servicing = SqlServicing(w["db"])
    lease_id = open_lease(servicing, record(STARTS, timing=timing), application_id)
    assert lease_id is not None
    servicing.start_business_date(date(2026, 4, 10), NOW)
    return lease_id


def instalments(db: Database, lease_id: str) -> list[InstalmentRow]:
    with db.session() as s:
        return list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                              .order_by(InstalmentRow.number)))


def requests_of(db: Database, lease_id: str) -> list[InvoiceRequestRow]:
    with db.session() as s:
        return list(s.scalars(select(InvoiceRequestRow).where(InvoiceRequestRow.lease_id == lease_id)
                              .order_by(InvoiceRequestRow.created_at, InvoiceRequestRow.key)))


def jobs(db: Database) -> list[dict[str, Any]]:
    with db.session() as s:
        return [dict(args) for args in s.execute(text(
            "SELECT args FROM procrastinate_jobs WHERE task_name = 'invoices.issue' ORDER BY id")).scalars()]


def taken(db: Database) -> None:
    """The invoice jobs waiting, as a worker leaves them once it ran them (the tests call the task themselves)."""
    with db.session() as s:
        s.execute(text("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE task_name = 'invoices.issue' "
                       "AND status = 'todo'"))


def pay(w: dict[str, Any], lease_id: str, amount: int, key: str) -> Any:
    return SqlCollections(w["db"]).book(lease_id=lease_id, amount=amount, source="direct_debit", key=key,
                                        order=load_policy().allocation_order, now=NOW)


def sample(key: str, buyer: Party | None = None, amount: int = 532_211, interest: int = 61_234) -> IssueRequest:
    rule = load_tax_policy().rule("direct", date(2026, 4, 10))
    taxed = rent_tax(rule, amount, interest)
    return IssueRequest(key, SELLER, buyer or Party("张三", id_number=GOOD_ID, individual=True),
                        (Line(item_name(rule), rule.tax_code, taxed.net, rule.rate, taxed.tax, "第1期租金"),))


def pdf_text(pdf: bytes) -> str:
    return subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True, timeout=60
                          ).stdout.decode("utf-8")


# -- the sandbox platform --------------------------------------------------------------------------------------------
def test_the_sandbox_platform_issues_numbered_specimens(world: dict[str, Any]) -> None:
    platform: SandboxInvoicePlatform = world["platform"]
    first = platform.issue(sample("k-1"))
    assert first.status == "issued" and is_invoice_number(first.number) and first.issued_on == date(2026, 4, 10)
    assert first.number[:5] == "26359" and first.details["code"] == "0000"
    again = platform.issue(sample("k-1", amount=100, interest=1))  # the same key: the first answer, whatever it asks
    assert again.number == first.number
    second = platform.issue(sample("k-2"))
    assert int(second.number[5:]) == int(first.number[5:]) + 1  # numbered in sequence
    kept = platform.received(first.number)
    assert kept["gmfzjhm"] == mask_id_number(GOOD_ID) and GOOD_ID not in json.dumps(kept)  # no full ID kept
    assert kept["jshj"] == "5322.11" and kept["mxxx"][0]["sphfwssflbm"] == load_tax_policy().rule(
        "direct", date(2026, 4, 10)).tax_code

    # a buyer ID number failing GB 11643's check digit: the platform's error, nothing kept under the key
    with pytest.raises(InvoiceRejected) as refused:
        platform.issue(sample("k-3", Party("李四", id_number=BAD_ID, individual=True)))
    assert refused.value.code == "SBX4003"
    assert platform.issue(sample("k-3", Party("李四", id_number=GOOD_ID, individual=True))).status == "issued"

    # a delayed result: pending at the request and its first poll, issued at the second
    late = platform.issue(sample("k-4", Party(f"王五{DELAY_MARK}", id_number=GOOD_ID, individual=True)))
    assert late.status == "pending" and not late.number
    assert platform.status("k-4").status == "pending"
    issued = platform.status("k-4")
    assert issued.status == "issued" and is_invoice_number(issued.number)
    assert platform.issue(sample("k-4")).number == issued.number
    with pytest.raises(LookupError):
        platform.status("never-sent")

    # red-letter: against an issued blue invoice, whole, once, with a reason
    negated = tuple(line.negated() for line in sample("x").lines)
    red = IssueRequest("r-1", SELLER, Party("张三", id_number=GOOD_ID, individual=True), negated,
                       RedLetter(first.number, first.issued_on, "01"))  # type: ignore[arg-type]
    reversed_ = platform.issue(red)
    assert reversed_.status == "issued" and reversed_.number != first.number
    assert reversed_.confirmation.startswith("SBXQR") and reversed_.confirmation_status == "01"
    assert platform.received(reversed_.number)["lzfphm"] == first.number
    twice = IssueRequest("r-2", SELLER, red.buyer, negated, red.red)
    with pytest.raises(InvoiceRejected) as again_red:
        platform.issue(twice)
    assert again_red.value.code == "SBX4302"
    with pytest.raises(InvoiceRejected) as unknown:
        platform.issue(IssueRequest("r-3", SELLER, red.buyer, negated, RedLetter("26359" + "0" * 15, NOW.date(), "01")))
    assert unknown.value.code == "SBX4301"
    partial = tuple(line.negated() for line in sample("x", amount=100_000, interest=10_000).lines)
    with pytest.raises(InvoiceRejected) as not_whole:
        platform.issue(IssueRequest("r-4", SELLER, red.buyer, partial, RedLetter(second.number, NOW.date(), "04")))
    assert not_whole.value.code == "SBX4303"
    with pytest.raises(InvoiceRejected) as reason:
        platform.issue(IssueRequest("r-5", SELLER, red.buyer, negated, RedLetter(second.number, NOW.date(), "09")))
    assert reason.value.code == "SBX4304"

    # the rendering says it is a specimen, the ID number masked
    pdf = platform.document(first.number)
    assert pdf.startswith(b"%PDF")
    words = pdf_text(pdf)
    assert "样票" in words and "SPECIMEN" in words and "not a valid invoice" in words
    assert first.number in words and mask_id_number(GOOD_ID) in words and GOOD_ID not in words
    with pytest.raises(LookupError):
        platform.document("26359" + "0" * 15)


# -- asking for invoices ---------------------------------------------------------------------------------------------
def test_a_rent_paid_in_full_asks_for_its_invoice_with_the_receipt(world: dict[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    lease_id = lessee(w)
    rent1 = instalments(w["db"], lease_id)[0]
    assert requests_of(w["db"], lease_id) == []  # rents in arrears: nothing paid at signing

    # a part of the rent: no invoice yet
    pay(w, lease_id, 10_000, "pay-part")
    assert requests_of(w["db"], lease_id) == [] and jobs(w["db"]) == []

    # the rest, in a transaction that fails after the invoice was asked for: neither the receipt nor the request
    # nor its job is left
    import infra.collections as collections

    real = collections.rents_paid

    def then_fail(*args: Any, **kwargs: Any) -> list[str]:
        real(*args, **kwargs)
        raise RuntimeError("the receipt's transaction fails after its invoice was asked for")

    monkeypatch.setattr(collections, "rents_paid", then_fail)
    with pytest.raises(RuntimeError):
        pay(w, lease_id, rent1.amount - 10_000, "pay-rest")
    monkeypatch.setattr(collections, "rents_paid", real)
    assert requests_of(w["db"], lease_id) == [] and jobs(w["db"]) == []
    with w["db"].session() as s:
        assert s.scalars(select(LeaseReceiptRow).where(LeaseReceiptRow.key == "pay-rest")).first() is None

    receipt = pay(w, lease_id, rent1.amount - 10_000, "pay-rest")
    [asked] = requests_of(w["db"], lease_id)
    assert (asked.key, asked.kind, asked.purpose, asked.status) == (f"rent:{rent1.id}", "blue", "rent", "requested")
    assert asked.receipt_id == receipt.id and asked.amount == rent1.amount and asked.tax_point == rent1.due_on
    assert jobs(w["db"]) == [{"request_id": asked.id, "request": jobs(w["db"])[0]["request"]}]
    # the same payment again (a replay): booked before, asks for nothing more
    assert pay(w, lease_id, rent1.amount - 10_000, "pay-rest").replay
    assert len(requests_of(w["db"], lease_id)) == 1 and len(jobs(w["db"])) == 1


def test_rent_1_paid_at_signing_asks_for_its_invoice_with_the_lease(world: dict[str, Any]) -> None:
    lease_id = lessee(world, timing="advance")
    rent1 = instalments(world["db"], lease_id)[0]
    [asked] = requests_of(world["db"], lease_id)
    assert asked.key == f"rent:{rent1.id}" and asked.amount == rent1.amount and asked.receipt_id is None
    assert [j["request_id"] for j in jobs(world["db"])] == [asked.id]


# -- the task ----------------------------------------------------------------------------------------------------------
def test_the_task_issues_a_request_once_however_often_it_runs(world: dict[str, Any]) -> None:
    w = world
    lease_id = lessee(w)
    rent1 = instalments(w["db"], lease_id)[0]
    pay(w, lease_id, rent1.amount, "pay-1")
    [asked] = requests_of(w["db"], lease_id)
    assert w["task"].issue(asked.id) == "issued"
    assert w["task"].issue(asked.id) == "already"  # run twice: nothing sent again
    [done] = requests_of(w["db"], lease_id)
    assert done.status == "issued" and is_invoice_number(done.number or "") and done.issued_on == NOW.date()
    taxed = rent_tax(load_tax_policy().rule("direct", rent1.due_on), rent1.amount, rent1.interest)
    assert (done.net, done.tax, done.amount) == (taxed.net, taxed.tax, rent1.amount)
    assert [Line.from_dict(line) for line in json.loads(done.lines)] == list(lines_for(json.loads(done.facts),
                                                                                       load_tax_policy()))
    assert w["vault"].decrypt(done.buyer_name_enc, f"invoice_buyer_name:{done.id}") == "张三"
    assert w["vault"].decrypt(done.buyer_id_enc, f"invoice_buyer_id:{done.id}") == GOOD_ID
    assert done.buyer_id_masked == mask_id_number(GOOD_ID)
    sent = w["platform"].received(done.number)
    assert sent["lsh"] == done.id and sent["gmfmc"] == "张三" and sent["xsfnsrsbh"] == SELLER.tax_id
    assert sent["mxxx"][0]["spmc"].startswith("*") and sent["bz"] == "融资租赁合同 LL-TEST"
    with w["db"].session() as s:
        assert s.query(SandboxInvoiceRow).count() == 1

    # two runs at the same time, and a run after a lost answer (the platform issued, the worker died before
    # recording it): one invoice each time
    rent2 = instalments(w["db"], lease_id)[1]
    with w["db"].session() as s:
        s.execute(text("UPDATE business_date SET current = :d"), {"d": rent2.due_on})
    pay(w, lease_id, rent2.amount, "pay-2")
    second = requests_of(w["db"], lease_id)[1]
    outcomes: list[str] = []
    runs = [threading.Thread(target=lambda: outcomes.append(w["task"].issue(second.id))) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(60)
    assert sorted(outcomes) in (["already", "issued"], ["issued", "issued"])  # both may record: one invoice
    with w["db"].session() as s:
        assert s.query(SandboxInvoiceRow).count() == 2
    rent3 = instalments(w["db"], lease_id)[2]
    with w["db"].session() as s:
        s.execute(text("UPDATE business_date SET current = :d"), {"d": rent3.due_on})
    pay(w, lease_id, rent3.amount, "pay-3")
    third = requests_of(w["db"], lease_id)[2]
    lost = w["platform"].issue(w["task"]._request(w["repo"].row(third.id)))  # answered, never recorded
    assert w["task"].issue(third.id) == "issued"
    assert requests_of(w["db"], lease_id)[2].number == lost.number
    with w["db"].session() as s:
        assert s.query(SandboxInvoiceRow).count() == 3


def test_a_rejected_request_is_kept_for_ops_and_sent_again_once_put_right(world: dict[str, Any]) -> None:
    w = world
    lease_id = lessee(w, "赵六", BAD_ID)
    rent1 = instalments(w["db"], lease_id)[0]
    pay(w, lease_id, rent1.amount, "pay-1")
    [asked] = requests_of(w["db"], lease_id)
    with pytest.raises(InvoiceRequestRejected) as failed:  # the job fails: ops see it on /ops/jobs with this
        w["task"].issue(asked.id)
    assert "SBX4003" in str(failed.value) and asked.id in str(failed.value)
    [kept] = requests_of(w["db"], lease_id)
    assert kept.status == "rejected" and kept.error_code == "SBX4003" and "GB 11643" in (kept.error or "")
    assert kept.number is None
    with w["db"].session() as s:
        audit = s.scalars(select(AuditEventRow).where(AuditEventRow.action == "invoices.rejected")).one()
    assert audit.outcome == "failure" and audit.target == lease_id and json.loads(audit.details)["code"] == "SBX4003"
    shown = w["repo"].attention(NOW)
    assert [(i.id, i.status, i.error_code) for i in shown] == [(asked.id, "rejected", "SBX4003")]
    assert shown[0].buyer_id_masked == mask_id_number(BAD_ID)

    # ops put the ID number right and send it again: the same key, issued once
    with w["db"].session() as s:
        app = s.get(ApplicationRow, kept.application_id)
        app.draft_enc = w["vault"].encrypt(json.dumps({"name": "赵六", "id_number": GOOD_ID}),
                                           f"application:{app.id}")
    with w["db"].session() as s:  # as the worker leaves it: the job failed with the rejection
        s.execute(text("UPDATE procrastinate_jobs SET status = 'failed' WHERE task_name = 'invoices.issue'"))
    assert w["repo"].retry(lease_id, asked.id, NOW)
    assert not w["repo"].retry(lease_id, asked.id, NOW)  # requested again already
    assert [j["request_id"] for j in jobs(w["db"])].count(asked.id) == 2  # the retry's own job
    assert w["task"].issue(asked.id) == "issued"
    assert requests_of(w["db"], lease_id)[0].buyer_id_masked == mask_id_number(GOOD_ID)
    assert w["repo"].attention(NOW) == []


def test_a_delayed_result_is_asked_again_until_issued(world: dict[str, Any]) -> None:
    w = world
    lease_id = lessee(w, f"孙七{DELAY_MARK}")
    pay(w, lease_id, instalments(w["db"], lease_id)[0].amount, "pay-1")
    [asked] = requests_of(w["db"], lease_id)
    taken(w["db"])
    assert w["task"].issue(asked.id) == "pending"
    with w["db"].session() as s:
        again = s.execute(text("SELECT scheduled_at FROM procrastinate_jobs WHERE task_name = 'invoices.issue' "
                               "AND status = 'todo' AND args->>'request_id' = :r AND scheduled_at IS NOT NULL"),
                          {"r": asked.id}).scalars().all()
    assert again == [NOW + timedelta(seconds=30)]  # the next look, deferred with the answer
    assert w["task"].issue(asked.id) == "pending"  # the platform's first poll: still pending
    assert w["task"].issue(asked.id) == "issued"
    [done] = requests_of(w["db"], lease_id)
    assert done.status == "issued" and is_invoice_number(done.number or "")
    with w["db"].session() as s:
        assert s.query(SandboxInvoiceRow).count() == 1


def test_a_settlement_paid_asks_for_one_invoice_of_what_it_charged(world: dict[str, Any]) -> None:
    from bff.servicing.lease_page import quote
    from bff.servicing.lease_page import settlement_dates
    from infra.lease_reads import SqlLeaseReads
    from infra.settlements import SqlSettlements

    w = world
    lease_id = lessee(w)
    pay(w, lease_id, 10_000, "pay-part")  # a part of rent 1: no invoice yet, the settlement's covers it
    assert requests_of(w["db"], lease_id) == []
    servicing = SqlServicing(w["db"])
    snap = SqlLeaseReads(w["db"]).snapshot(lease_id)
    assert snap is not None
    calendar = servicing.calendar()
    on = settlement_dates(snap.lease, snap.instalments, snap.business_date, calendar).earliest
    assert on is not None
    offered = quote(snap.lease, snap.instalments, on, calendar)
    quote_id = SqlSettlements(w["db"]).offer(lease_id, offered, requested_by="customer", now=NOW)
    collections = SqlCollections(w["db"])
    with w["db"].session() as s:
        due = s.get(SettlementQuoteRow, quote_id).amount_due
    attempt, _ = collections.start_attempt(lease_id=lease_id, amount=due, channel="direct_debit", trigger="customer",
                                           key="settle-1", business_date=snap.business_date, now=NOW,
                                           purpose="settlement", subject_id=quote_id)
    collections.book(lease_id=lease_id, amount=due, source="direct_debit", key="settle-1",
                     order=load_policy().allocation_order, attempt_id=attempt.id, now=NOW)
    with w["db"].session() as s:
        paid = s.get(SettlementQuoteRow, quote_id)
        assert paid.status == "paid"
        charged = paid.amount_due - (paid.penalties - paid.penalties_booked) + paid.deposit_offset + 10_000
    [asked] = [r for r in requests_of(w["db"], lease_id) if r.purpose == "settlement"]
    assert asked.key == f"settlement:{quote_id}" and asked.amount == charged and asked.tax_point == NOW.date()
    facts = json.loads(asked.facts)
    assert {p["kind"] for p in facts["parts"]} >= {"rent", "fee"}
    fee = next(p for p in facts["parts"] if p["kind"] == "fee")
    assert fee["amount"] == paid.early_settlement_fee
    assert w["task"].issue(asked.id) == "issued"
    [done] = [r for r in requests_of(w["db"], lease_id) if r.purpose == "settlement"]
    assert done.net + done.tax == charged


def test_a_correction_reverses_the_invoice_and_reissues_it(world: dict[str, Any]) -> None:
    w = world
    lease_id = lessee(w, "钱八")
    pay(w, lease_id, instalments(w["db"], lease_id)[0].amount, "pay-1")
    [blue] = requests_of(w["db"], lease_id)
    w["task"].issue(blue.id)
    with w["db"].session() as s:  # the customer's name was mistyped: ops correct the application first
        app = s.get(ApplicationRow, blue.application_id)
        app.draft_enc = w["vault"].encrypt(json.dumps({"name": "钱捌", "id_number": GOOD_ID}), f"application:{app.id}")
    red_id = w["repo"].correction(lease_id, blue.id, "购买方名称有误", "ops-user", NOW)
    with pytest.raises(Exception) as twice:
        w["repo"].correction(lease_id, blue.id, "again", "ops-user", NOW)
    assert getattr(twice.value, "code", "") == "reversed"
    taken(w["db"])
    assert w["task"].issue(red_id) == "issued"
    by_kind = {(r.kind, r.purpose): r for r in requests_of(w["db"], lease_id)}
    blue_row, red, reissued = by_kind[("blue", "rent")], by_kind[("red", "correction")], by_kind[("blue", "reissue")]
    assert (red.kind, red.original_id, red.reason_code, red.amount) == ("red", blue.id, "01", -blue.amount)
    assert (red.net, red.tax) == (-blue_row.net, -blue_row.tax)  # type: ignore[operator]
    sent = w["platform"].received(red.number)
    assert sent["lzfphm"] == blue_row.number and sent["gmfmc"] == "钱八"  # the red names the blue's buyer
    assert (reissued.kind, reissued.purpose, reissued.key, reissued.status) == ("blue", "reissue",
                                                                               f"reissue:{blue.id}", "requested")
    assert [j["request_id"] for j in jobs(w["db"])][-1] == reissued.id  # deferred with the red's issue
    assert w["task"].issue(reissued.id) == "issued"
    again = w["repo"].row(reissued.id)
    assert again.amount == blue.amount and w["platform"].received(again.number)["gmfmc"] == "钱捌"
    views = {i.id: i for i in w["repo"].of_lease(lease_id)}
    assert views[blue.id].reversed_by == red.id and not views[blue.id].reversible
    assert views[red.id].original_number == blue_row.number and views[again.id].reversible


def test_a_refund_of_an_invoiced_rent_reverses_its_invoice_and_reissues_what_was_kept(world: dict[str, Any]) -> None:
    from infra.invoicing import rent_refunded

    w = world
    lease_id = lessee(w, timing="advance")  # rent 1 paid at signing: invoiced
    rent1 = instalments(w["db"], lease_id)[0]
    [blue] = requests_of(w["db"], lease_id)
    taken(w["db"])
    assert w["task"].issue(blue.id) == "issued"
    with w["db"].session() as s:
        red_id = rent_refunded(s, lease_id, 1, 500, "首期租金部分退款", NOW)
    with w["db"].session() as s:  # a second refund before the red is issued: the reissue is made smaller
        assert rent_refunded(s, lease_id, 1, 300, "首期租金部分退款", NOW) == red_id
    red = w["repo"].row(red_id)
    assert (red.kind, red.purpose, red.reason_code, red.original_id, red.amount) == (
        "red", "refund", "04", blue.id, -rent1.amount)
    assert json.loads(red.facts)["reissue"]["parts"][0]["amount"] == rent1.amount - 800
    taken(w["db"])
    assert w["task"].issue(red_id) == "issued"
    reissued = next(r for r in requests_of(w["db"], lease_id) if r.purpose == "reissue")
    assert reissued.amount == rent1.amount - 800 and reissued.instalment_id == rent1.id
    taken(w["db"])
    assert w["task"].issue(reissued.id) == "issued"
    done = w["repo"].row(reissued.id)
    assert done.net + done.tax == rent1.amount - 800
    # what was left given back too: the reissued invoice reversed, nothing reissued after it
    with w["db"].session() as s:
        last_red = rent_refunded(s, lease_id, 1, rent1.amount - 800, "首期租金全部退款", NOW)
    assert w["repo"].row(last_red).original_id == reissued.id
    taken(w["db"])
    assert w["task"].issue(last_red) == "issued"
    assert sorted((r.kind, r.purpose, r.status) for r in requests_of(w["db"], lease_id)) == [
        ("blue", "reissue", "issued"), ("blue", "rent", "issued"), ("red", "refund", "issued"),
        ("red", "refund", "issued")]
    assert sum(r.amount for r in requests_of(w["db"], lease_id)) == 0
    with w["db"].session() as s:  # nothing invoiced is left to reverse: nothing asked for
        assert rent_refunded(s, lease_id, 1, 100, "again", NOW) is None
    assert len(requests_of(w["db"], lease_id)) == 4
