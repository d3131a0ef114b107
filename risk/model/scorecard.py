"""Run-time scoring from a scorecard artifact (``artifacts/scorecard-<version>.json``). Standard library only.

The artifact is plain JSON written by ``risk.model.train``: for each feature its bins (numeric edges or
category lists), WoE and points, plus base points and the PD mapping. Scoring adds the points of the bin
each feature falls in to the base points; the PD is the logistic function of that sum
(``pd = 1 / (1 + exp((score - offset) / factor))``), exactly the fitted logistic regression.

Numeric bins are ``[low, high)``, as optbinning builds them; ``None`` (unknown) falls in the feature's Missing
bin, whose WoE is 0 (the training population's average risk) and whose reason says the datum is missing.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).with_name("artifacts")
_NAME = re.compile(r"^scorecard-(\d+(?:\.\d+)*)\.json$")


class ArtifactNotFound(LookupError):
    """No scorecard artifact with that version (or none at all) in ``risk/model/artifacts``."""


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one feature added to the score, and the adverse-action reason it stands for.

    ``points_below_best`` is how many points the applicant lost on this feature against the feature's best
    bin: contributions are sorted by it, largest first, so the first ones are the reasons to show."""

    feature: str
    bin_label: str
    points: float
    reason_code: str
    text_zh: str
    text_en: str
    points_below_best: float = 0.0


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The integer score (higher is safer), the probability of default, and every feature's contribution."""

    score: int
    pd: float
    contributions: tuple[Contribution, ...]

    def reasons(self, limit: int = 4) -> tuple[Contribution, ...]:
        """The adverse reasons: contributions that cost points, the costliest first, at most ``limit``."""
        return tuple(c for c in self.contributions if c.points_below_best > 1e-9)[:limit]


@dataclass(frozen=True, slots=True)
class _Bin:
    label: str
    points: float
    reason_code: str
    text_zh: str
    text_en: str


@dataclass(frozen=True, slots=True)
class _Feature:
    name: str
    numeric: bool
    edges: tuple[float, ...]  # numeric: the inner split points; bin i is [edges[i-1], edges[i])
    bins: tuple[_Bin, ...]  # numeric: by position; categorical: by position in ``categories``
    categories: Mapping[str, int]  # categorical: category → index in ``bins``
    missing: _Bin
    best: float

    def bin_for(self, value: object) -> _Bin:
        if value is None:
            return self.missing
        if self.numeric:
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ValueError(f"{self.name}: a number or None expected, got {value!r}")
            return self.bins[bisect_right(self.edges, value)]
        index = self.categories.get(value) if isinstance(value, str) else None
        if index is None:
            raise ValueError(f"{self.name}: unknown category {value!r}")
        return self.bins[index]


class Scorecard:
    """A loaded scorecard artifact. Thread-safe and immutable; ``load()`` caches one per version."""

    def __init__(self, artifact: Mapping[str, Any]) -> None:
        self.artifact = artifact
        self.version: str = artifact["version"]
        self.base_points: float = artifact["base_points"]
        self.offset: float = artifact["pd_mapping"]["offset"]
        self.factor: float = artifact["pd_mapping"]["factor"]
        self.bands: Mapping[str, float] = artifact["bands"]
        self.features: tuple[_Feature, ...] = tuple(self._feature(f) for f in artifact["features"])

    @staticmethod
    def _feature(spec: Mapping[str, Any]) -> _Feature:
        def make(b: Mapping[str, Any], code: str, zh: str, en: str) -> _Bin:
            return _Bin(b["label"], float(b["points"]), code, zh, en)

        reason = (spec["reason_code"], spec["text_zh"], spec["text_en"])
        bins = tuple(make(b, *reason) for b in spec["bins"])
        missing_spec = spec["missing"]
        missing = make(missing_spec, missing_spec["reason_code"], missing_spec["text_zh"], missing_spec["text_en"])
        numeric = spec["type"] == "numerical"
        edges = tuple(float(b["low"]) for b in spec["bins"][1:]) if numeric else ()
        categories = {} if numeric else {c: i for i, b in enumerate(spec["bins"]) for c in b["categories"]}
        return _Feature(spec["name"], numeric, edges, bins, categories, missing, max(b.points for b in bins))

    def pd_for(self, points: float) -> float:
        """The probability of default for a (non-rounded) points total."""
        return 1.0 / (1.0 + math.exp((points - self.offset) / self.factor))

    def score(self, features: Mapping[str, object]) -> ScoreResult:
        """Score one applicant's model features (``risk.model.features.from_snapshot``). A missing key is an
        error (``ValueError``); a value of ``None`` means unknown and scores the neutral Missing bin."""
        total = self.base_points
        contributions = []
        for feature in self.features:
            if feature.name not in features:
                raise ValueError(f"missing feature: {feature.name}")
            b = feature.bin_for(features[feature.name])
            total += b.points
            contributions.append(Contribution(feature.name, b.label, b.points, b.reason_code, b.text_zh,
                                              b.text_en, round(feature.best - b.points, 6)))
        contributions.sort(key=lambda c: (-c.points_below_best, c.feature))
        return ScoreResult(round(total), self.pd_for(total), tuple(contributions))

    def decide(self, pd: float) -> str:
        """The band for a PD: ``approve`` (PD ≤ approve_max_pd), ``decline`` (PD ≥ decline_min_pd) or ``refer``."""
        if pd <= self.bands["approve_max_pd"]:
            return "approve"
        if pd >= self.bands["decline_min_pd"]:
            return "decline"
        return "refer"


def versions(folder: Path = ARTIFACTS) -> list[str]:
    """The artifact versions in ``folder``, oldest first (numeric order: 1.10.0 after 1.9.0)."""
    found = [m.group(1) for p in folder.glob("scorecard-*.json") if (m := _NAME.match(p.name))]
    return sorted(found, key=lambda v: tuple(int(part) for part in v.split(".")))


@lru_cache(maxsize=8)
def load(version: str | None = None) -> Scorecard:
    """The scorecard artifact ``version``, or the latest one when ``None``. Cached: call it freely."""
    if version is None:
        available = versions()
        if not available:
            raise ArtifactNotFound(f"no scorecard artifact in {ARTIFACTS} (run `leaseline risk train`)")
        version = available[-1]
    path = ARTIFACTS / f"scorecard-{version}.json"
    if not _NAME.match(path.name) or not path.is_file():
        raise ArtifactNotFound(f"no scorecard artifact {version!r} in {ARTIFACTS}")
    return Scorecard(json.loads(path.read_text(encoding="utf-8")))
