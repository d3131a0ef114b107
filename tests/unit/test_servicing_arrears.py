"""Arrears, pure (issue 18 §4): days past due and the buckets at their edges, the dates the close texts about, the
hours a text may go (Asia/Shanghai, across the UTC date line), the policy's [reminders] and the reminders' wording
as the SMS templates render it, in Chinese and English."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from zoneinfo import ZoneInfo

import pytest

from bff.servicing.arrears import reminder_params
from infra.arrears import ReminderDue
from infra.sms import TEMPLATES
from plans.policy import ReminderPolicy
from plans.policy import load_policy
from plans.policy import parse_reminders
from servicing.arrears import bucket
from servicing.arrears import days_past_due
from servicing.arrears import due_date_reminded
from servicing.arrears import overdue_since_reminded
from servicing.arrears import send_at
from servicing.calendar import calendar_of

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("days", "expected"), [(0, None), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"),
                                                (61, "M3"), (400, "M3")])
def test_buckets_at_their_edges(days: int, expected: str | None) -> None:
    assert bucket(days) == expected


def test_days_past_due_count_the_first_overdue_day_as_one_across_a_leap_day() -> None:
    since = date(2028, 2, 28)
    assert days_past_due(since, date(2028, 2, 27)) == 0
    assert days_past_due(since, since) == 1
    assert days_past_due(since, date(2028, 3, 1)) == 3  # 28, 29 February, 1 March
    assert days_past_due(date(2026, 4, 11), date(2026, 6, 10)) == 61


def test_the_close_texts_n_days_before_the_due_date_and_n_days_after_it_became_overdue() -> None:
    # the close of B runs after B has ended: its texts arrive on B + 1
    assert due_date_reminded(date(2026, 4, 6), 3) == date(2026, 4, 10)
    assert due_date_reminded(date(2028, 2, 25), 3) == date(2028, 2, 29)
    assert overdue_since_reminded(date(2026, 4, 11), 1) == date(2026, 4, 11)  # the day after it became overdue
    assert overdue_since_reminded(date(2026, 4, 17), 7) == date(2026, 4, 11)  # a week after


def test_no_text_goes_at_night_in_beijing() -> None:
    nine, eight_pm = time(9), time(20)
    # 16:05 UTC is 00:05 the next day in Beijing: the close has just run; the text waits for 09:00 (01:00 UTC)
    assert send_at(datetime(2026, 4, 6, 16, 5, tzinfo=UTC), nine, eight_pm) == datetime(2026, 4, 7, 9, tzinfo=SHANGHAI)
    assert send_at(datetime(2026, 4, 7, 1, 0, tzinfo=UTC), nine, eight_pm) is None  # 09:00 sharp: at once
    assert send_at(datetime(2026, 4, 7, 6, 0, tzinfo=UTC), nine, eight_pm) is None  # 14:00
    assert send_at(datetime(2026, 12, 31, 12, 0, tzinfo=UTC), nine, eight_pm) == datetime(2027, 1, 1, 9,
                                                                                         tzinfo=SHANGHAI)  # 20:00
    with pytest.raises(ValueError):
        send_at(datetime(2026, 4, 7, 6, 0), nine, eight_pm)
    with pytest.raises(ValueError):
        send_at(datetime(2026, 4, 7, 6, 0, tzinfo=UTC), eight_pm, nine)


def test_the_policy_states_the_reminders_and_refuses_a_wrong_section() -> None:
    reminders = load_policy().reminders
    assert (reminders.before_due_days, reminders.after_overdue_days) == (3, (1, 7))
    assert (reminders.send_from, reminders.send_until) == (time(9), time(20))
    for wording in ("before_due", "overdue"):
        for language in ("zh", "en"):
            assert reminders.template(wording, language) in TEMPLATES
    assert reminders.template("overdue", "en_US") == "rent_overdue_en"
    assert reminders.template("overdue", "zh_Hans_CN") == "rent_overdue"
    assert parse_reminders(None) == ReminderPolicy()
    good = {"before_due_days": 3, "after_overdue_days": [7, 1], "send_from": "09:00", "send_until": "20:00",
            "templates": {"before_due": {"zh": "a", "en": "b"}, "overdue": {"zh": "c", "en": "d"}}}
    assert parse_reminders(good).after_overdue_days == (1, 7)
    for wrong in ({**good, "before_due_days": -1}, {**good, "after_overdue_days": [0]},
                  {**good, "send_from": "21:00"}, {**good, "templates": {"before_due": {"zh": "a"}}},
                  {k: v for k, v in good.items() if k != "send_until"}, [1]):
        with pytest.raises(ValueError):
            parse_reminders(wrong)


def due(kind: str, language: str, *, final: bool = False) -> ReminderDue:
    return ReminderDue(1, kind, "queued", date(2026, 4, 17), "lease", True, "dealer", "app", 13 if final else 1,
                       final, "overdue", date(2026, 4, 10), date(2026, 4, 11) if kind != "before_due" else None,
                       468_123, 2_311, language)


def test_the_reminders_read_as_the_templates_word_them_in_chinese_and_english() -> None:
    policy = load_policy().reminders

    def text(reminder: ReminderDue, wording: str) -> str:
        return TEMPLATES[policy.template(wording, reminder.language)].render("租程", reminder_params(reminder))

    assert text(due("overdue_7", "zh"), "overdue") == (
        "【租程】您的融资租赁第1期租金 4681.23 元（2026年4月10日 到期）已逾期 7 天，逾期违约金已计 23.11 元并按日累计。"
        "请尽快在“我的租赁”支付，如已支付请忽略。")
    assert text(due("overdue_7", "en"), "overdue") == (
        "【租程】Your lease's rent 1 of CNY 4681.23, due on 2026-04-10, is 7 day(s) overdue; late charges so far "
        "CNY 23.11, accruing daily. Please pay under My leases as soon as possible; ignore this if paid.")
    assert text(due("before_due", "zh", final=True), "before_due").startswith(
        "【租程】您的融资租赁尾付租金 4681.23 元将于 2026年4月10日 到期")
    assert text(due("before_due", "en", final=True), "before_due").startswith(
        "【租程】Your lease's final rent of CNY 4681.23 is due on 2026-04-10.")
    assert "已开通自动扣款的将于当日扣款" in text(due("before_due", "zh"), "before_due")  # due on a business day


def test_a_rent_due_on_a_sunday_is_said_to_be_collected_on_the_next_business_day() -> None:
    """A rent due on Sunday 12 April 2026 is debited on Monday 13 April (the calendar's next business day): the
    reminder said 已开通自动扣款的将于当日扣款, the Sunday."""
    policy = load_policy().reminders
    sunday = replace(due("before_due", "zh"), due_on=date(2026, 4, 12))
    monday = calendar_of(()).on_or_after(sunday.due_on)
    assert monday == date(2026, 4, 13)
    zh = TEMPLATES[policy.template("before_due", "zh")].render("租程", reminder_params(sunday, collect_on=monday))
    assert "将于 2026年4月12日 到期" in zh and "已开通自动扣款的将于2026年4月13日（下一工作日）扣款" in zh, zh
    en = TEMPLATES[policy.template("before_due", "en")].render(
        "租程", reminder_params(replace(sunday, language="en"), collect_on=monday))
    assert "it is collected on 2026-04-13, the next business day" in en, en
