"""Text messages through the SMS port (infra/sms.py): the Tencent Cloud adapter at its HTTP boundary — the SDK's
real request (API 3.0, TC3-HMAC-SHA256 signed, action SendSms of version 2021-01-11) to a test server answering
with the shapes of Tencent Cloud's documentation (a send status per number, an error object) — and the sandbox,
which renders the same templates with the signature, as a customer's phone shows them."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from infra.sms import TEMPLATES
from infra.sms import SmsRefused
from infra.sms import SmsUnavailable
from infra.sms import TencentSms

SENT = {"Response": {"SendStatusSet": [{"SerialNo": "5000:1045710669157053657849499619",
                                        "PhoneNumber": "+8613900139000", "Fee": 1, "SessionContext": "dealer-1",
                                        "Code": "Ok",
                                        "Message": "send success", "IsoCode": "CN"}],
                     "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}}
DAILY_LIMIT = {"Response": {"SendStatusSet": [{"SerialNo": "", "PhoneNumber": "+8613900139000", "Fee": 0,
                                               "SessionContext": "", "Code": "LimitExceeded.PhoneNumberDailyLimit",
                                               "Message": "the number of SMS messages sent from a single mobile "
                                                          "number every day exceeds the upper limit",
                                               "IsoCode": "CN"}],
                            "RequestId": "b5b3f3a2-8f4d-4c8e-9f5e-0d1e2c3b4a59"}}
BAD_SIGNATURE = {"Response": {"Error": {"Code": "FailedOperation.SignatureIncorrectOrUnapproved",
                                        "Message": "signature format is incorrect or signature is not approved"},
                              "RequestId": "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"}}
INTERNAL = {"Response": {"Error": {"Code": "InternalError.Timeout", "Message": "request timed out"},
                         "RequestId": "1c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"}}


class FakeTencentCloud:
    """Records each request (headers and JSON body) and answers with ``answer``."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.answer: dict[str, Any] = SENT
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fake.requests.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                data = json.dumps(fake.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cloud() -> Iterator[FakeTencentCloud]:
    fake = FakeTencentCloud()
    yield fake
    fake.close()


def adapter(endpoint: str) -> TencentSms:
    return TencentSms(secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
                      app_id="1400006666", template_ids={"invitation_code": "1110001",
                                                         "signing_code": "1110002",
                                                         "handover_code": "1110003",
                                                         "documents_requested": "1110004",
                                                         "contract_ready": "1110005",
                                                         "rent_not_collected": "1110016",
                                                         "rent_due_soon": "1110017", "rent_due_soon_en": "1110018",
                                                         "rent_overdue": "1110019", "rent_overdue_en": "1110020",
                                                         "lease_settled": "1110021", "lease_settled_en": "1110022",
                                                         "schedule_changed": "1110023",
                                                         "schedule_changed_en": "1110024",
                                                         "credit_report_notice": "1110025",
                                                         "credit_report_notice_en": "1110026"},
                      endpoint=endpoint, scheme="http", timeout=2)


def test_a_text_goes_out_as_an_approved_template_with_its_parameters(cloud: FakeTencentCloud) -> None:
    adapter(cloud.endpoint).send("13900139000", "signing_code", {"code": "042517"}, dealer_id="dealer-1")
    [(headers, body)] = cloud.requests
    assert headers["x-tc-action"] == "SendSms" and headers["x-tc-version"] == "2021-01-11"
    assert headers["x-tc-region"] == "ap-guangzhou"
    assert re.fullmatch(r"TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/\d{4}-\d{2}-\d{2}/sms/"
                        r"tc3_request, SignedHeaders=[a-z;-]+, Signature=[0-9a-f]{64}", headers["authorization"])
    assert body == {"PhoneNumberSet": ["+8613900139000"], "SmsSdkAppId": "1400006666", "SignName": "租程",
                    "TemplateId": "1110002", "TemplateParamSet": ["042517"], "SessionContext": "dealer-1"}


@pytest.mark.parametrize(("answer", "error", "code"), [
    (DAILY_LIMIT, SmsRefused, "LimitExceeded.PhoneNumberDailyLimit"),
    (BAD_SIGNATURE, SmsRefused, "FailedOperation.SignatureIncorrectOrUnapproved"),
    (INTERNAL, SmsUnavailable, "InternalError.Timeout"),
])
def test_a_refusal_and_an_outage_are_told_apart(cloud: FakeTencentCloud, answer: dict[str, Any],
                                                error: type[Exception], code: str) -> None:
    cloud.answer = answer
    with pytest.raises(error) as raised:
        adapter(cloud.endpoint).send("13900139000", "invitation_code", {"code": "123456"})
    assert code in str(raised.value)


def test_an_unreachable_platform_is_unavailable() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SmsUnavailable):
        adapter(f"127.0.0.1:{port}").send("13900139000", "invitation_code", {"code": "123456"})


def test_every_template_needs_its_id_and_its_parameters(cloud: FakeTencentCloud) -> None:
    with pytest.raises(ValueError, match="signing_code"):
        TencentSms(secret_id="x", secret_key="y", app_id="1",
                   template_ids={"invitation_code": "1"}, endpoint=cloud.endpoint, scheme="http")
    with pytest.raises(ValueError, match="code"):
        adapter(cloud.endpoint).send("13900139000", "invitation_code", {})
    assert cloud.requests == []


def test_the_sandbox_renders_what_the_customer_would_read(db_url: str) -> None:
    from infra.db import Database
    from infra.sms import SandboxOutboxSms

    db = Database(db_url)
    try:
        sandbox = SandboxOutboxSms(db)
        sandbox.send("13900139077", "signing_code", {"code": "654321"}, dealer_id="d1")
        [sms] = sandbox.latest(1, to="13900139077")
        assert sms.body == "【租程】" + TEMPLATES["signing_code"].text.format(code="654321")
        assert sms.body.startswith("【租程】您正在签署融资租赁合同，验证码 654321，") and sms.dealer_id == "d1"
    finally:
        db.dispose()


def test_production_refuses_the_sandbox_and_checks_the_tencent_settings() -> None:
    from bff.config import ConfigError
    from bff.config import Settings

    production = {"LEASELINE_ENV": "production", "LEASELINE_DATABASE_URL": "postgresql://db/leaseline",
                  "LEASELINE_SECRET_KEY": "k" * 40, "LEASELINE_PII_KEY": "p",
                  "LEASELINE_STRIPE_SECRET_KEY": "sk_live_x",
                  "LEASELINE_STRIPE_WEBHOOK_SECRET": "whsec_x", "LEASELINE_STRIPE_PUBLISHABLE_KEY": "pk_live_x",
                  "LEASELINE_PUBLIC_URL": "https://app.leaseline.example"}
    with pytest.raises(ConfigError, match="LEASELINE_SMS must be tencent in production"):
        Settings.from_env(production)
    with pytest.raises(ConfigError, match="LEASELINE_TENCENT_SMS_SECRET_ID"):
        Settings.from_env({**production, "LEASELINE_SMS": "tencent"})
    tencent = {**production, "LEASELINE_SMS": "tencent", "LEASELINE_TENCENT_SMS_SECRET_ID": "AKID",
               "LEASELINE_TENCENT_SMS_SECRET_KEY": "key", "LEASELINE_TENCENT_SMS_APP_ID": "1400006666"}
    with pytest.raises(ConfigError, match="TEMPLATES"):
        Settings.from_env({**tencent, "LEASELINE_TENCENT_SMS_TEMPLATES": '{"invitation_code": "1"}'})
    settings = Settings.from_env({**tencent, "LEASELINE_TENCENT_SMS_TEMPLATES":
                                  ('{"invitation_code": "1110001", "signing_code": "1110002", '
                                   '"handover_code": "1110003", "documents_requested": "1110004", '
                                   '"contract_ready": "1110005", "rent_not_collected": "1110016", '
                                   '"rent_due_soon": "1110017", "rent_due_soon_en": "1110018", '
                                   '"rent_overdue": "1110019", "rent_overdue_en": "1110020", '
                                   '"lease_settled": "1110021", "lease_settled_en": "1110022", '
                                   '"schedule_changed": "1110023", "schedule_changed_en": "1110024", '
                                   '"credit_report_notice": "1110025", "credit_report_notice_en": "1110026"}')})
    assert settings.sms == "tencent" and dict(settings.tencent_sms)["app_id"] == "1400006666"


def test_a_code_the_platform_refused_is_not_counted_as_sent(db_url: str, cloud: FakeTencentCloud) -> None:
    """The customer's code page with Tencent Cloud behind it: a refused text is a clear 503 page (try again), the
    invitation keeps no code and no one-minute wait; the next try goes out as the approved template."""
    import requests

    from tests.conftest import LiveServer
    from tests.conftest import build_app
    from tests.integration.test_applications import SALES_A
    from tests.integration.test_auth import TIMEOUT
    from tests.integration.test_auth import csrf
    from tests.integration.test_auth import sign_in
    from tests.integration.test_invitations import invite

    tencent = {"secret_id": "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "secret_key": "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
               "app_id": "1400006666", "region": "ap-guangzhou", "endpoint": cloud.endpoint, "scheme": "http",
               "templates": json.dumps({"invitation_code": "1110001", "signing_code": "1110002",
                                           "handover_code": "1110003", "documents_requested": "1110004",
                                           "contract_ready": "1110005", "rent_not_collected": "1110016",
                                           "rent_due_soon": "1110017", "rent_due_soon_en": "1110018",
                                           "rent_overdue": "1110019", "rent_overdue_en": "1110020",
                                           "lease_settled": "1110021", "lease_settled_en": "1110022",
                                           "schedule_changed": "1110023", "schedule_changed_en": "1110024",
                                           "credit_report_notice": "1110025",
                                           "credit_report_notice_en": "1110026"})}
    app = build_app(db_url, sms="tencent", tencent_sms=tuple(tencent.items()))
    assert app.extensions["leaseline"].outbox is None
    try:
        with LiveServer(app) as bff, sign_in(bff.url, SALES_A) as sales, requests.Session() as customer:
            _, link = invite(bff.url, sales, "13800138077")
            cloud.answer = DAILY_LIMIT
            r = customer.post(f"{link}/code", data={"csrf_token": csrf(customer, link)}, timeout=TIMEOUT)
            assert r.status_code == 503 and 'data-testid="sms-failed"' in r.text and 'name="code"' not in r.text
            cloud.answer = SENT
            r = customer.post(f"{link}/code", data={"csrf_token": csrf(customer, link)}, timeout=TIMEOUT)
            assert r.status_code == 200 and 'name="code"' in r.text  # at once: no wait after the refusal
        sent = [body for _, body in cloud.requests]
        assert [b["TemplateId"] for b in sent] == ["1110001", "1110001"]
        assert [b["PhoneNumberSet"] for b in sent] == [["+8613800138077"]] * 2
        assert all(re.fullmatch(r"\d{6}", b["TemplateParamSet"][0]) for b in sent)
    finally:
        app.extensions["leaseline"].db.dispose()
