"""The decision rules: knock-outs → data-provider findings → affordability → fraud/velocity → exposure →
model band → deposit-free, combined into approve / decline / refer (tier 1 or 2) with reason codes.

Pure: :func:`evaluate` takes the parsed snapshot, the model's result, the providers' findings, counts from
the service's history and a :class:`Policy` (read from ``risk/policies/<name>.toml``), and returns a
:class:`Decision`. No I/O, no clock: the tests drive it as a decision table.

Combination: any decline → **decline** (tier 0). Otherwise any refer (or the model's grey zone) →
**refer**, tier 2 when the financed amount is above ``review.tier1_max_financed``, when a fraud, velocity or
exposure signal fired, or when the signals conflict (the model would approve but two or more independent
rules refer); tier 1 otherwise. Dealer-level monitoring (:func:`dealer_anomalies`) comes last and only turns
an approval into a tier-2 referral. Otherwise **approve**, possibly with conditions (higher down payment,
deposit required). Every outcome carries reason codes with Chinese and English texts.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from decimal import ROUND_CEILING
from decimal import Decimal
from pathlib import Path
from typing import Any
from typing import Literal
from typing import Protocol

from risk.snapshot import Snapshot

Outcome = Literal["approve", "decline", "refer"]
Action = Literal["decline", "refer", "ignore"]
CENT = Decimal("0.01")

#: reason texts by code: (zh-CN, en); ``{…}`` placeholders are filled from the rule's parameters
REASONS: dict[str, tuple[str, str]] = {
    "AUTO_APPROVE": ("模型与规则均通过，自动批准", "Model and rules passed: approved automatically"),
    "KYC_FAILED": ("身份核验未通过", "Identity verification (KYC) failed"),
    "KYC_REVIEW": ("身份核验待人工复核", "Identity verification (KYC) is awaiting manual review"),
    "AGE_BELOW_MIN": ("申请人未满 {min_age} 周岁", "The applicant is younger than {min_age}"),
    "AGE_AT_END": ("租期结束时申请人年龄将超过 {max_age} 周岁",
                   "The applicant would be older than {max_age} at the end of the term"),
    "JUDICIAL_DISHONEST": ("命中失信被执行人名单", "Listed as a dishonest judgement debtor (失信被执行人)"),
    "GRAY_LIST": ("命中本公司灰名单", "On the lessor's gray list"),
    "PROVIDER_UNAVAILABLE": ("外部数据暂不可用（{providers}），需人工审核",
                             "External data unavailable ({providers}): manual review needed"),
    "BUREAU_SEVERE_DELINQUENCY": ("征信显示近 24 个月最长逾期 {dpd} 天",
                                  "Credit report: worst arrears in 24 months {dpd} days"),
    "BUREAU_DELINQUENCY": ("征信显示近 24 个月有逾期（最长 {dpd} 天）",
                           "Credit report: arrears in the last 24 months (worst {dpd} days)"),
    "THIN_FILE": ("征信记录不足，需人工审核收入证明", "Thin credit file: a human checks proof of income"),
    "MULTI_LENDING": ("24 小时内被 {count} 家机构查询征信（多头借贷）",
                      "{count} lender inquiries in 24 hours (multiple borrowing)"),
    "INCOME_UNVERIFIED": ("纳税记录收入明显低于申报收入", "Tax-record income is well below the declared income"),
    "INCOME_BELOW_MIN": ("月收入低于 {min_income} 元", "Monthly income below ¥{min_income}"),
    "AFFORD_RTI": ("月租金占收入比例 {ratio}% 过高", "Rent is {ratio}% of income: too high"),
    "AFFORD_DSR": ("月偿债占收入比例 {ratio}% 过高", "Debt service is {ratio}% of income: too high"),
    "AFFORD_CONDITION": ("提高首付后可批准", "Can be approved with a higher down payment"),
    "VELOCITY_ID": ("同一身份证号 {hours} 小时内申请 {count} 次",
                    "The same ID number applied {count} times in {hours} hours"),
    "VELOCITY_MOBILE": ("同一手机号 {hours} 小时内申请 {count} 次",
                        "The same mobile number applied {count} times in {hours} hours"),
    "VELOCITY_DEVICE": ("同一设备 {hours} 小时内申请 {count} 次",
                        "The same device applied {count} times in {hours} hours"),
    "MULTI_VEHICLE": ("同一客户经同一经销商已有 {count} 笔在途融资",
                      "The same customer already has {count} live financings through this dealer"),
    "EXPOSURE_CUSTOMER": ("客户融资敞口将超过上限 {limit} 元", "Customer exposure would exceed ¥{limit}"),
    "EXPOSURE_DEALER": ("经销商融资敞口将超过上限 {limit} 元", "Dealer exposure would exceed ¥{limit}"),
    "MODEL_HIGH_RISK": ("评分卡违约概率 {pd}% 过高", "Scorecard probability of default {pd}% is too high"),
    "MODEL_GREY_ZONE": ("评分卡违约概率 {pd}% 处于人工审核区间",
                        "Scorecard probability of default {pd}% is in the manual review band"),
    "DEPOSIT_REQUIRED": ("违约概率高于免押门槛，需缴纳保证金",
                         "Probability of default above the deposit-free threshold: a deposit is required"),
    "DEALER_APPROVAL_DRIFT": ("经销商近 {days} 天自动批准率 {rate}% 明显高于整体 {base}%，需二级审批",
                              "Dealer's automatic approval rate over {days} days ({rate}%) is well above the "
                              "portfolio's ({base}%): tier-2 approval"),
    "DEALER_FRAUD_RATE": ("经销商近 {days} 天欺诈风险信号占比 {rate}% 明显高于整体 {base}%，需二级审批",
                          "Share of this dealer's applications with fraud signals over {days} days ({rate}%) is "
                          "well above the portfolio's ({base}%): tier-2 approval"),
    "LARGE_AMOUNT": ("融资金额超过 {limit} 元，需二级审批", "Financed amount above ¥{limit}: tier-2 approval"),
    "CONFLICTING_SIGNALS": ("模型与规则结论冲突，需二级审批", "Model and rules disagree: tier-2 approval"),
}


@dataclass(frozen=True)
class Reason:
    """Why: a code and its texts. ``source`` is policy, model or provider; ``tier2`` escalates a referral."""

    code: str
    text_zh: str
    text_en: str
    source: str = "policy"
    tier2: bool = False

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "text_zh": self.text_zh, "text_en": self.text_en}


def reason(code: str, *, source: str = "policy", tier2: bool = False, **params: object) -> Reason:
    zh, en = REASONS[code]
    return Reason(code, zh.format(**params), en.format(**params), source, tier2)


@dataclass(frozen=True)
class Condition:
    """What must change for the approval to stand (e.g. a higher down payment)."""

    code: str
    text_zh: str
    text_en: str
    params: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "text_zh": self.text_zh, "text_en": self.text_en, **self.params}


# --- inputs -------------------------------------------------------------------------------------------------

class Contribution(Protocol):
    """One scorecard feature's share of the score (risk.model.scorecard.Contribution)."""

    feature: str
    points: float
    reason_code: str
    text_zh: str
    text_en: str


@dataclass(frozen=True)
class ModelView:
    """The scorecard's verdict on this application."""

    score: int
    pd: float
    contributions: Sequence[Contribution] = ()


@dataclass(frozen=True)
class ProviderFacts:
    """What the data providers found; ``unavailable`` names providers that timed out or failed."""

    unavailable: tuple[str, ...] = ()
    thin_file: bool = False
    worst_dpd_24m: int = 0
    inquiries_24h: int = 0
    judicial_hit: bool = False
    gray_list_hit: bool = False
    verified_income: Decimal | None = None


@dataclass(frozen=True)
class Rates:
    """Automatic outcomes in the dealer-monitoring window: how many were assessed, how many the rules and model
    alone would approve (``base_outcome``, before the dealer-level rules), how many carried a fraud signal."""

    assessed: int = 0
    approved: int = 0
    fraud: int = 0

    @property
    def approval_rate(self) -> float:
        return self.approved / self.assessed if self.assessed else 0.0

    @property
    def fraud_rate(self) -> float:
        return self.fraud / self.assessed if self.assessed else 0.0


@dataclass(frozen=True)
class History:
    """Counts from the service's own records, excluding this application."""

    same_id: int = 0
    same_mobile: int = 0
    same_device: int = 0
    live_same_dealer: int = 0
    customer_exposure: Decimal = Decimal("0")
    dealer_exposure: Decimal = Decimal("0")
    dealer: Rates = Rates()      # this dealer, over ``dealer_window_days``
    portfolio: Rates = Rates()   # every dealer, same window


#: reason codes that count as a fraud signal for the dealer-level monitoring
FRAUD_SIGNALS = frozenset({"KYC_FAILED", "VELOCITY_ID", "VELOCITY_MOBILE", "VELOCITY_DEVICE", "MULTI_VEHICLE",
                           "INCOME_UNVERIFIED", "GRAY_LIST"})


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    tier: int
    reasons: tuple[Reason, ...]
    conditions: tuple[Condition, ...]
    band: Outcome
    #: the outcome before the dealer-level rules (what the dealer's approval rate is measured on, so that
    #: referring a drifting dealer's applications does not itself pull the rate back and switch the rule off)
    base_outcome: Outcome = "approve"
    #: a fraud or velocity signal fired (counted in the dealer's fraud rate)
    fraud_signal: bool = False


# --- policy -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Policy:
    """The thresholds of one policy file (see ``risk/policies/v1.toml`` for their meaning)."""

    version: str
    kyc_review: Action
    kyc_failed: Action
    min_age: int
    max_age_at_end: int
    judicial_hit: Action
    gray_list_hit: Action
    decline_dpd: int
    refer_dpd: int
    thin_file: Action
    multi_lending_inquiries_24h: int
    income_mismatch_ratio: Decimal
    rti_condition: Decimal
    rti_decline: Decimal
    dsr_condition: Decimal
    dsr_decline: Decimal
    min_monthly_income: Decimal
    down_payment_rounding: Decimal
    window_hours: int
    max_per_id: int
    max_per_mobile: int
    max_per_device: int
    max_live_per_customer_dealer: int
    multi_vehicle_window_days: int
    max_per_customer: Decimal
    max_per_dealer: Decimal
    deposit_free_max_pd: float
    approve_max_pd: float
    decline_min_pd: float
    dealer_window_days: int
    dealer_min_assessed: int
    dealer_approval_drift: float
    dealer_fraud_drift: float
    tier1_max_financed: Decimal
    sla_hours_tier1: int
    sla_hours_tier2: int


class PolicyError(ValueError):
    """A policy file is missing a setting or has a wrong one."""


def load_policy(path: Path) -> Policy:
    """The :class:`Policy` in a TOML file; :class:`PolicyError` names the bad setting."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"policy {path}: {exc}") from None
    return policy_from_dict(data)


def policy_from_dict(data: dict[str, Any]) -> Policy:
    def get(section: str, key: str) -> Any:
        try:
            return data[section][key] if section else data[key]
        except (KeyError, TypeError):
            raise PolicyError(f"policy: missing {section + '.' if section else ''}{key}") from None

    def action(section: str, key: str) -> Action:
        value = get(section, key)
        if value not in ("decline", "refer", "ignore"):
            raise PolicyError(f"policy: {section}.{key} must be decline, refer or ignore")
        return value  # type: ignore[no-any-return]

    def dec(section: str, key: str) -> Decimal:
        return Decimal(str(get(section, key)))

    policy = Policy(
        version=str(get("", "version")),
        kyc_review=action("knockouts", "kyc_review"), kyc_failed=action("knockouts", "kyc_failed"),
        min_age=int(get("knockouts", "min_age")), max_age_at_end=int(get("knockouts", "max_age_at_end")),
        judicial_hit=action("knockouts", "judicial_hit"), gray_list_hit=action("knockouts", "gray_list_hit"),
        decline_dpd=int(get("bureau", "decline_dpd")), refer_dpd=int(get("bureau", "refer_dpd")),
        thin_file=action("bureau", "thin_file"),
        multi_lending_inquiries_24h=int(get("bureau", "multi_lending_inquiries_24h")),
        income_mismatch_ratio=dec("bureau", "income_mismatch_ratio"),
        rti_condition=dec("affordability", "rti_condition"), rti_decline=dec("affordability", "rti_decline"),
        dsr_condition=dec("affordability", "dsr_condition"), dsr_decline=dec("affordability", "dsr_decline"),
        min_monthly_income=dec("affordability", "min_monthly_income"),
        down_payment_rounding=dec("affordability", "down_payment_rounding"),
        window_hours=int(get("velocity", "window_hours")), max_per_id=int(get("velocity", "max_per_id")),
        max_per_mobile=int(get("velocity", "max_per_mobile")), max_per_device=int(get("velocity", "max_per_device")),
        max_live_per_customer_dealer=int(get("velocity", "max_live_per_customer_dealer")),
        multi_vehicle_window_days=int(get("velocity", "multi_vehicle_window_days")),
        max_per_customer=dec("exposure", "max_per_customer"), max_per_dealer=dec("exposure", "max_per_dealer"),
        deposit_free_max_pd=float(get("deposit_free", "max_pd")),
        approve_max_pd=float(get("bands", "approve_max_pd")), decline_min_pd=float(get("bands", "decline_min_pd")),
        dealer_window_days=int(get("dealer", "window_days")),
        dealer_min_assessed=int(get("dealer", "min_assessed")),
        dealer_approval_drift=float(get("dealer", "approval_drift")),
        dealer_fraud_drift=float(get("dealer", "fraud_drift")),
        tier1_max_financed=dec("review", "tier1_max_financed"),
        sla_hours_tier1=int(get("review", "sla_hours_tier1")), sla_hours_tier2=int(get("review", "sla_hours_tier2")),
    )
    if not 0 <= policy.approve_max_pd < policy.decline_min_pd <= 1:
        raise PolicyError("policy: bands need 0 ≤ approve_max_pd < decline_min_pd ≤ 1")
    if not (policy.rti_condition <= policy.rti_decline and policy.dsr_condition <= policy.dsr_decline):
        raise PolicyError("policy: affordability condition thresholds must not exceed the decline thresholds")
    if policy.dealer_window_days < 1 or policy.dealer_min_assessed < 1:
        raise PolicyError("policy: dealer.window_days and dealer.min_assessed must be at least 1")
    if policy.refer_dpd > policy.decline_dpd:
        raise PolicyError("policy: bureau.refer_dpd must not exceed bureau.decline_dpd")
    return policy


# --- evaluation ---------------------------------------------------------------------------------------------

def percent(value: Decimal | float) -> str:
    return f"{Decimal(str(value)) * 100:.1f}"


def model_band(pd: float, policy: Policy) -> Outcome:
    """approve / refer / decline from the probability of default alone."""
    if pd <= policy.approve_max_pd:
        return "approve"
    if pd >= policy.decline_min_pd:
        return "decline"
    return "refer"


def age_at_end(age: int, term_months: int) -> int:
    """The applicant's age at the end of the term (whole years, rounded up)."""
    return age + math.ceil(term_months / 12)


def _apply(action: Action, code: str, declines: list[Reason], refers: list[Reason], **params: object) -> None:
    if action == "decline":
        declines.append(reason(code, **params))
    elif action == "refer":
        refers.append(reason(code, **params))


def affordability(snapshot: Snapshot, facts: ProviderFacts, policy: Policy,
                  declines: list[Reason], refers: list[Reason], conditions: list[Condition]) -> None:
    """Rent-to-income and debt-service ratios; a higher down payment as a condition where it helps."""
    declared = snapshot.applicant.monthly_income
    income = min(declared, facts.verified_income) if facts.verified_income is not None else declared
    if facts.verified_income is not None and facts.verified_income < declared * policy.income_mismatch_ratio:
        refers.append(reason("INCOME_UNVERIFIED", source="provider"))
    if income < policy.min_monthly_income:
        declines.append(reason("INCOME_BELOW_MIN", min_income=f"{policy.min_monthly_income:.0f}"))
        return
    rent = snapshot.plan.monthly_payment
    repayments = snapshot.applicant.monthly_repayments
    rti, dsr = rent / income, (rent + repayments) / income
    if rti > policy.rti_decline:
        declines.append(reason("AFFORD_RTI", ratio=percent(rti)))
    if dsr > policy.dsr_decline:
        declines.append(reason("AFFORD_DSR", ratio=percent(dsr)))
    if rti > policy.rti_decline or dsr > policy.dsr_decline:
        return
    if rti <= policy.rti_condition and dsr <= policy.dsr_condition:
        return
    allowed_rent = min(policy.rti_condition * income, policy.dsr_condition * income - repayments)
    financed = snapshot.plan.financed_amount
    if allowed_rent <= 0 or rent <= 0 or financed <= 0:
        declines.append(reason("AFFORD_DSR", ratio=percent(dsr)))
        return
    # the rent is close to proportional to the amount financed (same rate and term), so scale the amount down
    extra = financed - financed * allowed_rent / rent
    step = policy.down_payment_rounding
    extra = (extra / step).to_integral_value(rounding=ROUND_CEILING) * step
    required = (snapshot.plan.down_payment + extra).quantize(CENT)
    if required >= snapshot.vehicle.price:
        declines.append(reason("AFFORD_DSR" if dsr > policy.dsr_condition else "AFFORD_RTI",
                               ratio=percent(dsr if dsr > policy.dsr_condition else rti)))
        return
    conditions.append(Condition(
        "HIGHER_DOWN_PAYMENT", f"首付提高至不低于 {required:.2f} 元，月租金不高于 {allowed_rent:.2f} 元",
        f"Down payment of at least ¥{required:.2f} so the rent is at most ¥{allowed_rent:.2f} a month",
        {"min_down_payment": f"{required:.2f}", "max_monthly_payment": f"{allowed_rent.quantize(CENT):.2f}"}))


def evaluate(snapshot: Snapshot, model: ModelView, facts: ProviderFacts, history: History,
             policy: Policy) -> Decision:
    """The decision on one application (see the module docstring for the order and the combination)."""
    declines: list[Reason] = []
    refers: list[Reason] = []
    conditions: list[Condition] = []
    a, plan = snapshot.applicant, snapshot.plan

    # knock-outs
    if snapshot.kyc.status == "kyc_failed":
        _apply(policy.kyc_failed, "KYC_FAILED", declines, refers)
    elif snapshot.kyc.status == "kyc_review":
        _apply(policy.kyc_review, "KYC_REVIEW", declines, refers)
    if a.age < policy.min_age:
        declines.append(reason("AGE_BELOW_MIN", min_age=policy.min_age))
    elif age_at_end(a.age, plan.term) > policy.max_age_at_end:
        declines.append(reason("AGE_AT_END", max_age=policy.max_age_at_end))
    if facts.judicial_hit:
        _apply(policy.judicial_hit, "JUDICIAL_DISHONEST", declines, refers)
    if facts.gray_list_hit:
        _apply(policy.gray_list_hit, "GRAY_LIST", declines, refers)

    # data providers
    if facts.unavailable:
        refers.append(reason("PROVIDER_UNAVAILABLE", source="provider", providers=", ".join(facts.unavailable)))
    if facts.worst_dpd_24m >= policy.decline_dpd:
        declines.append(reason("BUREAU_SEVERE_DELINQUENCY", source="provider", dpd=facts.worst_dpd_24m))
    elif facts.worst_dpd_24m >= policy.refer_dpd:
        refers.append(reason("BUREAU_DELINQUENCY", source="provider", dpd=facts.worst_dpd_24m))
    if facts.thin_file:
        _apply(policy.thin_file, "THIN_FILE", declines, refers)
    if facts.inquiries_24h > policy.multi_lending_inquiries_24h:
        refers.append(reason("MULTI_LENDING", source="provider", tier2=True, count=facts.inquiries_24h))

    affordability(snapshot, facts, policy, declines, refers, conditions)

    # fraud and velocity
    hours = policy.window_hours
    if history.same_id > policy.max_per_id:
        refers.append(reason("VELOCITY_ID", tier2=True, count=history.same_id + 1, hours=hours))
    if a.mobile and history.same_mobile > policy.max_per_mobile:
        refers.append(reason("VELOCITY_MOBILE", tier2=True, count=history.same_mobile + 1, hours=hours))
    if history.same_device > policy.max_per_device:
        refers.append(reason("VELOCITY_DEVICE", tier2=True, count=history.same_device + 1, hours=hours))
    if history.live_same_dealer >= policy.max_live_per_customer_dealer:
        refers.append(reason("MULTI_VEHICLE", tier2=True, count=history.live_same_dealer))

    # exposure
    if history.customer_exposure + plan.financed_amount > policy.max_per_customer:
        refers.append(reason("EXPOSURE_CUSTOMER", tier2=True, limit=f"{policy.max_per_customer:.0f}"))
    if history.dealer_exposure + plan.financed_amount > policy.max_per_dealer:
        refers.append(reason("EXPOSURE_DEALER", tier2=True, limit=f"{policy.max_per_dealer:.0f}"))

    # the model
    band = model_band(model.pd, policy)
    # the scorecard's reasons: the features that cost the most points against their best bin, worst first
    adverse = [c for c in model.contributions if getattr(c, "points_below_best", 1.0) > 0]
    model_reasons = [Reason(c.reason_code, c.text_zh, c.text_en, "model") for c in adverse[:3]]
    if band == "decline":
        declines.append(reason("MODEL_HIGH_RISK", source="model", pd=percent(model.pd)))
        declines.extend(model_reasons)
    elif band == "refer":
        refers.append(reason("MODEL_GREY_ZONE", source="model", pd=percent(model.pd)))
        refers.extend(model_reasons)

    if plan.deposit_free and model.pd > policy.deposit_free_max_pd:
        zh, en = REASONS["DEPOSIT_REQUIRED"]
        conditions.append(Condition("DEPOSIT_REQUIRED", zh, en))

    fraud_signal = any(r.code in FRAUD_SIGNALS for r in declines + refers)
    base: Outcome = "decline" if declines else "refer" if refers else "approve"
    if not declines:
        refers.extend(dealer_anomalies(history, policy))
    if declines:
        return Decision("decline", 0, tuple(_unique(declines)), tuple(conditions), band, base, fraud_signal)
    if refers:
        tier2 = [r for r in refers if r.tier2]
        extra: list[Reason] = []
        if plan.financed_amount > policy.tier1_max_financed:
            extra.append(reason("LARGE_AMOUNT", tier2=True, limit=f"{policy.tier1_max_financed:.0f}"))
        grounds = {r.code for r in refers if r.source != "model"}
        if band == "approve" and len(grounds) >= 2 and not tier2:
            extra.append(reason("CONFLICTING_SIGNALS", tier2=True))
        tier = 2 if tier2 or extra else 1
        return Decision("refer", tier, tuple(_unique(refers + extra)), tuple(conditions), band, base, fraud_signal)
    approved = [reason("AUTO_APPROVE")]
    if any(c.code == "HIGHER_DOWN_PAYMENT" for c in conditions):
        approved.append(reason("AFFORD_CONDITION"))
    if any(c.code == "DEPOSIT_REQUIRED" for c in conditions):
        approved.append(reason("DEPOSIT_REQUIRED"))
    return Decision("approve", 0, tuple(approved), tuple(conditions), band, base, fraud_signal)


def dealer_anomalies(history: History, policy: Policy) -> list[Reason]:
    """Dealer-level monitoring: a dealer whose automatic approval rate or fraud-signal rate drifts well above
    the whole portfolio's over the window gets its applications referred to tier 2 until it comes back —
    too good an approval rate suggests applications shaped to pass, many fraud signals a ring working
    through one showroom. Judged only from ``dealer.min_assessed`` assessments, so one bad day of a small
    dealer does not trip it."""
    dealer, portfolio, days = history.dealer, history.portfolio, policy.dealer_window_days
    if dealer.assessed < policy.dealer_min_assessed:
        return []
    found = []
    if dealer.approval_rate - portfolio.approval_rate > policy.dealer_approval_drift:
        found.append(reason("DEALER_APPROVAL_DRIFT", tier2=True, days=days, rate=percent(round(
            dealer.approval_rate, 3)), base=percent(round(portfolio.approval_rate, 3))))
    if dealer.fraud_rate - portfolio.fraud_rate > policy.dealer_fraud_drift:
        found.append(reason("DEALER_FRAUD_RATE", tier2=True, days=days, rate=percent(round(
            dealer.fraud_rate, 3)), base=percent(round(portfolio.fraud_rate, 3))))
    return found


def _unique(reasons: list[Reason]) -> list[Reason]:
    seen: set[str] = set()
    out = []
    for r in reasons:
        if r.code not in seen:
            seen.add(r.code)
            out.append(r)
    return out
