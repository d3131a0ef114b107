"""Refinancing the final rent (再融资, issue 18 §6): the lessee who chose it gets a new application, pre-filled from the
lease's own, that finances the final rent (尾付租金) with a new plan.

- **the plan**: the plan builder's product and policy (bff/plans/services.py ``evaluate``) price the same car, now
  used, at the final rent still unpaid as its price — what the new lease buys out — with the smallest down payment
  the policy allows for a used car, the term the lessee picks, no balloon, the policy's required insurance
  (servicing/end_of_term.py :func:`refinance_choice`); the down payment and the financed amount together make the
  final rent. The plan is frozen on the application as any plan is, with ``refinance`` naming the lease;
- **the application**: the same customer (their answers copied, encrypted under the new application's context), the
  same dealer, salesperson and invitation — so the customer's session and 我的租赁 open it as their own
  (bff/invitations/returning.py ``invitation_for``) —, the same car (the vehicle step's answers). The consents are
  asked again (the credit authorisation is given per application);
- **KYC reused within its validity**: the person's latest application to pass its identity check did so less than the
  policy's ``[end_of_term] kyc_reuse_days`` ago (90) and the ID card is still valid: the new application records the
  card as read (a done ``id_card`` check naming the one it reuses, the reading's answers copied) and the draft notes
  ``_kyc_reused``, which moves it past the face check on submission (bff/applications/services.py ``submit``).
  Otherwise it reads the card and matches the face again, as any application;
- **once**: the new application is made in one transaction with its record on ``end_of_term.refinance_application_id``,
  under that row's lock; a second request (double tap, another device) finds it.

The old lease's final rent is paid off when the new lease opens (its handover signed: infra/servicing.py
``_pay_off_refinanced``, in that transaction), and the close ends the old lease; the end-of-term desk
(bff/servicing/end_of_term.py ``desk``) lists the refinances not yet funded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bff.applications import forms
from bff.applications.services import KYC_REUSED
from bff.applications.services import _plan_json
from bff.plans.forms import encode
from bff.services import services
from infra.applications import Application
from infra.applications import Scope
from infra.db.models import LeaseRow
from infra.end_of_term import SqlEndOfTerm
from plans.errors import UnknownVehicle
from plans.policy import Category
from plans.product import Vehicle
from servicing.end_of_term import REFINANCE
from servicing.end_of_term import kyc_reusable
from servicing.end_of_term import refinance_choice

#: the customer's answers a refinance copies: theirs (the customer and work steps) and the car's (the vehicle step)
COPIED = tuple(f.name for step in ("customer", "work", "vehicle") for f in forms.STEPS[step])
#: the ID card's reading a reused identity check carries over (bff/applications/kyc.py prefilled, confirm_card)
READING = ("_ocr", "_ocr_confidence", "_ocr_confirmed")


class RefinanceRefused(Exception):
    """A refinance the plan builder or the lease's state refuses: ``field`` of the form, zh/en for the page."""

    def __init__(self, field: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.field, self.zh, self.en = field, zh, en


def terms_offered() -> tuple[int, ...]:
    """The terms a refinance may choose: the product's, within the policy's longest for a used car."""
    plans = services().plans
    return tuple(t for t in plans.product.terms
                 if plans.policy.min_term <= t <= plans.policy.max_term_for(Category(condition="used")))


@dataclass(frozen=True)
class Refinanced:
    application_id: str
    created: bool  # False: made by an earlier request
    kyc_reused_from: str | None


def _vehicle(old: Application, price: Decimal) -> Vehicle:
    """The lease's car, used, priced at ``price``: from the catalogue when it still lists it, else as the lease's
    frozen plan names it."""
    frozen = old.plan.get("vehicle", {})
    try:
        vehicle = services().plans.vehicle(old.vehicle_id)
    except UnknownVehicle:
        vehicle = Vehicle(id=old.vehicle_id, make=str(frozen.get("make", "")), model=str(frozen.get("model", "")),
                          name_zh=old.vehicle_label, name_en=old.vehicle_label, price=price)
    return replace(vehicle, price=price, category=replace(vehicle.category, condition="used"))


def refinance(lease: LeaseRow, old: Application, final_rent: int, term: int, *, now: datetime | None = None,
              today: date | None = None) -> Refinanced:
    """The application refinancing ``lease``'s final rent (``final_rent`` fen still unpaid) over ``term`` months: made
    once, recorded on the lease's end-of-term choice. Raises :class:`RefinanceRefused`."""
    svc = services()
    at, day = now or datetime.now(UTC), today or date.today()
    eot = SqlEndOfTerm(svc.db)
    if term not in terms_offered():
        raise RefinanceRefused("term", "请选择新方案的期限", "Choose the new plan's term")
    if final_rent <= 0:
        raise RefinanceRefused("option", "尾付租金已付清，无需再融资", "The final rent is paid: nothing to refinance")
    plans = svc.plans
    choice = refinance_choice(plans.product.down_ratios, plans.policy.min_down["used"], term,
                              plans.policy.required_insurance)
    result = plans.evaluate(_vehicle(old, Decimal(final_rent) / 100), choice)
    if not result.allowed:
        reason = result.reasons[0]
        raise RefinanceRefused("term", reason.text_zh, reason.text_en)
    plan = _plan_json(encode(choice), result) | {"refinance": {
        "lease_id": lease.id, "application_id": old.id, "final_rent": f"{Decimal(final_rent) / 100:.2f}"}}
    apps = svc.applications
    previous = apps.draft(old)
    draft: dict[str, Any] = {k: previous[k] for k in COPIED if previous.get(k)}
    draft["condition"] = "used"
    identity = eot.latest_identity(old.id_hash) if old.id_hash else None
    reused = identity is not None and kyc_reusable(identity[1], at, plans.policy.kyc_reuse_days,
                                                   previous.get("id_valid_to", ""), day)
    with svc.db.transaction():
        row = eot.lock(lease.id)
        if row is None or row.option != REFINANCE:
            raise RefinanceRefused("option", "这份租约未选择再融资", "Refinancing was not chosen for this lease")
        if row.refinance_application_id:
            return Refinanced(row.refinance_application_id, False, None)
        new = apps.repo.create(
            dealer_id=old.dealer_id, owner_id=old.owner_id, invitation_id=old.invitation_id,
            vehicle_id=old.vehicle_id, vehicle_label=old.vehicle_label, plan_code=plan["code"], plan=plan,
            draft_enc="", mobile_masked=old.mobile_masked, mobile_hash=old.mobile_hash, actor_kind="customer",
            actor_id=old.invitation_id or "customer")
        source = None
        if reused and identity is not None:
            source = identity[0]
            until = identity[1] + timedelta(days=plans.policy.kyc_reuse_days)
            draft |= {k: previous[k] for k in READING if previous.get(k)}
            draft[KYC_REUSED] = json.dumps({"from": source, "id_hash": old.id_hash,
                                            "passed_at": identity[1].isoformat(), "until": until.isoformat()})
            check = apps.repo.add_check(new.id, "id_card", {"reused_from": source})
            apps.repo.update_check(check.id, state="done", outcome="ok", detail={
                "reused_from": source, "passed_at": identity[1].isoformat()})
        apps.merge_draft(new.id, lambda _: dict(draft), editable_only=False)
        eot.attach_refinance(lease.id, new.id, at)
        svc.audit.append("end_of_term.refinance_started", "success", actor_id=old.invitation_id,
                         actor_label="customer", dealer_id=old.dealer_id, target=new.id,
                         details={"lease": lease.id, "from_application": old.id, "final_rent": final_rent,
                                  "term": term, "kyc_reused_from": source})
    return Refinanced(new.id, True, source)


def new_application(application_id: str | None) -> Application | None:
    """The refinancing application (unscoped: the caller saw the lease)."""
    return services().applications.repo.get(application_id, Scope()) if application_id else None
