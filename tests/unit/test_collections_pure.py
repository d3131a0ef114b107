"""Collecting rent, the parts without I/O (issue 18 §3): the policy's allocation order, and the sandbox bank's
documented behaviour by the agreement number's last digit (infra/collections.py SandboxDirectDebit)."""

from __future__ import annotations

import tomllib
from datetime import UTC
from datetime import datetime
from importlib import resources

import pytest

from infra.collections import Mandate
from infra.collections import SandboxDirectDebit
from plans.policy import load_policy
from plans.policy import parse_policy


def policy_data() -> dict[str, object]:
    return tomllib.loads(resources.files("plans").joinpath("policies", "default.toml").read_text(encoding="utf-8"))


def test_the_policy_names_the_allocation_order_and_refuses_one_that_is_not_the_three_parts_once() -> None:
    assert load_policy().allocation_order == ("penalty", "interest", "principal")
    data = policy_data()
    data["servicing"] = {"allocation_order": ["interest", "principal", "penalty"]}
    assert parse_policy(data).allocation_order == ("interest", "principal", "penalty")
    del data["servicing"]
    assert parse_policy(data).allocation_order == ("penalty", "interest", "principal")  # an older file: the default
    for wrong in (["penalty", "interest"], ["penalty", "interest", "interest"], ["fees", "interest", "principal"]):
        data["servicing"] = {"allocation_order": wrong}
        with pytest.raises(ValueError, match="allocation_order"):
            parse_policy(data)


def test_the_policy_names_the_business_days_a_failed_collection_is_tried_again() -> None:
    assert load_policy().collection_retry_days == (2, 5)
    data = policy_data()
    data["collections"] = {"retry_after_business_days": []}
    assert parse_policy(data).collection_retry_days == ()  # never
    del data["collections"]
    assert parse_policy(data).collection_retry_days == (2, 5)  # an older file: the default
    for wrong in ([5, 2], [2, 2], [0], [21], ["2"], [True], 3):
        data["collections"] = {"retry_after_business_days": wrong}
        with pytest.raises(ValueError, match="retry_after_business_days"):
            parse_policy(data)


def mandate(agreement: str) -> Mandate:
    return Mandate("m", "a", "direct_debit", "active", True, None, None, agreement, "沙箱银行", "6210", "v", "0" * 64,
                   "zh", datetime(2026, 4, 1, tzinfo=UTC))


@pytest.mark.parametrize(("digit", "first", "later", "code"), [
    ("0", "succeeded", "succeeded", None), ("5", "succeeded", "succeeded", None),
    ("6", "failed", "failed", "insufficient_funds"), ("7", "failed", "failed", "agreement_revoked"),
    ("8", "processing", "succeeded", None), ("9", "processing", "failed", "insufficient_funds")])
def test_the_sandbox_bank_answers_by_the_agreement_s_last_digit(digit: str, first: str, later: str,
                                                                 code: str | None) -> None:
    bank = SandboxDirectDebit()
    answer = bank.collect(amount=123456, key="auto:1:2026-04-10", mandate=mandate(f"XY20260410{digit}"), metadata={})
    again = bank.collect(amount=123456, key="auto:1:2026-04-10", mandate=mandate(f"XY20260410{digit}"), metadata={})
    assert answer == again and answer.ref  # the same key: the same order, never a second debit
    assert answer.status == first and answer.amount == (123456 if first == "succeeded" else 0)
    settled = bank.status(answer.ref)
    assert settled.status == later and settled.amount == (123456 if later == "succeeded" else 0)
    assert (answer.code if first == "failed" else settled.code) == code
    other = bank.collect(amount=123456, key="auto:1:2026-04-11", mandate=mandate(f"XY20260410{digit}"), metadata={})
    assert other.ref != answer.ref


def test_the_sandbox_bank_s_order_is_the_key_s_the_first_amount_kept() -> None:
    """The order number comes from our key alone: the key asked again with another amount (what is owed changed
    between a job's tries) is the same order, for the first amount — never a second debit."""
    bank = SandboxDirectDebit()
    for digit, later in (("0", "succeeded"), ("8", "succeeded")):
        key = f"auto:7:2026-04-1{digit}"
        first = bank.collect(amount=150000, key=key, mandate=mandate(f"XY20260410{digit}"), metadata={})
        again = bank.collect(amount=90000, key=key, mandate=mandate(f"XY20260410{digit}"), metadata={})
        assert again.ref == first.ref and "150000" not in (first.ref or "")
        assert again == first
        settled = bank.status(first.ref or "")
        assert (settled.status, settled.amount) == (later, 150000)
