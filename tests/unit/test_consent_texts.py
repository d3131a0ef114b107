"""The consent texts (bff/applications/consent.toml, issue 16 §6): the processor they name is the lessor the contract
names (contract/lessor.toml), every purpose names the lessor and says who receives what, the notice says how to use
one's rights, the withdrawable ones say how to withdraw, and the credit bureau authorisation promises notice before
negative information is reported."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bff.applications.states import CONSENT_PURPOSES
from bff.applications.states import SIGNING_CONSENTS

ROOT = Path(__file__).resolve().parents[2]
CONSENT = tomllib.loads((ROOT / "bff/applications/consent.toml").read_text(encoding="utf-8"))
LESSOR = tomllib.loads((ROOT / "contract/lessor.toml").read_text(encoding="utf-8"))


def test_the_processor_is_the_lessor_of_the_contract() -> None:
    processor = CONSENT["processor"]
    assert processor == {"name": LESSOR["name"], "address": LESSOR["address"], "phone": LESSOR["service_phone"],
                         "email": LESSOR["service_email"]}
    notice = CONSENT["sensitive_pi"]["text_zh"]
    for value in processor.values():
        assert value in notice, value


@pytest.mark.parametrize("purpose", [*CONSENT_PURPOSES, *SIGNING_CONSENTS])
def test_each_purpose_has_both_languages_names_the_lessor_and_says_who_receives_what(purpose: str) -> None:
    entry = CONSENT[purpose]
    assert {"title_zh", "title_en", "text_zh", "text_en"} <= set(entry)
    assert entry["text_zh"].count("\n") == entry["text_en"].count("\n")  # paragraph for paragraph
    zh = entry["text_zh"]
    assert "领航融资租赁有限公司" in zh or "出租人" in zh  # who processes (the lessor)
    assert any(words in zh for words in ("接收方", "不提供给任何第三方", "征信机构")), purpose  # who receives it


def test_the_notice_names_recipients_retention_impact_and_rights() -> None:
    zh, en = CONSENT["sensitive_pi"]["text_zh"], CONSENT["sensitive_pi"]["text_en"]
    for words in ("接收方", "Stripe（境外）", "保存期限", "合同期满后 5 年", "对您的影响", "撤回同意", "15 日内答复"):
        assert words in zh, words
    for words in ("Recipients", "Stripe (outside mainland China)", "5 years after the end of the contract",
                  "Impact on you", "within 15 days"):
        assert words in en, words


def test_the_credit_authorisation_gives_notice_before_negative_reports_and_its_duration() -> None:
    zh = CONSENT["credit_reporting"]["text_zh"]
    assert "中国人民银行征信中心" in zh and "报送不良信息前，出租人将通过短信或书面方式事先告知本人" in zh
    assert "授权期限" in zh and "异议" in zh


def test_trip_data_is_optional_and_withdrawable_and_the_gps_position_is_a_contract_term() -> None:
    zh = CONSENT["vehicle_telemetry"]["text_zh"]
    assert "合同第十条" in zh and "无需您另行同意" in zh and "随时" in zh and "撤回" in zh
    assert "不影响您的租赁合同" in zh


@pytest.mark.parametrize("purpose", ["face_recognition", "vehicle_telemetry"])
def test_a_withdrawable_consent_says_how_to_withdraw_it(purpose: str) -> None:
    assert "撤回" in CONSENT[purpose]["text_zh"] and "我的个人信息" in CONSENT[purpose]["text_zh"]
    assert "withdraw" in CONSENT[purpose]["text_en"]
