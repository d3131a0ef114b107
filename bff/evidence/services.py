"""Who may have which evidence entry's opening, and the audit record of each disclosure.

An opening (the clear entry and its salt) proves what was logged about a person, so it goes only to:

* the customer, for their own application: all of it (PIPL art. 45, a copy of their personal information;
  art. 24, the automated decision about them);
* the lessor's staff who follow applications (risk officers, ops) and the auditor: all of it;
* the dealer's staff, within their dealer (and a salesperson, their own applications): all but the risk
  decision, whose score and model are the lessor's credit assessment (they see the outcome and its reasons
  on the application already): minimum necessary, PIPL art. 6.

An entry of the first log (public in clear until the log held commitments) can carry a second proof, of its
place in that log (``previous_log``). Its audit path holds the unsalted leaf hashes of other people's entries,
against which a guess ("application X was approved") could be checked, so only the lessor's staff and the
auditor get it (:func:`may_have_first_log_proof`); the customer and the dealer's staff get the new log's proof,
which shows the same entry without it.

Every bundle handed out is one ``evidence.disclosed`` audit event (who, which entry, of which application).
"""

from __future__ import annotations

from typing import Any

from infra.accounts import DEALER_ROLES
from infra.accounts import LESSOR_ROLES
from infra.clients.contract import ContractClient

#: entry kinds the dealer's staff do not get
LESSOR_ONLY = frozenset({"risk_decision"})


class NotEntitled(Exception):
    """The entry exists but is not for this person (the view answers 404: it does not say it exists)."""


def may_open(role: str, kind: str) -> bool:
    """Whether someone of ``role`` (``customer`` for the applicant) may have an entry of ``kind``'s opening."""
    return not (role in DEALER_ROLES and kind in LESSOR_ONLY)


def may_have_first_log_proof(role: str) -> bool:
    """Whether someone of ``role`` gets an old entry's proof in the first log: risk officers, ops and the auditor."""
    return role in LESSOR_ROLES


def entries(client: ContractClient, application_id: str, role: str) -> list[dict[str, Any]]:
    """The application's evidence entries (``index``, ``kind``, ``at``), each with ``may_open`` for ``role``."""
    return [{**e, "may_open": may_open(role, str(e.get("kind")))} for e in client.evidence(application_id)]


def bundle(client: ContractClient, audit: Any, index: int, *, application_id: str | None, role: str,
           actor_id: str | None, actor_label: str, dealer_id: str | None, ip: str, user_agent: str) -> dict[str, Any]:
    """Entry ``index``'s proof bundle, for someone of ``role`` looking at ``application_id`` (None: the auditor,
    any application), audit-logged; :class:`NotEntitled` when the entry is another application's or a kind the
    role does not get."""
    answer = client.opening(index, previous_log=may_have_first_log_proof(role))
    subject, kind = str(answer.get("subject")), str(answer.get("kind"))
    if (application_id is not None and subject != application_id) or not may_open(role, kind):
        raise NotEntitled(index)
    found = answer.get("bundle")
    if not isinstance(found, dict):
        raise NotEntitled(index)
    audit.append("evidence.disclosed", "success", actor_id=actor_id, actor_label=actor_label, dealer_id=dealer_id,
                 target=subject, ip=ip, user_agent=user_agent, details={
                     "index": index, "kind": kind, "role": role, "first_log": found.get("previous_log") is not None})
    return found
