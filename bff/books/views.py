"""The books on the ops desk (issue 19 §4): ``/books``, the month close with four eyes (one ops user asks, another
approves: infra/month_close.py), and the reports — the trial balance at a date, the income statement by month, the
receivable's ageing, the VAT summary for the monthly return, the dealers' statements (分账对账单) — each a page and a
CSV and an XLSX download (``?format=csv|xlsx``) of the same tables (bff/books/tables.py). A dealer's admin sees their
own dealer's statement, on the phone (its page fits); another dealer's is not found.

Every figure is read in one REPEATABLE READ snapshot (the tables of a page agree with each other) by the day entries
are booked: a closed month's figures do not change when a late event is booked after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from flask import Blueprint
from flask import Response
from flask import abort
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from sqlalchemy import text
from sqlalchemy.orm import Session

from bff.auth.roles import can_see
from bff.auth.session import client
from bff.auth.session import requires
from bff.books.tables import Money
from bff.books.tables import Table
from bff.books.tables import to_csv
from bff.books.tables import to_xlsx
from bff.errors import http_message
from bff.payments.common import utc_now
from bff.services import services
from books.chart import load_chart
from books.reports import BUCKETS
from books.reports import FIRST_YEAR
from books.reports import LAST_YEAR
from books.reports import MOVE_KINDS
from books.reports import ageing
from books.reports import dealer_statement
from books.reports import first_day
from books.reports import in_books_years
from books.reports import income_statement
from books.reports import last_day
from books.reports import month_of
from books.reports import months_between
from books.reports import receivable_of
from books.reports import trial_balance
from books.reports import vat_summary
from infra import books_reports as reads
from infra.month_close import CloseRefused
from infra.month_close import MonthClose
from infra.month_close import OwnApproval
from infra.servicing import current_business_date

bp = Blueprint("books", __name__)
#: the longest span of months a report shows at once
MAX_MONTHS = 36
#: the buckets' heads (books/reports.py BUCKETS)
BUCKET_NAMES = {"current": lazy_gettext("Not past due"), "1-30": lazy_gettext("1–30 days"),
                "31-60": lazy_gettext("31–60 days"), "61-90": lazy_gettext("61–90 days"),
                "90+": lazy_gettext("Over 90 days")}
#: a dealer statement's kinds of movement, as a dealer reads them (books/reports.py DEALER_MOVES)
MOVE_NAMES = {"car_financed": lazy_gettext("Car price owed to you"),
              "car_paid": lazy_gettext("Car price paid to you"),
              "down_payment": lazy_gettext("Down payment collected for you"),
              "share_transferred": lazy_gettext("Down payment transferred to you"),
              "refunded": lazy_gettext("Down payment refunded to the customer"),
              "refinanced": lazy_gettext("Refinancing"), "other": lazy_gettext("Other")}
FORMATS = ("csv", "xlsx")


# -- helpers ----------------------------------------------------------------------------------------------------------
@contextmanager
def _snapshot() -> Iterator[Session]:
    """One read-only REPEATABLE READ transaction for a report's reads."""
    with services().db.sessions() as session:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        session.execute(text("SET TRANSACTION READ ONLY"))
        try:
            yield session
        finally:
            session.rollback()


def _today(session: Session) -> date:
    return current_business_date(session)


class BadInput(Exception):
    """A value a books page or form cannot use: answered 422 with a page naming ``field`` (:func:`_bad_input`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@bp.errorhandler(BadInput)
def _bad_input(exc: BadInput) -> Any:
    """The refusal as the other blueprints' field errors (error.html with the field's error listed), leading back to
    the report as it opens (a form's: to the month close)."""
    back = url_for(request.endpoint or "books.index", **(request.view_args or {})) if request.method == "GET" \
        else url_for("books.index")
    return render_template("error.html", status=422, message=http_message(422),
                           errors=[f"{exc.field}: {exc.message}"], back=back,
                           back_label=_("Back to the books")), 422


def _day_arg(name: str, default: date) -> date:
    value = request.args.get(name, "").strip()
    if not value:
        return default
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or not in_books_years(day):
        raise BadInput(name, _("give a day as YYYY-MM-DD, from %(first)s-01-01 to %(last)s-12-31.", first=FIRST_YEAR,
                               last=LAST_YEAR))
    return day


def _month(name: str, value: str) -> date:
    """``value`` (YYYY-MM) as its first day: :class:`BadInput` naming ``name`` when it is no month."""
    try:
        return first_day(value)
    except ValueError:
        raise BadInput(name, _("give a month as YYYY-MM, from %(first)s-01 to %(last)s-12.", first=FIRST_YEAR,
                               last=LAST_YEAR)) from None


def _month_arg(name: str, default: str) -> str:
    value = request.args.get(name, "").strip()
    return month_of(_month(name, value)) if value else default


def _months(start: str, end: str) -> tuple[str, ...]:
    """The months ``start`` to ``end`` of a report (:class:`BadInput` when none or more than :data:`MAX_MONTHS`)."""
    months = months_between(start, end)
    if not months:
        raise BadInput("from", _("the first month comes after the last (to %(end)s).", end=end))
    if len(months) > MAX_MONTHS:
        raise BadInput("from", _("a report shows at most %(count)s months at once.", count=MAX_MONTHS))
    return months


def _names(account: Any) -> str:
    """The account's name in the reader's language."""
    return str(account.zh if _zh() else account.en)


def _zh() -> bool:
    from flask_babel import get_locale

    return str(get_locale() or "zh_CN").startswith("zh")


def _answer(template: str, tables: list[Table], name: str, heading: list[str], **context: Any) -> Any:
    """The page, or its tables as a download (``?format=csv|xlsx``); the file named ``name``."""
    fmt = request.args.get("format", "")
    if fmt == "csv":
        response = Response(to_csv(tables, heading), mimetype="text/csv")
    elif fmt == "xlsx":
        response = Response(to_xlsx(tables, heading),
                            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    elif fmt:
        raise BadInput("format", _("choose csv or xlsx."))
    else:
        return render_template(template, tables=tables, heading=heading, formats=FORMATS, **context)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


# -- the month close --------------------------------------------------------------------------------------------------
@bp.get("/books")
@requires("books.view")
def index() -> Any:
    return _overview(notice=request.args.get("notice", ""))


@bp.post("/books/check")
@requires("books.close")
def check_now() -> Any:
    """Ask for the next month's close checks: they read the whole portfolio (minutes at 100,000 leases), so a worker
    runs them (``books.close_check``) and the request answers at once; none is queued while one waits or runs. The
    page says the check is under way, then shows what it found, with its time."""
    queued, _job = MonthClose(services().db).ask_check(actor_id=g.user.id, actor_label=g.user.email, now=utc_now(),
                                                       client=_client())
    return redirect(url_for("books.index", notice="check_queued" if queued else "check_under_way"), 303)


def _overview(status: int = 200, error: str = "", refused: Any = None, notice: str = "") -> Any:
    overview = MonthClose(services().db).overview()
    chart = load_chart()
    return render_template("books/index.html", o=overview, error=error, refused=refused, notice=notice,
                           month_of=month_of, last_day=last_day,
                           account_names={name: _names(a) for name, a in chart.accounts.items()}), status


def _close(period: str) -> date:
    """The month ``period`` names (:class:`BadInput`, 422, when it names none)."""
    return _month("month", period)


@bp.post("/books/close")
@requires("books.close")
def request_close() -> Any:
    """Ask for a month's close (the form's ``month``, YYYY-MM)."""
    value = request.form.get("month", "").strip()
    if not value:
        return _overview(422, _("Choose the month to close."))
    month = _close(value)
    try:
        MonthClose(services().db).request(month, actor_id=g.user.id, actor_label=g.user.email, now=utc_now(),
                                          client=_client())
    except CloseRefused as exc:
        return _refused(exc, month)
    return redirect(url_for("books.index", notice="requested"), 303)


def _client() -> tuple[str, str]:
    c = client()
    return c.ip, c.user_agent


#: a request id's longest text: a bigint holds any 18 digits
REQUEST_ID_DIGITS = 18


def _request_id() -> int | None:
    """The form's ``request_id``: ASCII digits, at most :data:`REQUEST_ID_DIGITS` (None otherwise: not named)."""
    value = request.form.get("request_id", "").strip()
    ok = value.isascii() and value.isdigit() and len(value) <= REQUEST_ID_DIGITS
    return int(value) if ok else None


@bp.post("/books/months/<period>/approve")
@requires("books.close")
def approve(period: str) -> Any:
    """Approve the month's close request the form names (``request_id``: the one the approver saw)."""
    month, request_id = _close(period), _request_id()
    if request_id is None:
        return _overview(422, _("The request to approve is not named: open the books page again."))
    try:
        MonthClose(services().db).approve(month, request_id, actor_id=g.user.id, actor_label=g.user.email,
                                          now=utc_now(), client=_client())
    except CloseRefused as exc:
        return _refused(exc, month)
    return redirect(url_for("books.index", notice="closed"), 303)


@bp.post("/books/months/<period>/withdraw")
@requires("books.close")
def withdraw(period: str) -> Any:
    month, request_id = _close(period), _request_id()
    if request_id is None:
        return _overview(422, _("The request to withdraw is not named: open the books page again."))
    try:
        MonthClose(services().db).withdraw(month, request_id, actor_id=g.user.id, actor_label=g.user.email,
                                           now=utc_now(), client=_client())
    except CloseRefused as exc:
        return _refused(exc, month)
    return redirect(url_for("books.index", notice="withdrawn"), 303)


def _refused(exc: CloseRefused, month: date) -> Any:
    label = month_of(month)
    if isinstance(exc, OwnApproval):
        return _overview(403, _("You asked for the close of %(month)s: another ops user must approve it (four eyes).",
                                month=label))
    messages = {
        "pending": _("The close of %(month)s was already asked for: it waits for another ops user's approval.",
                     month=label),
        "blocked": _("%(month)s cannot be closed now: see what blocks it below.", month=label),
        "gone": _("No request to close %(month)s waits for approval: it was approved or withdrawn meanwhile.",
                  month=label),
        "not_yours": _("Only the ops user who asked for the close of %(month)s can withdraw it.", month=label),
    }
    return _overview(403 if exc.code == "not_yours" else 409, messages.get(exc.code, str(exc)), refused=exc.check)


# -- reports ----------------------------------------------------------------------------------------------------------
@bp.get("/books/trial-balance")
@requires("books.view")
def trial_balance_page() -> Any:
    with _snapshot() as session:
        today = _today(session)
        on = _day_arg("date", today)
        tb = trial_balance(load_chart(), reads.balances_at(session, on), on)
    rows: list[list[Any]] = [[line.code, line.account, _names(line), Money(line.debit), Money(line.credit)]
                             for line in tb.lines]
    rows.append(["", "", _("Total"), Money(tb.total_debit), Money(tb.total_credit)])
    table = Table(_("Trial balance"), [_("Account code"), _("Account"), _("Account name"), _("Debit"), _("Credit")],
                  rows, total=1, testid="trial-balance", keys=[line.account for line in tb.lines] + ["total"])
    heading = [_("Trial balance at the end of %(day)s", day=on.isoformat())]
    return _answer("books/report.html", [table], f"trial-balance-{on.isoformat()}", heading, report="trial_balance",
                   on=on, today=today, balanced=tb.balanced)


@bp.get("/books/income")
@requires("books.view")
def income_page() -> Any:
    with _snapshot() as session:
        today = _today(session)
        end = _month_arg("to", month_of(today))
        start = _month_arg("from", month_of(first_day(end).replace(month=1)))
        months = _months(start, end)
        movements = reads.monthly_movements(session, first_day(start), last_day(first_day(end)))
    statement = income_statement(load_chart(), movements, months)
    columns = [_("Account code"), _("Account"), _("Account name"), *months, _("Total")]
    rows: list[list[Any]] = []
    keys: list[str] = []
    for part, label, lines, totals in (("income", _("Total income"), statement.income, statement.total_income),
                                       ("expenses", _("Total expenses"), statement.expenses,
                                        statement.total_expenses)):
        for line in lines:
            rows.append([line.code, line.account, _names(line), *map(Money, line.months), Money(line.total)])
            keys.append(line.account)
        rows.append(["", "", label, *map(Money, totals), Money(sum(totals))])
        keys.append(f"total-{part}")
    rows.append(["", "", _("Net income"), *map(Money, statement.net), Money(statement.net_total)])
    keys.append("net")
    table = Table(_("Income statement"), columns, rows, total=1, testid="income-statement", keys=keys)
    heading = [_("Income statement by month, %(start)s to %(end)s (by the month entries are booked in)",
                 start=start, end=end)]
    return _answer("books/report.html", [table], f"income-{start}-{end}", heading, report="income", start=start,
                   end=end, today=today)


@bp.get("/books/ageing")
@requires("books.view")
def ageing_page() -> Any:
    with _snapshot() as session:
        today = _today(session)
        on = _day_arg("date", today)
        report = ageing(reads.outstanding(session, on), on, receivable_of(reads.balances_at(session, on)))
        names = reads.dealer_names(session)
    heads = [str(BUCKET_NAMES[b]) for b in BUCKETS]
    rows: list[list[Any]] = [[names.get(row.key, row.key), row.leases, *map(Money, row.buckets), Money(row.total)]
                             for row in report.dealers]
    rows.append([_("Portfolio"), report.total.leases, *map(Money, report.total.buckets), Money(report.total.total)])
    table = Table(_("Receivable ageing"), [_("Dealer"), _("Leases"), *heads, _("Total")], rows, total=1,
                  testid="ageing", keys=[row.key for row in report.dealers] + ["total"])
    check = Table(_("Against the ledger"), [_("Figure"), _("Amount")], [
        [_("Lease payments receivable by the instalments"), Money(report.total.total)],
        [_("Lease payments receivable in the ledger (1531.01)"), Money(report.ledger)],
        [_("Difference"), Money(report.difference)]], total=1, testid="ageing-check",
        keys=["instalments", "ledger", "difference"])
    heading = [_("Receivable ageing at the end of %(day)s (days past due)", day=on.isoformat())]
    return _answer("books/report.html", [table, check], f"ageing-{on.isoformat()}", heading, report="ageing", on=on,
                   today=today)


@bp.get("/books/vat")
@requires("books.view")
def vat_page() -> Any:
    with _snapshot() as session:
        today = _today(session)
        end = _month_arg("to", month_of(today))
        start = _month_arg("from", month_of(first_day(end).replace(month=1)))
        months = _months(start, end)
        summary = vat_summary(reads.vat_movements(session, first_day(start), last_day(first_day(end))), months)
    by_month = Table(_("VAT by month"), [_("Month"), _("Output VAT"), _("Input VAT"), _("Payable")],
                     [[m.month, Money(m.output), Money(m.input), Money(m.payable)] for m in summary.months]
                     + [[_("Total"), Money(summary.output), Money(summary.input),
                         Money(summary.output - summary.input)]], total=1, testid="vat-months",
                     keys=[*(m.month for m in summary.months), "total"])
    by_rate = Table(_("Output VAT by rate"), [_("Month"), _("Rate"), _("Taxable amount"), _("Output VAT"),
                                              _("Of which on no stated amount")],
                    [[r.month, f"{r.rate * 100:.0f}%" if r.rate is not None else _("Rate not identified"),
                      Money(r.base), Money(r.output), Money(r.untold)] for r in summary.by_rate], testid="vat-rates",
                    keys=[f"{r.month}:{r.rate}" for r in summary.by_rate])
    heading = [_("VAT summary, %(start)s to %(end)s (by the month entries are booked in)", start=start, end=end)]
    return _answer("books/report.html", [by_month, by_rate], f"vat-{start}-{end}", heading, report="vat",
                   start=start, end=end, today=today)


# -- the dealers' statements ------------------------------------------------------------------------------------------
#: how many characters of a dealer's id name its statement's file (its own id: never a person's data)
FILE_ID_CHARACTERS = 8


def _file_id(dealer_id: str) -> str:
    """The dealer in a file name: the first :data:`FILE_ID_CHARACTERS` ASCII letters and digits of its id (a UUID's
    first eight hex digits), safe in a Content-Disposition header and on any file system."""
    return "".join(c for c in dealer_id if c.isascii() and c.isalnum())[:FILE_ID_CHARACTERS]


@bp.get("/books/dealers")
@requires("books.view")
def dealers_page() -> Any:
    with _snapshot() as session:
        today = _today(session)
        on = _day_arg("date", today)
        balances = reads.dealer_balances(session, on)
    return render_template("books/dealers.html", balances=[(b, Money(b.owed)) for b in balances], on=on, today=today,
                           total=Money(sum(b.owed for b in balances)), month=month_of(on))


@bp.get("/books/dealers/<dealer_id>/statement")
@requires("books.statement")
def statement_page(dealer_id: str) -> Any:
    """The dealer's statement of a month (``?month=YYYY-MM``; default: the business date's, to the business date)."""
    if not can_see(g.user, dealer_id):
        abort(404)
    with _snapshot() as session:
        names = reads.dealer_names(session)
        if dealer_id not in names:
            abort(404)
        today = _today(session)
        month = _month_arg("month", month_of(today))
        start = first_day(month)
        end = min(last_day(start), today) if start <= today else last_day(start)
        found = dealer_statement(dealer_id, reads.dealer_lines(session, dealer_id, end), start, end)
    moves = Table(_("Movements"), [_("Booked"), _("Date"), _("Contract"), _("What"), _("Amount"), _("Balance after")],
                  [[m.booked_on.isoformat(), m.value_date.isoformat(), m.reference, str(MOVE_NAMES[m.move]),
                    Money(m.amount), Money(m.balance)] for m in found.moves], testid="statement-moves",
                  keys=[m.key for m in found.moves])
    kinds = [k for k in MOVE_KINDS if any(k in lease.moves for lease in found.leases)]
    leases = Table(_("By lease"), [_("Contract"), *(str(MOVE_NAMES[k]) for k in kinds), _("Fees kept by the lessor"),
                                   _("Owed to you for it")],
                   [[lease.reference, *(Money(lease.moves.get(k, 0)) for k in kinds), Money(lease.fees),
                     Money(lease.balance)] for lease in found.leases], testid="statement-leases",
                   keys=[lease.reference for lease in found.leases])
    summary = Table(_("Summary"), [_("Figure"), _("Amount")], [
        [_("Owed to you at the start"), Money(found.opening)],
        *([str(MOVE_NAMES[k]), Money(found.total(k))] for k in MOVE_KINDS if found.total(k)),
        [_("Fees kept by the lessor"), Money(found.fees)],
        [_("Owed to you at the end"), Money(found.closing)]], total=1, testid="statement-summary",
        keys=["opening", *(k for k in MOVE_KINDS if found.total(k)), "fees", "closing"])
    name = names[dealer_id]
    heading = [_("Statement of %(dealer)s, %(start)s to %(end)s", dealer=name, start=start.isoformat(),
                 end=end.isoformat())]
    file_name = f"statement-{_file_id(dealer_id)}-{month}"  # one per dealer and month
    return _answer("books/statement.html", [summary, moves, leases], file_name, heading,
                   dealer_id=dealer_id, dealer=name, month=month, start=start, end=end, closing=Money(found.closing),
                   today=today)
