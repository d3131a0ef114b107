"""Paying a rent from the customer's phone (issue 18 §3), over real HTTP with localstripe (TEST MODE): the lessee pays
what is due now, a double tap and Stripe's webhook replayed book it once, only the lessee and the dealer's staff reach
the page, a declined card and bad input are 4xx pages that keep the customer able to pay."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sqlalchemy import update

from infra.db.models import ApplicationRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseReceiptRow
from infra.payments import sign_webhook
from infra.servicing import SqlServicing
from infra.servicing import lease_plan
from tests.integration.test_applications import SALES_B
from tests.integration.test_applications import start
from tests.integration.test_auth import RISK1
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_returning_customer import join
from tests.integration.test_servicing_close import record

pytestmark = pytest.mark.db
PENALTY = 1234  # fen of late charge on rent 1


def open_overdue_lease(app: Any, application_id: str) -> tuple[str, int]:
    """The application handed over 40 days before the business date, its rent 1 overdue with a late charge (as the
    close would leave it); (lease id, what is due now in fen)."""
    c = app.extensions["leaseline"]
    today = SqlServicing(c.db).business_date()
    with c.db.session() as s:
        dealer_id = s.execute(select(ApplicationRow.dealer_id).where(ApplicationRow.id == application_id)).scalar_one()
        s.execute(update(ApplicationRow).where(ApplicationRow.id == application_id).values(status="delivered"))
        lease_id = SqlServicing(c.db).open_lease(s, application_id, dealer_id,
                                                 lease_plan(record(today - timedelta(days=40))), datetime.now(UTC))
        assert lease_id is not None
        rent = s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id,
                                                     InstalmentRow.number == 1)).one()
        rent.state, rent.overdue_since, rent.penalty_accrued = "overdue", rent.due_on + timedelta(days=1), PENALTY
        return lease_id, rent.amount + PENALTY


def form(page: str) -> dict[str, str]:
    return {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1),  # type: ignore[union-attr]
            "token": re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)}  # type: ignore[union-attr]


def test_the_lessee_pays_the_rent_due_once_and_only_they_and_the_dealer_s_staff_may(
        bff_server: Any, app: Any, stripe_server: Any) -> None:
    base = bff_server.url
    customer, _ = join(base, app, "13700138818")
    with customer:
        lease_id, due = open_overdue_lease(app, start(base, customer))
        url = f"{base}/leases/{lease_id}/pay"
        page = customer.get(url, timeout=TIMEOUT)
        assert page.status_code == 200 and 'data-testid="test-mode"' in page.text
        assert f'data-total="{due}"' in page.text and 'data-testid="due-1"' in page.text
        # bad input: no token (an old page), an instalment that is not one — 4xx; a card declined: the page again by GET
        sent = form(page.text)
        assert customer.post(url, data={"csrf_token": sent["csrf_token"], "method": "visa"},
                             timeout=TIMEOUT).status_code == 400
        assert customer.post(url, data={**sent, "method": "visa", "instalment": "abc"},
                             timeout=TIMEOUT).status_code == 422
        assert customer.post(url, data={"token": sent["token"], "method": "visa"}, timeout=TIMEOUT).status_code == 400
        declined = customer.post(url, data={**form(customer.get(url, timeout=TIMEOUT).text), "method": "declined"},
                                 timeout=TIMEOUT)
        assert declined.history[0].status_code == 303 and "未扣款" in declined.text  # the page by GET (PRG)
        assert 'data-testid="pay-form"' in declined.text
        assert declined.text.count("未扣款") == 1, "the decline is said once (walk-through 46)"
        # the rent paid; the same form sent again (a double tap) charges nothing more
        sent = {**form(customer.get(url, timeout=TIMEOUT).text), "method": "visa", "instalment": "all"}
        first = customer.post(url, data=sent, timeout=TIMEOUT, allow_redirects=False)
        again = customer.post(url, data=sent, timeout=TIMEOUT, allow_redirects=False)
        assert first.status_code == again.status_code == 303
        assert first.headers["Location"] == again.headers["Location"]
        shown = customer.get(base + first.headers["Location"] if first.headers["Location"].startswith("/")
                             else first.headers["Location"], timeout=TIMEOUT)
        outcome = re.search(r'data-outcome="(\w+)"', shown.text)
        assert outcome is not None and outcome.group(1) == "succeeded", shown.text[shown.text.find('id="rent"'):][:800]
        # paid: a receipt of what was paid (amount, rent, date) and the way back to the lease, no live form; paying
        # ahead only as a link of its own, nothing preselected (walk-through 47)
        assert 'data-testid="due-1"' not in shown.text and 'data-testid="pay-form"' not in shown.text
        receipt = shown.text.split('data-testid="pay-receipt"')[1].split("</section>")[0]
        assert f'data-amount="{due}"' in receipt and 'data-testid="paid-1"' in receipt
        assert re.search(r'data-testid="paid-1"[^>]*>第 1 期租金：¥', receipt), receipt  # a Chinese page's colon
        assert SqlServicing(app.extensions["leaseline"].db).business_date().isoformat() in receipt
        assert f'href="/leases/{lease_id}"' in receipt
        assert 'data-testid="choose-ahead"' not in shown.text and 'data-testid="pay-ahead"' in shown.text
        ahead = re.search(r'data-testid="pay-ahead" href="([^"]+)"', shown.text)
        assert ahead is not None and "instalment=" in ahead.group(1)
        chosen = customer.get(base + ahead.group(1).replace("&amp;", "&"), timeout=TIMEOUT).text
        assert re.search(r'value="\d+" checked data-testid="choose-ahead"', chosen), "chosen by the link, explicitly"
        # nothing due now: the lease page offers no pay now, paying ahead only as a small link (walk-through 38a)
        lease_page = customer.get(f"{base}/leases/{lease_id}", timeout=TIMEOUT).text
        assert 'data-testid="pay-now"' not in lease_page and 'data-testid="lease-due-now"' not in lease_page
        assert 'data-testid="pay-ahead-link"' in lease_page
        c = app.extensions["leaseline"]
        with c.db.session() as s:
            receipts = s.execute(select(LeaseReceiptRow.amount, LeaseReceiptRow.reference).where(
                LeaseReceiptRow.lease_id == lease_id)).all()
            rent = s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id,
                                                         InstalmentRow.number == 1)).one()
        assert [r.amount for r in receipts] == [due] and rent.state == "paid" and rent.paid_penalty == PENALTY
        # Stripe's webhook about it, delivered twice: booked before, then a replay
        intent = stripe_server.gateway().retrieve_intent(receipts[0].reference)
        body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "payment_intent.succeeded", "created": 1,
                           "data": {"object": {"id": intent.id, "object": "payment_intent",
                                               "metadata": intent.metadata}}}).encode()
        outcomes = [requests.post(f"{base}/webhooks/stripe", data=body, timeout=TIMEOUT, headers={
            "Stripe-Signature": sign_webhook(body, stripe_server.webhook_secret),
            "Content-Type": "application/json"}).json()["outcome"] for _ in range(2)]
        assert outcomes == ["ignored: rent booked before", "replay"]
        with c.db.session() as s:
            assert len(s.execute(select(LeaseReceiptRow.id).where(LeaseReceiptRow.lease_id == lease_id)).all()) == 1
            # rent 2 falls due on the business date: all that day it is due now (the close marks it due only once the
            # day has ended, and debits a mandate's rent that day), not a rent paid ahead
            s.execute(update(InstalmentRow).where(InstalmentRow.lease_id == lease_id, InstalmentRow.number == 2)
                      .values(due_on=SqlServicing(c.db).business_date()))
        today = customer.get(url, timeout=TIMEOUT).text
        assert 'data-testid="due-2"' in today and "提前支付第 2 期" not in today and "提前支付第 3 期" in today
        assert 'data-testid="choose-ahead"' not in today  # rent 3 ahead: a link, not a choice in the form
    # someone else's phone, another dealer's salesperson: as if there were no such lease; signed out: 我的租赁
    stranger, link = join(base, app, "13700138819")
    with stranger, sign_in(base, SALES_B) as other_dealer, sign_in(base, SALES_A) as own_sales:
        assert stranger.get(url, timeout=TIMEOUT).status_code == 404
        assert other_dealer.get(url, timeout=TIMEOUT).status_code == 404
        assert own_sales.get(url, timeout=TIMEOUT).status_code == 200
        anonymous = requests.get(url, timeout=TIMEOUT, allow_redirects=False)
        assert anonymous.status_code == 302 and "/mine/sign-in" in anonymous.headers["Location"]
        token = csrf(stranger, link)
        assert stranger.post(url, data={"csrf_token": token, "token": "a" * 32, "method": "visa"},
                             timeout=TIMEOUT).status_code == 404


def test_the_customer_gives_a_mandate_switches_it_off_and_staff_only_see_it(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    # signed out: the customer's sign-in (我的租赁), as for the lease's pages, not the staff's
    anonymous = requests.get(f"{base}/applications/{uuid.uuid4()}/autopay", timeout=TIMEOUT, allow_redirects=False)
    assert anonymous.status_code == 302 and "/mine/sign-in" in anonymous.headers["Location"], anonymous.headers
    customer, _ = join(base, app, "13700138817")
    with customer, sign_in(base, SALES_A) as own_sales:
        application_id = start(base, customer)
        c = app.extensions["leaseline"]
        with c.db.session() as s:
            s.execute(update(ApplicationRow).where(ApplicationRow.id == application_id).values(status="signed"))
        url = f"{base}/applications/{application_id}/autopay"
        page = customer.get(url, timeout=TIMEOUT)
        assert page.status_code == 200 and 'data-testid="mandate-text"' in page.text and "自动扣款授权" in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        once = form(page.text)["token"]  # the form's own token: sent twice, it makes one mandate
        sign = {"csrf_token": token, "token": once, "action": "direct_debit", "bank": "沙箱银行",
                "account_last4": "6218", "behaviour": "insufficient_funds"}
        # not accepted, or the account's digits wrong: 422, what was typed kept, no mandate
        refused = customer.post(url, data={k: v for k, v in sign.items() if k != "accept"}, timeout=TIMEOUT)
        assert refused.status_code == 422 and 'data-field="accept"' in refused.text and 'value="6218"' in refused.text
        assert customer.post(url, data={**sign, "accept": "yes", "account_last4": "62"},
                             timeout=TIMEOUT).status_code == 422
        declined = customer.post(url, data={"csrf_token": token, "token": once, "action": "card", "method": "declined",
                                            "accept": "yes"}, timeout=TIMEOUT)
        assert declined.status_code == 422 and 'data-mandate=""' in declined.text
        assert _mandate(app, application_id) is None
        # accepted: the agreement's number ends with the sandbox bank's answer chosen (6: insufficient funds)
        done = customer.post(url, data={**sign, "accept": "yes"}, timeout=TIMEOUT, allow_redirects=False)
        assert done.status_code == 303
        mandate = _mandate(app, application_id)
        assert mandate is not None and mandate.kind == "direct_debit" and mandate.agreement_no.endswith("6")
        assert mandate.auto_collect and mandate.language == "zh" and mandate.text_version
        # the salesperson sees it, may not change it
        seen = own_sales.get(url, timeout=TIMEOUT)
        assert seen.status_code == 200 and 'data-auto="on"' in seen.text
        assert 'data-testid="mandate-text"' not in seen.text
        assert own_sales.post(url, data={"csrf_token": csrf(own_sales, url), "action": "off"},
                              timeout=TIMEOUT).status_code == 403
        # the customer turns it off (rents are then paid by hand), then saves a card instead
        assert customer.post(url, data={"csrf_token": token, "action": "off"}, timeout=TIMEOUT).status_code == 200
        assert not _mandate(app, application_id).auto_collect  # type: ignore[union-attr]
        # off: the page no longer says rent is collected from the account (walk-through 37); the bank named in English
        status = customer.get(url, timeout=TIMEOUT).text.split('data-testid="mandate-status"')[1].split("</p>")[0]
        assert "自动扣款已关闭" in status and "自动扣收" not in status and "6218" in status, status
        status = customer.get(url + "?lang=en", timeout=TIMEOUT).text.split('data-testid="mandate-status"')[1]
        assert "Sandbox Bank" in status.split("</p>")[0] and "will be collected" not in status.split("</p>")[0]
        carded = customer.post(url, data={**form(customer.get(url, timeout=TIMEOUT).text), "action": "card",
                                          "method": "visa", "accept": "yes"}, timeout=TIMEOUT)
        assert carded.status_code == 200 and 'data-mandate="card"' in carded.text and 'data-auto="on"' in carded.text
        card = _mandate(app, application_id)
        assert card is not None and card.customer_ref and card.payment_method and card.id != mandate.id
        # staff read it about the customer, not as if it were theirs; a role that may not open the lease (a risk
        # officer: 403 there too) may not open its mandate
        status = own_sales.get(url, timeout=TIMEOUT).text.split('data-testid="autopay"')[1].split("</section>")[0]
        assert "客户绑定的银行卡" in status and "您" not in status, status
        with sign_in(base, RISK1) as risk:
            assert risk.get(url, timeout=TIMEOUT, allow_redirects=False).status_code == 403


def _mandate(app: Any, application_id: str) -> Any:
    from infra.collections import SqlCollections

    return SqlCollections(app.extensions["leaseline"].db).active_mandate(application_id)


def test_a_rent_waiting_for_the_bank_s_check_is_paid_once_it_is_confirmed(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    customer, _ = join(base, app, "13700138816")
    with customer:
        lease_id, due = open_overdue_lease(app, start(base, customer))
        url = f"{base}/leases/{lease_id}/pay"
        sent = {**form(customer.get(url, timeout=TIMEOUT).text), "method": "3ds"}
        waiting = customer.get(base + customer.post(url, data=sent, timeout=TIMEOUT,
                                                    allow_redirects=False).headers["Location"], timeout=TIMEOUT)
        assert 'data-outcome="requires_action"' in waiting.text and 'data-testid="test-bank"' in waiting.text
        attempt = re.search(r'name="attempt" value="([0-9a-f-]+)"', waiting.text).group(1)  # type: ignore[union-attr]
        token = re.search(r'name="csrf_token" value="([^"]+)"', waiting.text).group(1)  # type: ignore[union-attr]
        done = customer.post(f"{url}/authenticate", data={"csrf_token": token, "attempt": attempt,
                                                          "result": "complete"}, timeout=TIMEOUT)
        assert done.status_code == 200 and 'data-outcome="succeeded"' in done.text
        with app.extensions["leaseline"].db.session() as s:
            assert s.execute(select(LeaseReceiptRow.amount).where(
                LeaseReceiptRow.lease_id == lease_id)).scalars().all() == [due]


def test_strangers_requests_never_use_up_the_lessee_s_payments(bff_server: Any, app: Any) -> None:
    """The per-lease limit on the requests that reach Stripe counts only those of someone who may pay the lease: 20
    requests by people who may not (signed out, another customer, another dealer's salesperson) leave its lessee
    free to pay."""
    base = bff_server.url
    customer, _ = join(base, app, "13700138815")
    stranger, link = join(base, app, "13700138814")
    with customer, stranger, sign_in(base, SALES_B) as other_dealer, requests.Session() as anonymous:
        lease_id, _ = open_overdue_lease(app, start(base, customer))
        url = f"{base}/leases/{lease_id}/pay"
        token = csrf(stranger, link)
        for i in range(7):
            assert anonymous.get(f"{url}/return?attempt=x", timeout=TIMEOUT,
                                 allow_redirects=False).status_code == 302
            assert stranger.post(url, data={"csrf_token": token, "token": "a" * 32, "method": "visa"},
                                 timeout=TIMEOUT, allow_redirects=False).status_code == 404
            if i < 6:
                assert other_dealer.get(f"{url}/return?attempt=x", timeout=TIMEOUT,
                                        allow_redirects=False).status_code == 404
        paid = customer.post(url, data={**form(customer.get(url, timeout=TIMEOUT).text), "method": "visa"},
                             timeout=TIMEOUT, allow_redirects=False)
        assert paid.status_code == 303, paid.status_code


def test_a_mandate_form_sent_twice_makes_one_mandate(bff_server: Any, app: Any) -> None:
    """The card's form carries a token of its own (the Stripe calls' Idempotency-Key): sent twice — a double tap, a
    replay —, it saves one card and makes one mandate."""
    from infra.db.models import CollectionMandateRow

    base = bff_server.url
    customer, _ = join(base, app, "13700138813")
    with customer:
        application_id = start(base, customer)
        with app.extensions["leaseline"].db.session() as s:
            s.execute(update(ApplicationRow).where(ApplicationRow.id == application_id).values(status="signed"))
        url = f"{base}/applications/{application_id}/autopay"
        sent = {**form(customer.get(url, timeout=TIMEOUT).text), "action": "card", "method": "visa", "accept": "yes"}
        answers = [customer.post(url, data=sent, timeout=TIMEOUT, allow_redirects=False) for _ in range(2)]
        assert [a.status_code for a in answers] == [303, 303]
        with app.extensions["leaseline"].db.session() as s:
            made = s.scalars(select(CollectionMandateRow).where(
                CollectionMandateRow.application_id == application_id)).all()
        assert len(made) == 1 and made[0].status == "active", [(m.kind, m.status) for m in made]


def test_the_text_about_a_rent_not_collected_links_the_configured_public_address(app: Any) -> None:
    """The pay link in the text (SMS ``rent_not_collected``) is built on ``settings.public_url`` (validated at start-up:
    bff/config.py), not on an environment variable read on the side."""
    from dataclasses import replace

    from bff.servicing import collect

    c = app.extensions["leaseline"]
    saved = collect._built.pop(id(c))  # built once per services: build another on other settings
    try:
        built = collect.rent_collection(c, replace(app.config["SETTINGS"], public_url="https://pay.leaseline.example"))
        c.payments.webhooks.others.remove(built.on_stripe_event)
        assert built.pay_link("L1") == "https://pay.leaseline.example/leases/L1/pay"
    finally:
        collect._built[id(c)] = saved
