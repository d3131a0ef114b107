"""The car's facts (VIN, new or used) and the contract drafted from them (issue 17 §5): the salesperson corrects them
while the contract waits for them, never while an attempt drafts it or once it exists."""

from __future__ import annotations

import pytest

from bff.applications.contracts import refusal_code
from bff.applications.states import STATUSES
from bff.applications.states import vehicle_editable

WAITING = {"error": "vehicle_details", "detail": "no VIN", "attempt": 3}


@pytest.mark.parametrize("status", STATUSES)
def test_before_the_contract_is_requested_the_car_s_facts_may_be_given(status: str) -> None:
    before = STATUSES.index(status) < STATUSES.index("contract_pending") and status not in (
        "kyc_failed", "declined", "withdrawn")
    assert vehicle_editable(status, {}, 0) is before


def test_while_the_contract_is_pending_only_its_wait_for_them_opens_them() -> None:
    assert vehicle_editable("contract_pending", WAITING, 3)
    assert not vehicle_editable("contract_pending", WAITING, 4)  # an attempt begun since has not answered: it drafts
    assert not vehicle_editable("contract_pending", {}, 1)  # the first attempt drafts the contract now
    assert not vehicle_editable("contract_pending", {**WAITING, "error": "plan_changed"}, 3)
    assert not vehicle_editable("contract_pending", {**WAITING, "error": "refused"}, 3)
    assert vehicle_editable("contract_pending", {"error": "vehicle_details", "detail": "-"}, 7)  # an older answer
    assert not vehicle_editable("contract_ready", WAITING, 3)


def test_a_refusal_of_the_car_s_fields_alone_waits_for_the_salesperson() -> None:
    vin = {"field": "vehicle.vin", "code": "check", "message": "bad check digit"}
    assert refusal_code([vin]) == "vehicle_details"
    assert refusal_code([vin, {"field": "vehicle.mileage_km", "code": "inconsistent"}]) == "vehicle_details"
    assert refusal_code([vin, {"field": "lessee.id_number", "code": "check"}]) == "refused"
    assert refusal_code([{"field": "vehicles", "code": "invalid"}]) == "refused"
    assert refusal_code([]) == "refused" and refusal_code(None) == "refused" and refusal_code("oops") == "refused"
