"""The access probe: every route of the URL map, as every role and anonymously, with ids of the user's own
tenant and of another tenant. New routes are covered automatically; a route with a parameter the probe
cannot fill fails the test until ``SAMPLES`` learns it.

Expectations: a route guarded by ``@requires(permission)`` sends an anonymous visitor to sign in (401 under
/api), answers 403 to a role without the permission, and 404 — never the row — for another tenant's id.
Public routes answer everyone alike. No response is ever a 500.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
import requests
from werkzeug.routing import Rule

from bff.auth.roles import MATRIX
from bff.demo import PEOPLE
from infra.db.models import utcnow
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db
ROLES = [role for _, _, role, _ in PEOPLE]
EMAIL = {role: email for email, _, role, dealer in PEOPLE if dealer in (None, "pudong")}
SKIP = {"static"}  # files, not views
#: routes that end the probing user's every session: probed last, after which the probe signs in again
SESSION_ENDING = ("auth.sign_out_everywhere",)


@pytest.fixture(scope="module")
def sessions(bff_server: Any) -> dict[str | None, requests.Session]:
    out: dict[str | None, requests.Session] = {None: requests.Session()}
    for role, email in EMAIL.items():
        out[role] = sign_in(bff_server.url, email)
    yield out  # type: ignore[misc]
    for s in out.values():
        s.close()


@pytest.fixture(scope="module")
def samples(app: Any, risk_server: Any) -> dict[str, dict[str, str]]:
    """Parameter values: 'own' is in the Pudong dealer (the probe's dealer users), 'other' in Xihu."""
    from bff.auth.passwords import hash_secret

    accounts = app.extensions["leaseline"].accounts
    pudong = accounts.by_email("sales.pudong@demo.leaseline.cn")[0].dealer_id
    xihu = accounts.by_email("sales.xihu@demo.leaseline.cn")[0].dealer_id
    # Targets of their own, so that a state change the probe makes (deactivation) hits no probing user.
    own = accounts.ensure_user("probe.pudong@demo.leaseline.cn", "探针 A", "sales", pudong, hash_secret("x"), None, [])
    other = accounts.ensure_user("probe.xihu@demo.leaseline.cn", "探针 B", "sales", xihu, hash_secret("x"), None, [])
    invitations = app.extensions["leaseline"].invitations_repo
    later = utcnow() + timedelta(hours=1)
    own_inv = invitations.create(dealer_id=pudong, created_by=own, mobile="13900000001", vehicle_id=None,
                                 plan_code=None, nonce_hash="0" * 64, expires_at=later).id
    other_inv = invitations.create(dealer_id=xihu, created_by=other, mobile="13900000002", vehicle_id=None,
                                   plan_code=None, nonce_hash="0" * 64, expires_at=later).id
    group = accounts.dealer(pudong).group_id  # the demo dealers share one group (no issuer of its own)
    own_app, own_check, own_doc = _application(app, "sales.pudong@demo.leaseline.cn")
    case = _review_case(risk_server)
    other_app, other_check, other_doc = _application(app, "sales.xihu@demo.leaseline.cn")
    return {"own": {"vehicle_id": "byd-han-ev", "user_id": own, "invitation_id": own_inv, "token": "x.y.z",
                    "dealer_id": pudong, "group_id": group, "application_id": own_app, "check_id": own_check,
                    "document_id": own_doc, "step": "customer", "field": "id_number", "case_id": case, "page": "1",
                    "payment_id": str(uuid.uuid4()), "action": "capture", "index": "1"},
            "other": {"vehicle_id": "byd-han-ev", "user_id": other, "invitation_id": other_inv, "token": "x.y.z",
                      "dealer_id": xihu, "group_id": group, "application_id": other_app, "check_id": other_check,
                      "document_id": other_doc, "step": "customer", "field": "id_number", "case_id": case, "page": "1",
                      "payment_id": str(uuid.uuid4()), "action": "capture", "index": "1"}}


def _review_case(risk_server: Any) -> str:
    """A case in the risk service's review queue (a thin-file persona is referred to tier 1)."""
    from tests.common.risk import snapshot

    response = requests.post(f"{risk_server.url}/api/v1/assessments", json=snapshot("thin_file"),
                             headers=risk_server.tokens.assess(), timeout=TIMEOUT)
    assert response.status_code == 201, response.text[:300]
    return str(response.json()["review"]["id"])


def _application(app: Any, owner_email: str) -> tuple[str, str, str]:
    """A draft application owned by ``owner_email`` with consent given, one finished check and one document."""
    from bff.applications.services import Actor
    from infra.applications import Scope

    svc = app.extensions["leaseline"]
    owner = svc.accounts.by_email(owner_email)[0]
    actor = Actor("staff", owner.id, owner.email, Scope(dealer_id=owner.dealer_id), dealer_id=owner.dealer_id,
                  owner_id=owner.id)
    application = svc.applications.start(actor, "byd-han-ev", "20-36-0-ctpl+damage+tpl_1m-D-f-a")
    svc.applications.give_consent(actor, application, ["sensitive_pi", "face_recognition"])
    check = svc.applications.repo.add_check(application.id, "id_card")
    svc.applications.repo.update_check(check.id, state="done", outcome="refused", detail={"problems": []})
    doc = svc.applications.repo.add_document(application.id, kind="id_front", object_key=f"probe/{application.id}.jpg",
                                             sha256="0" * 64, size=1, content_type="image/jpeg", biometric=False)
    return application.id, check.id, doc.id


def routes(app: Any) -> list[tuple[Rule, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule, method))
    return sorted(found, key=lambda route: route[0].endpoint in SESSION_ENDING)  # stable: the rest keep their order


def build(rule: Rule, values: dict[str, str]) -> str:
    missing = [arg for arg in rule.arguments if arg not in values]
    assert not missing, f"the probe cannot fill {missing} of {rule.rule}: add samples for it"
    path = rule.rule
    for arg in rule.arguments:
        path = re.sub(rf"<(?:[^:<>]+:)?{arg}>", values[arg], path)
    return path


def call(session: requests.Session, base: str, method: str, path: str) -> requests.Response:
    if method == "GET":
        return session.get(base + path, timeout=TIMEOUT, allow_redirects=False)
    token = csrf(session, f"{base}/login") if not path.startswith("/api/") else ""
    data = {"csrf_token": token}
    if path.startswith("/api/"):
        return session.post(base + path, json={}, timeout=TIMEOUT, allow_redirects=False)
    return session.post(base + path, data=data, timeout=TIMEOUT, allow_redirects=False)


def test_every_route_with_every_role_and_tenant(app: Any, bff_server: Any, sessions: dict[str | None, requests.Session],
                                                  samples: dict[str, dict[str, str]]) -> None:
    base = bff_server.url
    checked = 0
    protected_seen = set()
    for rule, method in routes(app):
        view = app.view_functions[rule.endpoint]
        permission = getattr(view, "permission", None)
        if rule.endpoint in ("auth.logout", "pwa.set_locale", "auth.login_post", "auth.second_factor_post"):
            continue  # they change the probe's own sessions; tests/integration/test_auth.py covers them
        for who, session in sessions.items():
            for tenant in ("own", "other") if rule.arguments else ("own",):
                path = build(rule, samples[tenant])
                response = call(session, base, method, path)
                checked += 1
                context = f"{method} {path} as {who or 'anonymous'} ({tenant})"
                assert response.status_code < 500, context
                if permission is None:
                    continue
                protected_seen.add(rule.endpoint)
                if who is None:
                    if path.startswith("/api/"):
                        assert response.status_code == 401, context
                    else:
                        assert response.status_code == 302 and "/login" in response.headers["Location"], context
                elif who not in MATRIX[permission]:
                    assert response.status_code == 403, context
                elif tenant == "other" and who in ("dealer_admin", "sales") and rule.arguments:
                    assert response.status_code == 404, context
                elif "invitation_id" in rule.arguments and who == "sales":
                    # a salesperson sees only invitations they made; the sample was made by another
                    assert response.status_code == 404, context
                elif "payment_id" in rule.arguments:
                    # the sample application is a draft, with no payments: the (made-up) payment is not found,
                    # the draft has nothing to pay, or the empty form is refused
                    assert response.status_code in (404, 409, 422), context
                elif "index" in rule.arguments:
                    # an evidence entry's bundle: entry 1 is not the sample draft's (it has none), nor may be there
                    assert response.status_code in (200, 404), context
                elif rule.endpoint == "invitations.qr":
                    # the QR exists only on the device that created the invitation (the link is not stored)
                    assert response.status_code == 404, context
                else:
                    # allowed: the page, a redirect after a change, or the empty form refused (422, 409)
                    assert response.status_code in (200, 303, 409, 422), context
                if rule.endpoint in SESSION_ENDING and who is not None:
                    assert call(session, base, "GET", "/account").status_code == 302, context  # really ended
    for who in [who for who in sessions if who is not None]:  # the probe's sessions were ended: sign in again
        sessions[who].close()
        sessions[who] = sign_in(base, EMAIL[who])
    assert checked > 100
    assert {"staff.staff_list", "staff.staff_detail", "staff.audit", "auth.account", "invitations.detail",
            "invitations.create", "auth.sign_out_everywhere", "dev.outbox"} <= protected_seen


def test_cross_tenant_deactivation_changes_nothing(app: Any, bff_server: Any,
                                                   sessions: dict[str | None, requests.Session]) -> None:
    from bff.auth.passwords import hash_secret

    accounts = app.extensions["leaseline"].accounts
    xihu = accounts.by_email("sales.xihu@demo.leaseline.cn")[0].dealer_id
    target = accounts.ensure_user("probe.xihu2@demo.leaseline.cn", "探针 C", "sales", xihu, hash_secret("x"), None, [])
    response = call(sessions["dealer_admin"], bff_server.url, "POST", f"/staff/{target}/deactivate")
    assert response.status_code == 404
    assert accounts.get(target).active
