"""Words for whoever looks (issue 17 §8): the customer reads about their own application in the second person and
without the lessor's internal terms; staff keep the third person and the working terms."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from flask import g
from flask import render_template_string
from sqlalchemy import update

from bff.applications.states import STATUSES
from infra.db.models import ApplicationRow
from tests.integration.test_applications import post
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import sign_in
from tests.integration.test_vehicle_by_dealer import customer_session

pytestmark = pytest.mark.db
PLAN = "20-36-0-ctpl+damage+tpl_1m-D-f-a"
#: words that speak of the customer in the third person, or of the lessor's internal roles and mechanics
STAFF_TERMS = ("客户", "风控", "工作人员", "人工审核", "模型", "自动批准", "重试", "第 1 级")
CUSTOMER_WORDS = {"draft": "请填写您的资料", "contract_ready": "请签署合同", "submitted": "请完成人脸核验",
                  "referred": "正在审核您的申请，通常 1 个工作日内完成",
                  "risk_pending": "正在审核您的申请，通常 1 个工作日内完成"}
STAFF_WORDS = {"draft": "等待客户填写资料", "contract_ready": "等待客户签署合同", "referred": "等待风控专员审核",
               "delivered": "客户按还款计划支付月租"}
MACROS = ('{% from "applications/_macros.html" import status_label, waiting_label %}'
          "{{ status_label(a.status) }} · {{ waiting_label(a) }}")


def labels(app: Any, kind: str, status: str, **extra: Any) -> str:
    """The status and what it waits for, as ``kind`` (customer or staff) reads them in Chinese."""
    row = SimpleNamespace(status=status, face_attempts=0, risk_attempts=2, contract_attempts=2, **extra)
    with app.test_request_context("/?lang=zh_CN"):
        g.actor = SimpleNamespace(kind=kind)
        return render_template_string(MACROS, a=row)


@pytest.mark.parametrize("status", STATUSES)
def test_each_status_is_worded_for_whoever_looks(app: Any, status: str) -> None:
    customer, staff = labels(app, "customer", status), labels(app, "staff", status)
    assert not [t for t in STAFF_TERMS if t in customer], customer
    if status in CUSTOMER_WORDS:
        assert CUSTOMER_WORDS[status] in customer, customer
    if status in STAFF_WORDS:
        assert STAFF_WORDS[status] in staff and STAFF_WORDS[status] not in customer, staff


def _start_as(base: str, s: Any) -> str:
    r = post(s, f"{base}/applications", {"vehicle": "byd-han-ev", "plan": PLAN},
             form_url=f"{base}/applications/new?vehicle=byd-han-ev&plan={PLAN}")
    assert r.status_code == 200 and "/consent" in r.url, r.text[:300]
    app_id = r.url.rsplit("/", 2)[-2]
    assert post(s, f"{base}/applications/{app_id}/consent", {"sensitive_pi": "yes", "credit_reporting": "yes"}) \
        .status_code == 200
    return str(app_id)


def _set(app: Any, app_id: str, **values: Any) -> None:
    with app.extensions["leaseline"].applications.repo.db.session() as session:
        session.execute(update(ApplicationRow).where(ApplicationRow.id == app_id).values(**values))


def test_the_customer_s_own_pages_speak_to_them(bff_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    with customer_session(base, app, "13900170801") as customer, sign_in(base, SALES_A) as sales:
        start = f"{base}/applications/new?vehicle=byd-han-ev&plan={PLAN.replace('+', '%2B')}"
        mine, theirs = customer.get(start, timeout=TIMEOUT).text, sales.get(start, timeout=TIMEOUT).text
        assert "接下来：您的授权同意" in mine and "客户授权同意" not in mine and "客户授权同意" in theirs
        app_id = _start_as(base, customer)
        url = f"{base}/applications/{app_id}"
        mine, theirs = customer.get(url, timeout=TIMEOUT).text, sales.get(url, timeout=TIMEOUT).text
        assert "请填写您的资料" in mine and "等待客户填写资料" not in mine
        assert "等待客户填写资料" in theirs
        # submitted without face recognition: "you did not agree", not "the customer did not agree"
        _set(app, app_id, status="submitted")
        mine, theirs = customer.get(url, timeout=TIMEOUT).text, sales.get(url, timeout=TIMEOUT).text
        assert "您未同意人脸识别" in mine and "客户未同意人脸识别" not in mine
        assert "客户未同意人脸识别" in theirs
        # with a risk officer: the customer reads what happens and how long; staff read the tier and the reasons
        result = {"outcome": "refer", "tier": 1, "reasons": [
            {"code": "AUTO_APPROVE", "text_zh": "模型与规则均通过，自动批准", "text_en": "approved automatically"}]}
        _set(app, app_id, status="referred", risk_result=json.dumps(result, ensure_ascii=False))
        mine, theirs = customer.get(url, timeout=TIMEOUT).text, sales.get(url, timeout=TIMEOUT).text
        assert "正在审核您的申请，通常 1 个工作日内完成" in mine
        for internal in ("风控专员人工审核（第 1 级）", "模型与规则均通过，自动批准", "等待风控专员审核",
                         "风控人工审核中"):
            assert internal not in mine and internal in theirs, internal
        # the contract waits for the signature: "please sign", not "waiting for the customer"
        _set(app, app_id, status="contract_ready")
        listing = customer.get(f"{base}/applications", timeout=TIMEOUT).text
        assert "请签署合同" in listing and "等待客户签署合同" not in listing


def test_the_counter_instructions_go_once_the_identity_is_verified(bff_server: Any) -> None:
    """The counter-check steps sit in the polled status block: once verified, the next poll drops them."""
    base, app = bff_server.url, bff_server.app
    with customer_session(base, app, "13900170802") as customer:
        app_id = _start_as(base, customer)
        url = f"{base}/applications/{app_id}"
        repo = app.extensions["leaseline"].applications.repo
        _set(app, app_id, status="submitted")
        assert repo.transition(app_id, allowed_from=("submitted",), to="kyc_review", actor_kind="customer",
                               actor_id="c", note="counter_verification") is not None
        polled = customer.get(url, headers={"HX-Request": "true"}, timeout=TIMEOUT).text
        assert 'data-testid="counter-next"' in polled
        assert repo.transition(app_id, allowed_from=("kyc_review",), to="kyc_passed", actor_kind="staff",
                               actor_id="s") is not None
        polled = customer.get(url, headers={"HX-Request": "true"}, timeout=TIMEOUT).text
        assert 'id="app-status"' in polled and 'data-testid="counter-next"' not in polled


def test_the_contract_page_waiting_for_the_vin_speaks_to_the_customer_and_counts_the_steps(
        bff_server: Any) -> None:
    """Issue 17 §5/§8: while the contract waits for the dealer's VIN the customer reads what happens, in the second
    person — never the staff's note (its ``detail``, raw text or JSON). The step counter (第 5 步，共 6 步) is on
    the page for both, as on the applicant's other pages: a salesperson guiding the customer on the tablet sees the
    same step (tests/e2e/test_words_browser.py)."""
    base, app = bff_server.url, bff_server.app
    with customer_session(base, app, "13900170803") as customer, sign_in(base, SALES_A) as sales:
        app_id = _start_as(base, customer)
        detail = "车架号等车辆信息尚未填写：请销售顾问在申请页面填写 (the salesperson enters the car's VIN)"
        _set(app, app_id, status="contract_pending",
             contract_result=json.dumps({"error": "vehicle_details", "detail": detail}, ensure_ascii=False))
        url = f"{base}/applications/{app_id}/contract"
        mine, theirs = customer.get(url, timeout=TIMEOUT).text, sales.get(url, timeout=TIMEOUT).text
        assert "车辆信息正在由销售顾问补充，完成后我们会短信通知您" in mine, mine[-3000:]
        assert detail not in mine and "请销售顾问在申请页面填写" not in mine and "出租人" not in mine
        assert 'data-testid="contract-error"' in theirs and "请填写车架号" in theirs
        assert 'data-testid="step-counter"' in mine and "第 5 步，共 6 步" in mine
        assert 'data-testid="step-counter"' in theirs and "第 5 步，共 6 步" in theirs
        # a refusal's detail (the contract service's field errors) is the staff's to read, never the customer's
        _set(app, app_id, contract_result=json.dumps({"error": "refused", "detail": '{"vehicle.vin": ["bad"]}'}))
        mine, theirs = customer.get(url, timeout=TIMEOUT).text, sales.get(url, timeout=TIMEOUT).text
        assert "vehicle.vin" not in mine and "vehicle.vin" in theirs


def test_an_old_failed_face_check_leaves_the_customer_s_page_once_the_identity_is_verified(bff_server: Any) -> None:
    """The walk-through's 张三, verified at the counter and approved, still read "人脸核验未通过 ✗ 自拍中有 2 张人脸" on
    his application through signing, payment and the lease. While the identity is in question the customer reads
    why; once it is verified the old failure is the staff's history only."""
    base, app = bff_server.url, bff_server.app
    repo = app.extensions["leaseline"].applications.repo
    with customer_session(base, app, "13900170804") as customer, sign_in(base, SALES_A) as sales:
        app_id = _start_as(base, customer)
        url = f"{base}/applications/{app_id}"
        _set(app, app_id, status="submitted", face_attempts=1)
        check = repo.add_check(app_id, "face")
        repo.update_check(check.id, state="done", outcome="fail", detail={"match": {"distance": None, "checks": [
            {"passed": False, "text_zh": "自拍中有 2 张人脸：画面中只能有本人", "text_en": "2 faces in the selfie"}]},
            "liveness": {"checks": []}})
        assert 'data-testid="face-result"' in customer.get(url, timeout=TIMEOUT).text
        assert repo.transition(app_id, allowed_from=("submitted",), to="kyc_review", actor_kind="customer",
                               actor_id="c", note="counter_verification") is not None
        assert 'data-testid="face-result"' in customer.get(url, timeout=TIMEOUT).text  # still why it is checked
        for status in ("kyc_passed", "approved", "signed", "delivered"):
            _set(app, app_id, status=status)
            mine = customer.get(url, timeout=TIMEOUT).text
            assert 'data-testid="face-result"' not in mine and "自拍中有 2 张人脸" not in mine, status
        assert 'data-testid="face-result"' in sales.get(url, timeout=TIMEOUT).text  # the staff's history


def test_each_page_of_the_journey_speaks_to_whoever_looks(bff_server: Any) -> None:
    """The walk-through's wording: the customer's own step was named 客户信息; a customer who declined face
    recognition was asked to take the face check; the customer's payment page ended in the staff's voice (车辆可以交付)
    and their lease page spoke of "the customer"; the salesperson's pipeline told them to pay the rent."""
    base, app = bff_server.url, bff_server.app
    with customer_session(base, app, "13900170805") as customer, sign_in(base, SALES_A) as sales:
        app_id = _start_as(base, customer)  # the two required consents only: no face recognition
        url = f"{base}/applications/{app_id}"
        step = customer.get(f"{url}/steps/customer", timeout=TIMEOUT).text
        assert "<h1>您的信息</h1>" in step and "客户信息" not in step
        assert "<h1>客户信息</h1>" in sales.get(f"{url}/steps/customer", timeout=TIMEOUT).text
        _set(app, app_id, status="submitted")
        mine = customer.get(url, timeout=TIMEOUT).text
        assert "请到经销商柜台核验身份证" in mine and "请完成人脸核验" not in mine
        _set(app, app_id, status="ready_for_delivery")
        mine, theirs = (s.get(f"{url}/payment", timeout=TIMEOUT).text for s in (customer, sales))
        assert "您可以到经销商处提车" in mine and "车辆可以交付" not in mine and "车辆可以交付" in theirs
        mine, theirs = (s.get(f"{url}/lease", timeout=TIMEOUT).text for s in (customer, sales))
        lease = mine.split('data-testid="lease"')[1].split("</section>")[0]
        assert "租赁期自您接收车辆" in lease and "客户" not in lease
        assert "租赁期自客户接收车辆" in theirs
        _set(app, app_id, status="delivered")
        listing = sales.get(f"{base}/applications", timeout=TIMEOUT).text
        assert "租期已开始：客户按还款计划支付月租" in listing and "请按还款计划支付月租" not in listing
