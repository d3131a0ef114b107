"""The lease in force and the daily close of business (issue 18 §0–§2) on a real PostgreSQL database of their own (the
business date is one record for the whole database): instalments fixed to the fen from the handover record, dated
across month ends, a leap year and the Asia/Shanghai day boundary; the close marks rents due and overdue on China's
calendar and accrues late charges once — twice the same date changes nothing, a run killed midway and run again
ends as one run, ``--until`` rolls day by day. Figures are checked against independent reckonings: month arithmetic
with the standard calendar, late charges as base × daily rate × days, half-up once."""

from __future__ import annotations

import calendar
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from click.testing import Result
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from bff.servicing.close import SHANGHAI
from bff.servicing.close import CloseOfBusiness
from infra.db import Database
from infra.db.models import ApplicationRow
from infra.db.models import DealerGroupRow
from infra.db.models import DealerRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.db.models import ServicingMovementRow
from infra.servicing import BatchEvents
from infra.servicing import NotTheBusinessDate
from infra.servicing import SqlServicing
from infra.servicing import lease_plan
from leaseline.cli import main
from plans.inputs import parse_quote_request
from plans.policy import load_policy
from plans.quote import quote
from plans.quote import quote_as_dict
from servicing.calendar import PACKAGE_YEARS
from tests.conftest import postgres_database

pytestmark = pytest.mark.db
NOW = datetime(2026, 1, 10, 4, 0, tzinfo=UTC)
LATE_FEE = Decimal("0.000493")
DEALER = "d-servicing"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    from infra.db.migrate import upgrade

    for found in postgres_database("leaseline_servicing"):
        upgrade(found)
        yield found


@pytest.fixture
def repo(url: str) -> Iterator[SqlServicing]:
    """The servicing tables emptied, a dealer to lease from."""
    database = Database(url)
    with database.session() as s:
        s.execute(text("TRUNCATE servicing_movements, instalments, leases, close_runs, business_calendar CASCADE"))
        if s.get(DealerRow, DEALER) is None:
            s.add(DealerGroupRow(id="g-servicing", name="servicing group"))
            s.flush()
            s.add(DealerRow(id=DEALER, group_id="g-servicing", name="servicing dealer", city="上海"))
    yield SqlServicing(database)
    database.dispose()


def add_months(day: date, months: int) -> date:
    """An independent month count (the standard calendar): the same day, or the month's last."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def record(starts_on: date, *, term: int = 12, timing: str = "arrears", residual_ratio: str = "0",
           dated_from: str = "handover", late_fee: Decimal = LATE_FEE) -> dict[str, Any]:
    """A signed handover record as the contract service answers it (contract/handover.py), for a lease priced by
    plans.quote and dated from ``starts_on``."""
    q = quote_as_dict(quote(parse_quote_request({
        "price": "200000", "down_ratio": "0.2", "term": str(term), "rate": "0.0599", "residual_ratio": residual_ratio,
        "timing": timing, "deposit_ratio": "0.05"}, load_policy())))
    first = 0 if timing == "advance" else 1
    rows: list[dict[str, Any]] = q["schedule"]  # type: ignore[assignment]
    return {
        "id": uuid.uuid4().hex, "contract_id": uuid.uuid4().hex, "contract_number": "LL-TEST", "sha256": "0" * 64,
        "starts_on": starts_on.isoformat(), "ends_on": add_months(starts_on, term).isoformat(),
        "dated_from": dated_from,
        "schedule": [{"period": r["period"], "due_date": add_months(starts_on, r["period"] - 1 + first).isoformat(),
                      "payment": r["payment"]} for r in rows],
        "final_rent": {"due_date": add_months(starts_on, term).isoformat(), "amount": q["residual"]}
        if Decimal(str(q["residual"])) > 0 else None,
        "servicing": {"terms": {
            "source": "contract", "term": term, "timing": timing, "nominal_rate": "0.0599",
            "financed_amount": q["financed_amount"], "residual": q["residual"], "monthly_payment": q["monthly_payment"],
            "deposit": q["deposit"], "deposit_free": False, "purchase_price": "100.00",
            "late_fee_daily_rate": str(late_fee), "late_fee_base": "overdue_amount", "grace_days": 0,
            "default_cost_cap": "0.24",
            "early_settlement": {"any_day": True, "fee_rate": "0.03", "day_count": "ACT/360",
                                 "notice_working_days": 5}},
            "amortisation": [{"period": r["period"], "principal": r["principal"], "interest": r["interest"],
                              "balance": r["balance"]} for r in rows]},
    }


def open_lease(repo: SqlServicing, handover: dict[str, Any], application_id: str | None = None) -> str | None:
    application_id = application_id or str(uuid.uuid4())
    with repo.db.session() as s:
        if s.get(ApplicationRow, application_id) is None:
            s.add(ApplicationRow(id=application_id, dealer_id=DEALER, status="delivered", vehicle_id="v",
                                 vehicle_label="v", plan_code="p", plan_json="{}", draft_enc=""))
            s.flush()
        return repo.open_lease(s, application_id, DEALER, lease_plan(handover), NOW)


def fen(value: object) -> int:
    return int(Decimal(str(value)) * 100)


def late_charge(base_fen: int, days: int, rate: Decimal = LATE_FEE) -> int:
    """base × daily rate × days, half-up to the fen once."""
    return int((Decimal(base_fen) / 100 * rate * days).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)


def state(repo: SqlServicing) -> list[tuple[Any, ...]]:
    """Everything the close touches, in a comparable form."""
    with repo.db.session() as s:
        rows = s.execute(select(InstalmentRow.lease_id, InstalmentRow.number, InstalmentRow.state,
                                InstalmentRow.penalty_accrued, InstalmentRow.penalty_through,
                                InstalmentRow.overdue_since).order_by(InstalmentRow.lease_id, InstalmentRow.number))
        moves = s.execute(select(ServicingMovementRow.key, ServicingMovementRow.penalty).order_by(
            ServicingMovementRow.key))
        leases = s.execute(select(LeaseRow.id, LeaseRow.closed_through).order_by(LeaseRow.id))
        return [*map(tuple, rows), *map(tuple, moves), *map(tuple, leases)]


def test_a_lease_in_force_has_its_contract_schedule_to_the_fen_on_the_lease_s_calendar(repo: SqlServicing) -> None:
    # from 31 January 2028, in arrears: rent 1 on the leap day, then every month's last day where it has no 31st
    handover = record(date(2028, 1, 31), term=13, residual_ratio="0.2")
    lease_id = open_lease(repo, handover)
    assert lease_id is not None
    with repo.db.session() as s:
        lease = s.get(LeaseRow, lease_id)
        rows = list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                              .order_by(InstalmentRow.number)))
    terms = handover["servicing"]["terms"]
    assert lease is not None and lease.starts_on == date(2028, 1, 31) and lease.ends_on == date(2029, 2, 28)
    assert (lease.late_fee_daily_rate, lease.default_cost_cap, lease.settlement_fee_rate) == (
        LATE_FEE, Decimal("0.24"), Decimal("0.03"))
    assert [r.due_on for r in rows[:4]] == [date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30), date(2028, 5, 31)]
    assert len(rows) == 14 and rows[-1].kind == "final_rent" and rows[-1].due_on == date(2029, 2, 28)
    for row, planned in zip(rows, handover["schedule"], strict=False):
        split = handover["servicing"]["amortisation"][row.number - 1]
        assert (row.amount, row.principal, row.interest) == (fen(planned["payment"]), fen(split["principal"]),
                                                             fen(split["interest"]))
        assert row.state == "pending" and row.penalty_accrued == 0
    assert rows[-1].amount == rows[-1].principal == fen(terms["residual"]) > 0
    assert sum(r.principal for r in rows) == fen(terms["financed_amount"])
    # signing again (a retry, another device) creates nothing more
    assert open_lease(repo, handover, lease.application_id) is None
    with repo.db.session() as s:
        assert s.execute(select(func.count()).select_from(LeaseRow)).scalar_one() == 1
    # in advance the first rent is on the commencement day, paid with the amounts due at signing
    advance = record(date(2027, 1, 31), timing="advance")
    rows = instalments(repo, open_lease(repo, advance))
    assert [r.due_on for r in rows[:3]] == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31)]
    assert rows[0].state == "paid" and rows[0].paid_principal + rows[0].paid_interest == rows[0].amount
    assert [m.kind for m in repo.movements(rows[0].lease_id)] == ["paid_at_signing"]
    # a record whose dates are not the lease's calendar is refused; an older contract's own dates stand
    wrong = record(date(2027, 1, 31))
    wrong["schedule"][1]["due_date"] = "2027-03-03"
    with pytest.raises(ValueError, match="calendar"):
        lease_plan(wrong)
    wrong["dated_from"] = "contract"
    assert lease_plan(wrong).instalments[1].due_on == date(2027, 3, 3)
    del wrong["servicing"]
    with pytest.raises(ValueError, match="servicing terms"):
        lease_plan(wrong)


def instalments(repo: SqlServicing, lease_id: str | None) -> list[InstalmentRow]:
    with repo.db.session() as s:
        return list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                              .order_by(InstalmentRow.number)))


def test_the_close_marks_rents_due_then_overdue_after_a_holiday_and_accrues_late_charges_once(
        repo: SqlServicing) -> None:
    # rent 1 of a lease from 15 January 2026 is due on Sunday 15 February, in the Spring Festival break (15–23
    # February): payable until Tuesday 24 February, overdue from the 25th
    lease_id = open_lease(repo, record(date(2026, 1, 15)))
    repo.start_business_date(date(2026, 2, 14), NOW)
    close = CloseOfBusiness(repo, clock=lambda: NOW)
    with pytest.raises(NotTheBusinessDate):
        close.close(date(2026, 2, 20))  # a date ahead of the business date
    close.close_until(date(2026, 2, 15))
    rent, second = instalments(repo, lease_id)[:2]
    assert rent.state == "due" and second.state == "pending"
    close.close_until(date(2026, 2, 24))
    assert instalments(repo, lease_id)[0].state == "due"
    close.close_until(date(2026, 3, 2))
    rent = instalments(repo, lease_id)[0]
    assert rent.state == "overdue" and rent.overdue_since == date(2026, 2, 25)
    # 25 February – 2 March: 6 days on the overdue rent, rounded once
    assert rent.penalty_accrued == late_charge(rent.amount, 6) and rent.penalty_through == date(2026, 3, 2)
    charges = [m for m in repo.movements(lease_id or "") if m.kind == "late_charge"]
    assert len(charges) == 6 and sum(m.penalty for m in charges) == rent.penalty_accrued
    assert repo.business_date() == date(2026, 3, 3)
    # the same date again (by hand, or a second worker) changes nothing
    before = state(repo)
    again = close.close(date(2026, 2, 27))
    assert again.already and again.done and state(repo) == before and repo.business_date() == date(2026, 3, 3)


def test_a_close_killed_midway_resumes_with_nothing_booked_twice(repo: SqlServicing) -> None:
    for _ in range(7):
        open_lease(repo, record(date(2026, 3, 10)))  # rent 1 due Friday 10 April 2026, overdue from the 11th
    repo.start_business_date(date(2026, 4, 9), NOW)
    CloseOfBusiness(repo, clock=lambda: NOW).close_until(date(2026, 4, 11))
    batches: list[int] = []

    def killed(events: BatchEvents) -> None:  # the process dies in its second batch, after booking its late charges
        batches.append(len(events.lease_ids))
        if len(batches) == 2:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        CloseOfBusiness(repo, batch_size=3, clock=lambda: NOW, hooks=[killed]).close(date(2026, 4, 12))
    run = repo.close_run(date(2026, 4, 12))
    assert run is not None and run.status == "running" and run.leases == 3 and run.batches == 1
    assert repo.business_date() == date(2026, 4, 12)  # not moved before the date is complete
    outcome = CloseOfBusiness(repo, batch_size=3, clock=lambda: NOW).close(date(2026, 4, 12))
    assert outcome.done and outcome.run.runs == 2 and outcome.run.leases == 7
    assert repo.business_date() == date(2026, 4, 13)
    # as one run: every lease the same, two days' late charge each, one movement per rent and day
    with repo.db.session() as s:
        rents = list(s.scalars(select(InstalmentRow).where(InstalmentRow.number == 1)))
        keys = s.execute(select(ServicingMovementRow.key)).scalars().all()
    assert len(rents) == 7 and {(r.state, r.penalty_accrued) for r in rents} == {
        ("overdue", late_charge(rents[0].amount, 2))}
    assert len(keys) == len(set(keys)) == 14


def test_the_periodic_close_follows_the_day_in_asia_shanghai(repo: SqlServicing) -> None:
    repo.start_business_date(date(2027, 2, 27), NOW)
    before_midnight = datetime(2027, 2, 27, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Beijing
    assert CloseOfBusiness(repo, clock=lambda: before_midnight).close_due() == []
    after_midnight = before_midnight + timedelta(seconds=1)  # 28 February, 00:00 in Beijing
    closed = CloseOfBusiness(repo, clock=lambda: after_midnight).close_due()
    assert [o.business_date for o in closed] == [date(2027, 2, 27)] and repo.business_date() == date(2027, 2, 28)


def cli(url: str, *args: str) -> Result:
    """``leaseline …`` in this process (click's runner: a subprocess costs seconds of imports) on ``url``."""
    return CliRunner().invoke(main, list(args), env={"LEASELINE_DATABASE_URL": url}, catch_exceptions=False)


def usage_error(result: Result, *words: str) -> None:
    """Exit code 2 and one line, no traceback (leaseline.cli's Fail)."""
    assert result.exit_code == 2 and result.stdout == "", (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and all(word in lines[0] for word in words), result.stderr


def test_the_command_line_rolls_day_by_day_and_loads_a_calendar(repo: SqlServicing, url: str,
                                                                 tmp_path: Path) -> None:
    repo.start_business_date(date(2026, 12, 28), NOW)
    shown = cli(url, "servicing", "date", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["business_date"] == "2026-12-28"
    rolled = cli(url, "servicing", "close", "--until", "2027-01-02", "--json")
    assert rolled.exit_code == 0, rolled.output
    days = [json.loads(line) for line in rolled.stdout.splitlines()]
    assert [d["business_date"] for d in days] == [f"2026-12-{d}" for d in (28, 29, 30, 31)] + ["2027-01-01",
                                                                                                  "2027-01-02"]
    assert all(d["done"] and not d["already_closed"] for d in days)
    assert cli(url, "servicing", "date").stdout.strip() == "2027-01-03"
    replay = cli(url, "servicing", "close", "--date", "2026-12-30")
    assert replay.exit_code == 0 and "already closed, nothing changed" in replay.stdout
    usage_error(cli(url, "servicing", "close", "--date", "2027-02-01"), "business date")
    usage_error(cli(url, "servicing", "close", "--date", "2027-13-01"), "--date")
    # a year beyond the package's: ops load its calendar
    year = max(PACKAGE_YEARS) + 1
    assert "warning: no published calendar for " + str(year) in cli(url, "servicing", "date").stderr
    file = tmp_path / f"{year}.csv"
    saturday = date(year, 1, 1) + timedelta(days=(5 - date(year, 1, 1).weekday()) % 7 + 35)
    file.write_text(f"date,kind,name\n{year}-01-01,holiday,元旦\n{saturday.isoformat()},workday,春节调休\n",
                    encoding="utf-8")
    loaded = cli(url, "servicing", "calendar", "load", str(file))
    assert loaded.exit_code == 0 and "2 days loaded" in loaded.stdout, loaded.output
    cal = repo.calendar()
    assert not cal.is_business_day(date(year, 1, 1)) and cal.is_business_day(saturday) and saturday.weekday() == 5
    file.write_text("date,kind\n2040-01-01,someday\n", encoding="utf-8")
    usage_error(cli(url, "servicing", "calendar", "load", str(file)), "line 2")


def production(url: str) -> dict[str, str]:
    """A production configuration (every setting production requires), on ``url``."""
    from infra.sms import TEMPLATES

    return {"LEASELINE_ENV": "production", "LEASELINE_DATABASE_URL": url, "LEASELINE_SECRET_KEY": "k" * 40,
            "LEASELINE_PII_KEY": "p", "LEASELINE_STRIPE_SECRET_KEY": "sk_live_x",
            "LEASELINE_STRIPE_WEBHOOK_SECRET": "whsec_x", "LEASELINE_STRIPE_PUBLISHABLE_KEY": "pk_live_x",
            "LEASELINE_SMS": "tencent", "LEASELINE_TENCENT_SMS_SECRET_ID": "AKID",
            "LEASELINE_TENCENT_SMS_SECRET_KEY": "key", "LEASELINE_TENCENT_SMS_APP_ID": "1400006666",
            "LEASELINE_TENCENT_SMS_TEMPLATES": json.dumps({n: str(1110001 + i) for i, n in enumerate(TEMPLATES)}),
            "LEASELINE_PUBLIC_URL": "https://leaseline.example"}


def test_production_closes_only_the_days_that_have_ended_in_beijing(repo: SqlServicing, url: str) -> None:
    """Closing a day that has not ended marks its rents late before their day is over: production refuses it (exit 2,
    one line, nothing closed) unless --demo says it is a demo rolled forward."""
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    repo.start_business_date(today - timedelta(days=2), NOW)
    env = production(url)

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["servicing", "close", *args], env=env, catch_exceptions=False)

    usage_error(run("--until", today.isoformat()), today.isoformat(), "not ended", "--demo")
    assert repo.business_date() == today - timedelta(days=2)  # nothing closed
    closed = run("--until", (today - timedelta(days=1)).isoformat(), "--json")
    assert closed.exit_code == 0 and len(closed.stdout.splitlines()) == 2, closed.output
    assert repo.business_date() == today
    usage_error(run(), "not ended")  # the business date: today
    usage_error(run("--date", today.isoformat()), "not ended")
    assert repo.business_date() == today
    demo = run("--demo", "--until", (today + timedelta(days=1)).isoformat(), "--json")
    assert demo.exit_code == 0 and len(demo.stdout.splitlines()) == 2, demo.output
    assert repo.business_date() == today + timedelta(days=2)


def test_two_closes_at_once_do_not_deadlock(repo: SqlServicing) -> None:
    """The worker's periodic close and `leaseline servicing close` at once: one finishing the date while the other
    begins it. Both take the business date's lock before the run's (begin_close and finish_close alike), so neither
    waits for the other in a cycle — before, finish_close took the run's first and PostgreSQL aborted one of them."""
    open_lease(repo, record(date(2026, 3, 10)))
    day = date(2026, 4, 9)
    repo.start_business_date(day, NOW)
    repo.begin_close(day, NOW)
    while repo.close_batch(day, repo.calendar(), 500, NOW):
        pass
    finishing = threading.Event()

    def slow_count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:  # widens finish_close's window
        if threading.current_thread().name == "finisher" and "count(*)" in statement and "leases" in statement:
            finishing.set()
            time.sleep(1.5)  # PostgreSQL looks for a deadlock after deadlock_timeout (1 s)

    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            if name == "finisher":
                assert repo.finish_close(day, NOW)
            else:
                assert finishing.wait(5)
                repo.begin_close(day, NOW)
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    event.listen(repo.db.engine, "before_cursor_execute", slow_count)
    try:
        threads = [threading.Thread(target=run, args=(n,), name=n) for n in ("finisher", "beginner")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        event.remove(repo.db.engine, "before_cursor_execute", slow_count)
    assert not errors, [f"{type(e).__name__}: {str(e).splitlines()[0]}" for e in errors]
    finished = repo.close_run(day)
    assert repo.business_date() == day + timedelta(days=1) and finished is not None and finished.status == "done"
