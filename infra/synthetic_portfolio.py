"""A synthetic portfolio of leases in force, for the servicing's bench (issue 18, Targets: the close of business for
100,000 active leases): ``leaseline demo portfolio --leases N [--seed S]`` loads it, ``--drop`` removes it.

Every lease belongs to one dealer, :data:`DEALER` ("合成组合 synthetic portfolio", in its own dealer group, with no
user), its application and contract numbers are marked ``SYN-``, so it never mixes with the demo's or a customer's
leases and goes whole with ``--drop``. The leases are as the signed handover record would create them
(:meth:`infra.servicing.SqlServicing.open_lease`): each priced by plans.quote (prices, down payments, rates, a
balloon or none, rents in advance or in arrears, terms of 12 to 60 months), dated by plans.timeline, with a
contract's servicing terms (today's, with the cost cap, some on the principal, some with grace days, some stating a
rate above the cap; and older contracts' 0.05 %/day without one). Their commencement dates are spread over the last
five years (within each lease's term: every lease is active), and the portfolio is as the daily closes through the
day before the business date left it: rents due before it paid (a payment movement each), and some leases behind —
one rent, or two to four (M2, M3+), some partly paid, before or after they turned overdue — with their late charges
accrued through that day by :func:`infra.servicing.late_charge` (one movement per instalment), so the next close is
a day like any other.

Its books are posted with it, as a lease's events would have posted them (books/lease.py), in the load's transaction
through :func:`infra.books.post` (one call a chunk: its arrays in a few statements): each lease's commencement
(``lease:<id>:commenced``, on its start), its dealer paid for the car that day (``dealer_funding:<id>``: no origination,
no upfront payment), and each rent it marks paid, in full or in part, as collected outside Leaseline on the day its
payment movement is dated (``collected_outside:<id>:<number>``: Dr the collections account; rent 1 in advance too, there
being no upfront payment to apply it from), the VAT its rents carry (``lease:<id>:vat``) and the tax point of each rent
due before the business date (``vat:<instalment>``, on its due date or the day it was paid in full before it:
infra/vat_points.py) — so that the lease sub-ledger
(infra/books_reconcile.py) reconciles at any date. The late charges accrued post nothing (penalty interest is income
when collected). The journal being append-only, ``--drop`` reverses every entry of the portfolio's leases not reversed
yet (``<key>:dropped``, on the business date, in the drop's transaction: from that day on nothing is left of them; the
books of the days before still hold them); each load's lease and application ids are drawn from the seed mixed with a
nonce of the load (the same seed draws the same portfolio, under new ids), so a reload never meets the entries of a
portfolio dropped before.

Bulk-loaded: applications with one multi-row INSERT per chunk, leases, instalments and movements with COPY, in one
transaction (the instalments' ids reserved as one block under a table lock), then ANALYZE.
"""

from __future__ import annotations

import io
import json
import random
import time
import uuid
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from books.chart import load_chart
from books.entries import Entry
from books.entries import Line
from books.entries import reversal
from books.lease import Scheduled
from books.lease import collected_outside
from books.lease import commenced
from books.lease import commencement_vat
from books.lease import dealer_funded
from books.lease import rent_taxes
from books.lease import structure_of
from books.lease import tax_point
from infra.books import post
from infra.db.engine import Database
from infra.db.models import ApplicationRow
from infra.db.models import DealerGroupRow
from infra.db.models import DealerRow
from infra.db.models import LeaseRow
from infra.servicing import ACTIVE
from infra.servicing import DUE
from infra.servicing import FINAL_RENT
from infra.servicing import OVERDUE
from infra.servicing import PAID
from infra.servicing import PARTLY_PAID
from infra.servicing import PENDING
from infra.servicing import RENT
from infra.servicing import SqlServicing
from infra.servicing import current_business_date
from infra.servicing import late_charge
from infra.servicing import to_fen
from plans.inputs import parse_quote_request
from plans.policy import load_policy
from plans.quote import quote
from plans.timeline import add_months
from plans.timeline import timeline
from servicing.calendar import BusinessCalendar
from servicing.penalty import PenaltyTerms

GROUP = DEALER = "synthetic-portfolio"
NAME = "合成组合 synthetic portfolio"
NOTE = "合成组合 synthetic portfolio"
#: leases per chunk (one COPY of each table per chunk)
CHUNK = 5_000
#: the most leases one command loads (a bench's, not a typo that fills the disk)
MAX_LEASES = 1_000_000

PRICES = tuple(range(90_000, 390_001, 30_000))
DOWN_RATIOS = ("0.2", "0.3")
TERMS = (12, 24, 36, 48, 60)
TERM_WEIGHTS = (10, 25, 35, 15, 15)
RATES = ("0.0399", "0.0599", "0.0799")
RESIDUALS = ("0", "0", "0.2")
DEPOSITS = ("0.05", "0")
#: the contracts' servicing terms: (weight, name) — :func:`_terms` states each
CONTRACTS = ((70, "contract"), (10, "principal"), (5, "grace"), (5, "above_cap"), (10, "legacy"))
#: how far behind a lease is: (weight, rents unpaid among those fallen due)
BEHIND = ((900, 0), (60, 1), (20, 2), (12, 3), (8, 4))


class PortfolioExists(Exception):
    """A synthetic portfolio is loaded already (drop it first)."""

    def __init__(self, leases: int) -> None:
        super().__init__(f"a synthetic portfolio of {leases:,} leases is loaded already: drop it first (--drop)")
        self.leases = leases


@dataclass(frozen=True)
class Loaded:
    as_of: date  # the business date: the portfolio is as the closes through the day before it left it
    leases: int
    instalments: int
    movements: int
    overdue: int  # instalments overdue
    partly_paid: int  # instalments with a part paid and the rest still owed
    seconds: float


@dataclass(frozen=True)
class _Product:
    financed: int
    residual: int
    monthly: int
    deposit: int
    rows: tuple[tuple[int, int, int], ...]  # (payment, principal, interest) in fen, rent by rent
    plan: dict[str, Any]  # the terms' figures (the contract service's servicing terms without the contract's)


@dataclass(frozen=True)
class _Draw:
    product: tuple[int, str, int, str, str, str, str]  # price, down ratio, term, rate, residual ratio, timing, deposit
    contract: str
    starts_on: date
    behind: int
    partial: bool


def synthetic_leases(db: Database) -> int:
    """How many leases the synthetic portfolio has (0: none loaded)."""
    with db.session() as session:
        return int(session.execute(select(func.count()).select_from(LeaseRow)
                                   .where(LeaseRow.dealer_id == DEALER)).scalar_one())


def drop_portfolio(db: Database, now: datetime | None = None) -> int:
    """Remove the synthetic portfolio: its leases' journal entries reversed (:func:`_reverse_books`), the rows any
    table keeps about its leases, instalments and applications (the close's hooks keep reminders, arrears, collection
    attempts…: every foreign key to those tables, found in the database's catalogue, so a table added later goes too),
    then its movements, instalments, leases, applications and dealer; the number of leases removed."""
    with db.session() as session:
        _reverse_books(session, now or datetime.now(UTC))
        leases = "SELECT id FROM leases WHERE dealer_id = :dealer"
        owned = {"leases": leases,
                 "instalments": f"SELECT id FROM instalments WHERE lease_id IN ({leases})",
                 "applications": "SELECT id FROM applications WHERE dealer_id = :dealer"}
        mine = {"servicing_movements", "instalments", "leases", "applications"}
        pending = [(table, column, referenced) for table, column, referenced in session.execute(text(
            "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text FROM pg_constraint AS c "
            "JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 "
            "AND c.confrelid IN ('leases'::regclass, 'instalments'::regclass, 'applications'::regclass)"))
            if table not in mine]
        # a table whose rows another one refers to goes after it: retried until none is left (or none goes)
        while pending:
            left = []
            for table, column, referenced in pending:
                try:
                    with session.begin_nested():
                        session.execute(text(f'DELETE FROM {table} WHERE "{column}" IN ({owned[referenced]})'),
                                        {"dealer": DEALER})
                except IntegrityError:
                    left.append((table, column, referenced))
            if len(left) == len(pending):
                raise RuntimeError(f"rows of {', '.join(t for t, _, _ in left)} refer to the synthetic portfolio")
            pending = left
        for table in ("servicing_movements", "instalments"):
            session.execute(text(f"DELETE FROM {table} WHERE lease_id IN ({leases})"), {"dealer": DEALER})
        removed = session.execute(delete(LeaseRow).where(LeaseRow.dealer_id == DEALER)).rowcount
        session.execute(delete(ApplicationRow).where(ApplicationRow.dealer_id == DEALER))
        session.execute(delete(DealerRow).where(DealerRow.id == DEALER))
        session.execute(delete(DealerGroupRow).where(DealerGroupRow.id == GROUP))
    _analyze(db)
    return int(removed or 0)


#: reversals sent to :func:`infra.books.post` at once (it looks the originals up by key: a bounded list)
REVERSALS_A_POST = 10_000


def _reverse_books(session: Session, now: datetime) -> int:
    """Reverse every journal entry of the portfolio's leases that is neither a reversal nor reversed already (those
    its load posted, and any the close, a collection or the income job posted since), on the business date, under
    ``<key>:dropped``; how many."""
    day = current_business_date(session)
    rows = session.execute(text(
        "SELECT e.key, e.kind, e.value_date, e.lease_id, e.dealer_id, e.memo, l.account, l.debit, l.credit, "
        "l.lease_id, l.dealer_id FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id "
        "WHERE e.lease_id IN (SELECT id FROM leases WHERE dealer_id = :dealer) AND e.reverses_id IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM journal_entries r WHERE r.reverses_id = e.id) ORDER BY e.id, l.id"),
        {"dealer": DEALER}).all()
    originals: dict[str, Entry] = {}
    for key, kind, value_date, lease_id, dealer_id, memo, account, debit, credit, line_lease, line_dealer in rows:
        found = originals.get(key) or Entry(key, kind, value_date, (), memo, lease_id, dealer_id)
        originals[key] = replace(found, lines=(*found.lines, Line(account, debit, credit, line_lease, line_dealer)))
    undone = [reversal(item, f"{item.key}:dropped", day, "合成组合已删除 synthetic portfolio dropped")
              for item in originals.values()]
    chart = load_chart()
    for start in range(0, len(undone), REVERSALS_A_POST):
        post(session, undone[start:start + REVERSALS_A_POST], now, chart=chart)
    return len(undone)


def load_portfolio(db: Database, leases: int, seed: int, now: datetime) -> Loaded:
    """Load ``leases`` synthetic leases drawn with ``seed`` (the same seed, the same portfolio), as of the business
    date. Raises :class:`PortfolioExists` when one is loaded already, ValueError for a count out of range."""
    if not 1 <= leases <= MAX_LEASES:
        raise ValueError(f"the number of leases must be from 1 to {MAX_LEASES:,}")
    started = time.perf_counter()
    repo = SqlServicing(db)
    as_of, calendar = repo.business_date(), repo.calendar()
    rng = random.Random(seed)
    nonce = uuid.uuid4().int  # this load's: the ids differ from any load's before (the journal keeps theirs)
    chart = load_chart()
    draws = [_draw(rng, as_of) for _ in range(leases)]
    products: dict[tuple[int, str, int, str, str, str, str], _Product] = {}
    total = {"instalments": 0, "movements": 0, "overdue": 0, "partly_paid": 0}
    with db.session() as session:
        existing = session.execute(select(func.count()).select_from(LeaseRow)
                                   .where(LeaseRow.dealer_id == DEALER)).scalar_one()
        if existing:
            raise PortfolioExists(int(existing))
        if session.get(DealerRow, DEALER) is None:
            session.add(DealerGroupRow(id=GROUP, name=NAME, created_at=now))
            session.flush()
            session.add(DealerRow(id=DEALER, group_id=GROUP, name=NAME, city="上海", modules="[]", active=False,
                                  created_at=now))
            session.flush()
        for draw in draws:
            if draw.product not in products:
                products[draw.product] = _product(draw.product)
        count = sum(len(products[d.product].rows) + (products[d.product].residual > 0) for d in draws)
        first_id = _reserve_instalment_ids(session, count)
        cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        next_id = first_id
        for start in range(0, leases, CHUNK):
            chunk = _Chunk()
            for offset, draw in enumerate(draws[start:start + CHUNK], start=start):
                next_id = chunk.add(rng, offset, draw, products[draw.product], as_of, calendar, now, next_id, nonce)
            session.execute(insert(ApplicationRow), chunk.applications)
            for table, columns, buffer in (("leases", LEASE_COLUMNS, chunk.leases),
                                           ("instalments", INSTALMENT_COLUMNS, chunk.instalments),
                                           ("servicing_movements", MOVEMENT_COLUMNS, chunk.movements)):
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    copy.write(buffer.getvalue())
            post(session, chunk.entries, now, chart=chart)
            for key in total:
                total[key] += chunk.counts[key]
        assert next_id == first_id + count
    _analyze(db)
    return Loaded(as_of, leases, total["instalments"], total["movements"], total["overdue"], total["partly_paid"],
                  time.perf_counter() - started)


def _analyze(db: Database) -> None:
    """Fresh statistics for the planner (autovacuum would get there; a bench runs right after the load)."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in ("applications", "leases", "instalments", "servicing_movements"):
            connection.exec_driver_sql(f"ANALYZE {table}")


def _reserve_instalment_ids(session: Session, count: int) -> int:
    """The first of ``count`` instalment ids kept for this load: taken from the identity's sequence as one block,
    the table locked against other inserts meanwhile (theirs draw after the block; the lock is held to the
    commit)."""
    session.execute(text("LOCK TABLE instalments IN SHARE ROW EXCLUSIVE MODE"))
    first = int(session.execute(text("SELECT nextval(pg_get_serial_sequence('instalments', 'id'))")).scalar_one())
    session.execute(text("SELECT setval(pg_get_serial_sequence('instalments', 'id'), :last)"),
                    {"last": first + count - 1})
    return first


def _pick(rng: random.Random, weighted: tuple[tuple[int, Any], ...]) -> Any:
    return rng.choices([v for _, v in weighted], weights=[w for w, _ in weighted])[0]


def _draw(rng: random.Random, as_of: date) -> _Draw:
    term = rng.choices(TERMS, weights=TERM_WEIGHTS)[0]
    timing = "advance" if rng.random() < 0.3 else "arrears"
    product = (rng.choice(PRICES), rng.choice(DOWN_RATIOS), term, rng.choice(RATES), rng.choice(RESIDUALS), timing,
               rng.choice(DEPOSITS))
    # commencement within the last five years and within the term (the lease still runs after the business date),
    # the day before the business date at the latest (its closes have run)
    earliest = max(add_months(as_of, -60), add_months(as_of, -term) + timedelta(days=1))
    starts_on = earliest + timedelta(days=rng.randrange((as_of - earliest).days))
    behind = _pick(rng, BEHIND)
    return _Draw(product, _pick(rng, CONTRACTS), starts_on, behind, behind > 0 and rng.random() < 0.35)


def _product(key: tuple[int, str, int, str, str, str, str]) -> _Product:
    price, down, term, rate, residual, timing, deposit = key
    q = quote(parse_quote_request({"price": str(price), "down_ratio": down, "term": str(term), "rate": rate,
                                   "residual_ratio": residual, "timing": timing, "deposit_ratio": deposit},
                                  load_policy()))
    rows = tuple((to_fen(r.payment), to_fen(r.principal), to_fen(r.interest)) for r in q.schedule)
    plan = {"term": term, "timing": timing, "nominal_rate": rate, "financed_amount": f"{q.financed_amount:.2f}",
            "residual": f"{q.residual:.2f}", "monthly_payment": f"{q.monthly_payment:.2f}",
            "deposit": f"{q.deposit:.2f}", "deposit_free": q.deposit == 0, "purchase_price": "100.00"}
    return _Product(to_fen(q.financed_amount), to_fen(q.residual), to_fen(q.monthly_payment), to_fen(q.deposit),
                    rows, plan)


def _terms(contract: str, nominal_rate: Decimal) -> dict[str, Any]:
    """The servicing terms a contract of the kind ``contract`` states (contract/document/servicing_terms.py)."""
    if contract == "legacy":  # signed before the contract-law issue: its text's terms
        return {"source": "legacy", "late_fee_daily_rate": "0.0005", "late_fee_base": "overdue_amount",
                "grace_days": 0, "default_cost_cap": None,
                "early_settlement": {"any_day": False, "fee_rate": "0", "day_count": "ACT/360",
                                     "notice_working_days": 0}}
    rate = load_policy().late_fee_daily_rate(Decimal("0.0005"), nominal_rate)
    return {"source": "contract", "late_fee_daily_rate": "0.0006" if contract == "above_cap" else f"{rate}",
            "late_fee_base": "principal" if contract == "principal" else "overdue_amount",
            "grace_days": 3 if contract == "grace" else 0, "default_cost_cap": "0.24",
            "early_settlement": {"any_day": True, "fee_rate": "0.03", "day_count": "ACT/360",
                                 "notice_working_days": 5}}


LEASE_COLUMNS = (
    "id", "application_id", "dealer_id", "contract_id", "contract_number", "handover_record_id", "handover_sha256",
    "starts_on", "ends_on", "term", "timing", "financed_amount", "residual", "monthly_payment", "deposit",
    "nominal_rate", "late_fee_daily_rate", "late_fee_base", "grace_days", "default_cost_cap", "settlement_any_day",
    "settlement_fee_rate", "settlement_day_count", "settlement_notice_working_days", "terms_source", "terms",
    "status", "closed_through", "created_at")
INSTALMENT_COLUMNS = (
    "id", "lease_id", "number", "kind", "due_on", "amount", "principal", "interest", "state", "paid_principal",
    "paid_interest", "paid_penalty", "waived", "penalty_accrued", "penalty_through", "overdue_since", "settled_on",
    "updated_at")
MOVEMENT_COLUMNS = ("lease_id", "instalment_id", "kind", "value_date", "principal", "interest", "penalty", "key",
                    "reference", "note", "booked_at")
NULL = "\\N"


def _copy_text(value: str) -> str:
    """A value in COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _Chunk:
    """The rows of a chunk of leases: applications (dicts for an INSERT), the rest as COPY text."""

    def __init__(self) -> None:
        self.applications: list[dict[str, Any]] = []
        self.leases, self.instalments, self.movements = io.StringIO(), io.StringIO(), io.StringIO()
        self.counts = {"instalments": 0, "movements": 0, "overdue": 0, "partly_paid": 0}
        self.entries: list[Entry] = []
        self.terms: dict[tuple[tuple[int, str, int, str, str, str, str], str], tuple[str, dict[str, Any]]] = {}

    def movement(self, lease_id: str, instalment_id: int, kind: str, on: date, principal: int, interest: int,
                 penalty: int, key: str, stamp: str) -> None:
        self.movements.write(f"{lease_id}\t{instalment_id}\t{kind}\t{on.isoformat()}\t{principal}\t{interest}\t"
                             f"{penalty}\t{key}\t{NULL}\t{NOTE}\t{stamp}\n")
        self.counts["movements"] += 1

    def collected(self, lease_id: str, number: int, due: date, on: date, principal: int, interest: int) -> None:
        """A rent's payment, in full or in part, posted as collected outside Leaseline on the day it was made."""
        made = collected_outside(lease_id, DEALER, number, due, principal, interest, paid_on=on)
        if made is not None:
            self.entries.append(made)

    def add(self, rng: random.Random, index: int, draw: _Draw, product: _Product, as_of: date,
            calendar: BusinessCalendar, now: datetime, next_id: int, nonce: int = 0) -> int:
        """Add lease ``index`` (its ids the seed's mixed with the load's ``nonce``) with its journal entries; its
        instalments take ids from ``next_id`` on; the next free id."""
        lease_id, application_id = str(uuid.UUID(int=rng.getrandbits(128) ^ nonce, version=4)), \
            str(uuid.UUID(int=rng.getrandbits(128) ^ nonce, version=4))
        _, _, term, rate, _, timing, _ = draw.product
        stamp = now.isoformat()
        self.applications.append({
            "id": application_id, "dealer_id": DEALER, "status": "delivered", "vehicle_id": "synthetic",
            "vehicle_label": NOTE, "plan_code": f"synthetic-{term}-{timing}", "plan_json": "{}", "draft_enc": "",
            "customer_name": f"合成客户 {index + 1:07d}", "created_at": now, "updated_at": now})
        key = (draw.product, draw.contract)
        if key not in self.terms:
            stated = _terms(draw.contract, Decimal(rate)) | product.plan
            self.terms[key] = (_copy_text(json.dumps(stated, ensure_ascii=False, sort_keys=True)), stated)
        terms_text, terms = self.terms[key]
        dates = timeline(draw.starts_on, term, timing)  # type: ignore[arg-type]
        es, cap = terms["early_settlement"], terms["default_cost_cap"]
        number = f"SYN-{index + 1:07d}"
        self.leases.write("\t".join((
            lease_id, application_id, DEALER, number, number, "synthetic", "0" * 64, draw.starts_on.isoformat(),
            dates.ends_on.isoformat(), str(term), timing, str(product.financed), str(product.residual),
            str(product.monthly), str(product.deposit), rate, terms["late_fee_daily_rate"], terms["late_fee_base"],
            str(terms["grace_days"]), NULL if cap is None else cap, "t" if es["any_day"] else "f", es["fee_rate"],
            es["day_count"], str(es["notice_working_days"]), terms["source"], terms_text, ACTIVE,
            (as_of - timedelta(days=1)).isoformat(), stamp)) + "\n")
        penalty = PenaltyTerms(rate=Decimal(terms["late_fee_daily_rate"]), day_count="daily",
                               base="principal" if terms["late_fee_base"] == "principal" else "overdue_rent",
                               nominal_rate=Decimal(rate), cost_cap=None if cap is None else Decimal(cap))
        fallen_due = [n for n, due in enumerate(dates.rent_dates, start=1) if due < as_of]
        # rent 1 in advance is paid at signing: never behind
        owing = [n for n in fallen_due if not (timing == "advance" and n == 1)][-draw.behind:] if draw.behind else []
        yesterday = as_of - timedelta(days=1)
        rows = [(n, RENT, due, *product.rows[n - 1]) for n, due in enumerate(dates.rent_dates, start=1)]
        if product.residual:
            rows.append((term + 1, FINAL_RENT, dates.ends_on, product.residual, product.residual, 0))
        schedule = [Scheduled(kind, amount, principal, interest) for _, kind, _, amount, principal, interest in rows]
        structure = structure_of(terms)
        taxes = rent_taxes(structure, [(due, amount, interest) for _, _, due, amount, _, interest in rows])
        for made in (commenced(lease_id, DEALER, draw.starts_on, schedule),
                     commencement_vat(lease_id, DEALER, draw.starts_on, taxes),
                     dealer_funded(lease_id, DEALER, draw.starts_on, product.financed, "synthetic")):
            if made is not None:
                self.entries.append(made)
        for (number_, kind, due, amount, principal, interest), vat in zip(rows, taxes, strict=True):
            inst_id = next_id
            next_id += 1
            self.counts["instalments"] += 1
            paid_p = paid_i = accrued = 0
            state, settled, overdue_since, penalty_through = PENDING, NULL, NULL, NULL
            if due < as_of and number_ not in owing:
                state, paid_p, paid_i, settled_on = PAID, principal, interest, due
                if timing == "advance" and number_ == 1:
                    self.movement(lease_id, inst_id, "paid_at_signing", due, -principal, -interest, 0,
                                  f"paid_at_signing:{lease_id}:1", stamp)
                    self.collected(lease_id, number_, due, due, principal, interest)
                else:
                    settled_on = max(draw.starts_on, due - timedelta(days=rng.choice((0, 0, 0, 1, 2, 3))))
                    self.movement(lease_id, inst_id, "payment", settled_on, -principal, -interest, 0,
                                  f"synthetic:payment:{lease_id}:{number_}", stamp)
                    self.collected(lease_id, number_, due, settled_on, principal, interest)
                settled = settled_on.isoformat()
            elif due < as_of:  # behind
                payments: list[tuple[date, int, int]] = []
                if draw.partial and number_ == owing[0]:
                    part = amount * rng.randint(30, 70) // 100
                    paid_i = min(interest, part)
                    paid_p = part - paid_i
                    on = due + timedelta(days=rng.randrange(-2, max(1, (yesterday - due).days + 1)))
                    on = min(max(on, draw.starts_on), yesterday)
                    payments.append((on, -paid_p, -paid_i))
                    self.movement(lease_id, inst_id, "payment", on, -paid_p, -paid_i, 0,
                                  f"synthetic:payment:{lease_id}:{number_}", stamp)
                    self.collected(lease_id, number_, due, on, paid_p, paid_i)
                first_overdue = calendar.last_day_to_pay(due, int(terms["grace_days"])) + timedelta(days=1)
                if first_overdue <= yesterday:
                    state, overdue_since, penalty_through = OVERDUE, first_overdue.isoformat(), yesterday.isoformat()
                    self.counts["overdue"] += 1
                    accrued = late_charge(amount, principal, payments, first_overdue, first_overdue, yesterday,
                                          penalty)
                    if accrued:
                        self.movement(lease_id, inst_id, "late_charge", yesterday, 0, 0, accrued,
                                      f"synthetic:late_charge:{lease_id}:{number_}", stamp)
                else:
                    state = PARTLY_PAID if payments else DUE
                if payments:
                    self.counts["partly_paid"] += 1
            if due < as_of:  # its tax point came before the business date: its due date, or the day paid in full
                on = settled_on if state == PAID and settled_on < due else due  # before it (infra/vat_points.py)
                point = tax_point(inst_id, lease_id, DEALER, on, vat.tax)
                if point is not None:
                    self.entries.append(point)
            self.instalments.write(
                f"{inst_id}\t{lease_id}\t{number_}\t{kind}\t{due.isoformat()}\t{amount}\t{principal}\t{interest}\t"
                f"{state}\t{paid_p}\t{paid_i}\t0\t0\t{accrued}\t{penalty_through}\t{overdue_since}\t{settled}\t"
                f"{stamp}\n")
        return next_id
