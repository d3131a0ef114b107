"""The risk service's client: assessments (idempotent per application) and the review queue."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from infra.clients.http import ServiceClient

RISK_AUDIENCE = "leaseline-risk"
ASSESS_SCOPE = "risk:assess"
REVIEW_SCOPE = "risk:review"


class RiskClient:
    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    def assess(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """Create (or get back, for the same application) the assessment of ``snapshot``."""
        _, body = self.client.call("POST", "/api/v1/assessments", json=snapshot, idempotent=True,
                                   headers={"Idempotency-Key": f"application-{snapshot['application_id']}"})
        return dict(body)

    def assessment(self, assessment_id: str) -> dict[str, Any]:
        _, body = self.client.call("GET", f"/api/v1/assessments/{quote(assessment_id, safe='')}", idempotent=True)
        return dict(body)

    def review(self, review_id: str) -> dict[str, Any]:
        _, body = self.client.call("GET", f"/api/v1/reviews/{quote(review_id, safe='')}", idempotent=True)
        return dict(body)

    def reviews(self, **filters: str) -> list[dict[str, Any]]:
        _, body = self.client.call("GET", "/api/v1/reviews", params=filters, idempotent=True)
        items = body.get("items", body) if isinstance(body, dict) else body
        return list(items)

    def claim(self, review_id: str, officer_id: str, officer_role: str) -> dict[str, Any]:
        _, body = self.client.call("POST", f"/api/v1/reviews/{quote(review_id, safe='')}/claim",
                                   json={"officer_id": officer_id, "officer_role": officer_role})
        return dict(body)

    def decide(self, review_id: str, officer_id: str, officer_role: str, decision: str, comment: str,
               counter_offer: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"officer_id": officer_id, "officer_role": officer_role, "decision": decision,
                                   "comment": comment}
        if counter_offer:
            payload["counter_offer"] = counter_offer
        _, body = self.client.call("POST", f"/api/v1/reviews/{quote(review_id, safe='')}/decision", json=payload)
        return dict(body)
