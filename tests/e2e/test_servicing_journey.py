"""Issue 18, done when: a lease in force rolled forward with ``leaseline servicing close --until … --demo`` — the
customer's phone (Pixel 7), the ops desk and the dealer's desk (desktop browsers) — in one test, on a BFF and a
database of its own (the business date is one record for the whole database: rolling it months ahead must not move
the suite's).

0. The lease is handed over the real way (tests/e2e/test_servicing_journey.py ``lease_in_force``): invited, applied,
   approved, contract signed, paid, the handover record signed — its contract is the contract service's own, which
   signs the lease's later documents.
1. The customer, on their phone, gives the sandbox bank's 协议支付 direct-debit mandate (its answer: debited).
2. The business date is rolled, with the real command, to the eve of each of the first two rents' collection days:
   each is debited automatically by the worker (``servicing.collect``) and shows paid on the lease page.
3. The customer turns automatic collection off; rolled on, the third rent falls overdue: its late charge (the
   contract's daily rate on the rent, per calendar day), and the reminder texts the day after and a week after, in
   the sandbox SMS outbox with the figures of their day.
4. The ops desk: the collections queue lists the lease in M1; its page lists the reminders; a promise to pay is
   recorded.
5. The customer pays what is overdue on the phone (TEST MODE card): the lease is up to date.
6. A partial prepayment: both re-amortisations shown side by side (a shorter term, a lower rent), the lower rent
   chosen and paid; the next rent is the new one.
7. An early settlement: the lease page's quote for the earliest day the contract allows, requested, paid; the lease
   settled.
8. The settlement certificate and the prepayment's schedule annex, signed by the contract service, listed among the
   lease's documents; the certificate downloaded, its hash the recorded one, every signature valid (pdfsig).
9. The dealer's desk: the settled lease on the mortgage-release desk, the release recorded.

The rolls stop on the eve of each collection day and at each reminder's day, and wait for the worker: a collection
or a text then happens on its business date, not on whichever date the roll had reached meanwhile.

``LEASELINE_SCREENSHOTS=docs/tour`` saves one small screenshot per step in ``docs/tour/servicing/`` (the README's
servicing tour): ``make screenshots``.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from datetime import timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import Page
from playwright.sync_api import Playwright
from playwright.sync_api import expect
from sqlalchemy import select

from infra.db.models import CollectionAttemptRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseDocumentRow
from infra.db.models import LeaseRow
from infra.servicing import SqlServicing
from tests.common.vins import fresh_vin
from tests.common.worker import WorkerThread
from tests.conftest import LiveServer
from tests.conftest import build_app
from tests.conftest import postgres_database
from tests.conftest import s3_config
from tests.conftest import stripe_config
from tests.e2e.test_journey import Tour
from tests.e2e.test_review_browser import sign_in
from tests.integration.test_applications import CUSTOMER
from tests.integration.test_applications import _all
from tests.integration.test_applications import invited_customer
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import post
from tests.integration.test_applications import ready_to_submit
from tests.integration.test_applications import wait_status
from tests.integration.test_auth import ADMIN_A
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import sign_in as sign_in_http
from tests.integration.test_contract_journey import explain
from tests.integration.test_contract_journey import last_code
from tests.integration.test_contract_journey import sign
from tests.integration.test_contract_signing import pdfsig
from tests.integration.test_handover import confirm
from tests.integration.test_handover import lease_url
from tests.integration.test_handover import prepare
from tests.integration.test_reviews import persona_id
from tests.integration.test_servicing_close import cli

pytestmark = [pytest.mark.e2e, pytest.mark.db]
MOBILE = "13600136901"
OPS = "ops@demo.leaseline.cn"
DESK = {"viewport": {"width": 1280, "height": 800}}


@dataclass
class Served:
    """A BFF of the test's own and its worker."""

    live: LiveServer
    worker: WorkerThread

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def app(self) -> Any:
        return self.live.app


@pytest.fixture(scope="module")
def server(_var_dir: Path, s3_server: Any, risk_server: Any, contract_server: Any,
           stripe_server: Any) -> Iterator[Served]:
    """The BFF on a database of its own, with its worker, served on a free port."""
    from infra.db.migrate import upgrade

    for url in postgres_database("leaseline_servicing_e2e"):
        upgrade(url)
        app = build_app(url, **s3_config(s3_server), risk_url=risk_server.url, contract_url=contract_server.url,
                        **stripe_config(stripe_server))
        with WorkerThread(app) as worker, LiveServer(app) as live:
            yield Served(live, worker)
        app.extensions["leaseline"].db.dispose()


@dataclass
class Lease:
    server: Served
    id: str
    application_id: str

    @property
    def db(self) -> Any:
        return self.server.app.extensions["leaseline"].db

    def rents(self) -> dict[int, InstalmentRow]:
        with self.db.session() as s:
            return {r.number: r for r in s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == self.id))}

    def collection_day(self, number: int) -> date:
        """The day rent ``number`` is debited: its due date, or the next business day (China's calendar)."""
        return SqlServicing(self.db).calendar().on_or_after(self.rents()[number].due_on)

    def roll(self, until: date) -> None:
        """``leaseline servicing close --until UNTIL --demo``, then the worker's jobs of those days done."""
        result = cli(self.db.url, "servicing", "close", "--until", until.isoformat(), "--demo")
        assert result.exit_code == 0, result.output
        assert SqlServicing(self.db).business_date() == until + timedelta(days=1)
        self.server.worker.idle(queues=("servicing",))

    def late_charge(self, rent: InstalmentRow, days: int) -> int:
        """The contract's late charge for ``days`` calendar days on ``rent`` left wholly unpaid, reckoned here: its
        base (the rent, or its principal) × the daily rate × days, half-up to the fen once."""
        with self.db.session() as s:
            terms = s.get(LeaseRow, self.id)
            assert terms is not None
            base = rent.amount if terms.late_fee_base == "overdue_amount" else rent.principal
            rate = terms.late_fee_daily_rate
        return int((Decimal(base) / 100 * rate * days).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)

    def document(self, kind: str) -> LeaseDocumentRow | None:
        """The lease's document of ``kind`` once it is ready (signed by the contract service)."""
        with self.db.session() as s:
            return s.scalars(select(LeaseDocumentRow).where(LeaseDocumentRow.lease_id == self.id,
                                                            LeaseDocumentRow.kind == kind,
                                                            LeaseDocumentRow.status == "ready")).one_or_none()

    def texts(self) -> list[str]:
        """The texts to the customer's phone (the sandbox SMS outbox), oldest first."""
        return [m.body for m in reversed(self.server.app.extensions["leaseline"].outbox.latest(50, to=MOBILE))]


def wait_for(check: Any, what: str, timeout: float = 20) -> Any:
    """``check()`` once it is true (the worker's jobs run in their own thread)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)
    return found


def lease_in_force(server: Served) -> tuple[Lease, requests.Session]:
    """A lease handed over today, the real way (over HTTP, the real risk and contract services): the invited
    customer applies on their phone (ID card read by OCR, details, counter verification), the dealer gives the car
    and confirms the identity, the risk service approves (a clean sandbox file), the contract service drafts the
    contract, the salesperson explains it, the customer signs it with a texted code, what is due at signing is paid
    (Stripe's test card), the dealer records the handover and the customer signs its record: the lease in force from
    that record. The customer's phone session (the lessee's: their invitation's)."""
    base, app = server.url, server.app
    c = app.extensions["leaseline"]
    customer = invited_customer(base, app, MOBILE)
    customer.headers["User-Agent"] = f"phone-{uuid.uuid4().hex}"  # the risk service's device velocity rule
    app_id = ready_to_submit(base, customer, make_card_images(), face=False, vehicle=False)
    r = post(customer, f"{base}/applications/{app_id}/steps/customer",
             {**CUSTOMER, "id_number": persona_id("10"), "mobile": MOBILE})  # a clean file: approved at once
    assert r.status_code == 200, r.text[:300]
    r = post(customer, f"{base}/applications/{app_id}/submit", form_url=f"{base}/applications/{app_id}")
    assert r.status_code == 200, r.text[:300]
    with sign_in_http(base, SALES_A) as sales:
        r = post(sales, f"{base}/applications/{app_id}/steps/vehicle", {"vin": fresh_vin(), "condition": "new"})
        assert r.status_code == 200, r.text[:300]
        r = post(sales, f"{base}/applications/{app_id}/counter", form_url=f"{base}/applications/{app_id}")
        assert r.status_code == 200, r.text[:300]
    with sign_in_http(base, ADMIN_A) as admin:
        r = post(admin, f"{base}/applications/{app_id}/review", {"decision": "kyc_passed", "note": "柜台核对原件"},
                 form_url=f"{base}/applications/{app_id}")
        assert r.status_code == 200, r.text[:300]
    with sign_in_http(base, SALES_A) as sales:
        wait_status(sales, base, app_id, ("contract_ready",), timeout=60)
        assert explain(base, sales, app_id).status_code == 200
    r = post(customer, f"{base}/applications/{app_id}/contract/code", form_url=f"{base}/applications/{app_id}/contract")
    assert r.status_code == 200, r.text[:300]
    r = sign(base, customer, app_id, code=last_code(app, MOBILE))
    assert r.status_code == 200 and 'data-testid="contract-signed"' in r.text, r.text[-1000:]
    application = c.applications.repo.get(app_id, _all())
    for payment in c.payments.checkout.payments(application):
        assert c.payments.checkout.pay(application, payment.id, "pm_card_visa").status in ("succeeded", "held")
    with sign_in_http(base, SALES_A) as sales:
        assert prepare(sales, base, app_id).status_code == 303
    r = post(customer, f"{base}/applications/{app_id}/handover/code", form_url=lease_url(base, app_id))
    assert r.status_code == 200 and 'data-testid="code-sent"' in r.text, r.text[:300]
    assert confirm(customer, base, app_id, code=last_code(app, MOBILE)).status_code == 303
    found = SqlServicing(c.db).lease(app_id)
    assert found is not None, "no lease opened by the handover"
    return Lease(server, found[0].id, app_id), customer


def test_a_lease_rolled_forward_collected_late_reminded_and_paid_on_the_phone_and_the_desk(
        browser: Browser, playwright: Playwright, server: Served, tmp_path: Path) -> None:
    folder = os.environ.get("LEASELINE_SCREENSHOTS")
    tour = Tour(str(Path(folder) / "servicing") if folder else None)
    started = time.monotonic()

    def mark(step: str) -> None:  # printed: shown with a failure, and by ``pytest -s``
        print(f"servicing journey {time.monotonic() - started:6.1f} s  {step}")

    lease, customer = lease_in_force(server)
    contexts: list[BrowserContext] = []

    def device(**profile: Any) -> Page:
        context = browser.new_context(base_url=server.url, locale="zh-CN", **profile)
        contexts.append(context)
        return context.new_page()

    try:
        with customer:
            cookies = [{"name": c.name, "value": c.value or "", "url": server.url} for c in customer.cookies]
        phone = device(**playwright.devices["Pixel 7"])
        phone.context.add_cookies(cookies)  # type: ignore[arg-type]
        mark("lease in force")

        # 1. the mandate: the sandbox bank's direct-debit agreement, its answer "debited"
        phone.goto(f"/leases/{lease.id}")  # the lease page says automatic collection is off, and links its set-up
        expect(phone.get_by_test_id("lease-autopay")).to_have_attribute("data-on", "false")
        phone.get_by_test_id("lease-autopay-link").click()
        form = phone.get_by_test_id("mandate-direct-debit")
        form.locator("#bank").select_option("沙箱银行")
        form.locator("#account_last4").fill("4321")
        form.locator("#behaviour").select_option("success")
        form.locator("input[name=accept]").check()
        tour.shot(phone, "phone", "mandate")
        phone.get_by_test_id("sign-direct-debit").click()
        expect(phone.get_by_test_id("autopay")).to_have_attribute("data-auto", "on")
        expect(phone.get_by_test_id("autopay")).to_have_attribute("data-mandate", "direct_debit")
        mark("mandate given")

        # 2. rolled to the eve of the first two rents' collection days: each debited on its day by the worker
        first, second, late, after = [n for n, r in sorted(lease.rents().items())
                                      if r.kind == "rent" and r.state == "pending"][:4]
        for number in (first, second):
            lease.roll(lease.collection_day(number) - timedelta(days=1))
            wait_for(lambda n=number: lease.rents()[n].state == "paid", f"rent {number} collected")
        with lease.db.session() as s:
            attempts = s.execute(select(CollectionAttemptRow.trigger, CollectionAttemptRow.channel,
                                        CollectionAttemptRow.status).where(CollectionAttemptRow.lease_id == lease.id)
                                 ).all()
        assert sorted(map(tuple, attempts)) == [("auto", "direct_debit", "succeeded")] * 2, attempts
        phone.goto(f"/leases/{lease.id}")
        phone.locator("[data-testid=schedule] summary").click()
        rows = phone.locator("tr[data-testid=instalment]")
        for number in (first, second):
            expect(rows.and_(phone.locator(f"[data-number='{number}']"))).to_have_attribute("data-state", "paid")
        expect(rows.and_(phone.locator(f"[data-number='{late}']"))).to_have_attribute("data-state", "pending")
        expect(phone.get_by_test_id("lease-overdue")).to_have_count(0)
        phone.get_by_test_id("schedule").scroll_into_view_if_needed()
        tour.shot(phone, "phone", "rents-collected")
        mark(f"rents {first} and {second} collected automatically")

        # 3. automatic collection off: the next rent falls overdue, its late charge runs, the texts go on their days
        expect(phone.get_by_test_id("lease-autopay")).to_have_attribute("data-on", "true")
        phone.get_by_test_id("lease-autopay-link").click()
        phone.get_by_test_id("autopay-off").click()
        expect(phone.get_by_test_id("autopay")).to_have_attribute("data-auto", "off")
        last_day = lease.collection_day(late)  # the last day to pay it (the contract's grace: none)
        lease.roll(last_day + timedelta(days=1))  # its first overdue day closed: the text of the day after goes
        rent = lease.rents()[late]
        assert (rent.state, rent.overdue_since) == ("overdue", last_day + timedelta(days=1))
        lease.roll(last_day + timedelta(days=7))  # its seventh: the text of a week after goes
        rent = lease.rents()[late]
        charge = lease.late_charge(rent, 7)
        assert rent.penalty_accrued == charge > 0, (rent.penalty_accrued, charge)
        texts = lease.texts()
        about = [t for t in texts if f"第{late}期租金" in t]
        # 3 days before its due date, the day after it fell overdue, a week after (as of the close that sent them)
        assert len(about) == 3, texts
        assert "将于" in about[0] and f"{rent.due_on.year}年{rent.due_on.month}月{rent.due_on.day}日" in about[0]
        assert "已逾期 1 天" in about[1] and "已逾期 7 天" in about[2], about
        assert f"逾期违约金已计 {lease.late_charge(rent, 1) / 100:.2f} 元" in about[1], about
        assert f"逾期违约金已计 {charge / 100:.2f} 元" in about[2], about
        assert not any("未能自动扣款" in t for t in texts), texts  # nothing was tried: collection was off

        phone.goto(f"/leases/{lease.id}")
        overdue = phone.get_by_test_id("lease-overdue")
        expect(overdue).to_have_attribute("data-overdue", str(rent.amount))
        expect(overdue).to_have_attribute("data-late-charges", str(charge))
        expect(overdue).to_contain_text(f"{charge / 100:,.2f}")
        tour.shot(phone, "phone", "overdue")
        mark(f"rent {late} overdue a week, reminded twice")

        # 4. the ops desk: the collections queue, the lease's reminders, a promise to pay recorded
        desk = device(**DESK)
        sign_in(desk, OPS)
        desk.goto("/servicing/collections")
        line = desk.locator(f"[data-testid=collections-line][data-lease='{lease.id}']")
        expect(line).to_have_attribute("data-bucket", "M1")
        expect(line.get_by_test_id("days-past-due")).to_contain_text("7")  # as of the last close
        tour.shot(desk, "desk", "collections")
        line.locator("a").first.click()
        expect(desk.get_by_test_id("case-bucket")).to_have_attribute("data-bucket", "M1")
        reminded = desk.get_by_test_id("reminders").locator("tr[data-reminder]")
        expect(reminded).to_have_count(5)  # each rent's 3 days before, the late one's the day after and a week after
        expect(reminded.and_(desk.locator("[data-reminder^=overdue]"))).to_have_count(2)
        desk.locator("[name=outcome]").select_option("promised")
        promised = SqlServicing(lease.db).business_date() + timedelta(days=2)
        desk.locator("[name=promise_date]").fill(promised.isoformat())
        desk.locator("[name=note]").fill("客户称工资到账后当天支付")
        desk.get_by_test_id("contact-submit").click()
        expect(desk.get_by_test_id("collections-notice")).to_be_visible()
        expect(desk.get_by_test_id("history").locator("li[data-outcome=promised]")).to_have_count(1)
        desk.get_by_test_id("reminders").scroll_into_view_if_needed()
        tour.shot(desk, "desk", "collection-case")
        mark("ops desk: queue, reminders, promise")

        # 5. the customer pays what is overdue on the phone (TEST MODE: Stripe's test card)
        phone.get_by_test_id("pay-now").click()
        expect(phone.get_by_test_id("test-mode")).to_be_visible()
        expect(phone.get_by_test_id(f"due-{late}")).to_have_attribute("data-state", "overdue")
        expect(phone.get_by_test_id("rent-pay")).to_have_attribute("data-total", str(rent.amount + charge))
        phone.get_by_test_id("method").select_option("visa")
        phone.get_by_test_id("pay").click()
        expect(phone.get_by_test_id("pay-outcome")).to_have_attribute("data-outcome", "succeeded")
        tour.shot(phone, "phone", "late-rent-paid")
        rent = lease.rents()[late]
        assert (rent.state, rent.paid_penalty) == ("paid", charge), (rent.state, rent.paid_penalty)
        phone.goto(f"/leases/{lease.id}")
        expect(phone.get_by_test_id("lease-overdue")).to_have_count(0)
        next_due = lease.rents()[after].due_on.isoformat()
        expect(phone.get_by_test_id("lease-next")).to_have_attribute("data-due", next_due)
        mark("late rent paid on the phone")

        # 6. a partial prepayment: both re-amortisations side by side, the lower rent chosen and paid
        rent_before = lease.rents()[after].amount
        phone.get_by_test_id("prepay-link").click()
        phone.locator("#amount").fill("20000")
        phone.get_by_test_id("prepay-ask").click()
        options = phone.get_by_test_id("prepay-options")
        lower = int(options.locator("[data-row=rent] [data-option=lower_rent]").get_attribute("data-value") or 0)
        shorter_left = options.locator("[data-row=rents_left] [data-option=shorter_term]")
        rents_left = options.locator("[data-row=rents_left] [data-option=lower_rent]")
        assert 0 < lower < rent_before, (lower, rent_before)  # a lower rent over the same term …
        assert int(shorter_left.get_attribute("data-value") or 0) < int(rents_left.get_attribute("data-value") or 0)
        phone.get_by_test_id("option-lower_rent").check()  # … or fewer rents of the same: both shown before paying
        phone.get_by_test_id("method").select_option("visa")
        options.scroll_into_view_if_needed()
        tour.shot(phone, "phone", "prepayment-options")
        phone.get_by_test_id("prepay-pay").click()
        expect(phone.get_by_test_id("prepay-applied")).to_have_attribute("data-rent", str(lower))
        assert lease.rents()[after].amount == lower
        phone.get_by_test_id("see-schedule").click()
        expect(phone.get_by_test_id("lease-next")).to_have_attribute("data-amount", str(lower))
        mark("prepaid ¥20,000: lower rent")

        # 7. early settlement: the quote for the earliest day the contract allows, requested, paid; the lease settled
        quote = phone.get_by_test_id("settlement")
        quote.scroll_into_view_if_needed()
        expect(quote.get_by_test_id("quote-lines")).to_be_visible()
        settles_on = quote.get_attribute("data-settles-on")
        tour.shot(phone, "phone", "settlement-quote")
        phone.get_by_test_id("request-settlement").locator("button").click()
        expect(phone).to_have_url(re.compile(rf"/leases/{lease.id}/settlement/[0-9a-f-]+$"))
        settle = phone.get_by_test_id("settle")
        expect(settle).to_have_attribute("data-settles-on", settles_on or "")
        due = int(settle.get_attribute("data-amount-due") or 0)
        assert due > 0, due  # the deposit does not cover the principal outstanding
        expect(phone.get_by_test_id("test-mode")).to_be_visible()
        phone.get_by_test_id("method").select_option("visa")
        phone.get_by_test_id("pay").click()
        expect(phone.get_by_test_id("settled")).to_be_visible()
        expect(phone.get_by_test_id("settled-on")).to_have_text(settles_on or "")
        # paid off on the business date (rolled months past the real day), settled on the quote's day, days later
        paid_on = SqlServicing(lease.db).business_date().isoformat()
        expect(phone.get_by_test_id("paid-on")).to_have_text(paid_on)
        tour.shot(phone, "phone", "settled")
        with lease.db.session() as s:
            settled = s.get(LeaseRow, lease.id)
            assert settled is not None and settled.status == "settled", settled
        assert not [r for r in lease.rents().values() if r.state in ("pending", "due", "overdue", "partly_paid")]
        phone.goto(f"/leases/{lease.id}")
        expect(phone.get_by_test_id("lease-settled")).to_have_attribute("data-paid-on", paid_on)
        expect(phone.get_by_test_id("pay-now")).to_have_count(0)
        mark("settled early on the phone")

        # 8. the settlement certificate and the prepayment's schedule annex, signed by the contract service, among the
        # lease's documents on the phone
        certificate = wait_for(lambda: lease.document("settlement_certificate"), "the settlement certificate")
        wait_for(lambda: lease.document("schedule_annex"), "the prepayment's schedule annex")
        phone.reload()
        expect(phone.get_by_test_id("doc-schedule_annex")).to_have_attribute("data-status", "ready")
        listed = phone.get_by_test_id("doc-settlement_certificate")
        expect(listed).to_have_attribute("data-status", "ready")
        listed.scroll_into_view_if_needed()
        tour.shot(phone, "phone", "certificate")
        pdf = phone.request.get(listed.locator("a").get_attribute("href") or "")
        assert pdf.ok and pdf.headers["content-type"].startswith("application/pdf"), pdf.status
        assert hashlib.sha256(pdf.body()).hexdigest() == certificate.sha256
        # each signature covers the certificate's bytes unchanged (poppler's pdfsig: an independent validator)
        verdicts = pdfsig(pdf.body(), tmp_path)
        assert verdicts and {v for _, v in verdicts} == {"Signature is Valid."}, verdicts
        # the public /verify page: the file is the certificate of this contract, and the browser itself proves the log
        # entry is this file's signing (its SHA-256), its path to the signed checkpoint and the checkpoint's signature
        phone.goto("/verify")
        phone.locator("input[name=file]").set_input_files({"name": "certificate.pdf", "mimeType": "application/pdf",
                                                          "buffer": pdf.body()})
        phone.locator("[data-testid=verify-form] button[type=submit]").click()
        expect(phone.locator("[data-proof-result][data-state=done]")).to_be_attached(timeout=15_000)
        checks = phone.locator("[data-proof-result] [data-check]")
        assert {checks.nth(i).get_attribute("data-check"): checks.nth(i).get_attribute("data-passed")
                for i in range(checks.count())} == {"Entry": "true", "Root": "true", "Signature": "true"}
        expect(phone.locator("body")).to_contain_text("的结清证明完整无改动")
        mark("certificate signed and downloaded")

        # 9. the dealer's mortgage-release desk: the settled lease's car to release, the release recorded
        dealer = device(**DESK)
        sign_in(dealer, ADMIN_A)
        dealer.goto("/servicing/releases")
        line = dealer.locator(f"[data-testid=release-line][data-lease='{lease.id}']")
        expect(line).to_have_attribute("data-status", "open")
        tour.shot(dealer, "desk", "mortgage-releases")
        line.locator("a").first.click()
        released_on = dealer.locator("#released_on")
        released_on.fill(released_on.get_attribute("max") or "")
        dealer.locator("#office").fill("上海市公安局交通警察总队车辆管理所")
        dealer.locator("#reference").fill("沪JY2027031600018")
        dealer.get_by_test_id("release-submit").click()
        expect(dealer.get_by_test_id("release-notice")).to_be_visible()
        expect(dealer.get_by_test_id("release")).to_have_attribute("data-status", "released")
        tour.shot(dealer, "desk", "mortgage-released")
        mark("mortgage released at the dealer")
    finally:
        for context in contexts:
            context.close()
