"""The KYC worker pool survives gunicorn's fork: a child process gets threads of its own."""

from __future__ import annotations

import os

from bff.applications.jobs import ProcessLocalPool


def test_work_submitted_after_a_fork_runs_in_the_child() -> None:
    pool = ProcessLocalPool(1)
    assert pool.submit(lambda: 41 + 1).result(timeout=5) == 42  # the parent's pool has a thread now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: like a gunicorn worker forked after the app (and its pool) was built
        try:
            answer = pool.submit(os.getpid).result(timeout=5)
            os.write(write, b"ok" if answer == os.getpid() else b"wrong")
        except Exception:
            os.write(write, b"stuck")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"ok"
    pool.shutdown()


def test_the_warm_up_runs_once_per_process() -> None:
    calls: list[int] = []
    pool = ProcessLocalPool(1, warm_up=lambda: calls.append(os.getpid()))
    pool.start()
    pool.start()
    pool.submit(lambda: None).result(timeout=5)
    assert calls == [os.getpid()]
    pool.shutdown()
