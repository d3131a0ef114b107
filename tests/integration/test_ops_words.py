"""The ops pages in words (walk-through finding 9): /ops/jobs named its columns and its filter by procrastinate's
states (todo, doing, failed …) and /payments showed a command between literal backticks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.jobs import STATES
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import sign_in
from tests.integration.test_jobs import OPS

pytestmark = pytest.mark.db
WORDS = {"todo": "等待运行", "doing": "运行中", "failed": "失败", "succeeded": "已完成", "cancelled": "已取消",
         "aborted": "已中止"}


def test_the_job_states_and_the_reconcile_command_read_as_words(bff_server: Any) -> None:
    base = bff_server.url
    with sign_in(base, OPS) as ops:
        page = ops.get(f"{base}/ops/jobs", params={"state": "doing"}, timeout=TIMEOUT).text
        head = re.search(r'<table data-testid="job-counts">.*?</thead>', page, re.S)
        assert head is not None
        assert re.findall(r'<th scope="col">([^<]*)</th>', head.group(0))[1:] == [WORDS[s] for s in STATES]
        options = re.findall(r'<option value="(\w+)"( selected)?>([^<]*)</option>', page)
        assert [(value, text) for value, _, text in options] == [(s, WORDS[s]) for s in STATES]
        assert [value for value, selected, _ in options if selected] == ["doing"]  # the filter keeps its value
        english = ops.get(f"{base}/ops/jobs", params={"lang": "en"}, timeout=TIMEOUT).text
        assert ">Waiting<" in english and ">todo<" not in english
        payments = ops.get(f"{base}/payments", timeout=TIMEOUT).text
        assert "<code>leaseline payments reconcile</code>" in payments and "`" not in payments
