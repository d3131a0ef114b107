"""Lighthouse 12 on the phone pages: accessibility, performance and best-practices scores, and what fails.

Starts the BFF the way ``make run`` does, but on its own: a temporary var dir, a fresh PostgreSQL database
(on ``BENCH_DATABASE_URL``'s, else ``TEST_DATABASE_URL``'s server when set, else an embedded PostgreSQL started in
a temporary directory: bench/databases.py; ``leaseline db upgrade``, ``leaseline demo``), SeaweedFS (S3) on free
ports for the ID-card photos, then
``leaseline serve bff`` (gunicorn, 1 worker) on a free port, without the background resumer (no risk or
contract service is needed before the face check). Over HTTP, with a real session and CSRF tokens, the demo
salesperson starts an application, gives the consents, photographs a specimen ID card (real OCR), fills in the
details and submits, so that every KYC page is audited in the state a customer sees it:

    builder   /plans/byd-han-ev?down=20&term=36        (signed in: every action button shows)
    login     /login                                   (signed out)
    consent   /applications/<id>/consent               (nothing ticked yet)
    id-card   /applications/<id>/id-card               (the upload form)
    details   /applications/<id>/steps/customer        (pre-filled from the card)
    face      /applications/<id>/face                  (camera page of a submitted application)

The session cookie reaches Lighthouse through ``--extra-headers``. Lighthouse runs with its defaults (mobile
form factor, simulated slow 4G and 4× CPU slowdown): performance scores depend on this machine, so its CPU and
Lighthouse's ``benchmarkIndex`` are printed with them.

    make lighthouse                          # installs Lighthouse 12 (npm, bench/node) and runs this
    .venv/bin/python bench/lighthouse.py [--pages builder,face] [--runs 3] [--json] [--keep-reports DIR]

Needs Lighthouse from ``make lighthouse`` (``bench/node/node_modules``) and Chromium (``CHROME_PATH``,
default ``/usr/bin/chromium``); Tesseract and SeaweedFS as for ``make run`` (without them the pages after the
ID card are skipped, and said so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LIGHTHOUSE = ROOT / "bench" / "node" / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = ("accessibility", "performance", "best-practices")
VEHICLE, PLAN = "byd-han-ev", "20-36-0-ctpl+damage+tpl_1m-D-f-a"
BUILDER = f"/plans/{VEHICLE}?down=20&term=36"
PAGES = ("builder", "login", "consent", "id-card", "details", "face")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def leaseline(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "leaseline", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the BFF exited with {proc.returncode}; see {log}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the BFF did not answer within {timeout:.0f} s; see {log}")


def cookie_header(session: Any) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


class Application:
    """The demo salesperson's session and one application, moved step by step (bff.demo_journeys' Browser)."""

    def __init__(self, base: str) -> None:
        from bff.demo_journeys import SALES
        from bff.demo_journeys import Browser

        self.base = base
        self.sales = Browser(base, SALES, "lighthouse")
        r = self.sales.post("/applications", {"vehicle": VEHICLE, "plan": PLAN},
                            form=f"/applications/new?vehicle={VEHICLE}&plan={PLAN}")
        if "/consent" not in r.url:
            raise SystemExit(f"could not start an application: {r.status_code} {r.url}")
        self.id = r.url.rsplit("/", 2)[-2]
        self.path = f"/applications/{self.id}"
        self.card_read = self.submitted = False

    def cookie(self) -> str:
        return cookie_header(self.sales.http)

    def consent(self) -> None:
        self.sales.expect(self.sales.post(f"{self.path}/consent",
                                          {"sensitive_pi": "yes", "credit_reporting": "yes",
                                           "face_recognition": "yes"}), 200, "consent")

    def read_card(self) -> None:
        """Upload a specimen ID card and wait for the OCR (Tesseract in the BFF's worker pool, photos to S3)."""
        from bff.demo_journeys import _jpeg
        from bff.demo_journeys import portrait
        from kyc import specimens

        card, url = specimens.SAMPLES[0], f"{self.path}/id-card"
        r = self.sales.http.post(f"{self.base}{url}", data={"csrf_token": self.sales.token(url)}, timeout=60, files={
            "front": ("front.jpg", _jpeg(specimens.front(card, portrait())), "image/jpeg"),
            "back": ("back.jpg", _jpeg(specimens.back(card)), "image/jpeg")})
        self.sales.expect(r, 202, "ID card upload")
        check = re.search(r"/checks/([0-9a-f-]{36})", r.text)
        if check is None:
            raise SystemExit("ID card upload: no check to follow")
        fragment = self.sales.wait(f"{self.path}/checks/{check.group(1)}", r'data-state="(done|error)"', "ID card OCR")
        if 'data-outcome="ok"' not in fragment:
            text = re.sub(r"<[^>]+>|\s+", " ", fragment)
            raise SystemExit(f"the ID card was not read: {text[:300]}")
        self.card_read = True

    def submit(self) -> None:
        from bff.demo_journeys import WORK
        from kyc import specimens
        from kyc.vin import vin_check_digit

        card = specimens.SAMPLES[0]
        details = {"name": card.name, "id_number": card.id_number, "mobile": "13800138001", "address": card.address,
                   "id_valid_to": card.valid_to.isoformat() if card.valid_to else "长期"}
        confirmed = {k: v for k, v in details.items() if k != "mobile"}  # the card's reading (issue 17 §3)
        self.sales.expect(self.sales.post(f"{self.path}/id-card/confirm", confirmed, form=f"{self.path}/id-card"),
                          200, "the card's reading confirmed")
        # a car of its own: one car is on one lease (a VIN another application holds is refused: finding 6)
        vin = f"LSVAU2180N{secrets.randbelow(10**7):07d}"
        vin = vin[:8] + vin_check_digit(vin) + vin[9:]
        for step, data in (("customer", details), ("work", WORK), ("vehicle", {"vin": vin, "condition": "new"})):
            self.sales.expect(self.sales.post(f"{self.path}/steps/{step}", data), 200, f"step {step}")
        r = self.sales.post(f"{self.path}/submit", form=self.path)
        self.sales.expect(r, 200, "submit")
        if not r.url.endswith("/face"):
            raise SystemExit(f"submit did not lead to the face check: {r.url}")
        self.submitted = True


def lighthouse(url: str, cookie: str | None, out: Path) -> dict[str, Any]:
    """One Lighthouse run (mobile, default throttling); the JSON report (LHR)."""
    command = [str(LIGHTHOUSE), url, "--chrome-flags=--headless=new --no-sandbox --disable-dev-shm-usage",
               "--output=json", f"--output-path={out}", "--quiet",
               f"--only-categories={','.join(CATEGORIES)}"]
    if cookie:
        headers = out.with_suffix(".headers.json")
        headers.write_text(json.dumps({"Cookie": cookie}))
        command.append(f"--extra-headers={headers}")
    env = {**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH", "/usr/bin/chromium")}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"lighthouse failed on {url} ({done.returncode}): {done.stderr[-800:]}")
    report: dict[str, Any] = json.loads(out.read_text())
    if report.get("runtimeError"):
        raise SystemExit(f"lighthouse on {url}: {report['runtimeError']}")
    final = report.get("finalDisplayedUrl") or report.get("finalUrl", "")
    if final.split("?")[0] != url.split("?")[0]:
        raise SystemExit(f"lighthouse on {url} ended on {final} (signed out?)")
    return report


def failing(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Audits of the three categories that do not pass, with the elements they name: accessibility and best
    practices below 1; performance metrics below 0.9 (Lighthouse's "good"). ``weight`` 0 marks a performance
    hint (an opportunity or insight): it does not count in the score."""
    out = []
    for category in CATEGORIES:
        for ref in report["categories"][category]["auditRefs"]:
            audit = report["audits"][ref["id"]]
            if audit.get("scoreDisplayMode") not in ("binary", "numeric", "metricSavings") or audit["score"] is None:
                continue
            if audit["score"] >= 1 or (ref.get("group") == "metrics" and audit["score"] >= 0.9):
                continue
            items = (audit.get("details") or {}).get("items") or []
            nodes = [item["node"].get("selector") or item["node"].get("snippet", "") for item in items
                     if isinstance(item, dict) and isinstance(item.get("node"), dict)]
            out.append({"category": category, "id": ref["id"], "title": audit["title"], "score": audit["score"],
                        "weight": ref.get("weight", 0), "value": audit.get("displayValue", ""), "nodes": nodes[:6]})
    return out


def machine(reports: list[dict[str, Any]]) -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    env = reports[0].get("environment", {}) if reports else {}
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version(),
            "lighthouse": reports[0].get("lighthouseVersion") if reports else None,
            "chrome": env.get("hostUserAgent", "").split("Chrome/")[-1].split(" ")[0] if env else None,
            "benchmark_index": statistics.median(r["environment"]["benchmarkIndex"] for r in reports) if reports
            else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default=",".join(PAGES), help=f"comma-separated, of {', '.join(PAGES)}")
    parser.add_argument("--runs", type=int, default=1, help="Lighthouse runs per page (the median is reported)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep-reports", type=Path, help="copy the Lighthouse JSON reports into this folder")
    args = parser.parse_args()
    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    if unknown := sorted(set(pages) - set(PAGES)):
        parser.error(f"unknown page(s): {', '.join(unknown)}")
    if not LIGHTHOUSE.exists():
        raise SystemExit("Lighthouse is not installed: run `make lighthouse` (npm ci in bench/node)")

    from bench.databases import fresh_databases

    with fresh_databases("lighthouse") as databases:
        if not args.json:
            print(f"database: {databases.where}", flush=True)
        figures = audit_pages(args, pages, databases.urls[0])
        figures["database"] = databases.where
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=2))
        return
    report(figures)


def audit_pages(args: argparse.Namespace, pages: list[str], database_url: str) -> dict[str, Any]:
    """Start SeaweedFS and the BFF on ``database_url``, walk the application and audit the pages; the figures."""
    from infra.peers import SeaweedS3

    var = Path(tempfile.mkdtemp(prefix="leaseline-lighthouse-"))
    s3 = SeaweedS3(var / "seaweedfs", access_key=f"lh{secrets.token_hex(6)}", secret_key=secrets.token_urlsafe(32))
    proc: subprocess.Popen[bytes] | None = None
    results: dict[str, dict[str, Any]] = {}
    reports: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    try:
        s3.start()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "LEASELINE_VAR_DIR": str(var), "LEASELINE_DATABASE_URL": database_url,
               "LEASELINE_RESUMER": "0", "LEASELINE_LOGIN_RATE": "1000 per minute",
               "LEASELINE_RISK_URL": f"http://127.0.0.1:{free_port()}",  # nothing is sent to it before the face check
               "LEASELINE_CONTRACT_URL": f"http://127.0.0.1:{free_port()}", **s3.env()}
        env.pop("LEASELINE_ENV", None)
        leaseline(env, "db", "upgrade")
        leaseline(env, "demo")
        log = var / "bff.log"
        with open(log, "wb") as sink:
            proc = subprocess.Popen([sys.executable, "-m", "leaseline", "serve", "bff", "--port", str(port),
                                     "--workers", "1"], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
        wait_until_up(f"{base}/login", proc, log)

        def audit(name: str, path: str, cookie: str | None) -> None:
            runs = []
            for n in range(args.runs):
                out = var / f"{name}-{n}.json"
                runs.append(lighthouse(f"{base}{path}", cookie, out))
                if args.keep_reports:
                    args.keep_reports.mkdir(parents=True, exist_ok=True)
                    shutil.copy(out, args.keep_reports / f"{name}-{n}.json")
            reports.extend(runs)
            scores = {c: round(100 * statistics.median(r["categories"][c]["score"] for r in runs)) for c in CATEGORIES}
            middle = sorted(runs, key=lambda r: r["categories"]["performance"]["score"])[len(runs) // 2]
            results[name] = {"path": path, "scores": scores, "failing": failing(middle)}
            if not args.json:
                print(f"{name:<8} a11y {scores['accessibility']:>3}  perf {scores['performance']:>3}  "
                      f"best practices {scores['best-practices']:>3}  {path}", flush=True)

        application = Application(base)
        failure = ""
        steps: list[tuple[str, Callable[[], str], Callable[[], None] | None]] = [
            ("builder", lambda: BUILDER, None),
            ("login", lambda: "/login", None),
            ("consent", lambda: f"{application.path}/consent", application.consent),
            ("id-card", lambda: f"{application.path}/id-card", application.read_card),
            ("details", lambda: f"{application.path}/steps/customer", application.submit),
            ("face", lambda: f"{application.path}/face", None),
        ]
        reached = {"details": lambda: application.card_read, "face": lambda: application.submitted}
        for name, path, after in steps:
            if name in pages:
                if name in reached and not reached[name]():
                    skipped[name] = failure or "not reached"
                else:
                    audit(name, path(), None if name == "login" else application.cookie())
            if after is not None and not failure and any(PAGES.index(p) > PAGES.index(name) for p in pages):
                try:
                    after()
                except SystemExit as exc:  # e.g. Tesseract missing: the later pages cannot be reached
                    failure = str(exc)
        application.sales.close()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        s3.stop()
        shutil.rmtree(var, ignore_errors=True)

    return {"machine": machine(reports), "pages": results, "skipped": skipped}


def report(figures: dict[str, Any]) -> None:
    results, skipped = figures["pages"], figures["skipped"]
    m = figures["machine"]
    print(f"\nmachine: {m['cpu']}, {m['cores']} cores, {m['os']}; Lighthouse {m['lighthouse']}, Chromium "
          f"{m['chrome']}, benchmarkIndex {m['benchmark_index']} (mobile, simulated throttling)")
    for name, page in results.items():
        scored = [f for f in page["failing"] if f["weight"]]
        hints = [f for f in page["failing"] if not f["weight"]]
        if scored:
            print(f"\n{name}: not passing")
            for f in scored:
                where = f"  [{', '.join(f['nodes'])}]" if f["nodes"] else ""
                print(f"  {f['category']:<14} {f['id']:<28} {f['score']:.2f} {f['value']}{where}")
        if hints:
            print(f"{name}: performance hints (not in the score): "
                  + ", ".join(f"{f['id']}{' (' + f['value'] + ')' if f['value'] else ''}" for f in hints))
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")


if __name__ == "__main__":
    main()
