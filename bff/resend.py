"""The resend countdown of every code screen (issue 17 §8): where the code went (masked), and how long until a new
one may be texted — the same minute the server keeps (an invitation's code: bff/invitations/services.py; a
contract's or a handover's: ContractDispatch.send_code), so the button the page disables for it
(pwa/static/js/countdown.js) is never refused when it comes back.

Each code screen includes ``pwa/templates/includes/_resend.html`` with a :class:`Resend` from one of the template
globals below (registered in bff/applications/views.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from infra.applications import Application
from infra.db.models import utcnow
from kyc.masking import mask_mobile

#: no new code before a minute has passed since the last one (the platform's own limit is 1 per 30 s per number)
RESEND_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Resend:
    """A code screen's send form: where it posts, the masked number, when the last code went and how long it holds."""

    action: str
    masked: str
    sent_at: datetime | None
    valid: timedelta
    now: datetime

    @property
    def sent(self) -> bool:
        """A code was texted and may still be used: the page says where it went."""
        return self.sent_at is not None and self.now - self.sent_at < self.valid

    @property
    def wait(self) -> int:
        """Whole seconds until a new code may be sent (0: now)."""
        if self.sent_at is None:
            return 0
        left = (self.sent_at + RESEND_AFTER - self.now).total_seconds()
        return max(0, int(left + 0.999))


def for_application(app: Application, purpose: str, action: str) -> Resend:
    """The send form of an application's code for ``purpose`` (``contract``: signing; ``handover``)."""
    from bff.applications.contracts import CODE_TTL
    from bff.services import services

    sent_at = services().applications.repo.last_code_at(app.id, purpose)
    return Resend(action, app.mobile_masked, sent_at, CODE_TTL, utcnow())


def for_invitation(token: str, action: str) -> Resend:
    """The send form of an invitation's code (the customer confirming their number from the link)."""
    from bff.invitations.services import CODE_TTL
    from bff.services import services

    inv = services().invitations.identify(token)
    return Resend(action, mask_mobile(inv.mobile) if inv else "", inv.code_sent_at if inv else None, CODE_TTL,
                  utcnow())
