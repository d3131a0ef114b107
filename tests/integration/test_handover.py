"""The vehicle's handover as a signed record (交接确认书, issue 16), over real HTTP with the real contract service and
localstripe: the dealer records the odometer, keys and items; the customer reads the record with the dates it fixes,
confirms it with a text code and a signature, and the term starts that day — the record made, signed, stored and
logged by the contract service, every rent dated from it; or the customer refuses the vehicle and the dealer sees
why. Wrong input is a 422 that keeps what was typed (a wrong code: the page again by GET, keeping it too); a contract's
code does not confirm a handover."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from bff.payments.machine import term_end
from plans.handover import HANDOVER_ITEMS
from plans.timeline import timeline
from tests.integration.test_applications import CUSTOMER
from tests.integration.test_applications import SALES_A
from tests.integration.test_applications import SALES_B
from tests.integration.test_applications import _all
from tests.integration.test_applications import post
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_contract_journey import card_images  # noqa: F401 — a fixture
from tests.integration.test_contract_journey import contract_ready
from tests.integration.test_contract_journey import last_code
from tests.integration.test_contract_journey import sign

pytestmark = pytest.mark.db
SHANGHAI = ZoneInfo("Asia/Shanghai")
OPS = "ops@demo.leaseline.cn"


def ready_for_delivery(bff_server: Any, card_images: tuple[bytes, bytes]) -> str:  # noqa: F811
    """An application whose contract the customer signed at the contract service and whose payments are made."""
    base, app = bff_server.url, bff_server.app
    app_id = contract_ready(bff_server, card_images)
    with sign_in(base, SALES_A) as sales:
        post(sales, f"{base}/applications/{app_id}/contract/code", form_url=f"{base}/applications/{app_id}/contract")
        r = sign(base, sales, app_id, code=last_code(app, CUSTOMER["mobile"]))
        assert r.status_code == 200 and 'data-testid="contract-signed"' in r.text, r.text[-1000:]
    c = app.extensions["leaseline"]
    application = c.applications.repo.get(app_id, _all())
    for payment in c.payments.checkout.payments(application):
        assert c.payments.checkout.pay(application, payment.id, "pm_card_visa").status in ("succeeded", "held")
    assert c.applications.repo.get(app_id, _all()).status == "ready_for_delivery"
    return app_id


def lease_url(base: str, app_id: str) -> str:
    return f"{base}/applications/{app_id}/lease"


def prepare(s: requests.Session, base: str, app_id: str, **fields: Any) -> requests.Response:
    data: dict[str, Any] = {"odometer": "12", "keys": "2", "item": ["tools", "manuals"], "vin_checked": "yes",
                            "note": "左后门轻微划痕，客户知悉", **fields}
    data = {k: v for k, v in data.items() if v is not None}
    data["csrf_token"] = csrf(s, lease_url(base, app_id))
    return s.post(f"{base}/applications/{app_id}/handover", data=data, timeout=TIMEOUT, allow_redirects=False)


def shown_version(s: requests.Session, base: str, app_id: str) -> str:
    """The recording of the handover the lease page shows (its sign form's hidden field)."""
    found = re.search(r'name="version" value="([^"]*)"', s.get(lease_url(base, app_id), timeout=TIMEOUT).text)
    assert found, "no handover to confirm on the page"
    return found.group(1)


def confirm(s: requests.Session, base: str, app_id: str, **fields: str) -> requests.Response:
    from bff.demo_journeys import signature_data_url

    data = {"accepted": "yes", "signature": signature_data_url(), **fields}
    if "version" not in fields:
        data["version"] = shown_version(s, base, app_id)
    return s.post(f"{base}/applications/{app_id}/handover/sign",
                  data={**{k: v for k, v in data.items() if v}, "csrf_token": csrf(s, lease_url(base, app_id))},
                  timeout=60, allow_redirects=False)


def beijing_today() -> Any:
    return datetime.now(UTC).astimezone(SHANGHAI).date()


def test_the_term_starts_on_the_day_the_customer_signs_the_handover_record(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    base, app = bff_server.url, bff_server.app
    c = app.extensions["leaseline"]
    app_id = ready_for_delivery(bff_server, card_images)
    stored = c.applications.repo.get(app_id, _all())
    months, timing = int(stored.plan["quote"]["term"]), stored.plan["choice"]["timing"]
    with sign_in(base, SALES_A) as sales:
        page = sales.get(lease_url(base, app_id), timeout=TIMEOUT).text
        assert 'data-testid="handover"' in page and 'data-testid="handover-confirm"' not in page
        # nothing is recorded without the odometer, the keys and the VIN checked; what was typed comes back
        r = prepare(sales, base, app_id, odometer="十二", keys="0", vin_checked=None, note="备注保留")
        assert r.status_code == 422
        for field in ("odometer", "keys", "vin_checked"):
            assert f'data-testid="error-{field}"' in r.text
        assert 'value="十二"' in r.text and 'value="备注保留"' in r.text
        assert re.search(r'value="tools" checked', r.text)
        assert c.handovers.get(stored) is None
        # recorded: the customer's confirmation appears with the record and the dates it would fix today
        assert prepare(sales, base, app_id, odometer="1,234").status_code == 303
        page = sales.get(lease_url(base, app_id), timeout=TIMEOUT).text
        assert 'data-testid="handover-confirm"' in page
        assert '<dd data-testid="confirm-odometer">1234 公里</dd>' in page
        assert stored.contract["number"] and draft_vin(c, stored) in page
        today = beijing_today()
        dates = timeline(today, months, timing)
        assert f'<dd data-testid="confirm-starts-on">{today.isoformat()}' in page
        assert f'<dd data-testid="confirm-first-rent">{dates.rent_dates[0].isoformat()}' in page
        # the record may be corrected until it is signed
        assert prepare(sales, base, app_id, odometer="15").status_code == 303
        assert c.handovers.get(stored).odometer_km == 15
        # a wrong code, and a code texted to sign a contract, confirm nothing; the signature is kept
        contract_code = c.contracts._code_hash(app_id, "246810", "contract")
        c.applications.repo.add_signing_code(app_id, contract_code, datetime.now(UTC).replace(year=2100), "contract")
        r = confirm(sales, base, app_id, code="246810")  # refused: the page again by GET (a refresh posts nothing)
        assert r.status_code == 303 and r.headers["Location"] == f"/applications/{app_id}/lease#sign-error"
        shown = sales.get(lease_url(base, app_id), timeout=TIMEOUT).text
        assert 'data-field="code"' in shown and "data:image/png;base64," in shown
        r = confirm(sales, base, app_id, code="000000", accepted="")
        assert r.status_code == 422 and 'data-field="accepted"' in r.text
        r = post(sales, f"{base}/applications/{app_id}/handover/code", form_url=lease_url(base, app_id))
        assert r.status_code == 200 and 'data-testid="code-sent"' in r.text
        text = c.outbox.latest(1, to=CUSTOMER["mobile"])[0].body
        assert "交接确认书" in text
        code = last_code(app, CUSTOMER["mobile"])
        r = confirm(sales, base, app_id, code=code)
        assert r.status_code == 303, r.text[-1500:]
        page = sales.get(lease_url(base, app_id), timeout=TIMEOUT).text
    # the term runs from the record's day; every rent is dated from it
    term = c.payments.settlement.store.term(app_id)
    assert term.starts_on == today and term.ends_on == term_end(today, months)
    assert c.applications.repo.get(app_id, _all()).status == "delivered"
    handover = c.handovers.get(stored)
    assert handover.status == "signed" and handover.starts_on == today
    record = handover.record
    assert [row["due_date"] for row in record["schedule"]] == [d.isoformat() for d in dates.rent_dates]
    assert record["ends_on"] == dates.ends_on.isoformat() and record["odometer_km"] == 15
    assert f'<dd data-testid="record-starts-on">{today.isoformat()}</dd>' in page
    assert 'data-testid="dated-schedule"' in page and 'data-testid="handover-confirm"' not in page
    # the contract service has it, signed, and logged its hash
    at_service = requests.get(f"{contract_server.url}/api/v1/contracts/{stored.contract_id}/handover",
                              headers=contract_server.headers("contract:read"), timeout=TIMEOUT).json()
    assert at_service["sha256"] == handover.sha256 and at_service["starts_on"] == today.isoformat()
    with sign_in(base, SALES_A) as sales:
        pdf = sales.get(f"{base}/applications/{app_id}/handover.pdf", timeout=TIMEOUT)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert pdf.headers["Cache-Control"] == "no-store"
        import hashlib

        assert hashlib.sha256(pdf.content).hexdigest() == handover.sha256
        # signed once: another confirmation changes nothing
        again = confirm(sales, base, app_id, code=code, version="the page of before")
        assert again.status_code == 409
        assert prepare(sales, base, app_id, odometer="99").status_code == 409
    assert c.handovers.get(stored).sha256 == handover.sha256
    # anyone holding the record's PDF can check it on the public page: ours, intact, the handover of that contract
    with requests.Session() as anyone:
        token = re.search(r'name="csrf_token" value="([^"]+)"', anyone.get(f"{base}/verify", timeout=TIMEOUT).text)
        assert token
        verdict = anyone.post(f"{base}/verify", data={"csrf_token": token.group(1)},
                              files={"file": ("handover.pdf", pdf.content, "application/pdf")}, timeout=60)
    assert verdict.status_code == 200 and 'data-valid="true"' in verdict.text
    assert f"合同 {stored.contract['number']} 的车辆交接确认书完整无改动" in verdict.text
    kinds = [e["kind"] for e in c.contract.evidence(app_id)]
    assert kinds.count("handover_signed") == 1
    with sign_in(base, SALES_B) as other_dealer:
        assert other_dealer.get(f"{base}/applications/{app_id}/handover.pdf", timeout=TIMEOUT).status_code == 404


def draft_vin(c: Any, application: Any) -> str:
    return str(c.applications.draft(application).get("vin", "")).upper()


def test_the_customer_may_refuse_the_vehicle_and_the_dealer_sees_why(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    base, app = bff_server.url, bff_server.app
    c = app.extensions["leaseline"]
    app_id = ready_for_delivery(bff_server, card_images)
    with sign_in(base, OPS) as ops:  # the lessor's ops do not hand cars over
        assert prepare(ops, base, app_id).status_code == 403
    with sign_in(base, SALES_A) as sales:
        refuse_url = f"{base}/applications/{app_id}/handover/refuse"
        assert post(sales, refuse_url, {"reason": "漆面"}, form_url=lease_url(base, app_id)).status_code == 409
        assert prepare(sales, base, app_id).status_code == 303
        r = post(sales, refuse_url, {"reason": "  "}, form_url=lease_url(base, app_id))
        assert r.status_code == 422 and 'data-testid="error-refuse-reason"' in r.text
        r = post(sales, refuse_url, {"reason": "车身颜色与合同不符（合同为白色，交付为黑色）"},
                 form_url=lease_url(base, app_id))
        assert r.status_code == 200
        assert 'data-testid="handover-refused"' in r.text and "交付为黑色" in r.text
        assert 'data-testid="handover-confirm"' not in r.text
        stored = c.applications.repo.get(app_id, _all())
        assert stored.status == "ready_for_delivery" and c.payments.settlement.store.term(app_id) is None
        # put right, recorded again: the customer confirms the new record
        assert prepare(sales, base, app_id, note="已更换为合同约定的白色车辆").status_code == 303
        page = sales.get(lease_url(base, app_id), timeout=TIMEOUT).text
        assert 'data-testid="handover-confirm"' in page and 'data-testid="handover-refused"' not in page
    refused = [e for e in c.audit.search(action="lease.handover_refused") if e.target == app_id]
    assert len(refused) == 1 and refused[0].details == {"reason_chars": 22}  # the words stay on the record
    assert [e.target for e in c.audit.search(action="lease.handover_prepared")].count(app_id) == 2


def test_the_record_s_items_are_the_contract_service_s(contract_server: Any) -> None:
    """The BFF's item list (its labels on the dealer's form) names exactly the items the contract service's record
    takes (its OpenAPI document): a code one side does not know would be refused at the signature."""
    document = requests.get(f"{contract_server.url}/api/v1/openapi.json", timeout=TIMEOUT).json()
    text = str(document)
    for code in HANDOVER_ITEMS:
        assert f"'{code}'" in text
    enums = [s.get("enum") for s in _schemas(document) if isinstance(s, dict) and s.get("enum")]
    assert sorted(HANDOVER_ITEMS) in [sorted(map(str, e)) for e in enums]


def _schemas(node: Any) -> list[Any]:
    found: list[Any] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_schemas(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_schemas(value))
    return found


def test_the_customer_confirms_on_their_own_phone_the_record_they_read(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    """On the customer's own phone (an invited customer's session): the record is there to confirm; a record the
    dealer changed after the customer opened it is not signed unseen (409, read it again), and the code the phone
    confirmed still stands for the next press; a note that cannot be printed is refused at the dealer's form."""
    from sqlalchemy import update

    from infra.db.models import ApplicationRow
    from tests.integration.test_applications import invited_customer

    base, app = bff_server.url, bff_server.app
    c = app.extensions["leaseline"]
    app_id = ready_for_delivery(bff_server, card_images)
    mobile = "13700137123"
    with sign_in(base, SALES_A) as sales:
        r = prepare(sales, base, app_id, note="保险杠\u200d划痕")  # a zero-width joiner: not printable on a record
        assert r.status_code == 422 and 'data-testid="error-note"' in r.text
        assert prepare(sales, base, app_id, odometer="20").status_code == 303
    with invited_customer(base, app, mobile) as customer:
        with c.db.session() as session:  # the invited customer's own application
            session.execute(update(ApplicationRow).where(ApplicationRow.id == app_id).values(
                mobile_hash=c.vault.lookup_hash(mobile, "mobile"), mobile_masked="137****7123"))
        page = customer.get(lease_url(base, app_id), timeout=TIMEOUT).text
        assert 'data-testid="handover-confirm"' in page and 'data-testid="handover"' not in page  # no dealer form
        assert "把本设备交给客户" not in page and "请将本设备交给客户" not in page  # worded for the customer
        read = shown_version(customer, base, app_id)
        r = post(customer, f"{base}/applications/{app_id}/handover/code", form_url=lease_url(base, app_id))
        assert r.status_code == 200
        code = last_code(app, CUSTOMER["mobile"])
        with sign_in(base, SALES_A) as sales:  # meanwhile the dealer changes the record
            assert prepare(sales, base, app_id, odometer="25").status_code == 303
        r = confirm(customer, base, app_id, code=code, version=read)
        assert r.status_code == 409 and "交接记录刚被修改" in r.text
        assert c.payments.settlement.store.term(app_id) is None
        # read again (25 km now), pressed again: the code this phone confirmed stands (it is spent once verified)
        assert "25 公里" in customer.get(lease_url(base, app_id), timeout=TIMEOUT).text
        r = confirm(customer, base, app_id, code=code)
        assert r.status_code == 303, r.text[-1500:]
    handover = c.handovers.get(c.applications.repo.get(app_id, _all()))
    assert handover.status == "signed" and handover.record["odometer_km"] == 25
    events = [e for e in c.applications.repo.events(app_id) if e.to_status == "delivered"]
    assert len(events) == 1 and events[0].actor_kind == "customer"
    # a staff member's download of the record (it shows the full ID number) is logged; the customer's is not
    with sign_in(base, SALES_A) as sales:
        assert sales.get(f"{base}/applications/{app_id}/handover.pdf", timeout=TIMEOUT).status_code == 200
    viewed = [e for e in c.audit.search(action="pii.document_viewed") if e.target == app_id]
    # (the staff's views of the contract's reading copy, contract_text, are logged too: they show the ID number)
    assert [e.details["kind"] for e in viewed if e.details["kind"] != "contract_text"] == ["handover_record"]


def _section(page: str, testid: str, end: str = "</section>") -> str:
    found = re.search(rf'data-testid="{testid}".*?{end}', page, re.S)
    assert found, f"no {testid} on the page"
    return found.group(0)


def _item(page: str, testid: str, app_id: str) -> str:
    found = re.search(rf'<li data-application="{app_id}">.*?</li>', _section(page, testid), re.S)
    assert found, f"application {app_id} not under {testid}"
    return found.group(0)


def test_a_refusal_is_acknowledged_recorded_and_waits_on_the_dealer_s_desk(
        bff_server: Any, contract_server: Any, card_images: tuple[bytes, bytes]) -> None:  # noqa: F811
    """The README walk-through's findings on the handover: the form's first load shows no error (Python's dict.keys
    method was printed under 交付钥匙数量); the customer who refuses the car on their phone is told what happens
    next, the refusal is in the application's history and waits on the salesperson's work page and pipeline with
    its time; the car, the staff member and the amounts read as the rest of the Chinese screens, the signed
    record's too (比亚迪 汉EV, 李销售, ¥4,573.04), and the history line of the handover has no English in it."""
    from sqlalchemy import update

    from infra.db.models import ApplicationRow
    from tests.integration.test_applications import invited_customer

    base, app = bff_server.url, bff_server.app
    c = app.extensions["leaseline"]
    app_id = ready_for_delivery(bff_server, card_images)
    stored = c.applications.repo.get(app_id, _all())
    reason = "车身右侧有明显划痕，与合同约定的新车不符"
    with sign_in(base, SALES_A) as sales:
        page = sales.get(lease_url(base, app_id), timeout=TIMEOUT).text
        assert "built-in method" not in page and "aria-invalid" not in page and 'data-testid="error-keys"' not in page
        assert prepare(sales, base, app_id).status_code == 303
    with invited_customer(base, app, "13700137124") as customer:
        with c.db.session() as session:  # the invited customer's own application
            session.execute(update(ApplicationRow).where(ApplicationRow.id == app_id).values(
                mobile_hash=c.vault.lookup_hash("13700137124", "mobile"), mobile_masked="137****7124"))
        page = customer.get(lease_url(base, app_id), timeout=TIMEOUT).text
        assert "租赁期自您接收车辆" in page and "租赁期自客户接收车辆" not in page  # to the customer, of them
        record = _section(page, "handover-confirm", "</dl>")
        assert '<dd data-testid="confirm-vehicle">比亚迪 汉EV</dd>' in record and "BYD" not in record
        assert "李销售（上海浦东 4S 店）" in record and "Pudong" not in page
        r = post(customer, f"{base}/applications/{app_id}/handover/refuse", {"reason": reason},
                 form_url=lease_url(base, app_id))
        assert r.status_code == 200 and r.url == lease_url(base, app_id), r.text[-800:]
        told = _section(r.text, "handover-refused-ack")
        assert "您已拒绝接收车辆" in told and reason in told and "经销商" in told and "客户" not in told
        mine = customer.get(f"{base}/applications/{app_id}", timeout=TIMEOUT).text
        assert "您已拒绝接收车辆：经销商将与您联系处理" in mine and "到店提车" not in mine
        refused = c.handovers.get(stored)
        assert refused is not None and refused.refused_at is not None
        at = refused.refused_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        with sign_in(base, SALES_A) as sales:
            page = sales.get(lease_url(base, app_id), timeout=TIMEOUT).text
            assert 'data-testid="handover-refused"' in page and "built-in method" not in page
            history = _section(sales.get(f"{base}/applications/{app_id}", timeout=TIMEOUT).text, "history", "</ol>")
            # an event of its own, the status as it was (no arrow), by the customer, in words
            assert f"{at} · 已付款，待交车 · 客户 · 拒绝接收车辆：{reason}" in re.sub(r"<[^>]+>", "", history), history
            desk = _item(sales.get(f"{base}/desk", timeout=TIMEOUT).text, "desk-waiting", app_id)
            assert f"下一步（您）：处理客户拒收：{reason}" in desk and f"更新于 {at}" in desk, desk
            listed = _item(sales.get(f"{base}/applications", timeout=TIMEOUT).text, "pipeline", app_id)
            assert f"下一步：处理客户拒收：{reason}" in listed and f"更新于 {at}" in listed, listed
            # put right and recorded again: the customer signs the new record on their phone
            assert prepare(sales, base, app_id, note="已更换为合同约定的车辆").status_code == 303
        r = post(customer, f"{base}/applications/{app_id}/handover/code", form_url=lease_url(base, app_id))
        assert r.status_code == 200
        r = confirm(customer, base, app_id, code=last_code(app, CUSTOMER["mobile"]))
        assert r.status_code == 303, r.text[-1500:]
    handover = c.handovers.get(stored)
    assert handover is not None and handover.status == "signed" and handover.sha256
    with sign_in(base, SALES_A) as sales:
        schedule = _section(sales.get(lease_url(base, app_id), timeout=TIMEOUT).text, "dated-schedule", "</table>")
        amounts = re.findall(r'<td class="num">([^<]*)</td>', schedule)
        assert amounts and all(re.fullmatch(r"¥\d{1,3}(,\d{3})*\.\d{2}", a) for a in amounts), amounts
        assert any("," in a for a in amounts), amounts  # a rent of thousands of yuan: ¥4,573.04, not ¥4573.04
        history = _section(sales.get(f"{base}/applications/{app_id}", timeout=TIMEOUT).text, "history", "</ol>")
        line = re.search(r"已交车；[^<]*", history)
        assert line, history
        assert line.group(0) == (f"已交车；租期 {handover.starts_on.isoformat()} 至 "
                                 f"{term_end(handover.starts_on, int(stored.plan['quote']['term'])).isoformat()}；"
                                 f"交接确认书 {handover.sha256[:16]}"), line.group(0)
        pdf = sales.get(f"{base}/applications/{app_id}/handover.pdf", timeout=TIMEOUT)
    assert pdf.status_code == 200
    text = _pdf_text(pdf.content)
    assert "比亚迪 汉EV" in text and "BYD" not in text, text[:1500]
    assert "李销售（上海浦东 4S 店）" in text and "Pudong" not in text, text[:1500]


def _pdf_text(pdf: bytes) -> str:
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        return subprocess.run(["pdftotext", f.name, "-"], capture_output=True, text=True, timeout=60,
                              check=True).stdout
