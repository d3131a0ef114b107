"""Early settlement (提前结清): what the lessee pays to end the lease before its term, each line explained.

As the contract's clause states it (第九条; the terms frozen with it, :class:`plans.product.EarlySettlement`):

- the principal outstanding after the last rent (the schedule's balance; none paid yet: the financed amount),
- the interest accrued on it since, at the contract rate for the actual days, the daily rate being the annual one
  divided by 360 (ACT/360, PBOC 《人民币利率管理规定》 art. 20) or 365: ``balance × rate × days / 360``,
- a fee of ``fee_rate`` of that principal — none once every rent is paid (nothing is early),
- the rents fallen due and unpaid and the late charges on them (given: the receivable knows them),
- less what was paid ahead of the rents due after the settlement date (on a calendar date: the receivable knows it):
  their principal paid is off the outstanding principal before the interest and the fee are counted, their interest
  paid is given back as its own line (已提前支付的租金: the settlement replaces those rents, and their interest),
- less the deposit the lessor holds (保证金冲抵).

Each line is rounded half-up to the fen once; the amount due is their exact sum, negative when the deposit exceeds
what is owed (the lessor refunds the difference). The rents not yet due are not paid: the settlement replaces them.

Two entry points: :func:`settlement_quote` counts in periods (K rents paid, D days after the end of period K: the
figures of ``leaseline settlement-quote``, issue 18 §9) and :func:`settlement_quote_on` on a calendar date, from
the lease's dated rents (the daily close and the customer's quote).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from plans.money import CONTEXT
from plans.money import ZERO
from plans.money import fen
from plans.money import format_cny
from plans.product import EarlySettlement
from plans.quote import ScheduleRow
from servicing.instalments import DatedSchedule

#: each line's code and label (zh, en), in the order a quote lists them
LABELS: dict[str, tuple[str, str]] = {
    "outstanding_principal": ("未偿本金", "Outstanding principal"),
    "accrued_interest": ("应计利息", "Accrued interest"),
    "early_settlement_fee": ("提前结清手续费", "Early-settlement fee"),
    "arrears": ("已到期未付款项", "Amounts due and unpaid"),
    "penalties": ("逾期违约金", "Late charges"),
    "paid_ahead": ("已提前支付的租金", "Rent paid ahead"),
    "deposit_offset": ("保证金冲抵", "Deposit offset"),
}
#: the product's default terms (plans/products/standard.toml): 3 % of the principal, ACT/360
DEFAULT_TERMS = EarlySettlement()


@dataclass(frozen=True)
class Line:
    """One line of a quote: ``amount`` as it counts towards the amount due (the deposit's line is negative), its
    label and how it was found (``basis``), in both UI languages."""

    code: str
    amount: Decimal
    label_zh: str
    label_en: str
    basis_zh: str
    basis_en: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "amount": f"{self.amount:.2f}", "label_zh": self.label_zh,
                "label_en": self.label_en, "basis_zh": self.basis_zh, "basis_en": self.basis_en}


@dataclass(frozen=True)
class SettlementQuote:
    """An early-settlement quote. Amounts are Decimals to the fen; ``deposit_offset`` is the deposit held (positive)
    and ``amount_due`` = principal + interest + fee + arrears + penalties − interest paid ahead − deposit offset
    (the principal net of the principal paid ahead). ``rents_paid`` is K: the rents paid (on a date: fallen due, paid
    or in ``arrears``) before the settlement, of ``term``."""

    rents_paid: int
    term: int
    days: int
    annual_rate: Decimal
    terms: EarlySettlement
    outstanding_principal: Decimal
    accrued_interest: Decimal
    early_settlement_fee: Decimal
    arrears: Decimal
    penalties: Decimal
    deposit_offset: Decimal
    amount_due: Decimal
    lines: tuple[Line, ...]
    #: on a calendar date: the day interest runs from (the last rent's due date, or the term's start) and the
    #: settlement date; None for a quote counted in periods
    interest_from: date | None = None
    settles_on: date | None = None
    #: what was paid ahead of the rents due after the settlement date: principal (already off
    #: ``outstanding_principal``) and interest (given back, the ``paid_ahead`` line)
    paid_ahead_principal: Decimal = ZERO
    paid_ahead_interest: Decimal = ZERO

    @property
    def refund(self) -> Decimal:
        """What the lessor pays back (the deposit beyond what is owed); zero when the lessee pays."""
        return -self.amount_due if self.amount_due < 0 else ZERO

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of the CLI (and later the API): amounts as strings with two decimals, rates as given."""
        data: dict[str, object] = {
            key: f"{getattr(self, key):.2f}" for key in (
                "outstanding_principal", "accrued_interest", "early_settlement_fee", "arrears", "penalties",
                "deposit_offset", "amount_due")}
        data.update(rents_paid=self.rents_paid, term=self.term, days=self.days,
                    annual_rate=f"{self.annual_rate}", fee_rate=f"{self.terms.fee_rate}",
                    day_count=self.terms.day_count, lines=[line.as_dict() for line in self.lines])
        if self.settles_on is not None and self.interest_from is not None:
            data.update(settles_on=self.settles_on.isoformat(), interest_from=self.interest_from.isoformat())
        if self.paid_ahead_principal or self.paid_ahead_interest:
            data.update(paid_ahead_principal=f"{self.paid_ahead_principal:.2f}",
                        paid_ahead_interest=f"{self.paid_ahead_interest:.2f}")
        return data


def accrued_interest(balance: Decimal, annual_rate: Decimal, days: int, days_in_year: int = 360) -> Decimal:
    """``balance × annual_rate × days / days_in_year``, half-up to the fen (multiplied first, divided once)."""
    if days < 0:
        raise ValueError("days must not be negative")
    return fen(CONTEXT.divide(CONTEXT.multiply(CONTEXT.multiply(balance, annual_rate), Decimal(days)),
                              Decimal(days_in_year)))


def outstanding_principal(schedule: Sequence[ScheduleRow], financed_amount: Decimal, paid: int) -> Decimal:
    """The schedule's balance after row ``paid`` (``paid`` = 0: the financed amount), as the quote shows it."""
    if not 0 <= paid <= len(schedule):
        raise ValueError(f"rents paid must be from 0 to {len(schedule)}")
    return financed_amount if paid == 0 else schedule[paid - 1].balance


def settlement_quote(schedule: Sequence[ScheduleRow], financed_amount: Decimal, annual_rate: Decimal, *,
                     paid: int, days: int = 0, terms: EarlySettlement = DEFAULT_TERMS, deposit: Decimal = ZERO,
                     arrears: Decimal = ZERO, penalties: Decimal = ZERO) -> SettlementQuote:
    """Settle ``days`` after the end of period ``paid`` (K): the schedule's balance after row K, the interest on it
    for those days, the fee (none at K = the term), ``arrears`` and ``penalties`` (explicit, none by default) and
    the ``deposit`` held. For both timings the settlement replaces every rent not yet paid."""
    principal = outstanding_principal(schedule, financed_amount, paid)
    if paid == 0:
        basis = ("融资金额（尚未支付租金）", "the financed amount (no rent paid yet)")
    else:
        basis = (f"还款计划表第 {paid} 期后的剩余本金", f"the schedule's balance after rent {paid}")
    return _quote(principal, basis, annual_rate, paid=paid, term=len(schedule), days=days, terms=terms,
                  deposit=deposit, arrears=arrears, penalties=penalties)


def settlement_quote_on(lease: DatedSchedule, on: date, *, terms: EarlySettlement = DEFAULT_TERMS,
                        deposit: Decimal = ZERO, arrears: Decimal = ZERO, penalties: Decimal = ZERO,
                        paid_ahead_principal: Decimal = ZERO, paid_ahead_interest: Decimal = ZERO) -> SettlementQuote:
    """Settle on the date ``on`` (the term's start to its end), as the contract's clause counts it.

    The rents due on or before ``on`` (K of them) are settled already or owed in ``arrears`` with their
    ``penalties``: the principal outstanding is the one after rent K, interest runs from rent K's due date (none
    due yet: from the term's start) to ``on``. In arrears that principal is the schedule's balance after row K; in
    advance rent K is paid at the start of its period, before the period's interest: the balance after row K − 1
    less rent K (the schedule's balance after row K less that row's interest; K = 0 cannot happen, the first rent
    is due at the start). On a due date in arrears this is :func:`settlement_quote` with D = 0.

    What was paid ahead of the rents due after ``on`` (in full or in part) is not charged again:
    ``paid_ahead_principal`` comes off that principal before the interest and the fee are counted,
    ``paid_ahead_interest`` is given back on its own line."""
    if not lease.starts_on <= on <= lease.ends_on:
        raise ValueError(f"the settlement date must be within the term, {lease.starts_on} to {lease.ends_on}")
    paid = lease.rents_due(on)
    if paid == 0:
        principal, since = lease.financed_amount, lease.starts_on
        basis = ("融资金额（尚未到期租金）", "the financed amount (no rent due yet)")
    else:
        last = lease.instalments[paid - 1]
        since = last.due_on
        if lease.timing == "advance":
            principal = last.balance - last.interest
            rent = format_cny(last.payment)
            if paid == 1:
                basis = (f"融资金额减去第 1 期租金 {rent}", f"the financed amount less rent 1 of {rent}")
            else:
                basis = (f"第 {paid - 1} 期后的剩余本金减去第 {paid} 期租金 {rent}",
                         f"the balance after rent {paid - 1} less rent {paid} of {rent}")
        else:
            principal = last.balance
            basis = (f"还款计划表第 {paid} 期后的剩余本金", f"the schedule's balance after rent {paid}")
    for name, amount in (("paid_ahead_principal", paid_ahead_principal),
                         ("paid_ahead_interest", paid_ahead_interest)):
        if amount < 0 or amount != fen(amount):
            raise ValueError(f"{name} must be an amount to the fen, not negative")
    if paid_ahead_principal > principal:
        raise ValueError("more principal paid ahead than is outstanding")
    if paid_ahead_principal:
        ahead = format_cny(paid_ahead_principal)
        basis = (f"{basis[0]}，减去已提前支付的本金 {ahead}", f"{basis[1]}, less {ahead} of principal paid ahead")
        principal -= paid_ahead_principal
    return _quote(principal, basis, lease.annual_rate, paid=paid, term=len(lease.instalments),
                  days=(on - since).days, terms=terms, deposit=deposit, arrears=arrears, penalties=penalties,
                  interest_from=since, settles_on=on, paid_ahead_principal=paid_ahead_principal,
                  paid_ahead_interest=paid_ahead_interest)


def _pct(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


def _quote(principal: Decimal, basis: tuple[str, str], annual_rate: Decimal, *, paid: int, term: int, days: int,
           terms: EarlySettlement, deposit: Decimal, arrears: Decimal, penalties: Decimal,
           interest_from: date | None = None, settles_on: date | None = None, paid_ahead_principal: Decimal = ZERO,
           paid_ahead_interest: Decimal = ZERO) -> SettlementQuote:
    for name, amount in (("deposit", deposit), ("arrears", arrears), ("penalties", penalties)):
        if amount < 0 or amount != fen(amount):
            raise ValueError(f"{name} must be an amount to the fen, not negative")
    year = terms.days_in_year
    interest = accrued_interest(principal, annual_rate, days, year)
    final = paid == term
    fee = ZERO if final else fen(CONTEXT.multiply(terms.fee_rate, principal))
    p = format_cny(principal)
    lines = [
        ("outstanding_principal", principal, *basis),
        ("accrued_interest", interest, f"{p} × {_pct(annual_rate)} × {days} 天 ÷ {year}",
         f"{p} × {_pct(annual_rate)} × {days} days ÷ {year}"),
        ("early_settlement_fee", fee, *(("租金已全部支付，不收取", "every rent paid: no fee") if final
                                        else (f"{p} × {_pct(terms.fee_rate)}", f"{p} × {_pct(terms.fee_rate)}"))),
    ]
    if arrears:
        lines.append(("arrears", arrears, "已到期未付的租金及其他款项", "rents and other amounts due and unpaid"))
    if penalties:
        lines.append(("penalties", penalties, "截至结清日的逾期违约金", "late charges to the settlement date"))
    if paid_ahead_interest:
        lines.append(("paid_ahead", -paid_ahead_interest,
                      "结清日后到期的租金已提前支付的利息，予以退还（其本金已从未偿本金中扣除）",
                      "the interest paid ahead of rents due after the settlement date, given back (their principal "
                      "paid is off the outstanding principal)"))
    if deposit:
        lines.append(("deposit_offset", -deposit, "出租人持有的保证金", "the deposit the lessor holds"))
    else:  # no "-0.00"
        lines.append(("deposit_offset", ZERO, "免押：无保证金", "deposit-free: no deposit"))
    due = principal + interest + fee + arrears + penalties - paid_ahead_interest - deposit
    return SettlementQuote(
        rents_paid=paid, term=term, days=days, annual_rate=annual_rate, terms=terms,
        outstanding_principal=principal, accrued_interest=interest, early_settlement_fee=fee, arrears=arrears,
        penalties=penalties, deposit_offset=deposit, amount_due=due,
        lines=tuple(Line(code, amount, *LABELS[code], zh, en) for code, amount, zh, en in lines),
        interest_from=interest_from, settles_on=settles_on, paid_ahead_principal=paid_ahead_principal,
        paid_ahead_interest=paid_ahead_interest)
