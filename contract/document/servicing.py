"""The documents the lessor issues for a lease in force (issue 18 §5), as data: pure (no I/O);
:func:`contract.document.render.render_servicing` lays them out.

- the settlement certificate (结清证明): the lessee paid on ``paid_on`` the amounts the quote stated (each line as the
  BFF's quote counted it) to settle the lease early on ``settled_on`` (结清日, the day the quote counted interest to),
  the lease's obligations are discharged and the mortgage will be released;
- the schedule annex (还款计划变更确认书, an annex to the contract): after a partial prepayment, the rents left as
  re-amortised the way the lessee chose (a shorter term or a lower rent), each with its principal, interest and the
  balance after it.

The figures come from the BFF (which books the payments); this module checks them for shape and that they reconcile
to the fen (:func:`parse_request`: an annex's last rent leaves nothing outstanding, its final rent is the last row, no
rent is 0.00), so that the service never signs a certificate whose lines do not add up, and their dates against the
contract (:func:`check_dates`), never against the service's clock: the BFF's business date, the system's date of
record, may run ahead of it (a demo rolled months forward).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from datetime import timedelta
from decimal import Decimal
from typing import Any

from contract.document.model import DATE_PATTERN
from contract.document.model import INCONSISTENT
from contract.document.model import MAX_MONEY
from contract.document.model import MAX_TERM
from contract.document.model import MONEY_PATTERN
from contract.document.model import ContractData
from plans.timeline import add_months

SETTLEMENT_CERTIFICATE, SCHEDULE_ANNEX = "settlement_certificate", "schedule_annex"
KINDS = (SETTLEMENT_CERTIFICATE, SCHEDULE_ANNEX)
#: the codes of :func:`check_dates`'s refusals
BEFORE_SIGNING, PAID_AFTER_SETTLEMENT, AFTER_TERM = "before_signing", "paid_after_settlement", "after_term"
#: how long after the settlement day its payment may be booked: a bank's late answer to a payment started in time
LATE_PAYMENT_DAYS = 31
#: how a document is named in the PDF and in the evidence log's entry
TITLES = {SETTLEMENT_CERTIFICATE: "结清证明", SCHEDULE_ANNEX: "还款计划变更确认书"}
LEDGER_KINDS = {SETTLEMENT_CERTIFICATE: "settlement_certificate_signed", SCHEDULE_ANNEX: "schedule_annex_signed"}
#: the ways a prepayment is re-amortised (servicing/reamortise.py)
OPTIONS = ("shorter_term", "lower_rent")
#: an amount that may be negative: the settlement's total when the deposit exceeds what is owed (a refund)
SIGNED_MONEY_PATTERN = "^-?(?:" + MONEY_PATTERN.removeprefix("^").removesuffix("$") + ")$"
SUBJECT_ID_PATTERN = "^[A-Za-z0-9_.:-]{1,64}$"
#: the settlement's lines, in the order the certificate prints them (servicing/settlement.py LABELS)
SETTLEMENT_LINES: tuple[tuple[str, str, str], ...] = (
    ("outstanding_principal", "未偿本金", "Outstanding principal"),
    ("accrued_interest", "应计利息", "Accrued interest"),
    ("early_settlement_fee", "提前结清手续费", "Early-settlement fee"),
    ("arrears", "已到期未付款项", "Amounts due and unpaid"),
    ("penalties", "逾期违约金", "Late charges"),
    ("paid_ahead_interest", "已提前支付的利息（退还）", "Interest paid ahead (given back)"),
    ("deposit_offset", "保证金冲抵", "Deposit offset"),
)
#: the lines that count against the total (given back or offset)
CREDITS = ("paid_ahead_interest", "deposit_offset")
ROW_FIELDS = ("rent", "principal", "interest", "balance")
_MONEY, _SIGNED, _DATE = re.compile(MONEY_PATTERN), re.compile(SIGNED_MONEY_PATTERN), re.compile(DATE_PATTERN)
_SUBJECT = re.compile(SUBJECT_ID_PATTERN)


class FigureError(ValueError):
    """A request the service cannot sign: ``field`` (a JSON path, ``annex.rows.3.balance``) and why, in both languages;
    ``code`` ``invalid`` or :data:`~contract.document.model.INCONSISTENT` (figures that do not reconcile)."""

    def __init__(self, field: str, message: str, message_zh: str, code: str = "invalid") -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.message_zh, self.code = field, message, message_zh, code


@dataclass(frozen=True)
class Settlement:
    """What the paid settlement quote stated: the settlement day (结清日, ``settled_on``: the quote's, interest counted
    to it), the day it was paid (付清日, ``paid_on``: the business date the payment was booked, on or before the
    settlement day but for a bank's late answer), each line (positive; the credits count against the total) and the
    total paid (negative: the lessor refunded the difference)."""

    settled_on: date
    paid_on: date
    outstanding_principal: Decimal
    accrued_interest: Decimal
    early_settlement_fee: Decimal
    arrears: Decimal
    penalties: Decimal
    paid_ahead_interest: Decimal
    deposit_offset: Decimal
    amount_due: Decimal

    @property
    def lines(self) -> list[tuple[str, str, str, Decimal]]:
        """(code, label zh, label en, amount as it counts: credits negative), zero lines left out but the principal."""
        found = []
        for code, zh, en in SETTLEMENT_LINES:
            amount: Decimal = getattr(self, code)
            if amount or code == "outstanding_principal":
                found.append((code, zh, en, -amount if code in CREDITS else amount))
        return found

    @property
    def refund(self) -> Decimal:
        return -self.amount_due if self.amount_due < 0 else Decimal("0.00")


@dataclass(frozen=True)
class AnnexRow:
    number: int
    due_date: date
    rent: Decimal
    principal: Decimal
    interest: Decimal
    balance: Decimal  # the principal outstanding after this rent
    final: bool = False  # the final rent (尾付租金)


@dataclass(frozen=True)
class Annex:
    """The schedule after a partial prepayment of ``prepaid`` on ``effective_on``, after ``rents_paid`` rents: the
    principal went from ``balance_before`` to ``balance_after``; ``rows`` the rents left, as ``option`` re-amortised
    them."""

    effective_on: date
    prepaid: Decimal
    option: str
    rents_paid: int
    balance_before: Decimal
    balance_after: Decimal
    rows: tuple[AnnexRow, ...]

    @property
    def total_rent(self) -> Decimal:
        return sum((r.rent for r in self.rows), Decimal("0.00"))

    @property
    def total_interest(self) -> Decimal:
        return sum((r.interest for r in self.rows), Decimal("0.00"))


@dataclass(frozen=True)
class ServicingRequest:
    """One request: the document's ``kind``, its ``subject_id`` (the BFF's quote or prepayment: the idempotency key
    with the kind) and its figures."""

    kind: str
    subject_id: str
    settlement: Settlement | None = None
    annex: Annex | None = None

    @property
    def fingerprint(self) -> str:
        """The SHA-256 of the request's canonical figures: the same key with other figures is another request."""
        return hashlib.sha256(
            json.dumps(canonical(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()

    @property
    def last_day(self) -> date:
        """The last day the document speaks of: the settlement day (or the day it was paid, when later), or the annex's
        last rent."""
        if self.settlement is not None:
            return max(self.settlement.settled_on, self.settlement.paid_on)
        assert self.annex is not None
        return self.annex.rows[-1].due_date


@dataclass(frozen=True)
class ServicingData:
    """Everything a servicing document prints: the contract (parties, car, number) and the request's figures."""

    contract: ContractData
    request: ServicingRequest
    issued_on: date  # in Beijing

    @property
    def title(self) -> str:
        return TITLES[self.request.kind]


def canonical(request: ServicingRequest) -> dict[str, Any]:
    """The request as plain JSON (amounts as two-decimal strings, dates ISO)."""
    data: dict[str, Any] = {"kind": request.kind, "subject_id": request.subject_id}
    if request.settlement is not None:
        s = request.settlement
        data["settlement"] = {
            "settled_on": s.settled_on.isoformat(),
            "paid_on": s.paid_on.isoformat(),
            **{code: f"{getattr(s, code):.2f}" for code, _, _ in SETTLEMENT_LINES},
            "amount_due": f"{s.amount_due:.2f}",
        }
    if request.annex is not None:
        a = request.annex
        data["annex"] = {
            "effective_on": a.effective_on.isoformat(),
            "prepaid": f"{a.prepaid:.2f}",
            "option": a.option,
            "rents_paid": a.rents_paid,
            "balance_before": f"{a.balance_before:.2f}",
            "balance_after": f"{a.balance_after:.2f}",
            "rows": [
                {
                    "number": r.number,
                    "due_date": r.due_date.isoformat(),
                    "rent": f"{r.rent:.2f}",
                    "principal": f"{r.principal:.2f}",
                    "interest": f"{r.interest:.2f}",
                    "balance": f"{r.balance:.2f}",
                    "final": r.final,
                }
                for r in a.rows
            ],
        }
    return data


# -- checking a request ----------------------------------------------------------------------------------------------
def _object(value: Any, field: str, label_zh: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FigureError(field, f"{field} must be an object", f"缺少{label_zh}")
    return value


def _money(body: dict[str, Any], key: str, path: str, *, signed: bool = False) -> Decimal:
    value = body.get(key)
    pattern = _SIGNED if signed else _MONEY
    if not isinstance(value, str) or not pattern.fullmatch(value):
        kind = "an amount" if signed else "an amount from 0"
        raise FigureError(
            f"{path}.{key}",
            f"{key} must be {kind} to {MAX_MONEY} yuan as a string, at most 2 decimals",
            f"{key} 须为最多两位小数的金额（元，字符串）",
        )
    return Decimal(value).quantize(Decimal("0.01"))


def _day(body: dict[str, Any], key: str, path: str) -> date:
    value = body.get(key)
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise FigureError(f"{path}.{key}", f"{key} must be a date, YYYY-MM-DD", f"{key} 须为 YYYY-MM-DD 格式的日期")
    try:
        return date.fromisoformat(value)
    except ValueError:  # a 30 February
        raise FigureError(f"{path}.{key}", f"{key} is not a real day", f"{key} 不是有效日期") from None


def _whole(body: dict[str, Any], key: str, path: str, low: int, high: int) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FigureError(
            f"{path}.{key}",
            f"{key} must be a whole number from {low} to {high}",
            f"{key} 须为 {low} 至 {high} 之间的整数",
        )
    return value


def _inconsistent(field: str, message: str, message_zh: str) -> FigureError:
    return FigureError(field, message, message_zh, INCONSISTENT)


def check_dates(request: ServicingRequest, *, signed_on: date, ends_on: date) -> None:
    """The request's dates against the contract (days in Beijing), :class:`FigureError` otherwise — never against the
    service's clock: the dates are the BFF's business dates, the system's dates of record, which may run ahead of it (a
    demo rolled months forward). Nothing before ``signed_on`` (the contract's signing day, :data:`BEFORE_SIGNING`); a
    settlement paid no more than :data:`LATE_PAYMENT_DAYS` after its settlement day (a bank's late answer to a payment
    started in time; :data:`PAID_AFTER_SETTLEMENT`); a settlement day, an annex's prepayment day and due dates not
    after the contract's end ``ends_on`` plus the longest term (:data:`AFTER_TERM`: neither is ever later than the
    lease; the margin covers a handover later than the contract planned, and keeps every date a retention period is
    counted from far from the calendar's end — no 9999-12-31)."""
    latest = add_months(ends_on, MAX_TERM)
    if request.settlement is not None:
        settled_on, paid_on = request.settlement.settled_on, request.settlement.paid_on
        for field, day in (("settlement.settled_on", settled_on), ("settlement.paid_on", paid_on)):
            if day < signed_on:
                raise FigureError(
                    field,
                    f"{field} is before the contract was signed ({signed_on})",
                    f"日期不得早于合同签署日（{signed_on}）",
                    BEFORE_SIGNING,
                )
        if settled_on > latest:
            raise FigureError(
                "settlement.settled_on",
                f"settlement.settled_on is after {latest}, the contract's end ({ends_on}) plus {MAX_TERM} months",
                f"结清日不得晚于 {latest}（合同到期日 {ends_on} 后 {MAX_TERM} 个月）",
                AFTER_TERM,
            )
        if paid_on - timedelta(days=LATE_PAYMENT_DAYS) > settled_on:  # (settled_on + 31 days may be past 9999-12-31)
            raise FigureError(
                "settlement.paid_on",
                f"settlement.paid_on is more than {LATE_PAYMENT_DAYS} days after settled_on ({settled_on})",
                f"付清日不得晚于结清日（{settled_on}）后 {LATE_PAYMENT_DAYS} 天",
                PAID_AFTER_SETTLEMENT,
            )
        return
    assert request.annex is not None
    annex = request.annex
    if annex.effective_on < signed_on:
        raise FigureError(
            "annex.effective_on",
            f"annex.effective_on is before the contract was signed ({signed_on})",
            f"日期不得早于合同签署日（{signed_on}）",
            BEFORE_SIGNING,
        )
    days = [("annex.effective_on", annex.effective_on)]
    days += [(f"annex.rows.{i}.due_date", row.due_date) for i, row in enumerate(annex.rows)]
    for field, day in days:
        if day > latest:
            raise FigureError(
                field,
                f"{field} is after {latest}, the contract's end ({ends_on}) plus {MAX_TERM} months",
                f"日期不得晚于 {latest}（合同到期日 {ends_on} 后 {MAX_TERM} 个月）",
                AFTER_TERM,
            )


def parse_request(body: dict[str, Any]) -> ServicingRequest:
    """The request in ``body`` (the API's ServicingDocumentRequest), checked; :class:`FigureError` otherwise."""
    kind = body.get("kind")
    if kind not in KINDS:
        raise FigureError("kind", f"kind must be one of {', '.join(KINDS)}", "文件类型无效")
    subject = body.get("subject_id")
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise FigureError("subject_id", "subject_id must be 1-64 letters, digits or _.:-", "缺少业务编号")
    if kind == SETTLEMENT_CERTIFICATE:
        return ServicingRequest(
            kind, subject, settlement=_settlement(_object(body.get("settlement"), "settlement", "结清金额"))
        )
    return ServicingRequest(kind, subject, annex=_annex(_object(body.get("annex"), "annex", "还款计划")))


def _settlement(body: dict[str, Any]) -> Settlement:
    path = "settlement"
    settled_on, paid_on = _day(body, "settled_on", path), _day(body, "paid_on", path)
    amounts = {code: _money(body, code, path) for code, _, _ in SETTLEMENT_LINES}
    total = _money(body, "amount_due", path, signed=True)
    expected = sum((-v if code in CREDITS else v for code, v in amounts.items()), Decimal("0.00"))
    if total != expected:
        raise _inconsistent(
            f"{path}.amount_due",
            f"amount_due is {total}, the lines add up to {expected}",
            f"结清金额合计 {total} 与各项之和 {expected} 不符",
        )
    return Settlement(settled_on=settled_on, paid_on=paid_on, amount_due=total, **amounts)


def _annex(body: dict[str, Any]) -> Annex:
    path = "annex"
    effective_on = _day(body, "effective_on", path)
    prepaid = _money(body, "prepaid", path)
    if prepaid <= 0:
        raise FigureError(f"{path}.prepaid", "prepaid must be more than 0", "提前还款金额须大于 0")
    option = body.get("option")
    if option not in OPTIONS:
        raise FigureError(f"{path}.option", f"option must be one of {', '.join(OPTIONS)}", "请选择还款计划调整方式")
    rents_paid = _whole(body, "rents_paid", path, 0, MAX_TERM)
    before, after = _money(body, "balance_before", path), _money(body, "balance_after", path)
    if after != before - prepaid:
        raise _inconsistent(
            f"{path}.balance_after",
            f"balance_after is {after}, balance_before less prepaid is {before - prepaid}",
            f"提前还款后本金 {after} 与提前还款前本金减提前还款金额 {before - prepaid} 不符",
        )
    raw_rows = body.get("rows")
    if not isinstance(raw_rows, list) or not 1 <= len(raw_rows) <= MAX_TERM + 1:
        raise FigureError(f"{path}.rows", f"rows must list 1 to {MAX_TERM + 1} rents", "缺少变更后的还款计划")
    rows: list[AnnexRow] = []
    balance, previous = after, effective_on
    for i, raw in enumerate(raw_rows):
        where = f"{path}.rows.{i}"
        row_body = _object(raw, where, "还款计划行")
        number = _whole(row_body, "number", where, 1, MAX_TERM + 1)
        due = _day(row_body, "due_date", where)
        rent, principal, interest, after_row = (_money(row_body, k, where) for k in ROW_FIELDS)
        final = row_body.get("final", False)
        if not isinstance(final, bool):
            raise FigureError(f"{where}.final", "final must be true or false", "final 须为 true 或 false")
        if number != rents_paid + 1 + i:
            raise _inconsistent(
                f"{where}.number",
                f"rent {rents_paid + 1 + i} expected here, not {number}",
                f"期数应为 {rents_paid + 1 + i}",
            )
        if due < previous:  # the final rent falls due with the last rent: the same day is in order
            raise _inconsistent(
                f"{where}.due_date",
                "due dates must not be before the prepayment day or the rent before",
                "各期应付日期不得早于提前还款日或上一期的应付日期",
            )
        if rent <= 0:
            raise FigureError(f"{where}.rent", "rent must be more than 0", "租金须大于 0")
        if final and i != len(raw_rows) - 1:
            raise _inconsistent(
                f"{where}.final", "only the last row may be the final rent", "尾付租金须为还款计划的最后一期"
            )
        if rent != principal + interest:
            raise _inconsistent(
                f"{where}.rent",
                f"rent {rent} is not principal + interest ({principal + interest})",
                f"租金 {rent} 不等于本金与利息之和 {principal + interest}",
            )
        if after_row != balance - principal:
            raise _inconsistent(
                f"{where}.balance",
                f"balance is {after_row}, the previous balance less this principal is {balance - principal}",
                f"剩余本金 {after_row} 与上期剩余本金减本期本金 {balance - principal} 不符",
            )
        rows.append(AnnexRow(number, due, rent, principal, interest, after_row, final))
        balance, previous = after_row, due
    if balance != 0:  # the schedule's last rent pays the principal off: an annex is no loan left open
        raise _inconsistent(
            f"{path}.rows.{len(rows) - 1}.balance",
            f"the last rent leaves a balance of {balance}: it must be 0.00",
            f"最后一期后剩余本金为 {balance}，应为 0.00",
        )
    return Annex(effective_on, prepaid, str(option), rents_paid, before, after, tuple(rows))
