"""Every combination of a vehicle's plan options, priced and checked at once.

The matrix (down-payment steps × terms × insurance packs × residuals × financed-or-upfront extras ×
deposit-or-deposit-free) is evaluated with numpy, and agrees with :func:`plans.quote.quote` to the fen:

- amounts are int64 fen; the amortisation runs in exact integer arithmetic (rates have at most 4 decimals,
  so the interest R·balance/12 is a fraction with denominator 120,000 rounded half-up exactly);
- the level rent is solved in float64 and rounded half-up; a value within 1e-6 fen of a half-fen tie is
  recomputed with the exact Decimal formula of :mod:`plans.quote`;
- the APR is the IRR solved by vectorised Newton steps on the closed-form NPV; an APR within 1e-4 of a
  rounding tie at its 6th decimal, or a row that did not converge, is recomputed with the scalar solver.

``tests/unit/test_generator.py`` checks every combination of every demo vehicle against the exact quote.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from plans import apr as apr_module
from plans.money import fen
from plans.policy import Policy
from plans.product import PlanChoice
from plans.product import Product
from plans.product import Vehicle
from plans.quote import APR_FLOOR_MARGIN
from plans.quote import level_rent

ScalarT = TypeVar("ScalarT", bound=np.generic)
SortKey = Literal["rent", "total", "apr"]
SORT_KEYS: tuple[SortKey, ...] = ("rent", "total", "apr")
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Constraints:
    """Optional limits on the plans wanted."""

    budget: Decimal | None = None  # the highest monthly rent
    max_down: Decimal | None = None  # the highest down payment, CNY
    terms: tuple[int, ...] | None = None  # preferred terms only
    pack: str | None = None  # one insurance pack only
    deposit_free: bool | None = None  # only deposit-free (True) or only with deposit (False)


@dataclass(frozen=True)
class PlanSummary:
    """One generated plan: the choice and the headline figures (amounts in CNY to the fen)."""

    choice: PlanChoice
    pack: str
    down_payment: Decimal
    financed_amount: Decimal
    monthly_payment: Decimal
    last_payment: Decimal
    residual: Decimal
    deposit: Decimal
    apr: Decimal
    total_payable: Decimal
    total_cost_of_credit: Decimal
    due_at_signing: Decimal


@dataclass(frozen=True)
class Matrix:
    """The evaluated matrix of one vehicle; arrays are flat, one entry per combination."""

    vehicle: Vehicle
    product: Product
    policy: Policy
    down_idx: I64
    term_idx: I64
    pack_idx: I64
    residual_idx: I64
    financed: npt.NDArray[np.bool_]
    deposit_free: npt.NDArray[np.bool_]
    down: I64
    principal: I64
    residual: I64
    deposit: I64
    rent: I64
    last: I64
    apr_micro: I64  # nominal APR in millionths (0.075090 → 75090)
    total_payable: I64
    cost_of_credit: I64
    due_at_signing: I64
    valid: npt.NDArray[np.bool_]  # the inputs make sense (residual below principal)
    allowed: npt.NDArray[np.bool_]  # valid and compliant with the policy

    @property
    def size(self) -> int:
        return int(self.rent.size)

    def summary(self, i: int) -> PlanSummary:
        """The plan at flat index ``i``."""
        pack = list(self.product.packs)[int(self.pack_idx[i])]
        choice = PlanChoice(
            down_ratio=self.product.down_ratios[int(self.down_idx[i])],
            term=self.product.terms[int(self.term_idx[i])],
            insurance=self.product.packs[pack].coverages,
            residual_ratio=self.product.residual_ratios[int(self.residual_idx[i])],
            deposit_free=bool(self.deposit_free[i]),
            extras_financed=bool(self.financed[i]),
        )

        def yuan(a: I64) -> Decimal:
            return Decimal(int(a[i])).scaleb(-2)

        return PlanSummary(
            choice=choice,
            pack=pack,
            down_payment=yuan(self.down),
            financed_amount=yuan(self.principal),
            monthly_payment=yuan(self.rent),
            last_payment=yuan(self.last),
            residual=yuan(self.residual),
            deposit=yuan(self.deposit),
            apr=Decimal(int(self.apr_micro[i])).scaleb(-6),
            total_payable=yuan(self.total_payable),
            total_cost_of_credit=yuan(self.cost_of_credit),
            due_at_signing=yuan(self.due_at_signing),
        )


def _cents(value: Decimal) -> int:
    return int(fen(value).scaleb(2))


def evaluate_matrix(vehicle: Vehicle, product: Product, policy: Policy) -> Matrix:
    """Price and check every combination of ``product``'s options for ``vehicle``."""
    packs = list(product.packs.values())
    if list(product.terms) != sorted(product.terms):
        raise ValueError("the product's terms must be listed in ascending order")
    price = _cents(vehicle.price)
    down_c = np.array([_cents(r * vehicle.price) for r in product.down_ratios], dtype=np.int64)
    residual_c = np.array([_cents(r * vehicle.price) for r in product.residual_ratios], dtype=np.int64)
    fees_c = sum(_cents(f.for_vehicle(vehicle)) for f in product.fees)
    prem_c = np.array(
        [sum(_cents(product.coverages[c].premium(vehicle)) for c in p.coverages) for p in packs], dtype=np.int64
    )
    rates = [product.rate_for(vehicle, t) for t in product.terms]
    rate_bp = np.array([int(r.scaleb(4)) for r in rates], dtype=np.int64)
    terms = np.array(product.terms, dtype=np.int64)
    deposit_amount = _cents(product.deposit_ratio * vehicle.price)

    # Axes: term × down × pack × residual × financed, term first so that, with the terms in ascending order,
    # the rows still amortising at month k are one contiguous tail (see _last_payments). The schedule does
    # not depend on the deposit, which is added as a last axis below.
    shape = (len(terms), len(down_c), len(packs), len(residual_c), 2)
    ti, di, pi, ri, fi = (a.ravel() for a in np.indices(shape, dtype=np.int64))
    financed = fi.astype(bool)
    extras = fees_c + prem_c[pi]
    principal = price - down_c[di] + np.where(financed, extras, 0)
    residual = residual_c[ri]
    n = terms[ti]
    bp = rate_bp[ti]
    valid = (principal > 0) & (residual < principal)

    rent = _level_rents(principal, residual, n, bp, rates, ti, product, valid)
    last = _last_payments(principal, residual, n, bp, rent)

    # Deposit axis: 0 = with deposit, 1 = deposit-free.
    def twice(a: npt.NDArray[ScalarT]) -> npt.NDArray[ScalarT]:
        return np.concatenate([a, a])

    deposit_free = np.concatenate([np.zeros(di.size, bool), np.ones(di.size, bool)])
    di, ti, pi, ri, fi2, financed, principal, residual, n, bp, rent, last, valid, extras = (
        twice(a) for a in (di, ti, pi, ri, fi, financed, principal, residual, n, bp, rent, last, valid, extras)
    )
    deposit = np.where(deposit_free, 0, deposit_amount).astype(np.int64)
    down = down_c[di]
    upfront_extras = np.where(financed, 0, extras)
    flow0 = price - down + np.where(financed, prem_c[pi], 0) - np.where(financed, 0, fees_c) - deposit
    valid &= flow0 > 0  # net credit at signing, as plans.quote.check_principal demands
    purchase = _cents(product.end_of_term.purchase_price)  # 留购价, paid with the final rent at the term's end
    flow_end = deposit - residual - purchase
    apr_micro = _apr_micro(flow0, flow_end, rent, last, n, bp, valid)

    total_rents = rent * (n - 1) + last
    total_interest = total_rents + residual - principal
    total_payable = down + upfront_extras + total_rents + residual + purchase
    cost_of_credit = total_interest + fees_c + purchase
    due = down + upfront_extras + deposit  # arrears: no rent at signing

    allowed = valid & _compliant(vehicle, product, policy, ti, pi, ri, di, deposit_free, apr_micro)
    return Matrix(
        vehicle, product, policy, di, ti, pi, ri, financed, deposit_free, down, principal, residual, deposit,
        rent, last, apr_micro, total_payable, cost_of_credit, due, valid, allowed,
    )


def _level_rents(principal: I64, residual: I64, n: I64, bp: I64, rates: list[Decimal], ti: I64,
                 product: Product, valid: npt.NDArray[np.bool_]) -> I64:
    r = bp / 120000.0
    with np.errstate(divide="ignore", invalid="ignore"):
        v_n = (1.0 + r) ** (-n.astype(np.float64))
        exact = (principal - residual * v_n) * r / (1.0 - v_n)
        raw = np.where(bp == 0, (principal - residual) / n, exact)
    rent = np.floor(raw + 0.5).astype(np.int64)
    zero_rate = bp == 0
    rent = np.where(zero_rate, (2 * (principal - residual) + n) // (2 * n), rent)
    near_tie = valid & ~zero_rate & (np.abs(raw - np.floor(raw) - 0.5) < 1e-6)
    for i in np.flatnonzero(near_tie):
        value = level_rent(Decimal(int(principal[i])).scaleb(-2), Decimal(int(residual[i])).scaleb(-2),
                           int(n[i]), rates[int(ti[i])], "arrears")
        rent[i] = _cents(value)
    return np.where(valid, rent, 0)


def _last_payments(principal: I64, residual: I64, n: I64, bp: I64, rent: I64) -> I64:
    """Run the arrears amortisation in exact integer fen and return the last (adjusted) rent.

    ``n`` must be non-decreasing: at month k only the tail of rows with n > k still amortises.
    """
    balance = principal.copy()
    for k in range(1, int(n.max())):
        start = int(np.searchsorted(n, k, side="right"))
        tail = balance[start:]
        tail += (2 * tail * bp[start:] + 120000) // 240000 - rent[start:]
    interest = (2 * balance * bp + 120000) // 240000
    return balance + interest - residual


def _apr_micro(flow0: I64, flow_end: I64, rent: I64, last: I64, n: I64, bp: I64,
               valid: npt.NDArray[np.bool_]) -> I64:
    """Nominal APR in millionths from the IRR of: flow0 at 0, −rent at 1…n−1, −last − B + deposit at n."""
    f0 = flow0.astype(np.float64)
    fe = (flow_end - last + rent).astype(np.float64)  # at n, besides a level rent
    pay = rent.astype(np.float64)
    nf = n.astype(np.float64)
    i = bp / 120000.0 + 0.002
    step = np.ones_like(i)
    with np.errstate(all="ignore"):
        for _ in range(20):  # quadratic convergence: 4–6 steps from this start; stop when all have converged
            v = 1.0 / (1.0 + i)
            v_n = v**nf
            small = np.abs(i) < 1e-8
            if small.any():  # near a zero rate the closed form loses precision: use its limit there
                safe_i = np.where(small, 1.0, i)
                annuity = np.where(small, nf - nf * (nf + 1) / 2 * i, (1.0 - v_n) / safe_i)
                d_annuity = np.where(small, -nf * (nf + 1) / 2, -(annuity - nf * v_n * v) / safe_i)
            else:
                annuity = (1.0 - v_n) / i
                d_annuity = -(annuity - nf * v_n * v) / i
            npv = f0 - pay * annuity + fe * v_n
            slope = -pay * d_annuity - nf * fe * v_n * v
            step = npv / slope
            i = i - step
            if not np.any(valid & ~(np.abs(step) < 1e-12)):
                break
    floor = bp / 120000.0 - APR_FLOOR_MARGIN  # the root wanted is the one above this (plans.quote.apr_floor)
    with np.errstate(invalid="ignore"):  # rows that are not valid leases carry NaN; they are masked out
        scaled = i * 12 * 1e6
        apr = np.floor(scaled + 0.5)
        converged = np.isfinite(scaled) & (np.abs(step) < 1e-12) & (i >= floor)
        redo = valid & ~(converged & (np.abs(scaled - np.floor(scaled) - 0.5) > 1e-4))
        apr = np.where(np.isfinite(apr), apr, 0).astype(np.int64)
    for k in np.flatnonzero(redo):
        flows = [float(flow0[k])] + [-float(rent[k])] * (int(n[k]) - 1) + [float(flow_end[k] - last[k])]
        monthly = apr_module.irr(flows, floor=float(floor[k]))
        apr[k] = int(apr_module.nominal_apr(monthly).scaleb(6))
    return apr


def _compliant(vehicle: Vehicle, product: Product, policy: Policy, ti: I64, pi: I64,
               ri: I64, di: I64, deposit_free: npt.NDArray[np.bool_], apr_micro: I64) -> npt.NDArray[np.bool_]:
    category = vehicle.category
    floor = policy.min_down_ratio(category)
    down_ok = np.array([r >= floor for r in product.down_ratios])[di]
    longest = policy.max_term_for(category)
    term_ok = np.array([policy.min_term <= t <= longest for t in product.terms])[ti]
    caps = [policy.residual_cap(t) for t in product.terms]
    residual_ok = np.array([[r <= cap for r in product.residual_ratios] for cap in caps])[ti, ri]
    apr_ok = apr_micro <= int(policy.apr_cap.scaleb(6))
    insurance_ok = np.array(
        [all(code in p.coverages for code in policy.required_insurance) for p in product.packs.values()]
    )[pi]
    deposit_ok = ~deposit_free | (category.condition in policy.deposit_free_conditions)
    allowed: npt.NDArray[np.bool_] = down_ok & term_ok & residual_ok & apr_ok & insurance_ok & deposit_ok
    return allowed


def generate(
    vehicle: Vehicle,
    product: Product,
    policy: Policy,
    constraints: Constraints | None = None,
    sort: SortKey = "rent",
    limit: int | None = 50,
) -> tuple[list[PlanSummary], int, int]:
    """The compliant plans meeting ``constraints``, best first by ``sort``.

    Returns (plans, number evaluated, number compliant and matching) — the last before ``limit``.
    """
    m = evaluate_matrix(vehicle, product, policy)
    mask = m.allowed.copy()
    c = constraints or Constraints()
    if c.budget is not None:
        mask &= m.rent <= _cents(c.budget)
    if c.max_down is not None:
        mask &= m.down <= _cents(c.max_down)
    if c.terms:
        mask &= np.isin(np.array(product.terms)[m.term_idx], list(c.terms))
    if c.pack is not None:
        mask &= m.pack_idx == list(product.packs).index(c.pack)
    if c.deposit_free is not None:
        mask &= m.deposit_free == c.deposit_free
    index = np.flatnonzero(mask)
    primary = {"rent": m.rent, "total": m.total_payable, "apr": m.apr_micro}[sort][index]
    order = index[np.lexsort((m.due_at_signing[index], m.total_payable[index], primary))]
    chosen = order if limit is None else order[:limit]
    return [m.summary(int(i)) for i in chosen], m.size, int(index.size)


def summary_as_dict(s: PlanSummary) -> dict[str, object]:
    """The JSON shape of a generated plan shared by the API and the CLI (amounts as 2-decimal strings)."""
    c = s.choice
    return {
        "down_ratio": f"{c.down_ratio:.2f}", "term": c.term, "pack": s.pack, "insurance": sorted(c.insurance),
        "residual_ratio": f"{c.residual_ratio:.2f}", "deposit_free": c.deposit_free,
        "extras_financed": c.extras_financed, "timing": c.timing,
        "down_payment": f"{s.down_payment:.2f}", "financed_amount": f"{s.financed_amount:.2f}",
        "monthly_payment": f"{s.monthly_payment:.2f}", "last_payment": f"{s.last_payment:.2f}",
        "residual": f"{s.residual:.2f}", "deposit": f"{s.deposit:.2f}", "apr": f"{s.apr:.6f}",
        "total_payable": f"{s.total_payable:.2f}", "total_cost_of_credit": f"{s.total_cost_of_credit:.2f}",
        "due_at_signing": f"{s.due_at_signing:.2f}",
    }
