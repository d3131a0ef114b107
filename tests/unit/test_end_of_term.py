"""The end of term's figures (servicing/end_of_term.py), worked by hand: the window, the purchase price the contract
states (or the documented default), a returned car's excess-mileage and damage charges from the product file, and
the deposit's deduction and refund — to the fen, never negative."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bff.applications.services import KYC_REUSED
from bff.applications.services import reused_identity
from plans.policy import load_policy
from plans.product import DamageItem
from plans.product import ReturnTerms
from plans.product import load_product
from plans.product import parse_return_terms
from servicing.end_of_term import DEFAULT_PURCHASE_PRICE
from servicing.end_of_term import ReturnRefused
from servicing.end_of_term import allowance_km
from servicing.end_of_term import deposit_settlement
from servicing.end_of_term import in_window
from servicing.end_of_term import inspection_opens
from servicing.end_of_term import inspection_overdue
from servicing.end_of_term import kyc_reusable
from servicing.end_of_term import notice_days
from servicing.end_of_term import purchase_figures
from servicing.end_of_term import purchase_price
from servicing.end_of_term import refinance_choice
from servicing.end_of_term import return_charges
from servicing.end_of_term import return_settlement
from servicing.end_of_term import return_window_days
from servicing.end_of_term import whole_number
from servicing.end_of_term import window_opens

TERMS = ReturnTerms(allowance_km_per_year=20000, excess_mileage_rate=Decimal("0.37"), damage_items=(
    DamageItem("scratch", "漆面划痕", "Paint scratches", Decimal("500")),
    DamageItem("windscreen", "前挡风玻璃破损", "Cracked windscreen", Decimal("1500.55"))))


def test_the_options_show_from_60_days_before_the_end_across_a_leap_day() -> None:
    ends = date(2028, 4, 29)  # 60 days before: 2028-02-29 (a leap year)
    assert window_opens(ends) == date(2028, 2, 29)
    assert not in_window(ends, date(2028, 2, 28))
    assert in_window(ends, date(2028, 2, 29)) and in_window(ends, ends) and in_window(ends, date(2028, 5, 30))


def test_the_purchase_price_is_the_contract_s_else_the_documented_default() -> None:
    assert purchase_price({"purchase_price": "100.00"}).fen == 10_000
    legacy = purchase_price({"purchase_price": "0.00"})  # the balloon was the purchase-option price: no other
    assert (legacy.fen, legacy.stated) == (0, True)
    default = purchase_price({})
    assert (default.fen, default.stated) == (DEFAULT_PURCHASE_PRICE, False) == (10_000, False)
    with pytest.raises(ValueError):
        purchase_price({"purchase_price": "1.001"})


def test_keeping_the_car_the_deposit_offsets_the_final_rent_and_the_price_first() -> None:
    # final rent ¥40,000.00, price ¥100.00, a late rent ¥1,234.56 unpaid; deposit ¥10,000.00
    f = purchase_figures(4_000_000, purchase_price({"purchase_price": "100.00"}), 123_456, 1_000_000)
    assert f.total == 4_000_000 + 10_000 + 123_456 == 4_133_456
    assert (f.deposit.deduction, f.to_pay, f.refund) == (1_000_000, 3_133_456, 0)
    # the final rent paid ahead already: the deposit covers the price, the rest comes back
    f = purchase_figures(0, purchase_price({"purchase_price": "100.00"}), 0, 1_000_000)
    assert (f.deposit.deduction, f.to_pay, f.refund) == (10_000, 0, 990_000)


def test_excess_mileage_and_damage_charges_worked_by_hand() -> None:
    # 36 months: 20,000 × 3 = 60,000 km allowed; driven 73,456 − 1,200 = 72,256; 12,256 km over × ¥0.37 = ¥4,534.72
    c = return_charges(TERMS, 36, 1_200, 73_456, ["windscreen", "scratch", "scratch"])
    assert (c.driven_km, c.allowance_km, c.excess_km, c.excess_mileage_charge) == (72_256, 60_000, 12_256, 453_472)
    assert [d.code for d in c.damage] == ["windscreen", "scratch"]  # each item once
    assert c.damage_charge == 150_055 + 50_000 == 200_055 and c.total == 653_527
    # 18 months: 30,000 km, 1 km over × ¥0.37; 11 months: 18,333.3 km, rounded up (the lessee's favour) to 18,334
    assert return_charges(TERMS, 18, 0, 30_001, []).excess_mileage_charge == 37
    assert allowance_km(TERMS, 11) == 18_334
    assert return_charges(TERMS, 11, 0, 18_334, []).total == 0
    assert return_charges(TERMS, 11, 0, 18_335, []).excess_mileage_charge == 37


def test_a_product_without_return_terms_charges_nothing_for_the_car() -> None:
    c = return_charges(None, 36, 0, 150_000, [])
    assert (c.driven_km, c.excess_km, c.total) == (150_000, 0, 0)
    with pytest.raises(ReturnRefused):
        return_charges(None, 36, 0, 150_000, ["scratch"])


def test_bad_readings_and_unknown_items_are_refused_with_their_field() -> None:
    for reading in (999, -1, 2_000_001):
        with pytest.raises(ReturnRefused) as refused:
            return_charges(TERMS, 36, 1_000, reading, [])
        assert refused.value.field == "mileage"
    with pytest.raises(ReturnRefused) as refused:
        return_charges(TERMS, 36, 0, 10, ["bumper"])
    assert refused.value.field == "damage"


def test_the_deposit_deducts_up_to_what_it_holds_refunds_the_rest_and_the_shortfall_is_owed() -> None:
    assert deposit_settlement(1_000_000, 653_527) == deposit_settlement(1_000_000, 653_527)
    s = deposit_settlement(1_000_000, 653_527)
    assert (s.deduction, s.refund, s.owed) == (653_527, 346_473, 0)
    s = deposit_settlement(500_000, 653_527)
    assert (s.deduction, s.refund, s.owed) == (500_000, 0, 153_527)
    s = deposit_settlement(0, 0)  # a 免押 lease returned clean
    assert (s.deduction, s.refund, s.owed) == (0, 0, 0)
    c = return_charges(TERMS, 36, 0, 60_000, ["scratch"])
    s = return_settlement(c, 12_345, 40_000)  # ¥500 + ¥123.45 unpaid against a ¥400 deposit
    assert (s.charges, s.deduction, s.refund, s.owed) == (62_345, 40_000, 0, 22_345)
    with pytest.raises(ValueError):
        deposit_settlement(-1, 0)


def test_the_product_file_lists_its_return_terms_and_older_files_stay_valid() -> None:
    product = load_product()
    returns = product.end_of_term.returns
    assert returns is not None and returns.allowance_km_per_year == 20000 and returns.item("windscreen") is not None
    assert parse_return_terms(None) is None
    with pytest.raises(ValueError):
        ReturnTerms(damage_items=(DamageItem("a", "a", "a", Decimal("1")), DamageItem("a", "b", "b", Decimal("2"))))


def test_a_refinance_is_priced_with_the_smallest_down_payment_a_used_car_may_have() -> None:
    product, policy = load_product(), load_policy()
    choice = refinance_choice(product.down_ratios, policy.min_down["used"], 24, policy.required_insurance)
    assert (choice.down_ratio, choice.term, choice.residual_ratio, choice.deposit_free) == (
        Decimal("0.30"), 24, Decimal(0), False)
    assert choice.insurance == frozenset({"ctpl"})
    assert refinance_choice([Decimal("0.10"), Decimal("0.35")], Decimal("0.30"), 12, ()).down_ratio == Decimal("0.35")
    with pytest.raises(ValueError):
        refinance_choice([Decimal("0.10")], Decimal("0.30"), 12, ())


def test_an_identity_check_is_reused_within_the_policy_s_days_while_the_card_is_valid() -> None:
    passed = datetime(2026, 3, 1, 2, tzinfo=UTC)
    assert load_policy().kyc_reuse_days == 90
    assert kyc_reusable(passed, passed + timedelta(days=90), 90, "长期", date(2026, 5, 30))
    assert not kyc_reusable(passed, passed + timedelta(days=90, seconds=1), 90, "长期", date(2026, 5, 30))
    assert kyc_reusable(passed, passed + timedelta(days=1), 90, "2026.03.02", date(2026, 3, 2))
    assert not kyc_reusable(passed, passed + timedelta(days=1), 90, "2026-03-01", date(2026, 3, 2))  # expired
    assert not kyc_reusable(passed, passed + timedelta(days=1), 90, "", date(2026, 3, 2))
    assert not kyc_reusable(passed, passed + timedelta(days=1), 0, "长期", date(2026, 3, 2))  # 0: never
    assert not kyc_reusable(None, passed, 90, "长期", date(2026, 3, 2))


def test_the_reused_identity_stands_only_for_the_same_number_within_its_validity() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    note = json.dumps({"from": "a" * 36, "id_hash": "h1", "passed_at": now.isoformat(),
                       "until": (now + timedelta(days=1)).isoformat()})
    draft = {KYC_REUSED: note, "name": "王小明", "id_number": "110101199003074514"}
    assert reused_identity(draft, "h1", now) == "a" * 36
    assert reused_identity(draft, "h2", now) is None  # the number was changed: checked again
    assert reused_identity(draft, "h1", now + timedelta(days=2)) is None
    assert reused_identity({"name": "王小明"}, "h1", now) is None
    assert reused_identity({KYC_REUSED: "{bad"}, "h1", now) is None


def test_the_notice_period_is_the_contract_s_when_it_states_one() -> None:
    assert notice_days({"end_of_term": {"notice_days": 45}}) == 45
    assert notice_days({"notice_days": "20"}) == 20
    assert notice_days({"purchase_price": "100.00"}) is None
    assert notice_days({"end_of_term": {"notice_days": True}}) is None
    assert notice_days({"notice_days": "thirty"}) is None


def test_a_return_is_flagged_when_not_inspected_within_the_policy_s_days() -> None:
    ends = date(2026, 2, 28)
    assert load_policy().inspection_overdue_days == 10
    assert not inspection_overdue(ends, date(2026, 3, 10), 10)
    assert inspection_overdue(ends, date(2026, 3, 11), 10)


def test_a_returned_car_is_inspected_from_the_day_the_contract_allows_else_from_the_term_s_end() -> None:
    ends = date(2027, 3, 31)
    assert return_window_days({}) == 0 and inspection_opens(ends, {}) == ends  # 第七条: returned on the last day
    assert inspection_opens(ends, {"end_of_term": {"return_window_days": 15}}) == date(2027, 3, 16)
    assert inspection_opens(ends, {"return_window_days": "7"}) == date(2027, 3, 24)
    for unstated in ({"return_window_days": True}, {"return_window_days": "²"}, {"return_window_days": -3},
                     {"end_of_term": {"return_window_days": "a week"}}, {"return_window_days": 400}):
        assert inspection_opens(ends, unstated) == ends, unstated


def test_typed_whole_numbers_are_ascii_digits_only() -> None:
    assert whole_number("20100") == 20100 and whole_number("0") == 0
    # str.isdigit() accepts these, int() then raises (a 500): not numbers here
    for typed in ("²", "12²", "١٢", "１２", "", " 12", "-1", "1.5", "1234567890"):
        assert whole_number(typed) is None, typed
    assert notice_days({"notice_days": "²"}) is None


def test_ops_closing_names_the_terms_closing_not_early_settlement() -> None:
    """结清 means early settlement only (issue 16): ops closing a term at its end says 租期届满结算 / Close the term."""
    root = Path(__file__).resolve().parents[2]
    for name in ("pwa/templates/payments/lease.html", "pwa/templates/payments/index.html"):
        page = (root / name).read_text(encoding="utf-8")
        assert "Close the lease" not in page and "(结清)" not in page, name
        assert '_("Close the term")' in page, name
    with open(root / "bff/translations/zh_Hans_CN/LC_MESSAGES/messages.po", "rb") as po:
        catalogue = read_po(po)
    assert catalogue["Close the term"].string == "租期届满结算"
    assert "Close the lease" not in catalogue and "Close the lease (结清)" not in catalogue


def test_a_refinance_not_approved_may_be_chosen_again_within_5_working_days_of_its_result() -> None:
    """第七条: 审核未通过的，承租人可于收到结果之日起 5 个工作日内改选其他方式 — the decline's day in Beijing time
    (16:30 UTC on 2026-09-24 is the 25th there), then 5 working days past the National Day holiday (10-01 → 10-07):
    09-28, 09-29, 09-30, 10-08, 10-09 — the last day to choose again is 2026-10-09."""
    from servicing.calendar import BusinessCalendar
    from servicing.end_of_term import declined_on
    from servicing.end_of_term import may_choose_again
    from servicing.end_of_term import rechoose_until

    calendar = BusinessCalendar()
    day = declined_on(datetime(2026, 9, 24, 16, 30, tzinfo=UTC))
    assert day == date(2026, 9, 25)
    until = rechoose_until(calendar, day)
    assert until == date(2026, 10, 9)
    assert may_choose_again(calendar, day, day) and may_choose_again(calendar, day, until)
    assert not may_choose_again(calendar, day, until + timedelta(days=1))
    # a plain week: declined on a Friday, the 5th working day after it is the next Friday
    assert rechoose_until(calendar, date(2026, 3, 6)) == date(2026, 3, 13)
    assert not may_choose_again(calendar, date(2026, 3, 6), date(2026, 3, 14))
