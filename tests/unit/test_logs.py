"""Structured logs: one JSON object per line, carrying the request id of the work that logged it."""

from __future__ import annotations

import json
import logging

from infra.logs import JsonFormatter
from infra.logs import accept_request_id
from infra.logs import request_id


def test_a_log_line_is_json_with_the_request_id() -> None:
    record = logging.LogRecord("bff.test", logging.WARNING, __file__, 1, "risk unavailable for %s", ("a1",), None)
    token = request_id.set("req-123")
    try:
        line = JsonFormatter("bff").format(record)
    finally:
        request_id.reset(token)
    entry = json.loads(line)
    assert entry["request_id"] == "req-123" and entry["service"] == "bff" and entry["level"] == "WARNING"
    assert entry["msg"] == "risk unavailable for a1" and entry["ts"].endswith("+00:00")


def test_only_sane_request_ids_are_accepted() -> None:
    assert accept_request_id("abc-123") == "abc-123"
    for bad in ("", "x" * 65, "bad\nline", 'quote"d', None):
        made = accept_request_id(bad)
        assert made != bad and len(made) == 32
