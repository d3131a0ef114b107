"""From approval to a signed contract, through the contract service; and the evidence log's BFF events.

approved ──(its ``contract.send`` job, deferred with the approval)──► contract_pending ──contract service
generates the draft──► contract_ready ──the customer re-confirms identity (one-time code to their mobile) and
draws a signature──► signed. When the contract service is unreachable the application stays
``contract_pending`` and its job is retried with backoff, exactly like the risk step; the signature is only
taken when the service answers, so a failed signing leaves the contract unsigned and the customer can sign
again.

The evidence of the application (consents with their text hashes, the KYC outcome and the hashes of its
images, the plan accepted, the risk decision) is queued in the outbox when the contract is requested and
sent to the log by the ``evidence.flush`` task (bff/worker.py), each entry once (its idempotency key), never
lost while the service is down. Entries hold ids, hashes and amounts, never names or ID numbers; the public
log holds only a salted commitment to each (contract.ledger.commitments), the entries themselves go to those
entitled (bff/evidence).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from bff.applications import forms
from bff.applications.services import Actor
from bff.applications.services import ApplicationService
from bff.applications.services import NotAllowed
from bff.plans.forms import decode
from bff.resend import RESEND_AFTER
from infra.accounts import SqlAccounts
from infra.applications import Application
from infra.applications import OutboxEntry
from infra.applications import Scope
from infra.applications import SqlApplications
from infra.clients.contract import ContractClient
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable
from infra.jobs import JobQueue
from infra.pii import PiiVault
from infra.sms import SmsRefused
from infra.sms import SmsSender
from infra.sms import SmsUnavailable
from kyc.idnumber import check_id_number
from plans.contract_terms import contract_terms
from plans.product import Vehicle

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
CODE_TTL = timedelta(minutes=5)
CODE_ATTEMPTS = 5
IDENTITY_FRESH = timedelta(minutes=10)
#: a signing's claim (:meth:`ContractDispatch.claim`) is held while the contract service signs (~18 s at most with its
#: retries); one older than this was left by a process that died, and is taken over. A double tap's second request
#: waits for the first this long at most.
CLAIM_STALE = timedelta(seconds=60)
CLAIM_WAIT = timedelta(seconds=30)
#: The contract's key terms the dealer's staff explain to the customer before the signature, each confirmed on its own
#: (issue 16 §7: recorded as a step with its own evidence entry, not a pre-printed sentence). Civil Code art. 496: the
#: party offering standard terms draws attention to and explains the terms of major interest to the other party;
#: 融资租赁公司监督管理暂行办法 art. 12 and the PBOC APR announcement (2021 No. 3): the APR and the total cost shown.
EXPLAINED_TERMS: dict[str, tuple[str, str]] = {
    "cost": ("年化利率、租金总额和签约时应付的款项", "The APR, the total rent and what is due at signing"),
    "default": ("逾期违约金及其上限、逾期后出租人的处理方式（只选择一种）和车辆收回、估价",
                "The late charge and its cap, what the lessor may do on default (one route) and how a recovered car "
                "is valued"),
    "early_settlement": ("提前结清的条件、利息计算和手续费", "Early settlement: when, the interest and the fee"),
    "end_of_term": ("尾付租金、留购价款和租期届满时的选择",
                    "The final rent, the purchase price and the choices at the end of the term"),
    "title": ("车辆所有权、登记、抵押和保险受益人",
              "Who owns the car, its registration, the mortgage and the insurance beneficiary"),
    "gps": ("GPS 定位装置及车辆位置信息的处理（第十条）", "The GPS device and the vehicle's position (§10)"),
}
#: how the terms were explained (the customer at the showroom, on the telephone or on a video call)
EXPLAIN_METHODS: dict[str, tuple[str, str]] = {
    "in_person": ("当面说明", "In person"), "phone": ("电话说明", "By telephone"),
    "video": ("视频说明", "By video call")}
#: the approved text (infra/sms.py TEMPLATES) of each purpose's one-time code
CODE_TEMPLATES = {"contract": "signing_code", "handover": "handover_code"}
_ALL = Scope()


#: a contract not ready this long after the approval is late: the customer is texted when it is ready (the waiting
#: page says so: they may leave it)
LATE_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class Progress:
    """Where an approved application's contract really is, for its waiting page (issue 17 §14: "a few seconds" was
    shown for 44 s). ``stage``: ``queued`` (its ``contract.send`` job waits for the worker, ``ahead`` approved
    before it), ``generating`` (the contract service drafts the text and its PDF) or ``retrying`` (the service did
    not answer; attempt ``attempt``). ``elapsed``: seconds since the approval; ``usual``: the seconds 9 in 10 of the
    recent contracts took (None: too few to say); ``late``: past :data:`LATE_AFTER`, texted once ready."""

    stage: str
    ahead: int
    attempt: int
    elapsed: int
    usual: int | None
    late: bool
    text_after_minutes: int = int(LATE_AFTER.total_seconds() // 60)


def usual_seconds(durations: Sequence[float]) -> int | None:
    """What 9 in 10 of ``durations`` stayed within, rounded up to 5 s; None for fewer than 3 (no estimate)."""
    if len(durations) < 3:
        return None
    ordered = sorted(durations)
    return int(math.ceil(ordered[math.ceil(0.9 * len(ordered)) - 1] / 5) * 5) or 5


def press(code_id: str, signature_png: bytes) -> str:
    """What one press of a signing button signed with: the verified code (its record's id) and the drawing, as a
    digest kept beside the signed result (never the code itself)."""
    return hashlib.sha256(code_id.encode() + b"\0" + hashlib.sha256(signature_png).digest()).hexdigest()


def same_press(signed: dict[str, Any] | None, code_id: str, signature_png: bytes) -> bool:
    """Whether ``signed`` (the stored contract or handover record) was signed by this very press again: the same
    code and the same drawing (a double tap's second request; a reload that sent the form again)."""
    return bool(signed) and hmac.compare_digest(str((signed or {}).get("press", "")), press(code_id, signature_png))


def refusal_code(errors: Any) -> str:
    """What the contract service's refusal (its problem's field ``errors``) waits for: ``vehicle_details`` when
    every field refused is the car's (the salesperson corrects them on the application's page), else ``refused``
    (a bug or bad master data, for ops)."""
    fields = [str(e.get("field", "")) for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    return "vehicle_details" if fields and all(f.startswith("vehicle.") for f in fields) else "refused"


#: a word the catalogue's Chinese name puts before the make, not part of it (二手 丰田 卡罗拉 2022款: the contract
#: states the car's condition in a field of its own)
_NAME_PREFIXES = ("二手",)


def contract_make_model(vehicle: Vehicle) -> tuple[str, str]:
    """The car's make and model as the contract (in Chinese) names them: from the catalogue's Chinese name, its first
    word the make and the rest the model (比亚迪 汉EV → 比亚迪, 汉EV), as the handover record's vehicle_name reads; the
    catalogue's own make and model when that name does not hold both."""
    words = vehicle.name_zh.split()
    while words and words[0] in _NAME_PREFIXES:
        words = words[1:]
    if len(words) < 2:
        return vehicle.make, vehicle.model
    return words[0], " ".join(words[1:])


class ContractNotReady(Exception):
    """The contract cannot be requested yet: ``code`` says what is missing (shown to staff)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(60, 2 ** max(0, attempts - 1)))


class ContractDispatch:
    def __init__(self, repo: SqlApplications, apps: ApplicationService, client: ContractClient,
                 accounts: SqlAccounts, vault: PiiVault, sms: SmsSender, jobs: JobQueue,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.repo, self.apps, self.client, self.accounts = repo, apps, client, accounts
        self.vault, self.sms, self.jobs, self.clock = vault, sms, jobs, clock

    # -- the snapshot ------------------------------------------------------------------------------------------
    def snapshot(self, app: Application) -> dict[str, Any]:
        """What the contract service needs: the parties, the vehicle, the plan priced again and checked
        against the frozen quote, and the schedule with due dates from today (Beijing time)."""
        draft = self.apps.draft(app)
        dealer = self.accounts.dealer(app.dealer_id)
        if dealer is None or not dealer.credit_code or not dealer.address:
            raise ContractNotReady("dealer_details", "the dealer's unified social credit code or registered "
                                                     "address is missing (lessor ops: Dealers page)")
        choice = decode(app.plan_code)
        frozen = app.plan["quote"]
        vehicle_info = app.plan["vehicle"]
        if choice is None:
            raise ContractNotReady("plan", "the application's plan code cannot be read")
        if forms.validate("vehicle", draft):  # the dealer's facts (issue 17 §5): the contract waits for them
            raise ContractNotReady("vehicle_details", "车架号等车辆信息尚未填写：请销售顾问在申请页面填写 "
                                   "(the salesperson enters the car's VIN on the application's page)")
        plans = self.apps.plans
        vehicle = replace(plans.vehicle(vehicle_info["id"]), price=Decimal(vehicle_info["price"]))
        result = plans.evaluate(vehicle, choice)
        q = result.quote
        if f"{q.monthly_payment:.2f}" != frozen["monthly_payment"] or f"{q.apr:.6f}" != frozen["apr"]:
            raise ContractNotReady("plan_changed", "the rate card or product changed since approval: the plan "
                                                   "no longer prices the same and must be approved again")
        start = self.clock().astimezone(SHANGHAI).date()
        make, model = contract_make_model(vehicle)  # the Chinese names, as the 配置 and the handover record

        def m(value: Decimal) -> str:
            return f"{value:.2f}"

        return {
            "application_id": app.id, "dealer_id": app.dealer_id,
            "lessee": {"name": draft.get("name", ""),
                       "id_number": check_id_number(draft.get("id_number", "")).normalized,
                       "mobile": draft.get("mobile", ""), "address": draft.get("address", "")},
            "dealer": {"name": dealer.name, "credit_code": dealer.credit_code, "address": dealer.address},
            # the car as the contract describes it (issue 16 §8; Civil Code art. 736: name, quantity, specification)
            "vehicle": {"make": make, "model": model, "trim": vehicle.name_zh,
                        "vin": draft.get("vin", "").upper(), "price": m(vehicle.price),
                        "condition": draft.get("condition", "new"), "quantity": 1,
                        "powertrain": vehicle.category.powertrain, "engine_no": draft.get("engine_no", "").upper(),
                        "mileage_km": int(draft["mileage"]) if draft.get("condition") == "used"
                        and str(draft.get("mileage", "")).isdigit() else None},
            # the plan and its schedule as the contract states them, on the dates the APR was priced on
            **contract_terms(q, plans.product, plans.policy, start),
        }

    # -- requesting the contract -----------------------------------------------------------------------------
    def request(self, application_id: str) -> None:
        """Defer the contract request of an approved application (in the transaction of its approval). Its lock is
        its own (one contract request of an application at a time), not the application's: the approval is made
        by the running ``risk.send`` job, and a job deferred while a job holding its lock runs is not told when the
        lock frees (procrastinate notifies at the defer): it waited for the worker's next poll, 4.3 s at p50."""
        self.jobs.defer("contract.send", {"application_id": application_id}, queue="contract",
                        lock=f"contract.send:{application_id}", queueing_lock=f"contract.send:{application_id}")

    def send(self, application_id: str) -> str | None:
        """The ``contract.send`` task: request one contract; returns the new status, or None when the application
        has its contract already (a retry after the answer was recorded) or waits for the car's facts. Raises
        ServiceUnavailable (retried) when the contract service cannot be reached, ContractNotReady (retried: lessor
        ops may be completing the dealer's details) and ServiceRefused (the job fails, for ops) after recording what
        is wrong for staff. Each answer recorded names its attempt: one begun since has not answered yet, and the
        car's facts are not changed under it (bff/applications/states.py vehicle_editable). Missing or wrong car
        facts (``vehicle_details``) are not retried: the salesperson's save of them requests the contract again."""
        if not self.repo.begin_contract_attempt(application_id):
            return None
        app = self.repo.get(application_id, _ALL)
        assert app is not None
        self.queue_evidence(app)
        try:
            snapshot = self.snapshot(app)
            contract = self.client.create(snapshot)
        except ContractNotReady as exc:
            log.warning("contract of %s not ready: %s", application_id, exc.detail)
            self.repo.record_contract(application_id, contract={"error": exc.code, "detail": exc.detail,
                                                                "attempt": app.contract_attempts},
                                      to="contract_pending", allowed_from=("contract_pending",))
            if exc.code == "vehicle_details":
                return None
            raise
        except ServiceUnavailable as exc:
            log.warning("contract service unavailable for %s (attempt %s): %s", application_id,
                        app.contract_attempts, exc)
            raise
        except ServiceRefused as exc:  # our snapshot was refused: a bug or bad master data, shown to staff
            log.error("contract service refused %s: %s %s", application_id, exc.status, exc.body)
            errors = (exc.body or {}).get("errors") if isinstance(exc.body, dict) else None
            self.repo.record_contract(application_id, contract={"error": refusal_code(errors), "detail": json.dumps(
                errors or exc.body, ensure_ascii=False)[:500], "attempt": app.contract_attempts},
                to="contract_pending", allowed_from=("contract_pending",))
            raise
        late = self.clock() - self._approved_at(app) > LATE_AFTER
        with self.repo.db.transaction():  # the contract and the text the waiting page promised, together
            moved = self.repo.record_contract(application_id, contract=contract, to="contract_ready",
                                              allowed_from=("contract_pending",),
                                              note=f"contract:{contract.get('number')}")
            if moved is not None and late:
                self.jobs.defer("contract.text_ready", {"application_id": application_id}, queue="documents")
        return moved.status if moved else None

    # -- while the contract is generated ----------------------------------------------------------------------
    def _approved_at(self, app: Application) -> datetime:
        approvals = [e.at for e in self.repo.events(app.id) if e.to_status == "approved"]
        return approvals[-1] if approvals else app.updated_at

    def progress(self, app: Application) -> Progress | None:
        """The contract's real progress (:class:`Progress`) while the application waits for it, else None."""
        if app.status not in ("approved", "contract_pending"):
            return None
        elapsed = max(0.0, (self.clock() - self._approved_at(app)).total_seconds())
        stage = "queued" if app.status == "approved" else "retrying" if app.contract_attempts > 1 else "generating"
        return Progress(stage, self.repo.contracts_ahead(app.id) if stage == "queued" else 0, app.contract_attempts,
                        int(elapsed), usual_seconds(self.repo.contract_durations()),
                        elapsed > LATE_AFTER.total_seconds())

    def text_ready(self, application_id: str) -> None:
        """The ``contract.text_ready`` task, deferred with a contract ready later than :data:`LATE_AFTER` after the
        approval: text the customer, as the waiting page promised (they may have left it). SmsUnavailable is retried
        by the worker (bff/worker.py); a text the platform refuses is logged, the contract stands; a contract signed
        meanwhile needs no text."""
        app = self.repo.get(application_id, _ALL)
        if app is None or app.status != "contract_ready":
            return
        mobile = self.apps.draft(app).get("mobile", "")
        try:
            if mobile:
                self.sms.send(mobile, "contract_ready", {}, dealer_id=app.dealer_id)
        except SmsRefused as exc:
            log.warning("contract of %s ready late; the platform refused the text (%s)", app.id, exc)

    # -- identity re-confirmation and signing ------------------------------------------------------------------
    def _code_hash(self, application_id: str, code: str, purpose: str) -> str:
        # a code is hashed under its purpose too: a contract's code never matches a handover's check
        return self.vault.lookup_hash(code, f"signing:{application_id}" if purpose == "contract"
                                      else f"{purpose}:{application_id}")

    def send_code(self, app: Application, purpose: str = "contract") -> None:
        """A six-digit code to the customer's mobile (valid 5 minutes, 5 tries), for ``purpose``: signing the
        contract (its state checked here) or confirming the handover (checked by bff/payments/handover.py)."""
        if purpose == "contract" and app.status != "contract_ready":
            raise NotAllowed("wrong_state", "合同尚未准备好签署", "The contract is not ready to sign")
        mobile = self.apps.draft(app).get("mobile", "")
        if not mobile:
            raise NotAllowed("no_mobile", "申请中没有手机号", "The application has no mobile number")
        code = f"{secrets.randbelow(10 ** 6):06d}"
        # the check of the last code and the new one's record are one step (an advisory lock of the application and
        # purpose, released before the text goes): a double tap's two requests text one code (issue 17 §8)
        code_id = self.repo.add_signing_code_unless_recent(
            app.id, self._code_hash(app.id, code, purpose), self.clock() + CODE_TTL, purpose,
            texted_after=self.clock() - RESEND_AFTER)  # the page counts the same minute down
        if code_id is None:
            return  # the code texted a moment ago stands
        try:
            self.sms.send(mobile, CODE_TEMPLATES[purpose], {"code": code}, dealer_id=app.dealer_id)
        except (SmsUnavailable, SmsRefused) as exc:
            self.repo.discard_signing_code(code_id)  # the code is valid only once the platform took the text
            log.warning("%s code of %s could not be texted (%s)", purpose, app.id, exc)
            raise NotAllowed("sms_failed", "短信暂时无法发送，请稍后再试",
                             "The text message could not be sent just now: please try again in a moment") from None

    def check_code(self, app: Application, code: str, purpose: str = "contract") -> str | None:
        """The verified code's id, or None (wrong, expired or too many tries). The code verified by the press
        before stands again while it is fresh (:data:`IDENTITY_FRESH`): a double tap's second request, or a press
        again after the service was away, is the same signer with the same code, not a wrong one."""
        expected = self._code_hash(app.id, code.strip(), purpose)
        now = self.clock()
        return self.repo.check_signing_code(app.id, lambda stored: hmac.compare_digest(stored, expected),
                                            now, CODE_ATTEMPTS, purpose, again_since=now - IDENTITY_FRESH)

    def verified(self, app: Application, code_id: str, purpose: str = "contract") -> datetime | None:
        """When the code ``code_id`` for ``purpose`` was verified, if recently enough to stand for the signer."""
        return self.repo.verified_code(app.id, code_id, self.clock() - IDENTITY_FRESH, purpose)

    # -- the key terms explained (before the signature) ----------------------------------------------------------
    @staticmethod
    def _explained_key(app: Application) -> str:
        return f"{app.id}:terms_explained:{app.contract_id}"

    def explained(self, app: Application) -> dict[str, Any] | None:
        """The record that the key terms of this contract were explained (terms, method, who, when), or None."""
        if not app.contract_id:
            return None
        entry = self.repo.outbox_entry(app.id, self._explained_key(app))
        return {**entry.data, "at": entry.occurred_at} if entry is not None else None

    def explain(self, actor: Actor, app: Application, method: str, label: str) -> dict[str, Any]:
        """The dealer's staff member ``actor`` (shown as ``label``: name and dealer) records that they explained
        every key term of this contract to the customer by ``method``: an evidence entry of its own (queued in the
        transaction of the record, sent by the worker's evidence.flush) and an audit event; once per contract."""
        if app.status != "contract_ready" or not app.contract_id:
            raise NotAllowed("wrong_state", "合同当前无法签署", "The contract cannot be signed now")
        if method not in EXPLAIN_METHODS:
            raise NotAllowed("method", "请选择说明方式", "Choose how the terms were explained")
        found = self.explained(app)
        if found is not None:
            return found
        now = self.clock()
        data = {"terms": sorted(EXPLAINED_TERMS), "method": method, "by": actor.id, "by_label": label[:64],
                "contract_id": app.contract_id, "contract_number": str(app.contract.get("number", "")),
                "draft_sha256": str(app.contract.get("draft_sha256", ""))}
        with self.repo.db.transaction():
            self.repo.outbox_add(app.id, self._explained_key(app), "terms_explained", data, now)
        self.apps.audit.append("contract.terms_explained", "success", actor_id=actor.id, actor_label=actor.label,
                               dealer_id=app.dealer_id, target=app.id, ip=actor.ip, user_agent=actor.user_agent,
                               details={"method": method, "contract_number": data["contract_number"]})
        return {**data, "at": now}

    def sign(self, actor: Actor, app: Application, code_id: str, signature_png: bytes,
             consents: Sequence[str] = ()) -> Application:
        """Sign through the contract service with the verified code as identity evidence, once the key terms were
        explained (:meth:`explain`); the optional ``consents`` given with the signature are recorded with it.

        One signing of an application at a time, by a committed claim (:meth:`claim`), not a row lock: the service
        call (up to ~18 s with retries) holds no lock and no database connection (issue 17 §1). The same press
        again — a double tap's second request — waits for the first, then gets the signed application, as if it
        had signed (:func:`same_press`); another code or drawing on a signed contract is refused."""
        token = self.claim(app.id, "contract", press(code_id, signature_png), lambda a: a.status != "contract_ready")
        if token is None:
            return self._signed_by(app.id, code_id, signature_png)
        try:
            current = self.repo.get(app.id, _ALL)
            assert current is not None
            if not current.contract_id:
                raise NotAllowed("wrong_state", "合同当前无法签署", "The contract cannot be signed now")
            if self.explained(current) is None:
                raise NotAllowed("not_explained", "请先由经办人员向您说明合同主要条款并确认",
                                 "The dealer's staff first explain the contract's key terms and record it")
            verified = self.verified(current, code_id)
            if verified is None:
                raise NotAllowed("identity", "请先通过短信验证码确认身份",
                                 "Confirm your identity with the text code first")
            contract = self.client.sign(current.contract_id, self.signer(current, code_id, verified, signature_png))
        except BaseException:
            self.repo.release_signing(app.id, "contract", token)
            raise
        with self.repo.db.transaction():  # the signed state and the consents given with it, together
            moved = self.repo.record_contract(  # the stored answer replaces the record and its claim
                app.id, contract={**contract, "press": press(code_id, signature_png)}, to="signed",
                allowed_from=("contract_ready",), actor_kind=actor.kind, actor_id=actor.id,
                note=f"signed:{contract.get('signed_sha256', '')[:16]}")
            if moved is None:  # our claim went stale and another press recorded the signature
                return self._signed_by(app.id, code_id, signature_png)
            if consents:  # recorded once signed, and queued for the evidence log like the others
                self.apps.give_consent(actor, moved, consents)
                self.queue_evidence(moved)
            return moved

    def claim(self, application_id: str, purpose: str, pressed: str, done: Callable[[Application], bool]) -> str | None:
        """Claim signing ``purpose`` of an application for the press ``pressed`` (:func:`press`): the claim's token,
        or None once ``done`` (signed meanwhile: the caller answers with what was signed, if by this press). The
        same press held by another request (a double tap) is waited for, :data:`CLAIM_WAIT` at most; another press
        signing right now is refused (409)."""
        deadline = time.monotonic() + CLAIM_WAIT.total_seconds()
        while True:
            now = self.clock()
            token, current = self.repo.claim_signing(application_id, purpose, pressed, now, now - CLAIM_STALE)
            assert current is not None
            if token is not None and done(current):
                self.repo.release_signing(application_id, purpose, token)
            if token is not None and not done(current):
                return token
            if done(current):
                return None
            held = current.contract.get(f"signing:{purpose}") or {}
            if held.get("press") != pressed or time.monotonic() > deadline:
                raise NotAllowed("signing", "正在签署中，请稍后刷新页面查看",
                                 "It is being signed right now: reload in a moment")
            time.sleep(0.2)

    def _signed_by(self, application_id: str, code_id: str, signature_png: bytes) -> Application:
        """The application signed by this very press (a double tap's second request), else refused."""
        current = self.repo.get(application_id, _ALL)
        assert current is not None
        if current.status != "contract_ready" and same_press(current.contract, code_id, signature_png):
            return current
        raise NotAllowed("answered" if current.contract.get("signed_at") else "wrong_state",
                         "合同当前无法签署（可能已签署）",
                         "The contract cannot be signed now (it may be signed already)")

    def signer(self, app: Application, code_id: str, verified: datetime, signature_png: bytes) -> dict[str, Any]:
        """Who signs a document at the contract service, as its signing endpoints take it: the lessee named in the
        application, the drawn signature, and the text code that re-confirmed them (its record's hash, never the
        code) and when."""
        return {"signer_name": self.apps.draft(app).get("name", ""),
                "signature_png": base64.b64encode(signature_png).decode(),
                "identity": {"method": "sms_otp", "reference": hashlib.sha256(code_id.encode()).hexdigest()[:32],
                             "verified_at": verified.astimezone(UTC).isoformat()}}

    def refresh(self, app: Application) -> dict[str, Any]:
        """The contract as the service has it now (for the review page); the stored copy when it is down."""
        if not app.contract_id:
            return app.contract
        try:
            return self.client.contract(app.contract_id)
        except (ServiceUnavailable, ServiceRefused):
            return app.contract

    # -- evidence ----------------------------------------------------------------------------------------------
    def record_decline(self, application_id: str) -> None:
        """A declined application's evidence (consents, KYC outcome, plan, the decision) goes to the log too:
        a decline is a decision about a person that may have to be shown later. Queued here (in the transaction of the
        decision), sent by the worker's ``evidence.flush`` job."""
        app = self.repo.get(application_id, _ALL)
        if app is not None and app.status == "declined":
            self.queue_evidence(app)

    def queue_evidence(self, app: Application) -> None:
        """Queue the application's evidence (each entry once, whatever the number of calls)."""
        for consent in self.repo.consents(app.id):
            self.repo.outbox_add(app.id, f"{app.id}:consent:{consent.purpose}", "consent_given", {
                "purpose": consent.purpose, "text_version": consent.text_version,
                "text_sha256": consent.text_sha256, "by": consent.actor_kind}, consent.given_at)
        face = self.repo.latest_check(app.id, "face")
        documents = self.repo.documents(app.id)
        events = self.repo.events(app.id)
        passed = next((e for e in events if e.to_status == "kyc_passed"), None)
        if passed is not None:
            evidence = json.dumps({"documents": sorted(d.sha256 for d in documents),
                                   "face": face.detail if face is not None else None}, sort_keys=True, default=str)
            self.repo.outbox_add(app.id, f"{app.id}:kyc", "kyc_outcome", {
                "outcome": "kyc_passed", "by": passed.actor_kind, "evidence_sha256":
                    hashlib.sha256(evidence.encode()).hexdigest(), "documents": len(documents)}, passed.at)
        quote = app.plan["quote"]
        self.repo.outbox_add(app.id, f"{app.id}:plan:{app.plan_code}", "plan_accepted", {
            "plan_code": app.plan_code, "monthly_payment": quote["monthly_payment"], "apr": quote["apr"],
            "term": quote["term"], "down_payment": quote["down_payment"],
            "quote_sha256": hashlib.sha256(json.dumps(quote, sort_keys=True).encode()).hexdigest()},
            app.submitted_at or app.created_at)
        risk = app.risk_result
        if risk.get("id"):
            self.repo.outbox_add(app.id, f"{app.id}:risk:{risk['id']}", "risk_decision", {
                "assessment_id": risk["id"], "outcome": str(risk.get("outcome")),
                "decided_by": str(risk.get("decided_by") or ""), "policy_version": str(risk.get("policy_version")),
                "model_version": str(risk.get("model_version")), "pd": str(risk.get("pd")),
                "reasons": [str(r.get("code")) for r in risk.get("reasons") or []]}, app.decided_at or self.clock())

    def flush_outbox(self, budget: float = 5.0) -> int:
        """Send the queued evidence that is due, in batches (one call and one log transaction each), for at most
        ``budget`` seconds: a backlog after an outage drains over the next runs, and the job ends in time.
        Returns how many were sent."""
        sent = 0
        stop = time.monotonic() + budget
        while time.monotonic() < stop:
            due = self.repo.outbox_due(self.clock())
            if not due:
                break
            try:
                self.client.append_many([{
                    "kind": e.kind, "subject": e.application_id, "idempotency_key": e.key,
                    "data": {**e.data, "occurred_at": e.occurred_at.astimezone(UTC).isoformat()}} for e in due])
            except ServiceUnavailable:
                self._later(due)
                return sent  # the service is down: everything waits for a later tick
            except ServiceRefused as exc:  # one entry the log refuses: send one by one to set the others apart
                log.warning("evidence batch refused (%s): sending its %s entries one by one", exc.status, len(due))
                return sent + self._one_by_one(due)
            now = self.clock()
            for entry in due:  # each is in the log now (the client checked there is one answer each)
                self.repo.outbox_done(entry.id, now)
            sent += len(due)
        return sent

    def _later(self, entries: list[OutboxEntry]) -> None:
        for entry in entries:
            self.repo.outbox_retry(entry.id, self.clock() + _backoff(entry.attempts + 1))

    def _one_by_one(self, entries: list[OutboxEntry]) -> int:
        sent = 0
        for entry in entries:
            data = {**entry.data, "occurred_at": entry.occurred_at.astimezone(UTC).isoformat()}
            try:
                self.client.append(entry.kind, entry.application_id, data, entry.key)
            except ServiceUnavailable:
                self._later([entry])
                return sent
            except ServiceRefused as exc:
                log.error("evidence entry %s refused: %s %s", entry.key, exc.status, exc.body)
                self.repo.outbox_retry(entry.id, self.clock() + timedelta(hours=1))
                continue
            self.repo.outbox_done(entry.id, self.clock())
            sent += 1
        return sent
