"""Text messages: the ``SmsSender`` port, its embedded default (a sandbox outbox that sends nothing) and a production
adapter on Tencent Cloud SMS (the ``tencentcloud-sdk-python-sms`` SDK, API version 2021-01-11).

Mainland China's SMS platforms send approved templates, not free text: a template registered with the platform
(its id there) and its parameters, under a registered signature (签名, shown as 【…】). So the port takes a
template's name and its parameters (:data:`TEMPLATES`); each adapter sends the same template — the sandbox renders
it with the signature exactly as the platform would, so what tests and developers read at ``/dev/outbox`` is what a
customer receives.

No SMS platform can run here: the sandbox stores each message in ``sms_outbox``, with the dealer whose customer it
went to; development staff read their own dealer's at ``/dev/outbox`` (never mounted in production) and tests read
it directly. The Tencent adapter is tested at its HTTP boundary against the documented request and answer shapes
(tests/integration/test_sms.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import Protocol

from sqlalchemy import select

from infra.db.engine import Database
from infra.db.models import SmsOutboxRow
from infra.db.models import utcnow


@dataclass(frozen=True)
class Template:
    """An approved template: its wording as registered (``{name}`` where a parameter goes) and its parameters in
    the order the platform numbers them ({1}, {2} … on Tencent Cloud)."""

    text: str
    params: tuple[str, ...]

    def render(self, signature: str, params: Mapping[str, str]) -> str:
        return f"【{signature}】" + self.text.format(**{name: params[name] for name in self.params})


#: the one registered signature (签名) every text goes out under, by default the product's name as its screens show it
#: (租程, Leaseline; the catalogue's msgstr of "Leaseline"), never a second brand (issue 17 §8). Tencent Cloud refuses a
#: SignName not approved for the account: the deployment sets the approved one (``LEASELINE_SMS_SIGNATURE``,
#: bff/config.py), and both adapters sign every template with it.
SIGNATURE = "租程"

#: every text Leaseline sends, by name (the same wording registered with the platform, one template id each)
TEMPLATES: dict[str, Template] = {
    "invitation_code": Template("您的验证码是 {code}，10 分钟内有效。如非本人操作请忽略。", ("code",)),
    "signing_code": Template("您正在签署融资租赁合同，验证码 {code}，5 分钟内有效。如非本人操作请忽略。", ("code",)),
    "handover_code": Template("您正在确认接收融资租赁车辆并签署交接确认书，验证码 {code}，5 分钟内有效。"
                              "如非本人操作请忽略。", ("code",)),
    # the contract ready later than the waiting page's estimate (bff/applications/contracts.py LATE_AFTER)
    "contract_ready": Template("您的融资租赁合同已生成，可以签署了。请打开申请页面或“我的租赁”签署，"
                               "如有疑问请联系您的销售顾问。", ()),
    "documents_requested": Template("您的融资租赁申请需要补充材料：{documents}。"
                                    "请在 {due} 前打开链接拍照或上传：{link}", ("documents", "due", "link")),
    # an automatic rent collection that did not go through (bff/servicing/collect.py): pay it by hand on the phone
    "rent_not_collected": Template("您本期租金 {amount} 元未能自动扣款成功。请打开链接在手机上支付：{link}",
                                   ("amount", "link")),
    # reminders about a rent (issue 18 §4: the policy's [reminders] names them), in Chinese and in English; {rent} is
    # 第3期租金 / 尾付租金 (rent 3 / the final rent), {amount} and {penalty} yuan with two decimals
    # {collect}: the day an automatic collection debits it — 当日 / that day, or the calendar's next business day
    # for a rent due on a day off (bff/servicing/arrears.py reminder_params)
    "rent_due_soon": Template("您的融资租赁{rent} {amount} 元将于 {due} 到期，请按时支付；"
                              "已开通自动扣款的将于{collect}扣款。可在“我的租赁”查看和支付，如已支付请忽略。",
                              ("rent", "amount", "due", "collect")),
    "rent_due_soon_en": Template("Your lease's {rent} of CNY {amount} is due on {due}. Please pay on time; with "
                                 "automatic collection on, it is collected {collect}. See and pay it under My "
                                 "leases; ignore this if paid.", ("rent", "amount", "due", "collect")),
    "rent_overdue": Template("您的融资租赁{rent} {amount} 元（{due} 到期）已逾期 {days} 天，逾期违约金已计 {penalty} 元"
                             "并按日累计。请尽快在“我的租赁”支付，如已支付请忽略。",
                             ("rent", "amount", "due", "days", "penalty")),
    # a lease settled early (bff/servicing/settled.py): its certificate signed, the dealer to release the mortgage;
    # {date} the settlement day (结清日, the certificate's), which may still be ahead when the text goes out
    "lease_settled": Template("您的融资租赁（合同编号 {contract}）提前结清款项已付清，结清日为 {date}，结清证明已出具，"
                              "可在“我的租赁”查看和下载：{link} 。车辆抵押解除手续将由经销商办理。",
                              ("contract", "date", "link")),
    "lease_settled_en": Template("Your lease (contract {contract}) is paid off early, its settlement date {date}. Your "
                                 "settlement certificate is ready under My leases: {link} . The dealer will have the "
                                 "car's mortgage released.", ("contract", "date", "link")),
    # a partial prepayment applied: the schedule changed as the customer chose, its annex signed
    "schedule_changed": Template("您的部分提前还款 {amount} 元已入账，租金支付计划已按您的选择（{option}）变更，"
                                 "变更后的还款计划及确认书可在“我的租赁”查看：{link}", ("amount", "option", "link")),
    "schedule_changed_en": Template("Your prepayment of CNY {amount} is booked and your schedule changed as you chose "
                                    "({option}). See the new schedule and its annex under My leases: {link}",
                                    ("amount", "option", "link")),
    "rent_overdue_en": Template("Your lease's {rent} of CNY {amount}, due on {due}, is {days} day(s) overdue; late "
                                "charges so far CNY {penalty}, accruing daily. Please pay under My leases as soon as "
                                "possible; ignore this if paid.", ("rent", "amount", "due", "days", "penalty")),
    # the notice before an overdue report to the credit bureau (issue 18 §7; 征信业管理条例 art. 15): {amount} yuan
    # overdue now, {until} the month's last day (the report's as-of date: paid by then, nothing overdue is reported)
    "credit_report_notice": Template("您的融资租赁有逾期租金 {amount} 元。根据《征信业管理条例》第十五条，"
                                     "特此事先告知：如未能于 {until} 前付清，出租人将向金融信用信息基础数据库"
                                     "（征信系统）报送逾期信息，可能影响您的信用记录。"
                                     "请在“我的租赁”支付，如已支付请忽略。", ("amount", "until")),
    "credit_report_notice_en": Template("Your lease has CNY {amount} of rent overdue. As the credit reporting "
                                        "regulation (art. 15) requires, we tell you in advance: unless it is paid by "
                                        "{until}, the lessor will report it as overdue to the credit reference system, "
                                        "which may affect your credit record. Pay under My leases; ignore this if "
                                        "paid.", ("amount", "until")),
}


class SmsUnavailable(Exception):
    """The platform could not be reached or did not answer in time: nothing is known to be sent; try again."""


class SmsRefused(Exception):
    """The platform refused the message (a number it cannot reach, a daily limit, a template not approved)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class Sms:
    to: str
    body: str
    at: datetime
    dealer_id: str | None = None


class SmsSender(Protocol):
    def send(self, to: str, template: str, params: Mapping[str, str], dealer_id: str | None = None) -> None:
        """Send the template ``template`` (a name in :data:`TEMPLATES`) with ``params`` to the mobile number ``to``
        (11 digits, mainland China) on behalf of ``dealer_id`` (the dealer whose customer it is; None for the
        lessor's own). Raises SmsUnavailable or SmsRefused."""
        ...


def _template(name: str, params: Mapping[str, str]) -> Template:
    template = TEMPLATES[name]
    missing = [p for p in template.params if not params.get(p)]
    if missing:
        raise ValueError(f"template {name}: no {', '.join(missing)}")
    return template


class SandboxOutboxSms:
    """The sandbox: messages are rendered as the platform would and stored, never delivered."""

    def __init__(self, db: Database, signature: str = SIGNATURE) -> None:
        self.db, self.signature = db, signature

    def send(self, to: str, template: str, params: Mapping[str, str], dealer_id: str | None = None) -> None:
        body = _template(template, params).render(self.signature, params)
        with self.db.session() as session:
            session.add(SmsOutboxRow(to=to, body=body, dealer_id=dealer_id, created_at=utcnow()))

    def latest(self, limit: int = 50, to: str | None = None, dealer_id: str | None = None) -> list[Sms]:
        """The newest messages (for one number when ``to`` is given; of one dealer's customers when ``dealer_id``
        is given, None: every dealer's and the lessor's own)."""
        stmt = select(SmsOutboxRow).order_by(SmsOutboxRow.id.desc()).limit(limit)
        if to:
            stmt = stmt.where(SmsOutboxRow.to == to)
        if dealer_id is not None:
            stmt = stmt.where(SmsOutboxRow.dealer_id == dealer_id)
        with self.db.session() as session:
            return [Sms(r.to, r.body, r.created_at, r.dealer_id) for r in session.scalars(stmt)]


#: Tencent Cloud error codes that say "not now" rather than "not this": the platform's own trouble or its rate limit
_TRANSIENT = ("ClientNetworkError", "ServerNetworkError", "InternalError", "RequestLimitExceeded")


class TencentSms:
    """Tencent Cloud SMS (短信, API 2021-01-11 ``SendSms``): one request per message, the number in E.164
    (``+86…``), the template's id (``template_ids``) and its parameters in order, the application (SmsSdkAppId)
    and the registered signature (SignName). ``endpoint`` (host[:port]) and ``scheme`` point it elsewhere than
    sms.tencentcloudapi.com (tests)."""

    def __init__(self, *, secret_id: str, secret_key: str, app_id: str,
                 template_ids: Mapping[str, str], region: str = "ap-guangzhou", endpoint: str = "",
                 scheme: str = "https", timeout: int = 10, signature: str = SIGNATURE) -> None:
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client

        missing = sorted(set(TEMPLATES) - set(template_ids))
        if missing:
            raise ValueError(f"no Tencent Cloud template id for {', '.join(missing)}")
        http = HttpProfile(protocol=scheme, endpoint=endpoint or "sms.tencentcloudapi.com", reqTimeout=timeout)
        self.client = sms_client.SmsClient(credential.Credential(secret_id, secret_key), region,
                                           ClientProfile(httpProfile=http))
        self.app_id, self.signature, self.template_ids = app_id, signature, dict(template_ids)

    def send(self, to: str, template: str, params: Mapping[str, str], dealer_id: str | None = None) -> None:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.sms.v20210111 import models

        chosen = _template(template, params)
        request = models.SendSmsRequest()
        request.from_json_string(json.dumps({
            "PhoneNumberSet": [f"+86{to}"], "SmsSdkAppId": self.app_id, "SignName": self.signature,
            "TemplateId": self.template_ids[template], "TemplateParamSet": [params[p] for p in chosen.params],
            # echoed in delivery receipts: which dealer's customer (no personal data)
            "SessionContext": dealer_id or ""}))
        try:
            response: Any = self.client.SendSms(request)
        except TencentCloudSDKException as exc:
            code = str(exc.code or "")
            if code.startswith(_TRANSIENT):
                raise SmsUnavailable(f"{code}: {exc.message}") from None
            raise SmsRefused(code, str(exc.message or "")) from None
        statuses = response.SendStatusSet or []
        if not statuses:
            raise SmsUnavailable("no send status in the answer")
        status = statuses[0]
        if status.Code != "Ok":
            raise SmsRefused(str(status.Code), str(status.Message or ""))
