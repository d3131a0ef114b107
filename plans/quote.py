"""One exact lease quote: rent, amortisation schedule, the customer's cash flows and the APR.

Notation (the issue's): vehicle price P, down payment D, term n months, nominal annual rate R, r = R / 12,
residual (balloon) B = ratio × P paid at the end of the term, w = 1 when rents are paid in advance and 0 in
arrears. Financed principal PV = P − D + financed fees + financed premiums, and

    rent = (PV − B·(1+r)^−n) · r / ((1 − (1+r)^−n) · (1 + r·w))        (rent = (PV − B) / n when r = 0)

rounded half-up to the fen; the last rent absorbs the rounding so the schedule reconciles exactly: the sum
of principal repaid plus B equals PV to the fen, and the closing balance of the last period is B.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from plans import apr as apr_module
from plans.errors import PlanInputError
from plans.errors import error
from plans.money import CONTEXT
from plans.money import ZERO
from plans.money import fen

Timing = Literal["arrears", "advance"]
TIMINGS: tuple[Timing, ...] = ("arrears", "advance")


@dataclass(frozen=True)
class Charge:
    """A credit fee (service, GPS) or an insurance premium, paid upfront or financed."""

    code: str
    amount: Decimal
    financed: bool


@dataclass(frozen=True)
class QuoteRequest:
    """Validated inputs of one quote (see :func:`plans.inputs.parse_quote_request` for raw input)."""

    price: Decimal
    down_payment: Decimal
    term: int
    annual_rate: Decimal
    residual_ratio: Decimal = ZERO
    timing: Timing = "arrears"
    fees: tuple[Charge, ...] = ()
    premiums: tuple[Charge, ...] = ()
    deposit_ratio: Decimal = ZERO
    #: the purchase price (留购价): what the lessee pays at the end of the term, after the last rent and the final
    #: rent (B), for the car's title; nominal (the product file's), in the APR and the total like any payment
    purchase_price: Decimal = ZERO

    @property
    def financed_fees(self) -> Decimal:
        return sum((c.amount for c in self.fees if c.financed), ZERO)

    @property
    def upfront_fees(self) -> Decimal:
        return sum((c.amount for c in self.fees if not c.financed), ZERO)

    @property
    def financed_premiums(self) -> Decimal:
        return sum((c.amount for c in self.premiums if c.financed), ZERO)

    @property
    def upfront_premiums(self) -> Decimal:
        return sum((c.amount for c in self.premiums if not c.financed), ZERO)

    @property
    def principal(self) -> Decimal:
        """PV = P − D + financed fees + financed premiums."""
        return fen(self.price - self.down_payment + self.financed_fees + self.financed_premiums)

    @property
    def residual(self) -> Decimal:
        """B = residual ratio × P, to the fen."""
        return fen(self.residual_ratio * self.price)

    @property
    def deposit(self) -> Decimal:
        """Refundable deposit (保证金) = deposit ratio × P; zero when deposit-free (免押)."""
        return fen(self.deposit_ratio * self.price)


@dataclass(frozen=True)
class ScheduleRow:
    """One rent: paid at month ``period`` (arrears) or ``period − 1`` (advance)."""

    period: int
    payment: Decimal
    interest: Decimal
    principal: Decimal
    balance: Decimal


@dataclass(frozen=True)
class CashFlow:
    """The customer's net cash flow in a month: positive received, negative paid."""

    period: int
    amount: Decimal


@dataclass(frozen=True)
class Quote:
    """The result of :func:`quote`. Every amount is a Decimal rounded to the fen."""

    request: QuoteRequest
    financed_amount: Decimal
    residual: Decimal
    deposit: Decimal
    monthly_payment: Decimal
    last_payment: Decimal
    schedule: tuple[ScheduleRow, ...]
    cash_flows: tuple[CashFlow, ...]
    apr: Decimal
    effective_annual_rate: Decimal
    total_interest: Decimal
    credit_fees: Decimal
    total_payable: Decimal
    due_at_signing: Decimal

    @property
    def total_cost_of_credit(self) -> Decimal:
        """Interest plus every credit fee, upfront or financed, plus the purchase price (留购价: what a lease costs
        for the title that a loan does not); insurance is goods, not credit cost."""
        return self.total_interest + self.credit_fees + self.request.purchase_price


def level_rent(principal: Decimal, residual: Decimal, term: int, annual_rate: Decimal, timing: Timing) -> Decimal:
    """The level rent, unrounded (a Decimal with 40 significant digits)."""
    ctx = CONTEXT
    r = ctx.divide(annual_rate, Decimal(12))
    if r == 0:
        return ctx.divide(principal - residual, Decimal(term))
    v = ctx.power(ctx.add(Decimal(1), r), -term)
    if v == 1:  # a rate below the context's precision: treat as zero rather than divide by zero
        return ctx.divide(principal - residual, Decimal(term))
    numerator = ctx.multiply(ctx.subtract(principal, ctx.multiply(residual, v)), r)
    w = Decimal(1) if timing == "advance" else Decimal(0)
    denominator = ctx.multiply(ctx.subtract(Decimal(1), v), ctx.add(Decimal(1), ctx.multiply(r, w)))
    return ctx.divide(numerator, denominator)


def build_schedule(
    principal: Decimal, residual: Decimal, term: int, annual_rate: Decimal, timing: Timing, rent: Decimal
) -> tuple[ScheduleRow, ...]:
    """Amortise ``principal`` down to ``residual`` with ``term`` rents of ``rent`` (last one adjusted).

    Each row's interest is the period's interest to the fen: r × balance in arrears, r × (balance − rent)
    in advance (the rent is paid at the start of the period, interest accrues on what remains).
    """
    advance = timing == "advance"

    def interest_on(base: Decimal) -> Decimal:
        # R × base / 12, multiplied first: an exact half-fen stays exact and rounds up, as in the
        # generator's integer arithmetic (plans.generator).
        return fen(CONTEXT.divide(annual_rate * base, Decimal(12)))
    rows: list[ScheduleRow] = []
    balance = principal
    for period in range(1, term + 1):
        if period < term:
            payment = rent
            interest = interest_on(balance - payment) if advance else interest_on(balance)
        elif advance:
            # After the last rent X remains and grows to B by the end: X = B / (1 + r); the row's
            # interest takes the fen of rounding so the closing balance is exactly B.
            remaining = fen(CONTEXT.divide(12 * residual, 12 + annual_rate))
            payment = balance - remaining
            interest = residual - remaining
        else:
            interest = interest_on(balance)
            payment = balance + interest - residual
        principal_part = payment - interest
        balance = balance - principal_part
        rows.append(ScheduleRow(period, payment, interest, principal_part, balance))
    return tuple(rows)


def customer_cash_flows(request: QuoteRequest, schedule: Sequence[ScheduleRow]) -> tuple[CashFlow, ...]:
    """The customer's own cash flows for the APR (PBOC 2021 No. 3), one net amount per month 0…n.

    Month 0: + (P − D + financed premiums) received as goods, − upfront credit fees, − deposit, and the
    first rent in advance mode. Then each rent at its due month; at month n, − B, − the purchase price and + the
    deposit refund.
    Upfront insurance premiums are the customer's own purchase and do not enter the APR.
    """
    term = request.term
    flows = [ZERO] * (term + 1)
    flows[0] = request.price - request.down_payment + request.financed_premiums
    flows[0] -= request.upfront_fees + request.deposit
    offset = 1 if request.timing == "advance" else 0
    for row in schedule:
        flows[row.period - offset] -= row.payment
    flows[term] += request.deposit - request.residual - request.purchase_price
    return tuple(CashFlow(period, fen(amount)) for period, amount in enumerate(flows))


def check_principal(request: QuoteRequest) -> None:
    """Refuse a request with nothing financed, a residual at or above the financed principal, or no net
    credit at signing (upfront fees and the deposit eat all the customer receives: the APR is undefined)."""
    if request.principal <= 0:
        raise PlanInputError([error("down_payment", "nothing_financed")])
    if request.residual >= request.principal:
        raise PlanInputError([error("residual_ratio", "residual_above_principal")])
    received = request.price - request.down_payment + request.financed_premiums
    if received - request.upfront_fees - request.deposit <= 0:
        raise PlanInputError([error("down_payment", "no_net_credit")])


#: How far below the contract's monthly rate the APR root search starts (see :func:`plans.apr.irr`).
APR_FLOOR_MARGIN = 0.001


def apr_floor(annual_rate: Decimal) -> float:
    """Where the APR root search starts: just below the contract's monthly rate."""
    return float(annual_rate) / 12 - APR_FLOOR_MARGIN


def quote(request: QuoteRequest) -> Quote:
    """Price ``request`` exactly: rent to the fen, a reconciled schedule, cash flows and APR.

    Raises :class:`PlanInputError` for a request that cannot be a lease (see :func:`check_principal`).
    """
    check_principal(request)
    principal = request.principal
    residual = request.residual
    rent = fen(level_rent(principal, residual, request.term, request.annual_rate, request.timing))
    schedule = build_schedule(principal, residual, request.term, request.annual_rate, request.timing, rent)
    flows = customer_cash_flows(request, schedule)
    try:
        monthly = apr_module.irr([f.amount for f in flows], floor=apr_floor(request.annual_rate))
    except apr_module.NoSolution:
        raise PlanInputError([error("down_payment", "no_net_credit")]) from None
    total_rents = sum((row.payment for row in schedule), ZERO)
    credit_fees = request.financed_fees + request.upfront_fees
    first_rent = schedule[0].payment if request.timing == "advance" else ZERO
    return Quote(
        request=request,
        financed_amount=principal,
        residual=residual,
        deposit=request.deposit,
        monthly_payment=rent,
        last_payment=schedule[-1].payment,
        schedule=schedule,
        cash_flows=flows,
        apr=apr_module.nominal_apr(monthly),
        effective_annual_rate=apr_module.effective_rate(monthly),
        total_interest=sum((row.interest for row in schedule), ZERO),
        credit_fees=credit_fees,
        total_payable=request.down_payment + request.upfront_fees + request.upfront_premiums + total_rents + residual
        + request.purchase_price,
        due_at_signing=request.down_payment
        + request.upfront_fees
        + request.upfront_premiums
        + request.deposit
        + first_rent,
    )


def quote_as_dict(q: Quote) -> dict[str, object]:
    """The JSON shape shared by the CLI and the API: amounts as strings with two decimals, rates with six."""

    def m(value: Decimal) -> str:
        return f"{value:.2f}"

    return {
        "monthly_payment": m(q.monthly_payment),
        "last_payment": m(q.last_payment),
        "financed_amount": m(q.financed_amount),
        "down_payment": m(q.request.down_payment),
        "residual": m(q.residual),
        "purchase_price": m(q.request.purchase_price),
        "deposit": m(q.deposit),
        "apr": f"{q.apr:.6f}",
        "effective_annual_rate": f"{q.effective_annual_rate:.6f}",
        "annual_rate": f"{q.request.annual_rate:.6f}",
        "term": q.request.term,
        "timing": q.request.timing,
        "total_interest": m(q.total_interest),
        "credit_fees": m(q.credit_fees),
        "total_cost_of_credit": m(q.total_cost_of_credit),
        "total_payable": m(q.total_payable),
        "due_at_signing": m(q.due_at_signing),
        "cash_flows": [{"period": f.period, "amount": m(f.amount)} for f in q.cash_flows],
        "schedule": [
            {"period": r.period, "payment": m(r.payment), "interest": m(r.interest),
             "principal": m(r.principal), "balance": m(r.balance)}
            for r in q.schedule
        ],
    }
