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
from urllib.parse import urlencode

import requests

from bff.demo import DEMO_PASSWORD
from kyc import specimens

SALES = "sales.pudong@demo.leaseline.cn"
ADMIN = "admin.pudong@demo.leaseline.cn"
VEHICLE = "byd-han-ev"
PLAN = "20-36-0-ctpl+damage+tpl_1m-D-f-a"
TIMEOUT = 60
#: the session's CSRF token, in a form's hidden field or in the page's htmx headers (base.html: every page has it)
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


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
    """A person's session on the BFF, as their phone's browser keeps it: staff sign in first (``email``); an
    invited customer's session starts signed out (``email=None``) and is verified through the invitation link.

    Form posts carry a CSRF token: :meth:`post` loads the form's page first (``form``, else ``path``), :meth:`send`
    submits with the token of the last page this session loaded, as a browser submits the form it shows (every
    page carries the session's token). ``http`` may be a ``requests.Session`` of the caller's (bench/journey.py
    times each round trip)."""

    def __init__(self, base: str, email: str | None = None, device: str = "",
                 totp: Callable[[], str] | None = None, http: requests.Session | None = None) -> None:
        self.base, self.http = base, http if http is not None else requests.Session()
        self.http.headers["User-Agent"] = f"leaseline-demo/{device}"  # the risk service counts devices
        self.csrf = ""
        self.http.hooks["response"].append(self._remember_token)
        if email is not None:
            self.sign_in(email, totp)

    def sign_in(self, email: str, totp: Callable[[], str] | None = None) -> None:
        r = self.post("/login", {"email": email, "password": DEMO_PASSWORD}, allow_redirects=False)
        if r.status_code != 302:
            raise JourneyFailed(f"sign-in of {email} failed: {r.status_code}")
        if r.headers["Location"].endswith("/login/second-factor"):
            if totp is None:
                raise JourneyFailed(f"{email} needs a second factor")
            self.post("/login/second-factor", {"code": totp()}, allow_redirects=False)

    def _remember_token(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.headers.get("Content-Type", "").startswith("text/html"):
            found = _TOKEN.search(response.text)
            if found:
                self.csrf = found.group(1) or found.group(2)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def get(self, path: str) -> requests.Response:
        return self.http.get(f"{self.base}{path}", timeout=TIMEOUT)

    def token(self, path: str) -> str:
        """Load ``path`` and return the CSRF token of its form."""
        self.csrf = ""
        self.get(path)
        if not self.csrf:
            raise JourneyFailed(f"no form on {path}")
        return self.csrf

    def post(self, path: str, data: dict[str, str] | None = None, form: str | None = None,
             **kwargs: Any) -> requests.Response:
        """Load the form's page (``form``, else ``path``), then post ``data`` with its token."""
        token = self.token(form or path)
        return self.http.post(self.url(path), data={**(data or {}), "csrf_token": token}, timeout=TIMEOUT,
                              **kwargs)

    def send(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        """Submit ``data`` to ``path`` from the page this session shows now (its token), loading nothing first."""
        if not self.csrf:
            raise JourneyFailed(f"posting to {path} from no page")
        return self.http.post(self.url(path), data={**(data or {}), "csrf_token": self.csrf}, timeout=TIMEOUT,
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


# -- the journey's steps, one page action each (bench/journey.py walks them too, and times them) ---------------
def start_application(b: Browser, vehicle: str = VEHICLE, plan: str = PLAN) -> str:
    """Open the chosen plan's confirmation page and start the application; returns its id."""
    # the plan code has "+" in it: encoded, or the page reads a space and refuses the plan
    b.expect(b.get(f"/applications/new?{urlencode({'vehicle': vehicle, 'plan': plan})}"), 200, "plan")
    r = b.send("/applications", {"vehicle": vehicle, "plan": plan})
    if "/consent" not in r.url:
        raise JourneyFailed(f"new application: {r.status_code} {_text(r.text)}")
    return r.url.rsplit("/", 2)[-2]


def give_consent(b: Browser, path: str, face: bool = False) -> None:
    """The personal-information consent (and, with ``face``, the one to face recognition); leads to the ID card."""
    data = {"sensitive_pi": "yes", "credit_reporting": "yes", **({"face_recognition": "yes"} if face else {})}
    b.expect(b.send(f"{path}/consent", data), 200, "consent")


def upload_id_card(b: Browser, path: str, front: bytes, back: bytes) -> str:
    """Send both photos of the ID card (JPEG); returns the id of the check that reads them (OCR, portrait)."""
    r = b.expect(b.send(f"{path}/id-card", files={"front": ("front.jpg", front, "image/jpeg"),
                                                  "back": ("back.jpg", back, "image/jpeg")}), 202, "ID card upload")
    check = re.search(r"/checks/([0-9a-f-]{36})", r.text)
    if check is None:
        raise JourneyFailed("ID card upload: no check to follow")
    return check.group(1)


def card_jpegs(card: specimens.CardData, face: Any = None) -> tuple[bytes, bytes]:
    """The front (with ``face`` as the portrait, the astronaut by default) and the back of a specimen card."""
    return _jpeg(specimens.front(card, face if face is not None else portrait())), _jpeg(specimens.back(card))


def fill_in(b: Browser, path: str, card: specimens.CardData, mobile: str) -> None:
    """Confirm what OCR read on the card (no application is submitted before: issue 17 §3), check the details it
    pre-filled and answer the applicant's two steps (customer, work)."""
    details = {"name": card.name, "id_number": card.id_number, "mobile": mobile, "address": card.address,
               "id_valid_to": card.valid_to.isoformat() if card.valid_to else "长期"}
    b.expect(b.post(f"{path}/id-card/confirm", {k: v for k, v in details.items() if k != "mobile"},
                    form=f"{path}/id-card"), 200, "the card's reading confirmed")
    b.expect(b.get(f"{path}/steps/customer"), 200, "details")
    for step, data in (("customer", details), ("work", WORK)):
        b.expect(b.send(f"{path}/steps/{step}", data), 200, f"step {step}")


def give_vehicle(b: Browser, path: str, vin: str) -> None:
    """The salesperson gives the car's VIN and condition (the dealer's facts, never the customer's: issue 17 §5);
    the contract is generated once they are given."""
    b.expect(b.send(f"{path}/steps/vehicle", {"vin": vin, "condition": "new"}), 200, "the car's details")


def submit(b: Browser, path: str) -> requests.Response:
    """Submit from the application's page; the answer is the face check's page (or the application's)."""
    return b.expect(b.send(f"{path}/submit"), 200, "submit")


def open_contract(b: Browser, path: str) -> str:
    """The contract's page, as the customer opens it to read; its HTML."""
    return b.expect(b.get(f"{path}/contract"), 200, "contract page").text


def explain_terms(b: Browser, path: str) -> None:
    """The salesperson explains each key term of the contract to the customer in person and records it (staff)."""
    from bff.applications.contracts import EXPLAINED_TERMS

    b.expect(b.send(f"{path}/contract/explained", {**{f"term_{code}": "yes" for code in EXPLAINED_TERMS},
                                                   "method": "in_person"}), 200, "terms explained")


def request_signing_code(b: Browser, path: str) -> None:
    """From the contract's page: send the text code that re-confirms the customer's identity."""
    b.expect(b.send(f"{path}/contract/code"), 200, "signing code")


def sign_contract(b: Browser, path: str, code: str) -> None:
    """Tick that the contract was read (and agree to the optional trip data), type the text code, sign on the pad."""
    b.expect(b.send(f"{path}/contract/sign", {"read": "yes", "telemetry": "yes", "code": code,
                                               "signature": signature_data_url()}), 200, "signature")


def pay_due(b: Browser, path: str) -> int:
    """Pay everything due at signing with Stripe's test card (TEST MODE); returns how many payments."""
    page = b.expect(b.get(f"{path}/payment"), 200, "payment page").text
    due = re.findall(r'/payments/([0-9a-f-]{36})/pay"', page)
    for payment_id in due:
        b.expect(b.send(f"{path}/payments/{payment_id}/pay", {"method": "visa"}), 200, "payment (test card)")
    return len(due)


def journey(base: str, customer: DemoCustomer, read_code: Callable[[str], str],
            say: Callable[[str], None] = print) -> str:
    """Walk one customer from a new application to a signed contract (or to "contract ready");
    returns the application id."""
    card = customer.card
    sales = Browser(base, SALES, customer.mobile)
    try:
        app_id = start_application(sales)
        path = f"/applications/{app_id}"
        say(f"{card.name}: application {app_id[:8]} started")
        give_consent(sales, path)
        check = upload_id_card(sales, path, *card_jpegs(card))
        fragment = sales.wait(f"{path}/checks/{check}", r'data-state="(done|error)"', "ID card OCR")
        if 'data-outcome="ok"' not in fragment:
            raise JourneyFailed(f"ID card check: {_text(fragment)}")
        fill_in(sales, path, card, customer.mobile)
        submit(sales, path)
        give_vehicle(sales, path, customer.vin)
        sales.expect(sales.send(f"{path}/counter"), 200, "counter verification")
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
        open_contract(sales, path)
        explain_terms(sales, path)
        request_signing_code(sales, path)
        sign_contract(sales, path, read_code(customer.mobile))
        sales.wait(path, r'data-status="signed"', "signed")
        say(f"{card.name}: contract signed")
        if customer.pay:
            pay_due(sales, path)
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


def outbox_reader(staff: Browser, timeout: float = 20) -> Callable[[str], str]:
    """Reads the newest six-digit code sent to a mobile from the sandbox outbox page (``/dev/outbox``, staff
    only, development only) with a signed-in staff member's session: the code as the person reads it on their
    phone, over HTTP only."""
    row = re.compile(r"<tr><td>[^<]*</td><td>(\d+)</td><td>([^<]*)</td></tr>")

    def read(mobile: str) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            page = staff.expect(staff.get("/dev/outbox"), 200, "SMS outbox").text
            for to, body in row.findall(page):  # newest first
                if to == mobile:
                    found = re.search(r"(\d{6})", body)
                    if found:
                        return found.group(1)
            time.sleep(0.1)
        raise JourneyFailed(f"no text message for {mobile} in the outbox")
    return read
