"""``leaseline risk …`` as a risk analyst or a script runs it: the installed entry point, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from leaseline.cli import evaluation_text

LEASELINE = str(Path(sys.executable).with_name("leaseline"))
KEYS = {"cv_auc", "cv_ks", "holdout_auc", "auto_decision_rate", "approval_rate", "bad_rate_auto_approved",
        "bad_rate_auto_declined", "bands"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LEASELINE, "risk", *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def evaluated() -> dict[str, Any]:
    """``leaseline risk evaluate --json`` run once (it cross-validates the scorecard: ~15 s)."""
    done = run("evaluate", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_evaluate_json_on_held_out_data(evaluated: dict[str, Any]) -> None:
    data = evaluated
    assert KEYS <= set(data)
    assert data["cv_auc"] >= 0.75 and data["holdout_auc"] >= 0.72
    assert data["auto_decision_rate"] >= 0.85
    assert data["bad_rate_auto_approved"] < data["holdout_bad_rate"] < data["bad_rate_auto_declined"]
    # the band rule keeps the auto-approved out-of-fold bad rate at or below two thirds of the base rate; on the
    # 300 held-out rows (sampling error ≈ ±2.5 points) it must stay clearly below three quarters of it
    assert data["bad_rate_auto_approved"] <= 0.75 * data["holdout_bad_rate"]
    bands = data["bands"]
    assert 0 < bands["approve_max_pd"] < bands["decline_min_pd"] < 1
    assert set(data["without_bank_account"]) >= {"holdout_auc", "auto_decision_rate"}


def test_evaluate_text(evaluated: dict[str, Any]) -> None:
    """The text is the JSON's figures, as the command prints them without --json (one evaluation: the same seed
    gives the same figures)."""
    text = evaluation_text(evaluated)
    assert text.count("\n") == 2 and "AUC" in text and "auto-decided" in text
    assert f"AUC {evaluated['holdout_auc']}" in text and f"approve PD ≤ {evaluated['bands']['approve_max_pd']}" in text


def test_risk_help_lists_train_and_evaluate() -> None:
    done = run("--help")
    assert done.returncode == 0 and "train" in done.stdout and "evaluate" in done.stdout
