"""The customer's mandate for automatic rent collection (issue 18 §3): given at signing (or any time after), on the
customer's own phone — a card saved through a Stripe SetupIntent for off-session charges, or a bank's 协议支付
direct-debit agreement (the sandbox bank by default) — with the mandate text below accepted, its version and the
fingerprint of the very words shown kept with it; automatic collection on or off, and the mandate revoked, by the
customer at any time. Without a mandate in force, or with automatic collection off, each rent is paid on the phone.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from infra.collections import CARD
from infra.collections import DIRECT_DEBIT
from infra.collections import Mandate
from infra.collections import SqlCollections
from infra.collections import StripeOffSession

#: the mandate's words, versioned: a change is a new version, and the mandates given keep the version they accepted
#: (2026.12-1 named the rents and late charges only: infra/collections.py RENTS_ONLY_MANDATES)
MANDATE_VERSION = "2026.12-2"
MANDATE_TEXT = {
    "zh": ("自动扣款授权：本人授权出租人按《融资租赁合同》约定，于每期租金到期日（遇法定节假日顺延至下一工作日）"
           "从本人在此授权的银行卡或协议支付账户自动扣收当期应付租金及已产生的逾期违约金；租期届满本人选择留购车辆的，于租期最后一日扣收留购价中保证金冲抵后的余额。每期最多扣收一次当期应付"
           "金额，多扣部分自动原路退回。扣款未成功的，出租人以短信通知本人，本人可随时在手机上自行支付。本人可随时在"
           "“我的租赁”中关闭自动扣款或撤销本授权；撤销前已发起的扣款不受影响。"),
    "en": ("Automatic collection mandate: I authorise the lessor to collect, as my finance lease contract states, each "
           "rent due and any late charge already accrued on its due date (the next working day when it falls on a "
           "public holiday) from the card or the direct-debit account I authorise here — and, when I choose to keep "
           "the car at the end of the term, the purchase price less what the deposit pays of it, on the term's last "
           "day. Each rent is collected at "
           "most once for the amount due; anything collected in excess is refunded automatically to the same account. "
           "When a collection fails the lessor texts me, and I may always pay on my phone. I may turn automatic "
           "collection off or revoke this mandate at any time under My leases; collections started before then are "
           "not affected."),
}
#: the sandbox bank's behaviours a customer may choose in TEST MODE: the agreement number's last digit
#: (infra/collections.py SandboxDirectDebit)
SANDBOX_BEHAVIOURS = {"success": "0", "insufficient_funds": "6", "revoked": "7", "delayed": "8"}
BANKS = ("沙箱银行", "中国工商银行", "中国建设银行", "中国农业银行", "中国银行", "招商银行")
#: the banks' names in English (a mandate keeps the Chinese one, as the bank's agreement names it)
BANK_NAMES_EN = {"沙箱银行": "Sandbox Bank", "中国工商银行": "Industrial and Commercial Bank of China",
                 "中国建设银行": "China Construction Bank", "中国农业银行": "Agricultural Bank of China",
                 "中国银行": "Bank of China", "招商银行": "China Merchants Bank"}


def bank_name(name: str, language: str) -> str:
    """A bank's name for a reader of ``language`` (zh | en): in English its English name with the Chinese one the
    agreement and the statements use (Sandbox Bank (沙箱银行)); a bank we have no English name for as it is."""
    english = BANK_NAMES_EN.get(name)
    return f"{english} ({name})" if language == "en" and english else name


def text_fingerprint(language: str) -> str:
    return hashlib.sha256(MANDATE_TEXT[language].encode("utf-8")).hexdigest()


class MandateRefused(Exception):
    """What the customer gave cannot make a mandate (a field error, a card declined)."""

    def __init__(self, field: str, text_zh: str, text_en: str, code: str | None = None) -> None:
        super().__init__(field)
        self.field, self.text_zh, self.text_en, self.code = field, text_zh, text_en, code


@dataclass(frozen=True)
class DirectDebitForm:
    bank: str
    account_last4: str
    behaviour: str  # the sandbox bank's answer to come (TEST MODE)


class MandateService:
    def __init__(self, repo: SqlCollections, card: StripeOffSession | None, clock: Callable[[], datetime]) -> None:
        self.repo, self.card, self.clock = repo, card, clock

    def current(self, application_id: str) -> Mandate | None:
        return self.repo.active_mandate(application_id)

    def save_card(self, application_id: str, payment_method: str, language: str, *, accepted: bool,
                  token: str) -> Mandate:
        """A card saved for automatic collection under the mandate shown in ``language``; ``token``, the form's own,
        keys the Stripe calls (their Idempotency-Key: the form sent again saves the same card at Stripe)."""
        _accepted(accepted)
        if self.card is None:
            raise MandateRefused("card", "暂不支持银行卡自动扣款", "Cards cannot be used for automatic collection here")
        from infra.payments import PaymentDeclined

        try:
            customer, method, setup = self.card.save_card(
                key=f"mandate:{application_id}:{token}", payment_method=payment_method,
                metadata={"application_id": application_id, "kind": "rent_mandate"})
        except PaymentDeclined as exc:
            raise MandateRefused("card", "这张卡未能开通自动扣款，未扣款。请换一张卡",
                                 "This card could not be set up for automatic collection and nothing was charged. "
                                 "Try another card", code=exc.code) from None
        return self.repo.add_mandate(application_id=application_id, kind=CARD, customer_ref=customer,
                                     payment_method=method, setup_intent=setup, text_version=MANDATE_VERSION,
                                     text_sha256=text_fingerprint(language), language=language, now=self.clock())

    def sign_direct_debit(self, application_id: str, form: DirectDebitForm, language: str, *,
                          accepted: bool) -> Mandate:
        """A direct-debit agreement (协议支付) with the sandbox bank: its agreement number ends with the digit of the
        behaviour chosen (infra/collections.py SandboxDirectDebit)."""
        _accepted(accepted)
        if form.bank not in BANKS:
            raise MandateRefused("bank", "请选择开户银行", "Choose the bank")
        if not (len(form.account_last4) == 4 and form.account_last4.isdigit()):
            raise MandateRefused("account_last4", "请填写银行卡号后四位（4 位数字）",
                                 "Enter the last four digits of the account (4 digits)")
        digit = SANDBOX_BEHAVIOURS.get(form.behaviour)
        if digit is None:
            raise MandateRefused("behaviour", "请选择沙箱银行的扣款结果", "Choose the sandbox bank's answer")
        agreement = f"XY{self.clock():%Y%m%d}{secrets.randbelow(10 ** 8):08d}{digit}"
        return self.repo.add_mandate(application_id=application_id, kind=DIRECT_DEBIT, agreement_no=agreement,
                                     bank=form.bank, account_last4=form.account_last4, text_version=MANDATE_VERSION,
                                     text_sha256=text_fingerprint(language), language=language, now=self.clock())

    def switch(self, application_id: str, on: bool) -> Mandate:
        mandate = self.repo.active_mandate(application_id)
        if mandate is None:
            raise MandateRefused("mandate", "尚未开通自动扣款", "Automatic collection is not set up")
        self.repo.set_auto_collect(mandate.id, on, self.clock())
        return self.repo.mandate(mandate.id) or mandate

    def revoke(self, application_id: str) -> None:
        mandate = self.repo.active_mandate(application_id)
        if mandate is not None:
            self.repo.revoke_mandate(mandate.id, self.clock())


def _accepted(accepted: bool) -> None:
    if not accepted:
        raise MandateRefused("accept", "请阅读并勾选同意自动扣款授权", "Read the mandate and tick that you agree")
