"""The vehicle's handover (交车) as a signed record (车辆交接确认书, issue 16): the commencement date (起租日) of the
term and of every rent is the day the customer signs it, not the day a dealer taps a button.

1. The dealer, at delivery, records what is handed over (:meth:`HandoverService.prepare`): the odometer reading,
   the keys, the items from :data:`HANDOVER_ITEMS`, a note, and that the VIN on the car is the contract's; again as
   often as needed until the record is signed. The security must be in place (a lapsed hold is placed again first).
2. The customer reads the record on the lease page — on their own phone or on the dealer's device handed to them —
   and either refuses the vehicle with a reason (:meth:`refuse`: a car that seriously does not conform may be
   refused, Civil Code art. 740, as the contract's delivery clause says; the dealer sees why and prepares again) or
   confirms it with a one-time code texted to the mobile of the application (purpose ``handover``: a contract's code
   never confirms a handover) and a signature (:meth:`sign`).
3. The contract service makes the record (the dated schedule: rent k k−1 or k months after that day, the amounts of
   the contract's 附件一), signs it as it signs contracts, keeps it under Object Lock until 5 years after the lease's
   end and logs its hash in the evidence log; once per contract, so a retry after a lost answer gets the same record.
4. The record signed, the term starts on its day (bff/payments/settlement.py ``hand_over``): the row turns
   ``signed`` and the lease ``delivered`` in one transaction.

A crash between 3 and 4 leaves the record at the contract service and the lease ready for delivery: the customer's
next press of 确认 (their verified code stands for 10 minutes), or the dealer's, gets the same record back and
starts the term on its day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC
from datetime import date
from datetime import datetime
from typing import Any

from bff.applications.contracts import ContractDispatch
from bff.applications.contracts import press
from bff.applications.contracts import same_press
from bff.applications.services import Actor
from bff.applications.services import NotAllowed
from bff.payments.common import record_audit
from bff.payments.common import utc_now
from bff.payments.machine import term_end
from bff.payments.settlement import SettlementService
from infra.applications import Application
from infra.audit import SqlAuditLog
from infra.clients.http import ServiceRefused
from infra.handovers import PREPARED
from infra.handovers import SIGNED
from infra.handovers import Handover
from infra.handovers import SqlHandovers
from infra.servicing import lease_plan
from plans.handover import HANDOVER_ITEMS
from plans.handover import MAX_KEYS
from plans.handover import MAX_ODOMETER_KM
from plans.handover import printable

log = logging.getLogger(__name__)


class HandoverService:
    def __init__(self, store: SqlHandovers, settlement: SettlementService, contracts: ContractDispatch,
                 audit: SqlAuditLog | None = None, clock: Callable[[], datetime] = utc_now) -> None:
        self.store, self.settlement, self.contracts, self.audit, self.clock = store, settlement, contracts, audit, clock

    def get(self, app: Application) -> Handover | None:
        return self.store.get(app.id)

    def prepare(self, actor: Actor, app: Application, *, odometer_km: int, keys: int, items: tuple[str, ...],
                note: str, handed_over_by: str) -> Handover:
        """The dealer records what is handed over (bounds checked by the form, again here); ``handed_over_by``:
        the staff member's name and dealer as the record states them."""
        self.settlement.check_deliverable(app)
        if not app.contract_id:
            raise NotAllowed("no_contract", "合同尚未签署，不能交车", "The contract is not signed: no handover yet")
        if not (0 <= odometer_km <= MAX_ODOMETER_KM and 1 <= keys <= MAX_KEYS and len(set(items)) == len(items)
                and set(items) <= set(HANDOVER_ITEMS) and printable(note) and printable(handed_over_by)):
            raise NotAllowed("invalid", "交接内容有误", "The handover details are not valid")
        prepared = self.store.prepare(app.id, dealer_id=app.dealer_id, odometer_km=odometer_km, keys=keys,
                                      items=items, note=note.strip()[:500], actor_id=actor.id,
                                      actor_label=" ".join(handed_over_by.split())[:64] or actor.label[:64],
                                      now=self.clock())
        if prepared is None:
            raise NotAllowed("signed", "交接确认书已签署", "The handover record is already signed")
        record_audit(self.audit, "lease.handover_prepared", actor, app.dealer_id, app.id, {
            "odometer_km": odometer_km, "keys": keys, "items": list(items)})
        return prepared

    def send_code(self, app: Application) -> None:
        """The one-time code that confirms the customer signs the record (to the application's mobile)."""
        self._prepared(app)
        self.contracts.send_code(app, "handover")

    def check_code(self, app: Application, code: str) -> str | None:
        return self.contracts.check_code(app, code, "handover")

    def refuse(self, actor: Actor, app: Application, reason: str) -> Handover:
        """The customer refuses the vehicle as recorded (Civil Code art. 740); the dealer sees the reason, on the lease
        page, their work page, the pipeline and the application's history (infra/handovers.py refuse)."""
        self._prepared(app)
        refused = self.store.refuse(app.id, reason.strip()[:500], self.clock(), actor_kind=actor.kind,
                                    actor_id=actor.id)
        if refused is None:
            raise NotAllowed("wrong_state", "没有待确认的交接记录", "There is no handover waiting for confirmation")
        # the person's own words stay on the record (the dealer reads them there), not in the audit log
        record_audit(self.audit, "lease.handover_refused", actor, app.dealer_id, app.id,
                     {"reason_chars": len(reason.strip()[:500])})
        return refused

    def sign(self, actor: Actor, app: Application, code_id: str, signature_png: bytes, read: str) -> Handover:
        """The customer signs the record they read (``read``: its :func:`version`, from the page they confirmed on:
        a record the dealer changed since is not signed — the customer reads it again); the contract service makes,
        signs and logs it (raises ServiceUnavailable, retried by pressing again; ServiceRefused with its field
        errors), then the term starts on its day. One confirmation of a lease at a time, by a committed claim
        (ContractDispatch.claim), never a row lock held during the service call (issue 17 §1): a double tap's
        second request waits for the first, then gets the signed record; another code or drawing is refused."""
        token = self.contracts.claim(app.id, "handover", press(code_id, signature_png),
                                     lambda _: self._is_signed(app.id))
        if token is None:
            return self._signed_by(app.id, code_id, signature_png)
        try:
            return self._sign(actor, app, code_id, signature_png, read)
        finally:
            self.contracts.repo.release_signing(app.id, "handover", token)

    def _is_signed(self, application_id: str) -> bool:
        handover = self.store.get(application_id)
        return handover is not None and handover.status == SIGNED

    def _signed_by(self, application_id: str, code_id: str, signature_png: bytes) -> Handover:
        """The record signed by this very press (a double tap's second request), else refused (409)."""
        handover = self.store.get(application_id)
        if handover is not None and handover.status == SIGNED and same_press(handover.record, code_id, signature_png):
            return handover
        raise NotAllowed("signed", "交接确认书已签署", "The handover record is already signed")

    def _sign(self, actor: Actor, app: Application, code_id: str, signature_png: bytes, read: str) -> Handover:
        if self._is_signed(app.id):
            return self._signed_by(app.id, code_id, signature_png)
        handover = self._prepared(app)
        if read != version(handover):
            raise NotAllowed("changed", "交接记录刚被修改，请重新核对后再签署",
                             "The handover record was changed just now: read it again before you sign")
        verified = self.contracts.verified(app, code_id, "handover")
        if verified is None:
            raise NotAllowed("identity", "请先通过短信验证码确认身份", "Confirm your identity with the text code first")
        assert app.contract_id
        record = self.contracts.client.hand_over(app.contract_id, {
            "delivered_on": self.settlement.today().isoformat(), "odometer_km": handover.odometer_km,
            "keys": handover.keys, "items": list(handover.items), "note": handover.note,
            "handed_over_by": handover.prepared_by_label[:64], **self._vehicle_name(app),
            **self.contracts.signer(app, code_id, verified, signature_png)})
        starts_on, ends_on = _record_dates(record, int(app.plan["quote"]["term"]))
        with self.settlement.repo.db.transaction():  # the record and the term it starts, together
            self.store.mark_signed(app.id, {**record, "press": press(code_id, signature_png)}, starts_on, self.clock())
            self.settlement.hand_over(actor, app, starts_on=starts_on, ends_on=ends_on, record=record,
                                      handed_over_by=(handover.prepared_by, handover.prepared_by_label))
        signed = self.store.get(app.id)
        assert signed is not None
        return signed

    def _vehicle_name(self, app: Application) -> dict[str, str]:
        """The car as the record names it (品牌及车型): the catalogue's Chinese name (比亚迪 汉EV), the record being in
        Chinese; nothing (the contract's make and model) for a car the catalogue no longer has."""
        vehicle = self.contracts.apps.plans.catalogue.get(app.vehicle_id)
        return {"vehicle_name": vehicle.name_zh[:100]} if vehicle is not None else {}

    def _prepared(self, app: Application) -> Handover:
        self.settlement.check_deliverable(app)
        handover = self.store.get(app.id)
        if handover is None or handover.status != PREPARED:
            raise NotAllowed("not_prepared", "经销商尚未填写交接记录", "The dealer has not recorded the handover yet")
        return handover


def version(handover: Handover) -> str:
    """Which recording of the handover a page showed: the moment the dealer last recorded it."""
    return handover.prepared_at.astimezone(UTC).isoformat()


def _record_dates(record: dict[str, Any], months: int) -> tuple[date, date]:
    """The record's commencement date and the term's end. Dated from the handover (the contract's commencement
    clause), the end is checked against our own term arithmetic: the lease must not run on two calendars. Dated by
    a contract generated before that clause, its own end stands (after the start). The lease in force the record
    starts must be readable from it (its servicing terms and instalments: infra/servicing.py), before anything is
    recorded."""
    try:
        lease_plan(record)
    except ValueError as exc:
        log.error("handover record %s: %s", record.get("id"), exc)
        raise ServiceRefused(502, {"detail": f"the handover record does not state the lease in force: {exc}"}
                             ) from None
    try:
        starts_on, ends_on = date.fromisoformat(str(record["starts_on"])), date.fromisoformat(str(record["ends_on"]))
    except (KeyError, ValueError):
        raise ServiceRefused(502, {"detail": "the handover record has no readable dates"}) from None
    if record.get("dated_from") == "contract":
        if ends_on <= starts_on:
            raise ServiceRefused(502, {"detail": "the contract's term ends before the handover"})
        return starts_on, ends_on
    if term_end(starts_on, months) != ends_on:
        log.error("handover record %s ends on %s; %s months from %s end on %s", record.get("id"), ends_on, months,
                  starts_on, term_end(starts_on, months))
        raise ServiceRefused(502, {"detail": "the handover record's term does not match the lease's"})
    return starts_on, ends_on
