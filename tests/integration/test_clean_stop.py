"""A service stopped as asked stops cleanly (walk-through finding 14): every Ctrl-C of `make run` logged "Worker
(pid:…) was sent SIGKILL! Perhaps out of memory?" — the gunicorn workers spent seconds tearing the interpreter down
after their last request, past the master's graceful timeout, and the master killed them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from tests.common.contract import free_port
from tests.common.risk import risk_database

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]


def test_a_service_asked_to_stop_stops_at_once_without_killing_its_workers(tmp_path: Path) -> None:
    port = free_port()
    with risk_database(tmp_path) as url:
        env = {**os.environ, "LEASELINE_VAR_DIR": str(tmp_path), "LEASELINE_RISK_DATABASE_URL": url,
               "LEASELINE_ENV": "test"}
        log = tmp_path / "risk.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "leaseline", "serve", "risk", "--port", str(port),
                                     "--workers", "2"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                try:
                    if requests.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.3)
            for _ in range(4):  # both workers have served (and imported what a request needs)
                assert requests.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5).status_code == 200
            proc.send_signal(signal.SIGTERM)  # what `leaseline up` sends each service on Ctrl-C
            code = proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    text = log.read_text()
    assert code == 0 and "SIGKILL" not in text and "Shutting down: Master" in text, text[-3000:]
    at = {}
    for line in text.splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        for what in ("Handling signal: term", "Shutting down: Master"):
            if entry.get("msg", "").startswith(what):
                at[what] = datetime.fromisoformat(entry["ts"])
    # the workers are gone as soon as their requests are done: with the interpreter's teardown they took 1.3–2 s
    # alone, and over gunicorn's 5 s graceful timeout when `leaseline up` stopped its eight processes at once
    waited = (at["Shutting down: Master"] - at["Handling signal: term"]).total_seconds()
    assert waited < 1, f"the master waited {waited:.2f} s for its workers"
