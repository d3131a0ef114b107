"""Every reason a payment did not go through has words for the customer in Chinese and in English, with a next step,
and never the raw code (issue 17 §6: "付款未成功（card_declined）")."""

from __future__ import annotations

import re

import pytest

from bff.payments.declines import DECLINES
from bff.payments.declines import ERRORS
from bff.payments.declines import GENERIC
from bff.payments.declines import OURS
from bff.payments.declines import SHOWN_AS_GENERIC
from bff.payments.declines import decline_text

#: Stripe's card decline codes as documented (https://docs.stripe.com/declines/codes)
STRIPE_DECLINE_CODES = (
    "authentication_required", "approve_with_id", "call_issuer", "card_not_supported", "card_velocity_exceeded",
    "currency_not_supported", "do_not_honor", "do_not_try_again", "duplicate_transaction", "expired_card",
    "fraudulent", "generic_decline", "incorrect_number", "incorrect_cvc", "incorrect_pin", "incorrect_zip",
    "insufficient_funds", "invalid_account", "invalid_amount", "invalid_cvc", "invalid_expiry_month",
    "invalid_expiry_year", "invalid_number", "invalid_pin", "issuer_not_available", "lost_card", "merchant_blacklist",
    "new_account_information_available", "no_action_taken", "not_permitted", "offline_pin_required",
    "online_or_offline_pin_required", "pickup_card", "pin_try_exceeded", "processing_error", "reenter_transaction",
    "restricted_card", "revocation_of_all_authorizations", "revocation_of_authorization", "security_violation",
    "service_not_allowed", "stolen_card", "stop_payment_order", "testmode_decline", "transaction_not_allowed",
    "try_again_later", "withdrawal_count_limit_exceeded",
)
ALL = {**DECLINES, **ERRORS, **OURS}
CJK = re.compile(r"[\u4e00-\u9fff]")
NEXT_STEP_ZH = ("请", "不要")
NEXT_STEP_EN = ("Try", "try", "Contact", "contact", "Check", "Pay", "Use", "Place", "ask", "Ask", "Choose", "choose")


def test_every_documented_stripe_decline_code_is_in_the_table() -> None:
    assert set(STRIPE_DECLINE_CODES) <= set(DECLINES), sorted(set(STRIPE_DECLINE_CODES) - set(DECLINES))


@pytest.mark.parametrize("code", sorted(ALL))
def test_every_code_has_chinese_and_english_with_a_next_step_and_no_raw_code(code: str) -> None:
    zh, en = ALL[code]
    assert CJK.search(zh) and not re.search(r"[A-Za-z]{3,}_", zh), zh  # Chinese, no identifier in it
    assert en.isascii() and en[0].isupper() and "_" not in en, en
    assert code not in zh  # and "_" not in en: no identifier code in either
    assert any(step in zh for step in NEXT_STEP_ZH) or code == "replaced", zh
    assert any(step in en for step in NEXT_STEP_EN) or code == "replaced", en
    assert "未扣款" in zh or code == "authorisation window ended"  # the customer's first question: was I charged?


def test_what_stripe_asks_not_to_tell_reads_as_a_generic_decline() -> None:
    assert SHOWN_AS_GENERIC <= set(DECLINES)
    for code in SHOWN_AS_GENERIC:
        assert decline_text(code) == GENERIC


@pytest.mark.parametrize("code", [None, "", "a_code_stripe_added_later", "Your card was declined."])
def test_an_unknown_reason_reads_as_a_generic_decline(code: str | None) -> None:
    assert decline_text(code) == GENERIC


def test_a_failed_3d_secure_check_and_insufficient_funds_say_what_to_do() -> None:
    assert "银行验证未通过" in decline_text("payment_intent_authentication_failure")[0]
    assert decline_text("insufficient_funds")[0].startswith("余额或可用额度不足")
    assert "换一张卡" in decline_text("insufficient_funds")[0]


@pytest.mark.parametrize("code", sorted(SHOWN_AS_GENERIC))
def test_decline_text_itself_keeps_what_stripe_asks_not_to_tell(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # a table edit that gives one of these codes its own words (or a code added to ERRORS) still reads as GENERIC:
    # the rule lives in decline_text, not only in this file's check of the tables
    monkeypatch.setitem(DECLINES, code, ("卡已挂失", "The card was reported lost"))
    monkeypatch.setitem(ERRORS, code, ("卡已挂失", "The card was reported lost"))
    assert decline_text(code) == GENERIC
