"""Credit reporting (征信报送, issue 18 §7), pure: each lease's monthly status record for the credit bureau, as the
lease stood at the end of a calendar month (Asia/Shanghai), and the notice before an overdue report.

**The layout is provisional.** The PBOC Credit Reference Center publishes its data-submission interface (the
individual loan account record, 个人借贷账户信息) only to the institutions it connects, and its field codes could not
be sourced here: the fields below are named plainly, after what a personal credit report shows of a loan account,
and the file says ``"provisional": true`` (:data:`LAYOUT`). The bureau port (infra/credit_bureau.py) maps them to the
real interface once the lessor's line to the bureau is set up. Nothing here is an official code except the month's
**repayment status character**, which is the legend printed on every personal credit report (个人信用报告 编制说明,
the 24-month repayment record): ``N`` paid as due, ``1``–``7`` overdue 1–30, 31–60 … 151–180 and over 180 days,
``C`` settled (结清: nothing left to pay, early settlement included), ``G`` ended otherwise (结束), ``*`` nothing fell
due this month (the opening month of a lease paid in arrears). ``D`` (a guarantor paid), ``Z`` (paid in kind) and
``#`` (unknown) never arise for a Leaseline lease.

**The record of a month** (:func:`status_record`), from the lease's instalments and their movements dated up to the
month's last day (so a record built days later reads the month end, not today): the balance is the principal of the
rents not yet paid (the final rent's included); the amount due is what fell due in the month, the amount paid what
was paid in it (a settlement's lines included, the deposit's share counted as paid; waivers and interest no longer
owed not; never negative); a rent is overdue at the month end when it was marked overdue on or before that day and
was still unpaid at its end. Settled (结清) or ended leases get one last record in the month they closed (``C``, or
``G`` with what is still owed), none afterwards; a lease gets its first in the month its term started.

**The notice before an overdue report** (《征信业管理条例》 art. 15: 信息提供者向征信机构提供个人不良信息，
应当事先告知信息主体本人; art. 44 counts unpaid rent under a lease as 不良信息). The lessee's credit authorisation
promises a text or letter before negative information is reported (bff/applications/consent.toml ``credit_reporting``)
and names no number of days; we choose :data:`NOTICE_DAYS`: the close of business of the month's last day minus 7
(:func:`notice_day`) texts each lease with a rent overdue that day, once a month, that the rent will be reported
unless paid by the month's last day (the text arrives the next morning, a week before the month end). **A rent is
reported overdue only when its lease was told**: the rents overdue on the notice day, of a lease whose notice was
sent; a rent that fell overdue after the notice day, or a lease the text did not reach, is reported as not overdue
this month and, if still unpaid, told and reported the next month. That keeps art. 15's order (notice, then report)
for every overdue figure and gives every customer at least a week to pay before anything negative is sent.

Money is integer fen; the file carries yuan with two decimals (:func:`render_file`).
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from datetime import date
from datetime import timedelta
from decimal import Decimal

#: the file's layout name: provisional until mapped to the bureau's published interface (see the module's docstring)
LAYOUT = "leaseline-credit-report/provisional-1"
#: days between the notice day (the close that defers the text) and the month's last day, the report's as-of date
NOTICE_DAYS = 7
#: the legend's repayment status characters (个人信用报告 编制说明)
NORMAL, SETTLED, ENDED, NOTHING_DUE = "N", "C", "G", "*"
#: account states of the record (named plainly: provisional)
ACCOUNT_NORMAL, ACCOUNT_OVERDUE, ACCOUNT_SETTLED, ACCOUNT_ENDED = "normal", "overdue", "settled", "ended"
#: movement kinds that lower what is owed without a payment (a waiver is not paid)
NOT_PAID = ("waiver", "waived", "write_off")
LATE_CHARGE = "late_charge"
#: a settlement's deposit line (infra/settlements.py books it + so that the quote's lines add up to its amount due): the
#: deposit paid the debt — as its ``deposit_offset`` movements do at the end of a term —, so the lines it offsets count
#: as paid and this line is left out (counted, a deposit larger than the debt made the month's amount paid negative)
SETTLEMENT_DEPOSIT = "settlement_deposit"


class PeriodError(ValueError):
    """Not a reporting period (``YYYY-MM``)."""


@dataclass(frozen=True, order=True)
class Period:
    """A reporting period: one calendar month."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """``2026-04`` → Period(2026, 4); :class:`PeriodError` otherwise."""
        parts = text.strip().split("-") if isinstance(text, str) else []
        if len(parts) != 2 or len(parts[0]) != 4 or len(parts[1]) != 2 or not all(p.isdigit() for p in parts):
            raise PeriodError(f"{text!r} is not a month (YYYY-MM)")
        year, month = int(parts[0]), int(parts[1])
        if not 1 <= month <= 12 or year < 2000:
            raise PeriodError(f"{text!r} is not a month (YYYY-MM)")
        return cls(year, month)

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last(self) -> date:
        """The month's last day: the report's as-of date."""
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def previous(self) -> Period:
        return Period(self.year - 1, 12) if self.month == 1 else Period(self.year, self.month - 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def notice_day(period: Period) -> date:
    """The business date whose close of business texts the notices of ``period``: :data:`NOTICE_DAYS` before its last
    day (the text goes the morning after)."""
    return period.last - timedelta(days=NOTICE_DAYS)


def period_ended_by(business_date: date) -> Period | None:
    """The period whose report the close of ``business_date`` asks for: the month just ended, on the first close of a
    month (its first day; every calendar day is closed); None on any other day."""
    return Period.of(business_date).previous() if business_date.day == 1 else None


@dataclass(frozen=True)
class Movement:
    """A change of what an instalment owes (infra/servicing.py), signed fen: − a payment or a waiver, + a charge."""

    value_date: date
    kind: str
    principal: int
    interest: int
    penalty: int


@dataclass(frozen=True)
class InstalmentFacts:
    number: int
    due_on: date
    amount: int
    principal: int
    overdue_since: date | None
    movements: tuple[Movement, ...] = ()

    def unpaid(self, on: date) -> int:
        """Rent (principal and interest) left unpaid at the end of ``on``."""
        return max(0, self.amount + sum(m.principal + m.interest for m in self.movements if m.value_date <= on))

    def unpaid_principal(self, on: date) -> int:
        return max(0, min(self.unpaid(on), self.principal + sum(m.principal for m in self.movements
                                                                  if m.value_date <= on)))


@dataclass(frozen=True)
class LeaseFacts:
    """What the record of a lease is made of: the contract's number (the account id), its term, the financed amount,
    its state (``active``, ``settled``, ``ended``) and the day it closed (None while active), its instalments."""

    contract_number: str
    starts_on: date
    ends_on: date
    financed_amount: int
    status: str
    closed_on: date | None
    instalments: tuple[InstalmentFacts, ...]
    #: the lease's own movements, of no instalment (a settlement's interest, fee, deposit offset): part of what was paid
    lease_movements: tuple[Movement, ...] = ()


@dataclass(frozen=True)
class StatusRecord:
    """One lease's record of a month, money in fen (provisional field names: see the module's docstring)."""

    account_id: str
    open_date: date
    end_date: date
    financed_amount: int
    balance: int
    amount_due: int
    amount_paid: int
    overdue_periods: int
    overdue_amount: int
    overdue_principal_31_60: int
    overdue_principal_61_90: int
    overdue_principal_91_180: int
    overdue_principal_over_180: int
    repayment_status: str
    account_status: str
    closed_on: date | None
    #: rents overdue at the month end but not reported overdue this month (no notice reached the lessee in time)
    withheld_overdue: int = 0


def status_character(days_past_due: int) -> str:
    """The legend's digit for ``days_past_due`` (≥ 1): 1 for 1–30 days … 6 for 151–180, 7 over 180."""
    if days_past_due < 1:
        raise ValueError("not overdue")
    return str(min(7, (days_past_due - 1) // 30 + 1))


def status_record(lease: LeaseFacts, period: Period, *, noticed: bool) -> StatusRecord | None:
    """``lease``'s record for ``period`` (None: none is due — its term starts later, or it closed before the month);
    ``noticed``: the notice of this period was sent to the lessee (only then are its rents overdue on the notice day
    reported overdue)."""
    first, last = period.first, period.last
    if lease.starts_on > last or (lease.closed_on is not None and lease.closed_on < first):
        return None
    closed = lease.closed_on is not None and lease.closed_on <= last
    rents = lease.instalments
    amount_due = sum(i.amount for i in rents if first <= i.due_on <= last)
    moves = [m for i in rents for m in i.movements] + list(lease.lease_movements)
    amount_paid = max(0, -sum(m.principal + m.interest + m.penalty for m in moves
                              if first <= m.value_date <= last and m.kind not in NOT_PAID
                              and m.kind not in (LATE_CHARGE, SETTLEMENT_DEPOSIT)))
    late = [i for i in rents if i.overdue_since is not None and i.overdue_since <= last and i.unpaid(last) > 0]
    cutoff = notice_day(period)
    reported = [i for i in late if noticed and i.overdue_since is not None and i.overdue_since <= cutoff]
    withheld = len(late) - len(reported)
    balance = sum(i.unpaid_principal(last) for i in rents)
    buckets = {"31_60": 0, "61_90": 0, "91_180": 0, "over_180": 0}
    for i in reported:
        assert i.overdue_since is not None
        days = (last - i.overdue_since).days + 1
        name = "31_60" if 31 <= days <= 60 else "61_90" if 61 <= days <= 90 else \
            "91_180" if 91 <= days <= 180 else "over_180" if days > 180 else ""
        if name:
            buckets[name] += i.unpaid_principal(last)
    if closed:
        owed = sum(i.unpaid(last) for i in rents)
        status, account = (SETTLED, ACCOUNT_SETTLED) if owed == 0 and balance == 0 else (ENDED, ACCOUNT_ENDED)
    elif reported:
        oldest = min(i.overdue_since for i in reported if i.overdue_since is not None)
        status, account = status_character((last - oldest).days + 1), ACCOUNT_OVERDUE
    else:
        status = NORMAL if amount_due or late or any(i.due_on < first for i in rents) else NOTHING_DUE
        account = ACCOUNT_NORMAL
    return StatusRecord(
        account_id=lease.contract_number, open_date=lease.starts_on, end_date=lease.ends_on,
        financed_amount=lease.financed_amount, balance=balance, amount_due=amount_due, amount_paid=amount_paid,
        overdue_periods=len(reported), overdue_amount=sum(i.unpaid(last) for i in reported),
        overdue_principal_31_60=buckets["31_60"], overdue_principal_61_90=buckets["61_90"],
        overdue_principal_91_180=buckets["91_180"], overdue_principal_over_180=buckets["over_180"],
        repayment_status=status, account_status=account, closed_on=lease.closed_on if closed else None,
        withheld_overdue=withheld if not closed else 0)


# -- the file ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Subject:
    """The person a record is about: their name and ID number as their ID card states them (personal data: the file
    is never written anywhere public, never logged)."""

    name: str
    id_number: str
    id_type: str = "resident_identity_card"  # 居民身份证 (provisional name, not the bureau's code)


MONEY_FIELDS = ("financed_amount", "balance", "amount_due", "amount_paid", "overdue_amount", "overdue_principal_31_60",
                "overdue_principal_61_90", "overdue_principal_91_180", "overdue_principal_over_180")


def yuan_text(fen: int) -> str:
    """Fen as the file's yuan: two decimals, exact."""
    return f"{Decimal(fen) / 100:.2f}"


def file_record(record: StatusRecord, subject: Subject) -> dict[str, object]:
    """One record as the file carries it: dates ISO, money in yuan (two decimals), the subject's name and ID."""
    fields = asdict(record)
    fields.pop("withheld_overdue")
    out: dict[str, object] = {"name": subject.name, "id_type": subject.id_type, "id_number": subject.id_number}
    for key, value in fields.items():
        if key in MONEY_FIELDS:
            out[key] = yuan_text(int(value))
        elif isinstance(value, date):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def render_file(period: Period, reporter: str, records: Iterable[tuple[StatusRecord, Subject]]) -> bytes:
    """The month's file: one JSON document (UTF-8, keys sorted, records in account id order), the same bytes for
    the same records (its SHA-256 names what was sent)."""
    listed = sorted((file_record(r, s) for r, s in records), key=lambda r: str(r["account_id"]))
    document = {"layout": LAYOUT, "provisional": True, "period": str(period), "as_of": period.last.isoformat(),
                "reporter": reporter, "currency": "CNY", "amount_unit": "yuan", "record_count": len(listed),
                "records": listed}
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def counts(records: Sequence[StatusRecord]) -> dict[str, int]:
    """How many records of each repayment status character."""
    out: dict[str, int] = {}
    for r in records:
        out[r.repayment_status] = out.get(r.repayment_status, 0) + 1
    return dict(sorted(out.items()))
