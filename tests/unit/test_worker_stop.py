"""A job worker stopped by Ctrl-C of `leaseline up` stops by itself before `up` kills it (review of walk-through
finding 14): `up` waits STOP_TIMEOUT (15 s) for what it stopped, and a worker gave its running jobs 30 s — and our
jobs run in threads procrastinate cannot interrupt, so it waited for them however long they took."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from leaseline import cli

ROOT = Path(__file__).resolve().parents[2]


def test_up_s_workers_give_up_their_jobs_within_up_s_wait() -> None:
    from infra.worker import GRACEFUL_SECONDS

    workers = {name: command for name, command in cli._up_commands().items() if command[0] == "worker"}
    assert set(workers) == {"worker", "c-worker"}
    for command in workers.values():
        graceful = float(command[command.index("--graceful-timeout") + 1])
        assert graceful + 2 < cli.STOP_TIMEOUT, command  # its wait, a second more for procrastinate, then its exit
    option = next(p for p in cli.worker.params if p.name == "graceful_timeout")
    assert option.default == GRACEFUL_SECONDS  # on its own, a worker waits as long as it always did


SCRIPT = textwrap.dedent("""
    import os, signal, time
    from procrastinate import App
    from procrastinate.testing import InMemoryConnector
    from infra.worker import run_until_stopped, work

    app = App(connector=InMemoryConnector())

    @app.task(name="long", queue="q")
    def long():  # a long synchronous job (a contract rendered, a face matched) when the stop comes
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)

    async def main():
        async with app.open_async():
            await long.defer_async()
        await work(app, tick_seconds=1, stalled_seconds=30, queues=["q"], concurrency=1, graceful_seconds=0.5)

    run_until_stopped(main())
    print("not reached: the job is still running")
""")


def test_a_worker_asked_to_stop_gives_up_a_long_job_at_its_graceful_timeout(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(SCRIPT)
    began = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr[-2000:]
    assert "jobs still running 0.5 s after the stop was asked" in done.stderr, done.stderr[-2000:]
    assert "not reached" not in done.stdout
    assert took < 15, took  # not the job's 30 s: the process ended at its graceful timeout
