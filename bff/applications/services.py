"""The application journey as a service: start from a plan, save drafts, consent, submit, KYC, pipeline.

No Flask here: views pass an :class:`Actor` (who acts, and the :class:`Scope` they may see, built once in
``bff.applications.access``) and plain values. Personal data is encrypted before it reaches the database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bff.applications import forms
from bff.applications.offers import Offer
from bff.applications.offers import adjusted_choice
from bff.applications.offers import offer_from
from bff.applications.states import CONSENT_PURPOSES
from bff.applications.states import EDITABLE
from bff.applications.states import FACE_ALLOWED
from bff.applications.states import HOLDS_VEHICLE
from bff.applications.states import MAX_FACE_ATTEMPTS
from bff.applications.states import REQUIRED_CONSENTS
from bff.applications.states import SIGNING_CONSENTS
from bff.applications.states import VEHICLE_EDITABLE
from bff.applications.states import vehicle_editable
from bff.plans.forms import decode
from bff.plans.forms import encode
from bff.plans.services import PlanService
from infra.applications import Application
from infra.applications import Scope
from infra.applications import SqlApplications
from infra.audit import SqlAuditLog
from infra.pii import PiiVault
from kyc.masking import mask_id_number
from kyc.masking import mask_mobile
from kyc.vin import check_vin
from plans.errors import FieldError
from plans.errors import PlanInputError
from plans.product import PlanResult
from plans.quote import quote_as_dict

log = logging.getLogger(__name__)
CONSENT = tomllib.loads(Path(__file__).with_name("consent.toml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff member or an invited customer, with the scope of applications they may see."""

    kind: str  # staff | customer
    id: str  # user id, or the invitation id that verified the customer's mobile
    label: str
    scope: Scope
    dealer_id: str | None  # the dealer a new application belongs to (None: cannot start one)
    owner_id: str | None = None  # the salesperson a new application is owned by
    mobile: str | None = None  # a customer's verified mobile number
    role: str = ""
    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class Consents:
    given: dict[str, datetime] = field(default_factory=dict)

    @property
    def sensitive_pi(self) -> bool:
        return "sensitive_pi" in self.given

    @property
    def face(self) -> bool:
        return "face_recognition" in self.given

    @property
    def required(self) -> bool:
        """Everything needed to apply online: the personal information notice and the credit authorisation."""
        return all(purpose in self.given for purpose in REQUIRED_CONSENTS)


class NotAllowed(Exception):
    """The action is not possible in the application's state (or without consent): a 409 with a reason."""

    def __init__(self, code: str, text_zh: str, text_en: str) -> None:
        super().__init__(text_en)
        self.code, self.text_zh, self.text_en = code, text_zh, text_en


def vehicle_locked() -> NotAllowed:
    """The car's facts are what the contract is being drafted from (or waits on with something else): not now."""
    return NotAllowed("vehicle_locked", "合同正在依据已填写的车辆信息准备中，此时车辆信息不能修改",
                      "The contract is being prepared from the car's details given: they cannot be changed now")


def vehicle_final() -> NotAllowed:
    """The contract was generated from the car's facts: never again."""
    return NotAllowed("not_editable", "合同已生成，车辆信息不能再修改",
                      "The contract was generated: the car's details can no longer be changed")


def vin_in_use(vin: str) -> NotAllowed:
    """The car is another application's (past its draft, not ended): one car is leased once (finding 6)."""
    return NotAllowed("vin_in_use", f"车架号 {vin} 已用于另一份在办的申请或租赁：同一辆车不能租给两位客户，"
                      "请核对车架号",
                      f"The VIN {vin} is on another application or lease in progress: one car cannot be leased to "
                      "two customers. Please check the VIN")


def consent_text(purpose: str, locale: str) -> tuple[str, str]:
    """The title and text of a consent purpose in ``locale``."""
    lang = "zh" if locale.lower().startswith("zh") else "en"
    return CONSENT[purpose][f"title_{lang}"], CONSENT[purpose][f"text_{lang}"]


def _text_hash(purpose: str) -> str:
    entry = CONSENT[purpose]
    shown = "\n".join([entry["title_zh"], entry["text_zh"], entry["title_en"], entry["text_en"]])
    return hashlib.sha256(shown.encode("utf-8")).hexdigest()


class ApplicationService:
    def __init__(self, repo: SqlApplications, vault: PiiVault, plans: PlanService, audit: SqlAuditLog,
                 retention_days: int = 30) -> None:
        self.repo, self.vault, self.plans, self.audit = repo, vault, plans, audit
        self.retention_days = retention_days
        #: called with the application id whenever one reaches kyc_passed (the risk dispatch listens)
        self.on_kyc_passed: list[Callable[[str], None]] = []
        #: called with the application id whenever one is approved (the contract dispatch defers its job)
        self.on_approved: list[Callable[[str], None]] = []
        #: called with the application id whenever one is declined (its evidence goes to the log all the same)
        self.on_declined: list[Callable[[str], None]] = []

    def _passed(self, moved: Application | None) -> Application | None:
        """Tell the listeners when ``moved`` passed KYC (inside the transaction of that move: what they defer
        commits with it)."""
        if moved is not None and moved.status == "kyc_passed":
            for listener in self.on_kyc_passed:
                listener(moved.id)
        return moved

    def approved(self, moved: Application | None) -> Application | None:
        """Tell the listeners when ``moved`` (the result of a decision) is approved, or declined. Called inside the
        transaction of the decision (``repo.db.transaction()``): the jobs they defer commit with it."""
        if moved is not None and moved.status in ("approved", "declined"):
            for listener in self.on_approved if moved.status == "approved" else self.on_declined:
                listener(moved.id)
        return moved

    # -- look-ups --------------------------------------------------------------------------------------------
    def get(self, actor: Actor, application_id: str) -> Application | None:
        """The application if ``actor`` may see it (None otherwise: the view answers 404, leaking nothing)."""
        return self.repo.get(application_id, actor.scope)

    def draft(self, app: Application) -> dict[str, str]:
        """The applicant's answers as typed (decrypted)."""
        return json.loads(self.vault.decrypt(app.draft_enc, f"application:{app.id}"))

    def consents(self, app: Application) -> Consents:
        """The consents in force: a withdrawn one no longer counts (its row stays, with ``withdrawn_at``); a purpose
        given again after a withdrawal counts from its newer row."""
        return Consents({c.purpose: c.given_at for c in self.repo.consents(app.id) if c.withdrawn_at is None})

    def completeness(self, draft: Mapping[str, str], steps: Sequence[str] = forms.CUSTOMER_STEPS) \
            -> dict[str, list[FieldError]]:
        """Each step's remaining field errors (an empty list: the step is done): the applicant's steps unless
        ``steps`` says otherwise (the dealer's vehicle step is not the applicant's to submit)."""
        return {step: forms.validate(step, draft) for step in steps}

    def pipeline(self, actor: Actor, *, statuses: Sequence[str] = (), query: str = "",
                 limit: int = 50) -> list[Application]:
        """The applications ``actor`` may see, newest activity first, filtered and searched.

        A query that looks like an ID or mobile number is matched exactly through its keyed hash (the
        numbers themselves are never stored in clear); anything else matches the name or reference."""
        query = query.strip()[:40]
        hashes: list[str] = []
        text = query
        compact = query.replace(" ", "").replace("-", "")
        if compact and (compact.isdigit() or compact[:-1].isdigit()) and len(compact) in (11, 18):
            kind = "mobile" if len(compact) == 11 else "id_number"
            hashes = [self.vault.lookup_hash(compact, kind)]
            text = ""
        return self.repo.search(actor.scope, statuses=statuses, text=text, hashes=hashes, limit=limit)

    # -- the journey -----------------------------------------------------------------------------------------
    def start(self, actor: Actor, vehicle_id: str, plan_code: str) -> Application:
        """A new draft from a chosen plan: the quote is priced again here and frozen into the application."""
        if actor.dealer_id is None:
            raise NotAllowed("no_dealer", "只有经销商员工或受邀客户可以发起申请",
                             "Only dealer staff or invited customers can start an application")
        vehicle = self.plans.vehicle(vehicle_id)
        choice = decode(plan_code)
        if choice is None:
            raise PlanInputError([FieldError("plan", "plan_code", "方案无效，请重新选择方案",
                                             "That plan is not valid: please choose a plan again")])
        result = self.plans.evaluate(vehicle, choice)
        if not result.allowed:
            raise PlanInputError([FieldError("plan", r.code, r.text_zh, r.text_en) for r in result.reasons])
        plan = _plan_json(plan_code, result)
        draft = {"mobile": actor.mobile or "", "condition": vehicle.category.condition}
        app = self.repo.create(
            dealer_id=actor.dealer_id, owner_id=actor.owner_id,
            invitation_id=actor.id if actor.kind == "customer" else None, vehicle_id=vehicle.id,
            vehicle_label=f"{vehicle.make} {vehicle.model}", plan_code=plan_code, plan=plan,
            draft_enc="", mobile_masked=mask_mobile(actor.mobile or ""),
            mobile_hash=self.vault.lookup_hash(actor.mobile, "mobile") if actor.mobile else None,
            actor_kind=actor.kind, actor_id=actor.id)
        return self._store_draft(app, draft)

    def _store_draft(self, app: Application, draft: Mapping[str, str]) -> Application:
        """Replace the whole draft (a new application)."""
        stored = self.merge_draft(app.id, lambda _: dict(draft), editable_only=False)
        assert stored is not None
        return stored

    def merge_draft(self, application_id: str, change: Callable[[dict[str, str]], dict[str, str]],
                    editable_only: bool = True, states: Sequence[str] = EDITABLE,
                    guard: Callable[[Any], None] | None = None) -> Application | None:
        """Apply ``change`` to the current draft under a row lock (read, decrypt, change, encrypt, write in one
        transaction): concurrent saves of different steps, and the OCR job, never lose each other's
        answers. None when the application is no longer editable. ``guard`` sees the locked row first and may
        refuse the change by raising (nothing is written)."""
        context = f"application:{application_id}"

        def columns(row: Any) -> dict[str, Any]:
            if guard is not None:
                guard(row)
            current = json.loads(self.vault.decrypt(row.draft_enc, context)) if row.draft_enc else {}
            draft = change(current)
            id_number, mobile = draft.get("id_number", ""), draft.get("mobile", "")
            id_ok = not forms.validate_one("id_number", id_number)
            mobile_ok = not forms.validate_one("mobile", mobile)
            id_norm = id_number.upper().replace(" ", "")
            return {
                "draft_enc": self.vault.encrypt(json.dumps(draft, ensure_ascii=False), context),
                "customer_name": draft.get("name", "")[:64],
                "id_masked": mask_id_number(id_norm) if id_ok else "",
                "id_hash": self.vault.lookup_hash(id_norm, "id_number") if id_ok else None,
                "mobile_masked": mask_mobile(mobile) if mobile_ok else row.mobile_masked,
                # a customer's application stays theirs: their verified mobile keeps the look-up hash
                "mobile_hash": self.vault.lookup_hash(mobile, "mobile") if mobile_ok else row.mobile_hash,
                "vin_hash": self.vin_hash(draft.get("vin", "")),
            }

        return self.repo.update_draft(application_id, columns, states if editable_only else None)

    def save_step(self, actor: Actor, app: Application, step: str, raw: Mapping[str, Any]) \
            -> tuple[Application, list[FieldError]]:
        """Save one step's answers (even invalid ones: nothing typed is lost) and return its field errors."""
        if step in forms.DEALER_STEPS:
            return self._save_vehicle(actor, app, raw)
        if app.status not in EDITABLE:
            raise NotAllowed("not_editable", "申请已提交，不能再修改", "The application was submitted: it can no "
                             "longer be changed")
        if not self.consents(app).sensitive_pi:
            raise NotAllowed("consent_required", "请先阅读并同意个人信息处理说明",
                             "Please read and accept the personal-information notice first")
        data = forms.clean(raw, step)
        if actor.kind == "customer" and step == "customer" and actor.mobile:
            data["mobile"] = actor.mobile  # the verified number: a customer cannot swap it for another
        saved = self.merge_draft(app.id, lambda draft: {**draft, **data})
        if saved is None:  # submitted by someone else meanwhile
            raise NotAllowed("not_editable", "申请已提交，不能再修改", "The application was submitted: it can no "
                             "longer be changed")
        return saved, forms.validate(step, data)

    def _save_vehicle(self, actor: Actor, app: Application, raw: Mapping[str, Any]) \
            -> tuple[Application, list[FieldError]]:
        """The dealer's staff give the car's facts (issue 17 §5), until the contract is generated from them."""
        if actor.kind != "staff":
            raise NotAllowed("dealer_step", "车辆信息由经销商填写", "The dealer gives the car's details")
        data = forms.clean(raw, "vehicle")

        vin_hash = self.vin_hash(data["vin"])

        def unlocked(row: Any) -> None:  # checked under the row lock begin_contract_attempt takes too
            if not vehicle_editable(row.status, json.loads(row.contract_result or "{}"), row.contract_attempts):
                raise vehicle_locked()
            # one car, one lease (walk-through finding 6): another application past its draft, not ended, has it
            if vin_hash and self.repo.vin_holder(row, vin_hash, HOLDS_VEHICLE) is not None:
                raise vin_in_use(check_vin(data["vin"]).normalized)

        saved = self.merge_draft(app.id, lambda draft: {**draft, **data}, states=VEHICLE_EDITABLE, guard=unlocked)
        if saved is None:
            raise vehicle_final()
        return saved, forms.validate("vehicle", data)

    def vin_hash(self, vin: str) -> str | None:
        """The keyed hash of a valid VIN (None for anything else): what finds another application with the car."""
        checked = check_vin(vin)
        return self.vault.lookup_hash(checked.normalized, "vin") if checked.valid else None

    @staticmethod
    def vehicle_refusal(app: Application) -> NotAllowed | None:
        """Why the car's facts of ``app`` cannot be given or corrected now (None: they can)."""
        if vehicle_editable(app.status, app.contract, app.contract_attempts):
            return None
        return vehicle_locked() if app.status in VEHICLE_EDITABLE else vehicle_final()

    def give_consent(self, actor: Actor, app: Application, purposes: Sequence[str]) -> Consents:
        given = self.consents(app)
        for purpose in purposes:
            if purpose in (*CONSENT_PURPOSES, *SIGNING_CONSENTS) and purpose not in given.given:
                self.repo.add_consent(app.id, purpose=purpose, text_version=CONSENT["version"],
                                      text_sha256=_text_hash(purpose), actor_kind=actor.kind, ip=actor.ip,
                                      user_agent=actor.user_agent)
                self.audit.append("consent.given", "success", actor_id=actor.id, actor_label=actor.label,
                                  dealer_id=app.dealer_id, target=app.id, ip=actor.ip,
                                  user_agent=actor.user_agent,
                                  details={"purpose": purpose, "version": CONSENT["version"]})
        return self.consents(app)

    def submit(self, actor: Actor, app: Application, *, id_card_done: bool) -> Application:
        """draft → submitted, when every step is valid, consent is given and the ID card was read."""
        draft = self.draft(app)
        missing = [e for errors in self.completeness(draft).values() for e in errors]
        if missing:
            raise PlanInputError(missing)
        if not self.consents(app).required:
            raise NotAllowed("consent_required", "请先同意个人信息处理说明并签署征信授权",
                             "Please accept the personal-information notice and the credit authorisation first")
        if not id_card_done:
            raise NotAllowed("id_card_required", "请先拍摄或上传身份证正反面", "Please photograph or upload both "
                             "sides of the ID card first")
        # the device and network it was submitted from: the risk service's velocity and fraud rules use them
        device = {"_device_ip": actor.ip or "unknown",
                  "_device_ua": hashlib.sha256(actor.user_agent.encode("utf-8")).hexdigest()[:32]}
        self.merge_draft(app.id, lambda current: {**current, **device})
        moved = self.repo.transition(app.id, allowed_from=("draft",), to="submitted", actor_kind=actor.kind,
                                     actor_id=actor.id)
        if moved is None:
            raise NotAllowed("already_submitted", "申请已提交", "The application was already submitted")
        reused = reused_identity(draft, app.id_hash, datetime.now(UTC))
        if reused is not None:  # a refinance within the identity check's validity: no face check again
            with self.repo.db.transaction():  # kyc_passed and the risk request it causes together
                passed = self._passed(self.repo.transition(app.id, allowed_from=FACE_ALLOWED, to="kyc_passed",
                                                           actor_kind="system", actor_id="kyc",
                                                           note=f"kyc_reused:{reused}"))
            return passed or moved
        return moved

    # -- the answer to a counter-offer or a conditional approval ------------------------------------------------
    def offer(self, app: Application) -> tuple[Offer, PlanResult] | None:
        """The terms waiting for the customer's answer and the plan they make, priced now with the same product
        and policy as the builder (at the application's frozen vehicle price); None when nothing waits."""
        if app.status != "counter_offer":
            return None
        offer = offer_from(app.risk_result)
        choice = decode(app.plan_code)
        if offer is None or choice is None:
            return None
        frozen = app.plan["vehicle"]
        vehicle = replace(self.plans.vehicle(frozen["id"]), price=Decimal(frozen["price"]))
        return offer, self.plans.evaluate(vehicle, adjusted_choice(choice, vehicle.price, offer))

    def answer_offer(self, actor: Actor, app: Application, accept: bool) -> Application:
        """accept → the plan is replaced by the adjusted one and the application approved on it; decline → the
        application is withdrawn. Either once: a second answer (another device) is a 409."""
        pending = self.offer(app)
        if pending is None:
            raise NotAllowed("no_offer", "该申请没有待确认的调整方案", "There is no offer waiting for an answer")
        if not accept:
            moved = self.repo.transition(app.id, allowed_from=("counter_offer",), to="withdrawn",
                                         actor_kind=actor.kind, actor_id=actor.id, note="offer:declined")
        else:
            offer, result = pending
            if not result.allowed:  # an offer the product cannot price (e.g. a term it does not sell)
                raise PlanInputError([FieldError("plan", r.code, r.text_zh, r.text_en) for r in result.reasons])
            plan = _plan_json(encode(result.choice), result) | {"adjusted_from": {
                "code": app.plan_code, "monthly_payment": app.plan["quote"]["monthly_payment"],
                "down_payment": app.plan["quote"]["down_payment"], "term": app.plan["quote"]["term"]},
                "offer_source": offer.source}
            with self.repo.db.transaction():  # the approval and its contract job together
                moved = self.approved(self.repo.replace_plan(
                    app.id, allowed_from=("counter_offer",), to="approved", plan_code=plan["code"], plan=plan,
                    actor_kind=actor.kind, actor_id=actor.id, note=f"offer:accepted:{plan['code']}"))
        if moved is None:
            raise NotAllowed("answered", "调整方案已有答复", "The offer has already been answered")
        self.audit.append("application.offer_answered", "success", actor_id=actor.id, actor_label=actor.label,
                          dealer_id=app.dealer_id, target=app.id, ip=actor.ip, user_agent=actor.user_agent,
                          details={"answer": "accept" if accept else "decline"})
        return moved

    def choose_counter(self, actor: Actor, app: Application) -> Application:
        """The alternative to face recognition: staff verify the original ID card at the counter."""
        moved = self.repo.transition(app.id, allowed_from=FACE_ALLOWED, to="kyc_review", actor_kind=actor.kind,
                                     actor_id=actor.id, note="counter_verification")
        if moved is None:
            raise NotAllowed("wrong_state", "当前状态无法选择柜台核验", "Counter verification is not possible now")
        return moved

    def face_outcome(self, app_id: str, outcome: str, detail: Mapping[str, Any]) -> Application | None:
        """Apply a finished face check: pass → kyc_passed, review → kyc_review, fail → retry or review."""
        if outcome == "pass":
            current = self.repo.get(app_id, Scope())
            differs = forms.ocr_mismatches(self.draft(current)) if current is not None else {}
            if {"id_number", "name"} & set(differs):
                # the face matches the card, but the typed identity is not the card's: a person decides
                return self.repo.transition(app_id, allowed_from=FACE_ALLOWED, to="kyc_review",
                                            actor_kind="system", actor_id="kyc", note="ocr_mismatch")
            with self.repo.db.transaction():  # kyc_passed and the risk request it causes together
                return self._passed(self.repo.transition(app_id, allowed_from=FACE_ALLOWED, to="kyc_passed",
                                                         actor_kind="system", actor_id="kyc",
                                                         note="face_match_pass"))
        if outcome == "review":
            return self.repo.transition(app_id, allowed_from=FACE_ALLOWED, to="kyc_review", actor_kind="system",
                                        actor_id="kyc", note="face_match_review")
        current = self.repo.get(app_id, Scope())
        if current is None:
            return None
        attempts = current.face_attempts + 1
        target = "kyc_review" if attempts >= MAX_FACE_ATTEMPTS else current.status
        return self.repo.transition(app_id, allowed_from=FACE_ALLOWED, to=target, actor_kind="system",
                                    actor_id="kyc", note=f"face_check_failed:{attempts}", count_face_attempt=True)

    def review(self, actor: Actor, app: Application, decision: str, note: str) -> Application:
        """Staff decide a KYC case under review (after checking the original ID card, or the images)."""
        if decision not in ("kyc_passed", "kyc_failed"):
            raise NotAllowed("decision", "请选择核验结果", "Choose a verification outcome")
        if not note.strip():
            raise PlanInputError([FieldError("note", "required", "请写明核验依据", "Say what you checked")])
        with self.repo.db.transaction():  # the decision and the risk request it causes together
            moved = self._passed(self.repo.transition(app.id, allowed_from=("kyc_review",), to=decision,
                                                      actor_kind=actor.kind, actor_id=actor.id,
                                                      note=note.strip()[:500]))
        if moved is None:
            raise NotAllowed("wrong_state", "该申请不在人工核验中", "The application is not under review")
        self.audit.append("kyc.reviewed", "success", actor_id=actor.id, actor_label=actor.label,
                          dealer_id=app.dealer_id, target=app.id, ip=actor.ip, user_agent=actor.user_agent,
                          details={"decision": decision})
        return moved

    def unmask(self, actor: Actor, app: Application, name: str) -> str:
        """The full ID or mobile number, for a role allowed to see it; every call is audit-logged."""
        value = self.draft(app).get(name, "")
        self.audit.append("pii.unmasked", "success", actor_id=actor.id, actor_label=actor.label,
                          dealer_id=app.dealer_id, target=app.id, ip=actor.ip, user_agent=actor.user_agent,
                          details={"field": name})
        return value

    def retention_cutoff(self, now: datetime | None = None) -> datetime:
        return (now or datetime.now(UTC)) - timedelta(days=self.retention_days)


#: the draft's note that another application's identity check stands for this one's (bff/servicing/refinance.py: a
#: refinance of the final rent within the policy's ``[end_of_term] kyc_reuse_days``), JSON ``{"from", "id_hash",
#: "passed_at", "until"}``
KYC_REUSED = "_kyc_reused"


def reused_identity(draft: Mapping[str, str], id_hash: str | None, now: datetime) -> str | None:
    """The application whose identity check stands for this draft's: its note is there, still valid at ``now``, for
    the same ID number (``id_hash``: the draft's now) and the name and number still the card's reading (a changed
    identity is checked again). None otherwise: the face check, as any application."""
    try:
        note = json.loads(draft.get(KYC_REUSED) or "null")
        if not isinstance(note, dict) or datetime.fromisoformat(note["until"]) < now:
            return None
        if id_hash is None or note["id_hash"] != id_hash or {"id_number", "name"} & set(forms.ocr_mismatches(draft)):
            return None
        return str(note["from"])
    except (ValueError, KeyError, TypeError):
        return None


def _plan_json(plan_code: str, result: PlanResult) -> dict[str, Any]:
    """The frozen copy of a priced plan kept on the application."""
    vehicle, choice = result.vehicle, result.choice
    return {
        "code": plan_code, "vehicle": {"id": vehicle.id, "make": vehicle.make, "model": vehicle.model,
                                       "price": f"{vehicle.price:.2f}"},
        "choice": {"down_ratio": str(choice.down_ratio), "term": choice.term,
                   "residual_ratio": str(choice.residual_ratio), "insurance": sorted(choice.insurance),
                   "deposit_free": choice.deposit_free, "extras_financed": choice.extras_financed,
                   "timing": choice.timing},
        "quote": quote_as_dict(result.quote), "policy_version": result.policy_version,
        "product_version": result.product_version, "priced_at": datetime.now(UTC).isoformat(),
    }
