"""Benchmark what server-side sessions cost per request (issue 14), against the old signed-cookie sessions in the
same run; prints figures (not a timed test).

Two BFF apps on one migrated database with the demo accounts and vehicles: one as shipped (the session lives in
the ``web_sessions`` table, the cookie carries only its id: bff/auth/server_session.py), one with Flask's signed
cookie sessions as before (``SignedCookieSessionInterface`` below, the same cookie flags). Each scenario runs on
both, in alternating blocks (so a busy neighbour on the machine slows both alike), through Flask's test client:
in-process WSGI calls, one at a time, no network, so the figures are the server's own work per request.

Scenarios: a signed-in salesperson's ``GET /account``; the quote API ``POST /api/v1/quotes`` from a client
without cookies and from a signed-in browser's (``/api/`` never reads the session); a new visitor's first
``GET /vehicles`` (its form's CSRF token starts a session: one insert on the server side). For each: requests
per second, p50 and p99 in ms, SQL statements per request, and session rows made per request.

    .venv/bin/python bench/sessions.py [--requests 1000] [--blocks 5] [--database-url postgresql://...]

The database is PostgreSQL: without ``--database-url`` a fresh one on ``BENCH_DATABASE_URL``'s (else
``TEST_DATABASE_URL``'s) server when set, else on an embedded PostgreSQL started in a temporary directory
(bench/databases.py), dropped at the end; with it, that (empty) database. Either way it is migrated and filled
with the demo data first.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUOTE = {"price": "200000", "down_ratio": "0.2", "term": 36, "rate": "0.0599"}
SALES = "sales.pudong@demo.leaseline.cn"
VARIANTS = ("server-side", "signed cookie")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if cpuinfo.exists() else platform.processor()
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    return (f"machine: {cpu or 'unknown CPU'} ({platform.machine()}), {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, {platform.platform()}; load average at start {' '.join(load)}")


def signed_cookie_interface() -> Any:
    """The session as it was before issue 14: Flask's signed cookie, Secure except on localhost, HttpOnly, Lax."""
    from flask.sessions import SecureCookieSessionInterface

    from bff.auth.cookies import secure_request

    class SignedCookieSessionInterface(SecureCookieSessionInterface):
        def get_cookie_secure(self, app: Any) -> bool:
            return secure_request()

        def get_cookie_httponly(self, app: Any) -> bool:
            return True

        def get_cookie_samesite(self, app: Any) -> str:
            return "Lax"

    return SignedCookieSessionInterface()


@dataclass
class Figures:
    """One scenario on one variant, accumulated over the blocks."""

    ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    statements: int = 0
    rows: int = 0


class Bench:
    def __init__(self, url: str) -> None:
        from sqlalchemy import event

        from bff import create_app

        config = {"database_url": url, "env": "development", "login_rate": "1000000 per minute"}
        self.apps = {variant: create_app(config) for variant in VARIANTS}
        self.apps["signed cookie"].session_interface = signed_cookie_interface()
        self.statements = 0

        def count(*_: Any) -> None:
            self.statements += 1

        for app in self.apps.values():
            event.listen(app.extensions["leaseline"].db.engine, "before_cursor_execute", count)

    def dispose(self) -> None:
        for app in self.apps.values():
            app.extensions["leaseline"].db.dispose()

    def session_rows(self) -> int:
        from sqlalchemy import text

        with self.apps["server-side"].extensions["leaseline"].db.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM web_sessions")).scalar_one())

    def signed_in(self, variant: str) -> Any:
        """A test client signed in as the demo salesperson (password form, CSRF token and all)."""
        from bff.demo import DEMO_PASSWORD

        client = self.apps[variant].test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        r = client.post("/login", data={"email": SALES, "password": DEMO_PASSWORD, "csrf_token": token})
        if r.status_code != 302:
            raise SystemExit(f"sign-in failed on {variant}: {r.status_code}")
        return client

    def run(self, variant: str, call: Callable[[Any], Any], client: Any, n: int, into: Figures) -> None:
        rows, statements = self.session_rows(), self.statements
        t_block = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            response = call(client)
            into.ms.append((time.perf_counter() - t0) * 1000)
            if response.status_code >= 400:
                raise SystemExit(f"{variant}: {response.status_code} {response.get_data(as_text=True)[:300]}")
        into.seconds += time.perf_counter() - t_block
        into.statements += self.statements - statements
        into.rows += self.session_rows() - rows


SCENARIOS: list[tuple[str, str, Callable[[Any], Any]]] = [
    ("GET /account (signed in)", "signed-in", lambda c: c.get("/account")),
    ("POST /api/v1/quotes (no cookie)", "anonymous", lambda c: c.post("/api/v1/quotes", json=QUOTE)),
    ("POST /api/v1/quotes (signed-in browser)", "signed-in", lambda c: c.post("/api/v1/quotes", json=QUOTE)),
    ("GET /vehicles (new visitor: CSRF token)", "anonymous", lambda c: c.get("/vehicles")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per scenario and variant")
    parser.add_argument("--blocks", type=int, default=5, help="alternating blocks the requests are split into")
    parser.add_argument("--database-url", default="",
                        help="an empty PostgreSQL database to use (default: a fresh one, see above)")
    args = parser.parse_args()
    print(machine())
    from bench.databases import fresh_databases

    with (tempfile.TemporaryDirectory(prefix="leaseline-bench-") as tmp,
          fresh_databases("sessions", given=args.database_url) as databases):
        os.environ["LEASELINE_VAR_DIR"] = tmp  # generated keys stay in the temporary directory
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from bff.demo import demo_vehicles
        from bff.demo import seed_people
        from infra.catalogue import SqlCatalogue
        from infra.db.migrate import upgrade

        print(f"database: {databases.where}")
        url = databases.urls[0]
        upgrade(url)
        bench = Bench(url)
        services = bench.apps["server-side"].extensions["leaseline"]
        SqlCatalogue(services.db).upsert(demo_vehicles())
        seed_people(services.accounts)
        clients = {variant: {"signed-in": bench.signed_in(variant),
                             "anonymous": bench.apps[variant].test_client(use_cookies=False)} for variant in VARIANTS}
        figures = {(name, variant): Figures() for name, _, _ in SCENARIOS for variant in VARIANTS}
        per_block = max(1, args.requests // args.blocks)
        for _name, who, call in SCENARIOS:  # warm-up: templates compiled, connections pooled
            for variant in VARIANTS:
                bench.run(variant, call, clients[variant][who], 20, Figures())
        for _ in range(args.blocks):
            for name, who, call in SCENARIOS:
                for variant in VARIANTS:
                    bench.run(variant, call, clients[variant][who], per_block, figures[(name, variant)])
        n = per_block * args.blocks
        print(f"{n} requests per scenario and variant ({args.blocks} alternating blocks), one at a time through "
              f"Flask's test client (in process, no network), database: PostgreSQL (above)")
        print(f"  {'scenario':<42} {'sessions':<14} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'SQL/req':>8} "
              f"{'rows/req':>8}")
        for name, _, _ in SCENARIOS:
            for variant in VARIANTS:
                f = figures[(name, variant)]
                rows = f"{f.rows / n:8.2f}" if variant == "server-side" else f"{'-':>8}"
                print(f"  {name:<42} {variant:<14} {n / f.seconds:7.0f} {statistics.median(f.ms):7.2f} "
                      f"{pct(f.ms, 0.99):7.2f} {f.statements / n:8.2f} {rows}")
            server, cookie = figures[(name, "server-side")], figures[(name, "signed cookie")]
            print(f"  {'':<42} {'difference':<14} {'':>7} "
                  f"{statistics.median(server.ms) - statistics.median(cookie.ms):+7.2f} "
                  f"{pct(server.ms, 0.99) - pct(cookie.ms, 0.99):+7.2f}")
        print("  (server-side: a signed-in request reads its session row; the idle clock's write comes once a minute "
              "and is not in these figures)")
        bench.dispose()


if __name__ == "__main__":
    main()
