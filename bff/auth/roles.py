"""Who may do what: the roles matrix, in one place.

Dealer roles (``dealer_admin``, ``sales``) belong to one dealer (their tenant) and see only its rows;
lessor roles see every dealer, each only what its job needs.
"""

from __future__ import annotations

from infra.accounts import DEALER_ROLES
from infra.accounts import LESSOR_ROLES
from infra.accounts import Staff

ALL_STAFF = DEALER_ROLES + LESSOR_ROLES

#: permission → roles holding it
MATRIX: dict[str, tuple[str, ...]] = {
    "account.view": ALL_STAFF,
    "staff.view": ("dealer_admin", "ops_admin"),
    "staff.manage": ("dealer_admin", "ops_admin"),
    "audit.read": ("auditor",),
    # the evidence log's clear entries of any application, as proof bundles (each download audit-logged); the
    # customer and the staff who see an application get its own through the application (bff/evidence)
    "evidence.audit": ("auditor",),
    "invitations.manage": DEALER_ROLES,
    "dealers.manage": ("ops_admin",),
    # credit applications: the dealer's staff run them; the lessor's risk and ops staff follow them
    "applications.view": DEALER_ROLES + ("risk_officer_t1", "risk_officer_t2", "ops_admin"),
    "applications.edit": DEALER_ROLES,
    # KYC cases under review: counter verification by the dealer's admin (not the salesperson who sold:
    # four eyes), face-check reviews by the lessor's risk officers
    "kyc.review": ("dealer_admin", "risk_officer_t1", "risk_officer_t2"),
    # full ID / mobile numbers and the KYC images (each view audit-logged)
    "pii.unmask": ("dealer_admin", "risk_officer_t1", "risk_officer_t2"),
    # the risk service's review queue (tier 2 cases need a risk_officer_t2: the risk service enforces it)
    "reviews.work": ("risk_officer_t1", "risk_officer_t2"),
    # refunds and the 免押 holds' capture or release, closing by hand the term of a lease not serviced here
    # (租期届满结算; a serviced lease ends by its end-of-term choice), retrying a dealer's refused share (分账),
    # reconciling with Stripe: the lessor's operations staff
    "payments.manage": ("ops_admin",),
    # the payments list across applications (/payments): lessor ops for every dealer; a dealer's admin for the
    # dealer's own (its down-payment shares, its leases due for closing), never another dealer's
    "payments.view": ("dealer_admin", "ops_admin"),
    # the vehicle's handover to the customer (交车), which starts the lease's term: the dealer's staff
    "leases.deliver": DEALER_ROLES,
    # a lease in force, read-only (/leases/<id>: its schedule, arrears, a settlement quote): the dealer's staff (a
    # salesperson: their own applications'), the lessor's ops; its lessee sees their own (bff/servicing/lease_views.py)
    "leases.view": DEALER_ROLES + ("ops_admin",),
    # recording that the contract's key terms were explained to the customer before the signature (issue 16 §7):
    # the dealer's staff who sell the lease
    "contracts.explain": DEALER_ROLES,
    # the job queue (/ops/jobs): what waits, runs and failed, retry and cancel (audited): the lessor's ops
    "jobs.manage": ("ops_admin",),
    # the collections queue (/servicing/collections, issue 18 §4): leases in arrears, contacts' outcomes, notes and
    # promises to pay; the lessor's ops for every dealer, a dealer's admin for the dealer's own customers
    "collections.work": ("dealer_admin", "ops_admin"),
    # the monthly credit reports (征信报送, /servicing/credit-reports, issue 18 §7): every dealer's customers, the
    # bureau's answers and the notices before an overdue report; the lessor's ops (a dealer's staff see none)
    "credit_reports.view": ("ops_admin",),
    # the mortgage-release desk (抵押解除, /servicing/releases, issue 18 §5): releasing the mortgage of a car whose
    # lease was settled early, and recording it; the dealer's staff for the dealer's own, the lessor's ops for every
    # dealer
    "releases.work": DEALER_ROLES + ("ops_admin",),
    # the people's requests about their personal information (PIPL arts. 44–50: see, copy, correct, delete, withdraw
    # a consent, explain), answered or refused with a reason by the lessor's ops, across dealers (/ops/privacy)
    "privacy.manage": ("ops_admin",),
    # making such a request, or withdrawing a consent: the customer alone, for themselves (CUSTOMER_MAY in
    # bff/applications/access.py); no staff role acts in their name
    "privacy.request": (),
    # e-invoices (数电发票, bff/servicing/invoices.py): a correction (red-letter and reissue) or a rejected request
    # asked again from the lease's page, and the list of the requests that need a look (/servicing/invoices): the
    # lessor's ops (whoever sees the lease sees its invoices)
    "invoices.manage": ("ops_admin",),
    # the books (issue 19 §4, /books): the reports (trial balance, income statement, ageing, VAT, dealer balances)
    # for the lessor's ops and its auditor; the month close asked for and approved by two different ops users
    "books.view": ("ops_admin", "auditor"),
    "books.close": ("ops_admin",),
    # a dealer's statement (分账对账单): the dealer's admin their own dealer's; the lessor's ops and auditor every one
    "books.statement": ("dealer_admin", "ops_admin", "auditor"),
}

#: lessor roles with a second factor (TOTP) required at sign-in
TOTP_REQUIRED = LESSOR_ROLES


def allowed(user: Staff, permission: str) -> bool:
    """True if ``user``'s role holds ``permission``."""
    return user.active and user.role in MATRIX.get(permission, ())


def tenant_of(user: Staff) -> str | None:
    """The dealer whose rows ``user`` may see: their own for dealer roles, None (all) for the lessor's."""
    return None if user.lessor_side else user.dealer_id


def can_see(user: Staff, dealer_id: str | None) -> bool:
    """Whether a row of ``dealer_id`` is within ``user``'s tenant (the check behind every 404)."""
    tenant = tenant_of(user)
    return tenant is None or tenant == dealer_id
