"""Demo journeys: a few leases walked through the running services over HTTP, as staff would on the phone.

``leaseline up`` (``make run``) runs them once the BFF, the risk and the contract services answer, so that a
fresh installation shows a pipeline with signed contracts, a contract waiting for its customer's signature,
and a public evidence log with entries. Each journey goes through the real pages (sign-in, CSRF, uploads):
the salesperson starts an application for a specimen customer (kyc.specimens: fictional people, synthetic ID
cards), records the consents, photographs the ID card (real OCR), fills in the details, submits, confirms the
originals at the counter; the dealer admin marks the identity check passed; the risk service decides (sandbox
personas: clean files, approved automatically); the contract service drafts the contract; the customer
re-confirms identity with the text code (read from the sandbox SMS outbox) and signs on the signature pad;
the first customer then pays what is due at signing with Stripe's test card (localstripe, TEST MODE).

Nothing here is faked: a journey that fails stops with the page's answer in the message. Idempotent: a
demo customer with an application already is skipped, so restarting ``make run`` adds nothing.
"""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import requests

from bff.demo import DEMO_PASSWORD
from kyc import specimens

SALES = "sales.pudong@demo.leaseline.cn"
ADMIN = "admin.pudong@demo.leaseline.cn"
VEHICLE = "byd-han-ev"
PLAN = "20-36-0-ctpl+damage+tpl_1m-D-f-a"
TIMEOUT = 60


class JourneyFailed(RuntimeError):
    """A step answered something else than the journey expects (the page's text is in the message)."""


@dataclass(frozen=True)
class DemoCustomer:
    card: specimens.CardData
    mobile: str
    vin: str
    sign: bool  # False: left at "contract ready", for whoever tries the demo to sign
    pay: bool = False  # pay what is due at signing with Stripe's test card (localstripe): ready for delivery


CUSTOMERS = (
    DemoCustomer(specimens.SAMPLES[0], "13800138001", "LSVAU218XN2183294", sign=True, pay=True),
    DemoCustomer(specimens.SAMPLES[1], "13800138002", "LGXCE4CB4N0123457", sign=True),
    DemoCustomer(specimens.CardData(name="陈思远", sex="男", address="上海市黄浦区南京东路300号",
                                    birth=date(1988, 6, 15), id_number="310101198806150018",
                                    authority="上海市公安局黄浦分局", valid_from=date(2018, 6, 1),
                                    valid_to=date(2038, 6, 1)),
                 "13800138003", "LFV2A21KXN3012348", sign=False),
)
WORK = {"employment": "employed", "employer": "上海某某科技有限公司", "employment_years": "6",
        "monthly_income": "28,000", "housing": "rent", "dependants": "1", "existing_loans": "0",
        "monthly_repayments": "0"}


class Browser:
    """A signed-in staff member's session on the BFF (form posts carry the page's CSRF token)."""

    def __init__(self, base: str, email: str, device: str, totp: Callable[[], str] | None = None) -> None:
        self.base, self.http = base, requests.Session()
        self.http.headers["User-Agent"] = f"leaseline-demo/{device}"  # the risk service counts devices
        r = self.post("/login", {"email": email, "password": DEMO_PASSWORD}, allow_redirects=False)
        if r.status_code != 302:
            raise JourneyFailed(f"sign-in of {email} failed: {r.status_code}")
        if r.headers["Location"].endswith("/login/second-factor"):
            if totp is None:
                raise JourneyFailed(f"{email} needs a second factor")
            self.post("/login/second-factor", {"code": totp()}, allow_redirects=False)

    def get(self, path: str) -> requests.Response:
        return self.http.get(f"{self.base}{path}", timeout=TIMEOUT)

    def token(self, path: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.get(path).text)
        if not found:
            raise JourneyFailed(f"no form on {path}")
        return found.group(1)

    def post(self, path: str, data: dict[str, str] | None = None, form: str | None = None,
             **kwargs: Any) -> requests.Response:
        token = self.token(form or path)
        return self.http.post(f"{self.base}{path}", data={**(data or {}), "csrf_token": token}, timeout=TIMEOUT,
                              **kwargs)

    def expect(self, response: requests.Response, status: int, what: str) -> requests.Response:
        if response.status_code != status:
            raise JourneyFailed(f"{what}: {response.status_code} {_text(response.text)}")
        return response

    def wait(self, path: str, pattern: str, what: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            page = self.get(path).text
            if re.search(pattern, page):
                return page
            time.sleep(0.5)
        raise JourneyFailed(f"{what}: still waiting after {timeout:.0f} s")

    def close(self) -> None:
        self.http.close()


def _text(page: str) -> str:
    """The readable text of a page's main part (what the person would have seen), shortened."""
    main = re.search(r"<main[^>]*>(.*?)</main>", page, re.S)
    words = re.sub(r"<[^>]+>", " ", main.group(1) if main else page)
    return re.sub(r"\s+", " ", words).strip()[:400]


def portrait() -> Any:
    """The ID card's portrait: NASA's public-domain photo of the astronaut Eileen Collins, shipped inside
    scikit-image (a development dependency, like the demo), cropped head-and-shoulders as on a card. The
    identity check looks for a face on the card, so a drawn placeholder would be refused, as it should."""
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.astronaut()).convert("RGB")
    return photo.crop((151, 48, 294, 222)).resize((180, 220), Image.Resampling.LANCZOS)


def _jpeg(image: Any) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def signature_data_url() -> str:
    """A drawn signature as the signature pad posts it (a PNG data URL)."""
    from PIL import Image
    from PIL import ImageDraw

    image = Image.new("RGBA", (600, 240), (255, 255, 255, 0))
    ImageDraw.Draw(image).line([(30, 180), (160, 40), (330, 200), (570, 60)], fill=(16, 24, 60, 255), width=8)
    out = io.BytesIO()
    image.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def journey(base: str, customer: DemoCustomer, read_code: Callable[[str], str],
            say: Callable[[str], None] = print) -> str:
    """Walk one customer from a new application to a signed contract (or to "contract ready");
    returns the application id."""
    card = customer.card
    sales = Browser(base, SALES, customer.mobile)
    try:
        r = sales.post("/applications", {"vehicle": VEHICLE, "plan": PLAN},
                       form=f"/applications/new?vehicle={VEHICLE}&plan={PLAN}")
        if "/consent" not in r.url:
            raise JourneyFailed(f"new application: {r.status_code} {r.text[:300]}")
        app_id = r.url.rsplit("/", 2)[-2]
        path = f"/applications/{app_id}"
        say(f"{card.name}: application {app_id[:8]} started")
        sales.expect(sales.post(f"{path}/consent", {"sensitive_pi": "yes"}), 200, "consent")
        url = f"{path}/id-card"
        r = sales.http.post(f"{base}{url}", data={"csrf_token": sales.token(url)}, timeout=TIMEOUT, files={
            "front": ("front.jpg", _jpeg(specimens.front(card, portrait())), "image/jpeg"),
            "back": ("back.jpg", _jpeg(specimens.back(card)), "image/jpeg")})
        sales.expect(r, 202, "ID card upload")
        check = re.search(r"/checks/([0-9a-f-]{36})", r.text)
        if check is None:
            raise JourneyFailed("ID card upload: no check to follow")
        fragment = sales.wait(f"{path}/checks/{check.group(1)}", r'data-state="(done|error)"', "ID card OCR")
        if 'data-outcome="ok"' not in fragment:
            raise JourneyFailed(f"ID card check: {_text(fragment)}")
        details = {"name": card.name, "id_number": card.id_number, "mobile": customer.mobile, "address": card.address,
                   "id_valid_to": card.valid_to.isoformat() if card.valid_to else "长期"}
        for step, data in (("customer", details), ("work", WORK), ("vehicle", {"vin": customer.vin,
                                                                                "condition": "new"})):
            sales.expect(sales.post(f"{path}/steps/{step}", data), 200, f"step {step}")
        sales.expect(sales.post(f"{path}/submit", form=path), 200, "submit")
        sales.expect(sales.post(f"{path}/counter", form=path), 200, "counter verification")
        admin = Browser(base, ADMIN, "admin")
        try:
            admin.expect(admin.post(f"{path}/review", {"decision": "kyc_passed", "note": "柜台核对原件（演示数据）"},
                                    form=path), 200, "identity check passed")
        finally:
            admin.close()
        say(f"{card.name}: identity confirmed at the counter, sent to the risk service")
        sales.wait(path, r'data-status="contract_ready"', "risk decision and contract", timeout=180)
        say(f"{card.name}: approved, contract ready")
        if not customer.sign:
            return app_id
        contract = f"{path}/contract"
        sales.expect(sales.post(f"{contract}/code", form=contract), 200, "signing code")
        code = read_code(customer.mobile)
        r = sales.http.post(f"{base}{contract}/sign", timeout=TIMEOUT, data={
            "read": "yes", "gps": "yes", "code": code, "signature": signature_data_url(),
            "csrf_token": sales.token(contract)})
        sales.expect(r, 200, "signature")
        sales.wait(path, r'data-status="signed"', "signed")
        say(f"{card.name}: contract signed")
        if customer.pay:
            page = sales.get(f"{path}/payment").text
            for payment_id in re.findall(r'/payments/([0-9a-f-]{36})/pay"', page):
                r = sales.post(f"{path}/payments/{payment_id}/pay", {"method": "visa"}, form=f"{path}/payment")
                sales.expect(r, 200, "payment (test card)")
            sales.wait(path, r'data-status="ready_for_delivery"', "payments")
            say(f"{card.name}: paid with a test card (TEST MODE), ready for delivery")
        return app_id
    finally:
        sales.close()


def run(base: str, read_code: Callable[[str], str], existing: Callable[[str], bool],
        say: Callable[[str], None] = print) -> int:
    """Every demo journey whose customer has no application yet; returns how many were walked."""
    done = 0
    for customer in CUSTOMERS:
        if existing(customer.card.id_number):
            continue
        journey(base, customer, read_code, say)
        done += 1
    return done


def code_reader(sms: Any, timeout: float = 20) -> Callable[[str], str]:
    """Reads the newest six-digit code sent to a mobile in the sandbox SMS outbox."""
    def read(mobile: str) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            latest = sms.latest(1, to=mobile)
            found = re.search(r"(\d{6})", latest[0].body) if latest else None
            if found:
                return found.group(1)
            time.sleep(0.3)
        raise JourneyFailed(f"no text message for {mobile}")
    return read
