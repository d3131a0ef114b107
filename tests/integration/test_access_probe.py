"""The access probe: every route of the URL map, as every role and anonymously, with ids of the user's own
tenant and of another tenant. New routes are covered automatically; a route with a parameter the probe
cannot fill fails the test until ``SAMPLES`` learns it.

Expectations: a route guarded by ``@requires(permission)`` sends an anonymous visitor to sign in (401 under
/api), answers 403 to a role without the permission, and 404 — never the row — for another tenant's id.
Public routes answer everyone alike. No response is ever a 500.

Caching (PIPL): no response may be kept by a browser or a proxy (``Cache-Control: no-store``) except the public
static assets in ``PUBLIC_ASSETS``, the same bytes for everyone; the walk checks every response, as every role,
anonymously and as an invited customer with an application of their own.
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
from infra.servicing import SqlServicing
from tests.common.leases import in_servicing
from tests.common.leases import open_lease_for
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db
ROLES = [role for _, _, role, _ in PEOPLE]
EMAIL = {role: email for email, _, role, dealer in PEOPLE if dealer in (None, "pudong")}
SKIP = {"static"}  # files, not views
#: routes that end the probing user's every session: probed last, after which the probe signs in again
SESSION_ENDING = ("auth.sign_out_everywhere",)
#: routes for the applicant alone (their documents on request): staff are refused even on their own dealer's
CUSTOMER_ONLY = {"documents.mine", "documents.upload", "documents.remove", "documents.submit", "documents.my_page",
                 "autopay.change"}  # the customer's own mandate for automatic collection (staff only see it)

#: the only responses a cache may keep: files the same for everyone, without personal data (the catalogue's
#: vehicle pictures, the PWA's shell); every other response, error pages included, is ``no-store``
PUBLIC_ASSETS = {"static", "pwa.service_worker", "pwa.manifest", "plans.vehicle_art"}


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
    """Parameter values: 'own' is in the Pudong dealer (the probe's dealer users), 'other' in Xihu. Each lease has
    what the routes of a lease in force name (tests/common/leases.py ``in_servicing``): a settlement quote, a partial
    prepayment, a servicing document, its mortgage release and the lessee's return chosen, so that another tenant's
    404 comes from scoping, not from a row no one has."""
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
                                   plan_code=None, nonce_hash="1" * 64, expires_at=later).id
    group = accounts.dealer(pudong).group_id  # the demo dealers share one group (no issuer of its own)
    own_app, own_check, own_doc = _application(app, "sales.pudong@demo.leaseline.cn")
    case = _review_case(risk_server)
    other_app, other_check, other_doc = _application(app, "sales.xihu@demo.leaseline.cn")
    own_request, other_request = _privacy_request(app, own_app), _privacy_request(app, other_app)
    own_lease, other_lease = _lease(app, "sales.pudong@demo.leaseline.cn"), _lease(app, "sales.xihu@demo.leaseline.cn")
    own_servicing, other_servicing = in_servicing(app, own_lease), in_servicing(app, other_lease)
    docs, page = str(uuid.uuid4()), str(uuid.uuid4())  # a document request and page no one has
    return {"own": {"vehicle_id": "byd-han-ev", "user_id": own, "invitation_id": own_inv, "token": "x.y.z",
                    "dealer_id": pudong, "group_id": group, "application_id": own_app, "check_id": own_check,
                    "document_id": own_doc, "step": "customer", "field": "id_number", "case_id": case, "page": "1",
                    "payment_id": str(uuid.uuid4()), "action": "capture", "index": "1",
                    "job_id": "999999999", "request_id": own_request, "docs_id": docs, "page_id": page,
                    "lease_id": own_lease, **own_servicing, "period": "2026-04"},
            "other": {"vehicle_id": "byd-han-ev", "user_id": other, "invitation_id": other_inv, "token": "x.y.z",
                      "dealer_id": xihu, "group_id": group, "application_id": other_app, "check_id": other_check,
                      "document_id": other_doc, "step": "customer", "field": "id_number", "case_id": case, "page": "1",
                      "payment_id": str(uuid.uuid4()), "action": "capture", "index": "1",
                      "job_id": "999999999", "request_id": other_request, "docs_id": docs, "page_id": page,
                      "lease_id": other_lease, **other_servicing, "period": "2026-04"}}


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
    svc.applications.give_consent(actor, application, ["sensitive_pi", "credit_reporting", "face_recognition"])
    check = svc.applications.repo.add_check(application.id, "id_card")
    svc.applications.repo.update_check(check.id, state="done", outcome="refused", detail={"problems": []})
    doc = svc.applications.repo.add_document(application.id, kind="id_front", object_key=f"probe/{application.id}.jpg",
                                             sha256="0" * 64, size=1, content_type="image/jpeg", biometric=False)
    return application.id, check.id, doc.id


def _privacy_request(app: Any, application_id: str) -> str:
    """An open request about the application's personal information (ops answer it: /ops/privacy)."""
    from bff.privacy.services import due_from
    from infra.applications import Scope

    svc = app.extensions["leaseline"]
    dealer_id = svc.applications.repo.get(application_id, Scope()).dealer_id
    now = utcnow()
    return str(svc.privacy.store.add(application_id=application_id, dealer_id=dealer_id, kind="access",
                                     detail="probe", received_at=now, due_at=due_from(now)).id)


def _lease(app: Any, owner_email: str) -> str:
    """A lease in force on an application of its own (handed over: tests/common/leases.py), so that the samples'
    applications keep their draft status."""
    application_id = _application(app, owner_email)[0]
    business_date = SqlServicing(app.extensions["leaseline"].db).business_date()
    return open_lease_for(app, application_id, business_date - timedelta(days=40))


def routes(app: Any) -> list[tuple[Rule, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule, method))
    return sorted(found, key=lambda route: route[0].endpoint in SESSION_ENDING)  # stable: the rest keep their order


#: parameters whose sample depends on the route: a lease's servicing document is not the application's document that
#: ``document_id`` names elsewhere
RENAMED = {"lease_documents.document": {"document_id": "lease_document_id"}}


def build(rule: Rule, values: dict[str, str]) -> str:
    values = {**values, **{arg: values[name] for arg, name in RENAMED.get(rule.endpoint, {}).items()}}
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


#: pages only an applicant opens (from a text message's link): a signed-out visitor signs in as a customer (我的租赁)
CUSTOMER_SIGN_IN = ("documents.mine", "documents.my_page", "lease_page.lease", "rent_pay.page", "rent_pay.create",
                    "rent_pay.returned", "rent_pay.authenticate", "settle.request_quote", "settle.show", "settle.pay",
                    "settle.returned", "settle.confirm", "prepay.form", "prepay.offer", "prepay.show", "prepay.pay",
                    "prepay.returned", "prepay.authenticate", "lease_documents.document", "end_of_term.page",
                    "end_of_term.choose", "end_of_term.refinance_again", "autopay.page", "invoices.document")
#: the only views without a ``permission`` attribute, each deciding for itself who it answers: public pages and the
#: JSON catalogue, signing in and out, the customer's invitation and 我的租赁 (by their code), the account set-up link,
#: Stripe's webhook (its signature), the public verification of a contract. The walk above checks no role or tenant
#: on these: a new view must carry a guard with a ``permission`` (bff/auth/session.py ``requires``,
#: bff/applications/access.py ``requires_actor``, bff/servicing/lease_views.py ``lessee_or_staff``…) or be added
#: here, where it is reviewed.
UNGUARDED = {
    "api.create_quote", "api.get_vehicle", "api.list_vehicles", "api.openapi", "api.search_plans",
    "auth.login", "auth.login_oidc", "auth.login_oidc_group", "auth.login_post", "auth.logout", "auth.oidc_callback",
    "auth.second_factor", "auth.second_factor_post", "auth.totp_enrol", "auth.totp_enrol_post",
    "invitations.customer", "invitations.customer_code", "invitations.customer_verify", "invitations.send_code",
    "invitations.verify", "invitations.returning.check_code", "invitations.returning.code",
    "invitations.returning.mine", "invitations.returning.open_application", "invitations.returning.send_code",
    "invitations.returning.sign_in", "payments.stripe_webhook", "plans.budget", "plans.builder", "plans.vehicle_art",
    "plans.vehicles", "pwa.healthz", "pwa.home", "pwa.manifest", "pwa.offline", "pwa.service_worker",
    "pwa.set_locale", "staff.account_setup", "verify.check", "verify.index"}


def test_every_view_carries_a_permission_or_is_known_public(app: Any) -> None:
    """A view without a ``permission`` attribute escapes the walk's role and tenant checks (it is only checked for no
    500 and no-store): each is on :data:`UNGUARDED`, and every name there is still a view without one."""
    bare = {endpoint for endpoint, view in app.view_functions.items()
            if endpoint not in SKIP and getattr(view, "permission", None) is None}
    assert bare - UNGUARDED == set(), "views without a permission: guard them, or add them to UNGUARDED"
    assert UNGUARDED - bare == set(), "UNGUARDED names views that are guarded now (or gone): remove them"


#: what staff who may see the sample lease get on its rows of a lease in force (the probe's POST is the empty form):
#: another dealer's staff get 404 on each, as on every route with an id
IN_SERVICING = {
    "settle.show": 200, "settle.pay": 400,  # reached the form: the page's one-time token is missing
    "settle.confirm": 409,  # the quote leaves something to pay: nothing to confirm
    "settle.returned": 404, "prepay.returned": 404, "prepay.authenticate": 404,  # no payment attempt named
    "prepay.show": 200, "prepay.pay": 400, "releases.release": 200,
    "lease_documents.document": 409,  # the document is being made (found: a state, not a missing page)
    "releases.record": 422,  # the empty form: no day, office or reference
    "end_of_term.inspection": 200, "end_of_term.inspect": 409,  # the term ends in months: too early to inspect
}


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
                assert_not_stored(rule.endpoint, response, context)
                if permission is None:
                    continue
                protected_seen.add(rule.endpoint)
                if who is None:
                    if path.startswith("/api/"):
                        assert response.status_code == 401, context
                    elif rule.endpoint in CUSTOMER_SIGN_IN:  # the customer's own pages: the customer's sign-in
                        assert response.status_code == 302 and "/mine/sign-in" in response.headers["Location"], context
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
                elif rule.endpoint == "applications.card_field":
                    # the sample's card photo has a row but no object (nor bucket) in storage: nothing to cut
                    assert response.status_code == 404, context
                elif rule.endpoint in CUSTOMER_ONLY:
                    # the applicant's own documents page: staff see the pages on the review case instead
                    assert response.status_code == 403, context
                elif rule.endpoint == "documents.officer_page":
                    # the sample case's application is the risk service's own, not the BFF's: it has no pages
                    assert response.status_code == 404, context
                elif rule.endpoint == "invitations.qr":
                    # the QR exists only on the device that created the invitation (the link is not stored)
                    assert response.status_code == 404, context
                elif rule.endpoint == "rent_pay.create":
                    # the empty form: without the page's one-time token (an old page) nothing is charged
                    assert response.status_code == 400, context
                elif rule.endpoint in IN_SERVICING:
                    # the sample lease's own quote, prepayment, document, release and return: found
                    assert response.status_code == IN_SERVICING[rule.endpoint], context
                elif rule.endpoint in ("end_of_term.choose", "end_of_term.refinance_again"):
                    # staff read the end-of-term options; only the lessee chooses (and refinances)
                    assert response.status_code == 403, context
                elif rule.endpoint in ("rent_pay.returned", "rent_pay.authenticate"):
                    # no payment attempt of the lease named: not found
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
            "invitations.create", "auth.sign_out_everywhere", "dev.outbox", "privacy.page", "privacy.submit",
            "privacy.withdraw", "privacy.ops", "privacy.answer", "applications.contract_text",
            "applications.contract_text_original",
            "pwa.landing", "pwa.work", "applications.card_field", "applications.id_card_confirm",
            "id_card_side.check", "arrears.queue", "arrears.case", "arrears.record", "lease_page.lease",
            "rent_pay.page", "rent_pay.create", "rent_pay.returned", "rent_pay.authenticate", "autopay.page"} \
        <= protected_seen


def test_cross_tenant_deactivation_changes_nothing(app: Any, bff_server: Any,
                                                   sessions: dict[str | None, requests.Session]) -> None:
    from bff.auth.passwords import hash_secret

    accounts = app.extensions["leaseline"].accounts
    xihu = accounts.by_email("sales.xihu@demo.leaseline.cn")[0].dealer_id
    target = accounts.ensure_user("probe.xihu2@demo.leaseline.cn", "探针 C", "sales", xihu, hash_secret("x"), None, [])
    response = call(sessions["dealer_admin"], bff_server.url, "POST", f"/staff/{target}/deactivate")
    assert response.status_code == 404
    assert accounts.get(target).active


# -- caching -------------------------------------------------------------------------------------------------
def directives(response: requests.Response) -> set[str]:
    """The Cache-Control directives of ``response``, lower-cased, without their values."""
    return {d.strip().split("=", 1)[0].lower() for d in response.headers.get("Cache-Control", "").split(",")
            if d.strip()}


def assert_not_stored(endpoint: str, response: requests.Response, context: str) -> None:
    """No-store, unless it is a public asset actually served (an asset's error page is a page like any other)."""
    if endpoint in PUBLIC_ASSETS and response.status_code < 400:
        return
    assert "no-store" in directives(response), f"{context}: Cache-Control {response.headers.get('Cache-Control')!r}"


@pytest.fixture(scope="module")
def customer(app: Any, bff_server: Any, samples: dict[str, dict[str, str]]) -> Any:
    """An invited customer's session (mobile verified by the SMS code) and the probe's samples with their own
    application (consent given, a finished check and a document) in place of the staff-made one."""
    from tests.integration.test_applications import consent
    from tests.integration.test_applications import start
    from tests.integration.test_invitations import invite
    from tests.integration.test_invitations import latest_code
    from tests.integration.test_invitations import request_code
    from tests.integration.test_returning_customer import join

    base, mobile = bff_server.url, "13900000009"
    with sign_in(base, EMAIL["sales"]) as sales:
        _, link = invite(base, sales, mobile)
    s = requests.Session()
    s.get(link, timeout=TIMEOUT)
    request_code(s, link)
    r = s.post(f"{link}/verify", data={"code": latest_code(app, mobile), "csrf_token": csrf(s, link)},
               timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    application_id = start(base, s)
    consent(base, s, application_id)
    repo = app.extensions["leaseline"].applications.repo
    check = repo.add_check(application_id, "id_card")
    repo.update_check(check.id, state="done", outcome="refused", detail={"problems": []})
    doc = repo.add_document(application_id, kind="id_front", object_key=f"probe/{application_id}.jpg",
                            sha256="0" * 64, size=1, content_type="image/jpeg", biometric=False)
    # a lease in force on another application of theirs, and another customer's lease, each with its quote,
    # prepayment, document, release and return chosen
    business_date = SqlServicing(app.extensions["leaseline"].db).business_date()
    lease_id = open_lease_for(app, start(base, s), business_date - timedelta(days=40))
    other, _ = join(base, app, "13900000019")
    with other:
        other_lease = open_lease_for(app, start(base, other), business_date - timedelta(days=40))
    theirs = in_servicing(app, other_lease)
    yield s, {**samples["own"], "application_id": application_id, "check_id": check.id, "document_id": doc.id,
              "lease_id": lease_id, **in_servicing(app, lease_id), "other_lease_id": other_lease,
              **{f"other_{name}": value for name, value in theirs.items()}}
    s.close()


#: what the customer gets on their own lease, for each route of a lease (the probe's POST is the empty form): every
#: one is 404 on another customer's lease (its own quote, prepayment and document)
OWN_LEASE = {("GET", "lease_page.lease"): 200, ("GET", "rent_pay.page"): 200,
             ("POST", "rent_pay.create"): 400,  # reached the form: the page's one-time token is missing
             ("GET", "rent_pay.returned"): 404, ("POST", "rent_pay.authenticate"): 404,  # no attempt named
             ("POST", "settle.request_quote"): 409,  # the return is chosen: settled at the term's end, not early
             ("GET", "settle.show"): 200, ("POST", "settle.pay"): 400,  # no one-time token
             ("GET", "settle.returned"): 404,  # no attempt named
             ("POST", "settle.confirm"): 409,  # the quote leaves something to pay
             ("GET", "prepay.form"): 200, ("POST", "prepay.offer"): 422,  # no amount
             ("GET", "prepay.show"): 200, ("POST", "prepay.pay"): 400,  # no one-time token
             ("GET", "prepay.returned"): 404, ("POST", "prepay.authenticate"): 404,  # no attempt named
             ("GET", "lease_documents.document"): 409,  # being made
             ("GET", "end_of_term.page"): 200, ("POST", "end_of_term.choose"): 422,  # no option
             ("POST", "end_of_term.refinance_again"): 422}  # no term
#: the blueprints of a lease in force the customer reaches (their pages are in CUSTOMER_SIGN_IN)
LEASE_BLUEPRINTS = ("lease_page", "rent_pay", "settle", "prepay", "lease_documents", "end_of_term")


def test_a_customer_opens_and_pays_their_own_lease_only(app: Any, bff_server: Any, customer: Any) -> None:
    s, values = customer
    theirs = {**values, **{name[6:]: value for name, value in values.items() if name.startswith("other_")}}
    seen = {}
    for rule, method in routes(app):
        if rule.endpoint.split(".")[0] not in LEASE_BLUEPRINTS or rule.endpoint not in CUSTOMER_SIGN_IN:
            continue
        own = call(s, bff_server.url, method, build(rule, values))
        other = call(s, bff_server.url, method, build(rule, theirs))  # another customer's lease, quote, document…
        seen[(method, rule.endpoint)] = (own.status_code, other.status_code)
    assert seen == {route: (status, 404) for route, status in OWN_LEASE.items()}


def test_no_response_to_an_invited_customer_is_stored(app: Any, bff_server: Any, customer: Any) -> None:
    """Every route as the customer, on their own application: the pages show their ID and mobile numbers."""
    s, values = customer
    # their own application answers (the samples are theirs, not a sign-in redirect), as a page and as the
    # block htmx asks for: the fragment follows the same rule
    mine = s.get(f"{bff_server.url}/applications/{values['application_id']}", timeout=TIMEOUT, allow_redirects=False)
    assert mine.status_code == 200 and "no-store" in directives(mine)
    block = s.get(f"{bff_server.url}/applications/{values['application_id']}", headers={"HX-Request": "true"},
                  timeout=TIMEOUT, allow_redirects=False)
    assert block.status_code == 200 and "<html" not in block.text and "no-store" in directives(block)
    checked, skipped = 0, 0
    for rule, method in routes(app):
        if rule.endpoint in ("auth.logout", "pwa.set_locale", "auth.login_post", "auth.second_factor_post",
                             "auth.totp_enrol_post"):
            skipped += 1  # they would end or replace the customer's session
            continue
        path = build(rule, values)
        response = call(s, bff_server.url, method, path)
        checked += 1
        context = f"{method} {path} as the customer"
        assert response.status_code < 500, context
        assert_not_stored(rule.endpoint, response, context)
    assert checked == len(routes(app)) - skipped > 50
    # still signed in at the end: every response above was to the customer's session
    assert s.get(f"{bff_server.url}/applications/{values['application_id']}", timeout=TIMEOUT,
                 allow_redirects=False).status_code == 200


@pytest.mark.parametrize("path", ["/static/css/app.css", "/sw.js", "/manifest.webmanifest",
                                  "/vehicles/byd-han-ev/art.svg"])
def test_public_assets_may_be_cached_but_never_by_a_proxy_with_a_session_cookie(
        bff_server: Any, sessions: dict[str | None, requests.Session], path: str) -> None:
    """Public assets keep their caching. Flask refreshes a signed-in visitor's session cookie on every response,
    assets included; a shared cache keeping that response (``public``) would hand the cookie to the next visitor,
    so with a session the asset is ``private`` (the browser's own cache only)."""
    anonymous = requests.get(bff_server.url + path, timeout=TIMEOUT)
    assert anonymous.status_code == 200 and "no-store" not in directives(anonymous), path
    signed_in = sessions["sales"].get(bff_server.url + path, timeout=TIMEOUT)
    assert signed_in.status_code == 200 and "no-store" not in directives(signed_in), path
    if "set-cookie" in {k.lower() for k in signed_in.headers}:
        assert "public" not in directives(signed_in), f"{path}: {signed_in.headers.get('Cache-Control')}"


def test_the_app_opts_in_exactly_the_public_assets(app: Any) -> None:
    """A view that opts in to caching (bff.caching.public_asset) must be added here too, where it is reviewed."""
    from bff.caching import public_assets

    assert public_assets(app) == PUBLIC_ASSETS


def test_my_leases_open_only_the_customers_own_applications(bff_server: Any, customer: Any,
                                                             samples: dict[str, dict[str, str]]) -> None:
    """我的租赁 binds this device to an application only if it is the signed-in customer's own (started through
    their invitation, by their confirmed number): another customer's, or a staff-made one, is not found."""
    s, values = customer
    base = bff_server.url
    for tenant in ("own", "other"):
        response = s.post(f"{base}/mine/open/{samples[tenant]['application_id']}", timeout=TIMEOUT,
                          data={"csrf_token": csrf(s, f"{base}/mine")}, allow_redirects=False)
        assert response.status_code == 404, tenant
    mine = s.post(f"{base}/mine/open/{values['application_id']}", data={"csrf_token": csrf(s, f"{base}/mine")},
                  timeout=TIMEOUT, allow_redirects=False)
    assert mine.status_code == 303 and mine.headers["Location"].endswith(f"/applications/{values['application_id']}")
    with requests.Session() as anonymous:
        response = anonymous.post(f"{base}/mine/open/{values['application_id']}", allow_redirects=False,
                                  data={"csrf_token": csrf(anonymous, f"{base}/mine/sign-in")}, timeout=TIMEOUT)
        assert response.status_code == 303 and "/mine/sign-in" in response.headers["Location"]
