"""The credit scorecard: the artifact, pure run-time scoring, the snapshot mapping and the model's quality."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from risk.model import features as feat
from risk.model.scorecard import ARTIFACTS
from risk.model.scorecard import ArtifactNotFound
from risk.model.scorecard import Scorecard
from risk.model.scorecard import load
from risk.model.scorecard import versions

SNAPSHOT: dict[str, Any] = {
    "application_id": "app-1", "dealer_id": "dealer-1",
    "applicant": {"age": 35, "id_number": "11010519491231002X", "name": "张三", "monthly_income": "28000.00",
                  "employment": "employed", "employment_years": 2, "housing": "rent", "dependants": 1,
                  "existing_loans": 1, "monthly_repayments": "3000.00"},
    "vehicle": {"id": "v-1", "make": "BYD", "model": "Han", "price": "219800.00", "condition": "new",
                "vin": "LGXC16DF0N0000001", "mileage": None},
    "plan": {"term": 36, "down_payment": "43960.00", "financed_amount": "175840.00", "monthly_payment": "5402.11",
             "residual": "0.00", "deposit": "0.00", "deposit_free": True, "apr": "0.067123"},
    "kyc": {"status": "kyc_passed", "face_distance": 0.31, "liveness": True, "manual": False},
    "device": {"ip": "203.0.113.5", "user_agent_hash": "ab12"},
}


def snapshot(**changes: Any) -> dict[str, Any]:
    """A copy of SNAPSHOT with ``section__field=value`` changes."""
    data = copy.deepcopy(SNAPSHOT)
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section][field] = value
        else:
            data[section] = value
    return data


@pytest.fixture(scope="module")
def card() -> Scorecard:
    return load()


# --- the artifact ---------------------------------------------------------------------------------------------

def test_latest_artifact_loads_and_is_cached(card: Scorecard) -> None:
    assert versions() and card.version == versions()[-1]
    assert (ARTIFACTS / f"scorecard-{card.version}.json").is_file()
    assert load(card.version) is load(card.version)
    assert [f.name for f in card.features] == list(feat.FEATURES)
    assert 0 < card.bands["approve_max_pd"] < card.bands["decline_min_pd"] < 1


def test_unknown_version_is_a_clear_error() -> None:
    with pytest.raises(ArtifactNotFound, match="9.9.9"):
        load("9.9.9")
    with pytest.raises(ArtifactNotFound):
        load("../../pyproject")


def test_versions_sort_numerically(tmp_path: Path) -> None:
    for v in ("1.9.0", "1.10.0", "1.2.0"):
        (tmp_path / f"scorecard-{v}.json").write_text("{}")
    (tmp_path / "scorecard-latest.json").write_text("{}")
    assert versions(tmp_path) == ["1.2.0", "1.9.0", "1.10.0"]


def test_artifact_is_plain_json_with_what_scoring_and_audit_need(card: Scorecard) -> None:
    data = json.loads((ARTIFACTS / f"scorecard-{card.version}.json").read_text(encoding="utf-8"))
    assert data["scaling"]["base_points"] == 600 and data["scaling"]["base_odds_good_bad"] == 50
    assert data["scaling"]["pdo"] == 20
    assert math.isclose(data["pd_mapping"]["factor"], 20 / math.log(2))
    assert re.fullmatch(r"[0-9a-f]{64}", data["data"]["sha256"])
    assert {"optbinning", "scikit-learn", "python"} <= set(data["libraries"])
    assert data["metrics"]["auc"] >= 0.75 and data["metrics"]["folds"] == 5
    for f in data["features"]:
        assert f["bins"] and all("woe" in b and "points" in b for b in f["bins"])
        if f["type"] == "numerical":
            edges = [b["low"] for b in f["bins"][1:]]
            assert edges == sorted(edges) and f["bins"][0]["low"] is None and f["bins"][-1]["high"] is None
        else:
            assert all(b["categories"] for b in f["bins"])


def test_protected_attributes_are_absent_from_the_artifact(card: Scorecard) -> None:
    data = copy.deepcopy(card.artifact)
    assert sorted(data["excluded"]["protected"]) == ["foreign_worker", "personal_status_and_sex"]
    del data["excluded"]
    text = json.dumps(data).lower()
    for word in ("personal_status", "sex", "female", "male", "foreign", "nationality"):
        assert word not in text, word


def test_training_never_reads_the_protected_columns() -> None:
    from risk.model.train import PROTECTED
    from risk.model.train import load_data

    X, _ = load_data()
    assert not set(PROTECTED) & set(X.columns)
    assert list(X.columns) == list(feat.FEATURES)


# --- scoring ----------------------------------------------------------------------------------------------------

def test_scoring_is_deterministic_and_consistent(card: Scorecard) -> None:
    x = feat.from_snapshot(SNAPSHOT)
    first, second = card.score(x), card.score(dict(x))
    assert first == second
    assert isinstance(first.score, int) and 0 < first.pd < 1
    assert first.score == round(card.base_points + sum(c.points for c in first.contributions))
    assert math.isclose(first.pd, 1 / (1 + math.exp((first.score - card.offset) / card.factor)), rel_tol=0.05)
    assert x == feat.from_snapshot(SNAPSHOT)  # the input is not mutated


def test_scoring_modules_import_no_third_party_library() -> None:
    code = ("import sys; import risk.model.scorecard as s, risk.model.features as f; "
            "f.from_snapshot; s.load().score; "
            "heavy = {'numpy', 'pandas', 'sklearn', 'optbinning', 'scipy', 'scorecardpy', 'flask'}; "
            "print(sorted(heavy & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_a_better_applicant_scores_higher(card: Scorecard) -> None:
    base = card.score(feat.from_snapshot(SNAPSHOT))
    better = snapshot(plan__down_payment="109900.00", plan__financed_amount="109900.00",
                      applicant__employment_years=8, applicant__housing="own_outright")
    result = card.score(feat.from_snapshot(better))
    assert result.score > base.score and result.pd < base.pd
    # and each change on its own does not make things worse
    for change in ({"plan__financed_amount": "109900.00"}, {"applicant__employment_years": 8},
                   {"applicant__housing": "own_outright"}, {"applicant__existing_loans": 0},
                   {"plan__term": 12}):
        assert card.score(feat.from_snapshot(snapshot(**change))).score >= base.score, change


def test_contributions_are_sorted_and_explained_in_chinese_and_english(card: Scorecard) -> None:
    result = card.score(feat.from_snapshot(SNAPSHOT))
    lost = [c.points_below_best for c in result.contributions]
    assert lost == sorted(lost, reverse=True) and lost[0] > 0
    assert {c.feature for c in result.contributions} == set(feat.FEATURES)
    for c in result.contributions:
        assert re.search(r"[\u4e00-\u9fff]", c.text_zh) and re.search(r"[A-Za-z]", c.text_en)
        assert re.fullmatch(r"R\d\d_[A-Z_]+", c.reason_code)
    reasons = result.reasons()
    assert 0 < len(reasons) <= 4 and all(r.points_below_best > 0 for r in reasons)
    assert reasons[0] == result.contributions[0]
    # no bank statement: the neutral bin, with its own reason
    bank = next(c for c in result.contributions if c.feature == "status_of_existing_checking_account")
    assert bank.points == 0 and bank.reason_code == "R07_BANK_ACCOUNT_UNVERIFIED" and bank.bin_label == "Missing"


def test_low_down_payment_is_a_stated_reason(card: Scorecard) -> None:
    reasons = card.score(feat.from_snapshot(SNAPSHOT)).reasons(limit=7)
    text = next(c for c in reasons if c.reason_code == "R02_AMOUNT_TO_INCOME")
    assert "首付" in text.text_zh and "down payment" in text.text_en


def test_a_verified_bank_account_moves_the_score(card: Scorecard) -> None:
    def score(status: str | None) -> int:
        return card.score(feat.from_snapshot(snapshot(bank_account={"status": status}))).score

    assert score("healthy") > score(None) > score("low_balance") > score("overdrawn")
    assert score("no_account") == score(None)


def test_score_rejects_a_missing_feature_or_an_unknown_category(card: Scorecard) -> None:
    x = feat.from_snapshot(SNAPSHOT)
    with pytest.raises(ValueError, match="housing"):
        card.score({k: v for k, v in x.items() if k != "housing"})
    with pytest.raises(ValueError, match="castle"):
        card.score({**x, "housing": "castle"})
    with pytest.raises(ValueError, match="duration_in_month"):
        card.score({**x, "duration_in_month": "36"})


def test_numeric_bins_are_half_open_like_optbinning(card: Scorecard) -> None:
    duration = next(f for f in card.features if f.name == "duration_in_month")
    edge = duration.edges[0]
    assert duration.bin_for(edge) is duration.bins[1]
    assert duration.bin_for(edge - 1e-9) is duration.bins[0]
    assert duration.bin_for(10**6) is duration.bins[-1]


def test_decide_by_bands(card: Scorecard) -> None:
    a, b = card.bands["approve_max_pd"], card.bands["decline_min_pd"]
    assert [card.decide(p) for p in (a, (a + b) / 2, b, 0.99)] == ["approve", "refer", "decline", "decline"]


def test_scoring_is_fast(card: Scorecard) -> None:
    x = feat.from_snapshot(SNAPSHOT)
    calls = 5000
    start = time.perf_counter()
    for _ in range(calls):
        card.score(x)
    per_call = (time.perf_counter() - start) / calls
    assert per_call < 100e-6, f"{per_call * 1e6:.1f} µs per score"


# --- the snapshot mapping -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "feature", "expected"), [
    ({"plan__term": 36}, "duration_in_month", 18),     # a typical lease is a typical German credit (median)
    ({"plan__term": 12}, "duration_in_month", 6),
    ({"plan__term": 60}, "duration_in_month", 30),
    ({}, "credit_amount", round(175840 / 28000 * 2319.5 / 6, 2)),
    ({"plan__financed_amount": "168000.00"}, "credit_amount", 2319.5),  # 6 months of ¥28,000: the median
    ({"applicant__monthly_income": "7000.00", "plan__financed_amount": "84000"}, "credit_amount", 4639.0),
    ({"applicant__age": 23}, "age_in_years", 23),
    ({"applicant__employment_years": 0}, "present_employment_since", "... < 1 year"),
    ({"applicant__employment_years": None}, "present_employment_since", "... < 1 year"),
    ({"applicant__employment_years": 1}, "present_employment_since", "1 <= ... < 4 years"),
    ({"applicant__employment_years": 3}, "present_employment_since", "1 <= ... < 4 years"),
    ({"applicant__employment_years": 4}, "present_employment_since", "4 <= ... < 7 years"),
    ({"applicant__employment_years": 6}, "present_employment_since", "4 <= ... < 7 years"),
    ({"applicant__employment_years": 7}, "present_employment_since", "... >= 7 years"),
    ({"applicant__employment": "self_employed", "applicant__employment_years": 10}, "present_employment_since",
     "... >= 7 years"),
    ({"applicant__employment": "civil_servant", "applicant__employment_years": 5}, "present_employment_since",
     "4 <= ... < 7 years"),
    ({"applicant__employment": "retired", "applicant__employment_years": None}, "present_employment_since",
     "unemployed"),
    ({"applicant__employment": "other", "applicant__employment_years": 9}, "present_employment_since", "unemployed"),
    ({"applicant__housing": "own_outright"}, "housing", "own"),
    ({"applicant__housing": "mortgage"}, "housing", "own"),
    ({"applicant__housing": "rent"}, "housing", "rent"),
    ({"applicant__housing": "family"}, "housing", "for free"),
    ({"applicant__housing": "company"}, "housing", "for free"),
    ({"applicant__existing_loans": 0}, "other_installment_plans", "none"),
    ({"applicant__existing_loans": 1}, "other_installment_plans", "bank"),
    ({"applicant__existing_loans": 5}, "other_installment_plans", "bank"),
    ({}, "status_of_existing_checking_account", None),
    ({"bank_account": None}, "status_of_existing_checking_account", None),
    ({"bank_account": {"status": "no_account"}}, "status_of_existing_checking_account", None),
    ({"bank_account": {"status": "overdrawn"}}, "status_of_existing_checking_account", "... < 0 DM"),
    ({"bank_account": {"status": "low_balance"}}, "status_of_existing_checking_account", "0 <= ... < 200 DM"),
    ({"bank_account": {"status": "healthy"}}, "status_of_existing_checking_account",
     "... >= 200 DM / salary assignments for at least 1 year"),
])
def test_mapping(changes: dict[str, Any], feature: str, expected: object) -> None:
    assert feat.from_snapshot(snapshot(**changes))[feature] == expected


def test_mapping_gives_every_model_feature_in_a_known_bin(card: Scorecard) -> None:
    for employment in feat.EMPLOYMENTS:
        for housing in feat.HOUSING:
            for status in feat.BANK_ACCOUNT:
                x = feat.from_snapshot(snapshot(applicant__employment=employment, applicant__housing=housing,
                                                bank_account={"status": status}))
                assert set(x) == set(feat.FEATURES)
                card.score(x)


def test_mapping_ignores_what_the_model_does_not_use() -> None:
    assert feat.from_snapshot(snapshot(vehicle__condition="used", applicant__dependants=4, extra="x")) == \
        feat.from_snapshot(SNAPSHOT)


REQUIRED = ["plan.term", "plan.financed_amount", "applicant.monthly_income", "applicant.age",
            "applicant.employment", "applicant.employment_years", "applicant.housing", "applicant.existing_loans"]


@pytest.mark.parametrize("path", REQUIRED)
def test_a_missing_field_is_named(path: str) -> None:
    data = copy.deepcopy(SNAPSHOT)
    section, field = path.split(".")
    del data[section][field]
    with pytest.raises(ValueError, match=rf"missing field: {re.escape(path)}$"):
        feat.from_snapshot(data)


@pytest.mark.parametrize("section", ["plan", "applicant"])
def test_a_missing_section_is_named(section: str) -> None:
    data = copy.deepcopy(SNAPSHOT)
    del data[section]
    with pytest.raises(ValueError, match=f"missing field: {section}\\."):
        feat.from_snapshot(data)


@pytest.mark.parametrize(("changes", "field"), [
    ({"plan__term": "36"}, "plan.term"),
    ({"plan__term": 0}, "plan.term"),
    ({"plan__term": True}, "plan.term"),
    ({"plan__financed_amount": "lots"}, "plan.financed_amount"),
    ({"plan__financed_amount": "-1.00"}, "plan.financed_amount"),
    ({"plan__financed_amount": "NaN"}, "plan.financed_amount"),
    ({"applicant__monthly_income": "0.00"}, "applicant.monthly_income"),
    ({"applicant__age": None}, "applicant.age"),
    ({"applicant__employment": "astronaut"}, "applicant.employment"),
    ({"applicant__employment_years": -1}, "applicant.employment_years"),
    ({"applicant__housing": "boat"}, "applicant.housing"),
    ({"applicant__existing_loans": 1.5}, "applicant.existing_loans"),
    ({"bank_account": {"status": "rich"}}, "bank_account.status"),
])
def test_an_invalid_field_is_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"invalid field: {re.escape(field)}"):
        feat.from_snapshot(snapshot(**changes))


# --- the model's quality and the export -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data() -> tuple[Any, Any]:
    from risk.model.train import load_data

    return load_data()


def test_cross_validated_auc_is_at_least_075(data: tuple[Any, Any]) -> None:
    from risk.model.train import cross_validate

    X, y = data
    start = time.perf_counter()
    metrics, oof = cross_validate(X, y)
    assert time.perf_counter() - start < 60
    assert metrics["auc"] >= 0.75, metrics
    assert metrics["ks"] >= 0.35 and math.isclose(metrics["gini"], 2 * metrics["auc"] - 1, abs_tol=1e-3)
    assert len(oof) == 1000 and ((oof > 0) & (oof < 1)).all()


def test_the_json_export_scores_exactly_like_the_fitted_model(data: tuple[Any, Any]) -> None:
    from risk.model.train import fit
    from risk.model.train import predict_pd
    from risk.model.train import to_artifact

    X, y = data
    pipeline = fit(X, y)
    artifact = to_artifact(pipeline, X, y)
    artifact["bands"] = {"approve_max_pd": 0.3, "decline_min_pd": 0.4}
    pure = Scorecard(json.loads(json.dumps(artifact)))
    expected = predict_pd(pipeline, X)
    for row, pd in zip(X.to_dict(orient="records"), expected, strict=True):
        assert math.isclose(pure.score(row).pd, pd, abs_tol=1e-9)


def test_the_committed_artifact_is_what_training_produces(card: Scorecard, tmp_path: Path) -> None:
    from risk.model.train import train

    fresh = train(out_dir=tmp_path, card_path=None)
    committed = card.artifact
    assert fresh["data"] == committed["data"] and fresh["metrics"] == committed["metrics"]
    assert fresh["bands"] == committed["bands"]
    for new, old in zip(fresh["features"], committed["features"], strict=True):
        assert [b["label"] for b in new["bins"]] == [b["label"] for b in old["bins"]]
        assert all(math.isclose(a["points"], b["points"], abs_tol=1e-6)
                   for a, b in zip(new["bins"], old["bins"], strict=True))


def test_bands_meet_the_auto_decision_target_without_a_careless_approve_band(card: Scorecard) -> None:
    outcomes, base = card.artifact["band_outcomes_oof"], card.artifact["data"]["bad_rate"]
    assert outcomes["auto_decision_rate"] >= 0.85
    # the auto-approved are at least a third safer than average, the auto-declined at least 1.5 times riskier
    assert outcomes["bad_rate_auto_approved"] <= base * 2 / 3
    assert outcomes["bad_rate_auto_declined"] >= base * 1.5


def test_the_policy_uses_the_model_cards_bands(card: Scorecard) -> None:
    from risk.config import policy_path
    from risk.rules import load_policy

    policy = load_policy(policy_path("v1"))
    assert (policy.approve_max_pd, policy.decline_min_pd) == (card.bands["approve_max_pd"],
                                                              card.bands["decline_min_pd"])


@pytest.mark.parametrize(("changes", "band"), [
    # an ordinary lease: 6 months of income financed over 36 months, settled job, own home, healthy account
    ({}, "approve"),
    # the same person stretched: 15 months of income over 60 months, new job, renting, overdrawn
    ({"plan__financed_amount": "420000.00", "vehicle__price": "500000.00", "plan__term": 60,
      "applicant__employment_years": 0, "applicant__housing": "rent", "bank_account": {"status": "overdrawn"},
      "applicant__existing_loans": 2}, "decline"),
])
def test_an_ordinary_lease_is_an_ordinary_credit(card: Scorecard, changes: dict[str, Any], band: str) -> None:
    base = {"plan__financed_amount": "168000.00", "vehicle__price": "240000.00", "plan__term": 36,
            "applicant__monthly_income": "28000.00", "applicant__age": 36, "applicant__employment_years": 5,
            "applicant__housing": "mortgage", "applicant__existing_loans": 0, "bank_account": {"status": "healthy"}}
    assert card.decide(card.score(feat.from_snapshot(snapshot(**(base | changes)))).pd) == band
