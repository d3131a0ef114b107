"""Why a payment did not go through, in the customer's words, with what to do next: every code Stripe may put in a
card error or a PaymentIntent's ``last_payment_error`` (``decline_code``, else ``code``), and the reasons our own
checkout records, each as ``(zh, en)``.

The customer never sees a raw code (issue 17 §6: "付款未成功（card_declined）"); staff may see it beside the text.
Stripe asks that some reasons are not told to the customer — a card reported lost or stolen, a suspected fraud, the
merchant's block list — and presented as a generic decline (https://docs.stripe.com/declines/codes): those are in
:data:`SHOWN_AS_GENERIC` and read as :data:`GENERIC`. The next steps follow Stripe's table of decline codes; a code
not in it (Stripe adds codes) also reads as :data:`GENERIC`, which never says more than "declined, nothing charged".
"""

from __future__ import annotations

from bff.rendering import in_locale

Text = tuple[str, str]  # (zh, en)

GENERIC: Text = ("银行卡被拒绝，未扣款。请换一张卡，或联系发卡行了解原因",
                 "Your card was declined and nothing was charged. Try another card, or ask your card issuer why")
_CALL_ISSUER: Text = ("发卡行拒绝了这笔付款，未扣款。请联系发卡行，或换一张卡",
                      "Your card issuer declined this payment and nothing was charged. Contact your card issuer, or "
                      "try another card")
_TRY_AGAIN: Text = ("这次付款暂时未能处理，未扣款。请稍后重试；如仍不成功，请换一张卡",
                    "This payment could not be processed just now and nothing was charged. Try again in a moment; if "
                    "it still fails, try another card")
_CHECK_NUMBER: Text = ("卡号不正确，未扣款。请核对卡号后重试，或换一张卡",
                       "The card number is not correct and nothing was charged. Check it and try again, or try "
                       "another card")
_CHECK_CVC: Text = ("安全码（卡背面三位数）不正确，未扣款。请核对后重试",
                    "The security code (CVC, on the back of the card) is not correct and nothing was charged. Check it "
                    "and try again")
_CHECK_EXPIRY: Text = ("有效期不正确，未扣款。请核对卡面上的有效期后重试",
                       "The expiry date is not correct and nothing was charged. Check it on the card and try again")
_NO_PIN: Text = ("这张卡需要输入密码，网上无法支付，未扣款。请换一张卡",
                 "This card needs its PIN, which cannot be entered online, and nothing was charged. Try another card")
_NO_FUNDS: Text = ("余额或可用额度不足，未扣款。请换一张卡，或联系发卡行",
                   "There is not enough balance or credit on this card and nothing was charged. Try another card, or "
                   "contact your card issuer")

#: Stripe's card decline codes (https://docs.stripe.com/declines/codes), each with the customer's next step
DECLINES: dict[str, Text] = {
    "authentication_required": ("您的银行要求验证这笔付款，未扣款。请重新付款并按提示完成银行验证",
                                "Your bank asks you to confirm this payment and nothing was charged. Pay again and "
                                "confirm it with your bank when asked"),
    "approve_with_id": ("这笔付款暂时未获批准，未扣款。请重试；如仍不成功，请联系发卡行",
                        "This payment could not be approved and nothing was charged. Try again; if it still fails, "
                        "contact your card issuer"),
    "call_issuer": _CALL_ISSUER,
    "card_not_supported": ("这张卡不支持此类付款，未扣款。请换一张卡，或向发卡行确认",
                           "This card does not support this kind of payment and nothing was charged. Try another card, "
                           "or check with your card issuer"),
    "card_velocity_exceeded": ("已超出这张卡的额度或次数限制，未扣款。请换一张卡，或联系发卡行",
                               "This card's limit has been reached and nothing was charged. Try another card, or "
                               "contact your card issuer"),
    "currency_not_supported": ("这张卡不支持人民币付款，未扣款。请换一张卡",
                               "This card cannot pay in yuan (CNY) and nothing was charged. Try another card"),
    "do_not_honor": _CALL_ISSUER,
    "do_not_try_again": ("发卡行拒绝了这笔付款，请不要再用这张卡重试，未扣款。请换一张卡，或联系发卡行",
                         "Your card issuer declined this payment: do not try this card again. Nothing was charged. "
                         "Try another card, or contact your card issuer"),
    "duplicate_transaction": ("刚刚已有一笔相同金额的付款，这一笔未扣款。请先查看付款状态，不要重复付款",
                              "A payment of the same amount was just made, so this one was not charged. Check the "
                              "payment's status before paying again"),
    "expired_card": ("这张卡已过期，未扣款。请换一张卡",
                     "This card has expired and nothing was charged. Try another card"),
    "fraudulent": GENERIC,
    "generic_decline": GENERIC,
    "incorrect_number": _CHECK_NUMBER,
    "incorrect_cvc": _CHECK_CVC,
    "incorrect_pin": _NO_PIN,
    "incorrect_zip": ("账单邮编不正确，未扣款。请核对后重试，或换一张卡",
                      "The billing postcode is not correct and nothing was charged. Check it and try again, or try "
                      "another card"),
    "insufficient_funds": _NO_FUNDS,
    "invalid_account": ("这张卡或其账户已失效，未扣款。请换一张卡，或联系发卡行",
                        "This card or its account is no longer valid and nothing was charged. Try another card, or "
                        "contact your card issuer"),
    "invalid_amount": ("付款金额超出了这张卡允许的范围，未扣款。请联系发卡行，或换一张卡",
                       "The amount is more than this card allows and nothing was charged. Contact your card issuer, or "
                       "try another card"),
    "invalid_cvc": _CHECK_CVC,
    "invalid_expiry_month": _CHECK_EXPIRY,
    "invalid_expiry_year": _CHECK_EXPIRY,
    "invalid_number": _CHECK_NUMBER,
    "invalid_pin": _NO_PIN,
    "issuer_not_available": ("暂时联系不上发卡行，未扣款。请稍后重试，或换一张卡",
                             "Your card issuer could not be reached and nothing was charged. Try again in a moment, or "
                             "try another card"),
    "lost_card": GENERIC,
    "merchant_blacklist": GENERIC,
    "new_account_information_available": ("这张卡的信息已更新（可能已换发新卡），未扣款。请使用新卡或换一张卡",
                                          "This card's details have changed (a new card may have been issued) and "
                                          "nothing was charged. Use the new card, or try another card"),
    "no_action_taken": _CALL_ISSUER,
    "not_permitted": ("这笔付款不被允许，未扣款。请联系发卡行，或换一张卡",
                      "This payment is not permitted and nothing was charged. Contact your card issuer, or try another "
                      "card"),
    "offline_pin_required": _NO_PIN,
    "online_or_offline_pin_required": _NO_PIN,
    "pickup_card": GENERIC,
    "pin_try_exceeded": ("密码错误次数过多，这张卡暂时无法使用，未扣款。请换一张卡，或联系发卡行",
                         "The PIN was entered wrongly too many times and nothing was charged. Try another card, or "
                         "contact your card issuer"),
    "processing_error": _TRY_AGAIN,
    "reenter_transaction": _TRY_AGAIN,
    "restricted_card": GENERIC,
    "revocation_of_all_authorizations": _CALL_ISSUER,
    "revocation_of_authorization": _CALL_ISSUER,
    "security_violation": GENERIC,
    "service_not_allowed": ("发卡行不允许这张卡进行此类付款，未扣款。请联系发卡行，或换一张卡",
                            "Your card issuer does not allow this kind of payment on this card and nothing was "
                            "charged. Contact your card issuer, or try another card"),
    "stolen_card": GENERIC,
    "stop_payment_order": _CALL_ISSUER,
    "testmode_decline": ("这是 Stripe 的测试卡，真实付款不能使用，未扣款。请换一张真实的银行卡",
                         "This is a Stripe test card, which cannot pay for real, and nothing was charged. Use a real "
                         "card"),
    "transaction_not_allowed": ("这张卡不能用于此类付款（如境外或网上付款），未扣款。请在发卡行开通后重试，或换一张卡",
                                "This card may not be used for this kind of payment (online or abroad, say) and "
                                "nothing was charged. Ask your card issuer to allow it, or try another card"),
    "try_again_later": _TRY_AGAIN,
    "withdrawal_count_limit_exceeded": ("已超出这张卡的额度或次数限制，未扣款。请换一张卡，或联系发卡行",
                                        "This card's limit has been reached and nothing was charged. Try another "
                                        "card, or contact your card issuer"),
}

#: codes of Stripe's API errors (https://docs.stripe.com/error-codes) that reach the customer as a payment's failure
ERRORS: dict[str, Text] = {
    "card_declined": GENERIC,
    "card_decline_rate_limit_exceeded": ("这张卡短时间内被拒绝次数过多，未扣款。请 24 小时后再试，或换一张卡",
                                         "This card was declined too often in a short time and nothing was charged. "
                                         "Try again in 24 hours, or try another card"),
    "expired_card": DECLINES["expired_card"],
    "incorrect_cvc": _CHECK_CVC,
    "incorrect_number": _CHECK_NUMBER,
    "invalid_cvc": _CHECK_CVC,
    "invalid_expiry_month": _CHECK_EXPIRY,
    "invalid_expiry_year": _CHECK_EXPIRY,
    "invalid_number": _CHECK_NUMBER,
    "processing_error": _TRY_AGAIN,
    "authentication_required": DECLINES["authentication_required"],
    "payment_intent_authentication_failure": ("银行验证未通过，未扣款。请重试并完成银行验证，或换一张卡",
                                              "Your bank could not confirm this payment and nothing was charged. Try "
                                              "again and confirm it with your bank, or try another card"),
    "payment_intent_payment_attempt_failed": ("这次付款未成功，未扣款。请重试，或换一种付款方式",
                                              "This payment did not go through and nothing was charged. Try again, or "
                                              "choose another way to pay"),
    "payment_intent_payment_attempt_expired": ("付款超时未完成，未扣款。请重新付款",
                                               "The payment was not completed in time and nothing was charged. Pay "
                                               "again"),
    "payment_method_not_available": _TRY_AGAIN,
    "payment_method_provider_decline": ("付款方式提供方拒绝了这笔付款，未扣款。请换一种付款方式",
                                        "The payment provider declined this payment and nothing was charged. Choose "
                                        "another way to pay"),
    "payment_method_provider_timeout": _TRY_AGAIN,
}

#: the reasons our own checkout records (bff/payments/checkout.py) in a payment's ``last_error``
OURS: dict[str, Text] = {
    "declined": GENERIC,
    "refused": ("支付机构拒绝了这次请求，未扣款。请稍后重试，或联系经销商",
                "The payment provider refused this request and nothing was charged. Try again later, or ask the "
                "dealer"),
    "unavailable": ("支付服务暂时不可用，未扣款。请稍后重试", "Payments are unavailable right now and nothing was "
                    "charged. Try again in a moment"),
    "replaced": ("您已改用另一张卡：等待银行验证的那笔付款已取消，未扣款",
                 "You chose another card: the payment waiting for your bank was cancelled and nothing was charged"),
    "canceled": ("这笔付款已取消，未扣款。请重新付款", "This payment was cancelled and nothing was charged. Pay again"),
    "authorisation window ended": ("预授权已到期，已自动释放。请重新预授权，或改付保证金",
                                   "The hold has lapsed and was released. Place the hold again, or pay the deposit "
                                   "instead"),
}

#: what Stripe asks not to tell the customer (https://docs.stripe.com/declines/codes): shown as :data:`GENERIC`
SHOWN_AS_GENERIC = frozenset({"fraudulent", "lost_card", "stolen_card", "pickup_card", "merchant_blacklist",
                              "restricted_card", "security_violation"})


def decline_text(code: str | None) -> Text:
    """``(zh, en)`` for a payment's ``last_error``: a decline code, an error code, or one of ours; :data:`GENERIC`
    for anything else (a code Stripe added since, a message Stripe sent instead of a code), and for the codes Stripe
    asks not to tell the customer (:data:`SHOWN_AS_GENERIC`) whatever the tables say."""
    key = (code or "").strip()
    if key in SHOWN_AS_GENERIC:
        return GENERIC
    return DECLINES.get(key) or ERRORS.get(key) or OURS.get(key) or GENERIC


def why_not_paid(code: str | None) -> str:
    """The customer's sentence for a payment's ``last_error``, in the request's language."""
    return in_locale(*decline_text(code))


def customer_texts() -> dict[str, str]:
    """Every code's sentence in the request's language, for payment.js (Stripe.js's card errors on the page)."""
    return {code: in_locale(*text) for code, text in {**OURS, **ERRORS, **DECLINES}.items()}
