"""Walk-through finding 15 (third part): the customer types a name (or ID number) other than the one read from their
ID card — 孙敏 typed as 孙明 — and their phone said nothing, while staff see the two side by side (and a passing face
check then goes to a person). The details step now says so beside the field, once, without blocking: the answer is
saved, the same answer saved again goes on."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kyc.idnumber import check_digit
from tests.integration.test_applications import CUSTOMER
from tests.integration.test_applications import _all
from tests.integration.test_applications import invited_customer
from tests.integration.test_applications import make_card_images
from tests.integration.test_applications import post
from tests.integration.test_applications import ready_to_submit
from tests.integration.test_auth import TIMEOUT

pytestmark = pytest.mark.db


def _hint(page: str, field: str) -> str:
    """The text of the hint beside ``field`` ('' when there is none)."""
    found = re.search(rf'<p [^>]*id="m-{field}"[^>]*>(.*?)</p>', page, re.S)
    return found.group(1).strip() if found else ""


def test_a_name_typed_unlike_the_card_is_pointed_out_on_the_phone_without_blocking(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    svc = app.extensions["leaseline"].applications
    read = CUSTOMER["name"]
    typed = read[:-1] + ("明" if read[-1] != "明" else "敏")
    with invited_customer(base, app, "13700137050") as phone:
        app_id = ready_to_submit(base, phone, make_card_images(), vehicle=False)  # the card's values: no hint
        url = f"{base}/applications/{app_id}/steps/customer"
        page = phone.get(url, timeout=TIMEOUT).text
        assert "data-mismatch" not in page
        r = post(phone, url, {**CUSTOMER, "name": typed})
        # saved, and the step again (not the next one) with the card's reading beside the name, the typed kept
        assert r.status_code == 200 and not r.history and r.url == url
        assert f'value="{typed}"' in r.text and 'data-testid="card-hint-saved"' in r.text
        assert _hint(r.text, "name") == f"与身份证识别结果（{read}）不一致，请核对"
        assert re.search(r'id="f-name"[^>]*aria-describedby="m-name"', r.text)
        assert _hint(r.text, "id_number") == "" and _hint(r.text, "address") == ""
        assert svc.draft(svc.repo.get(app_id, _all()))["name"] == typed
        page = phone.get(url, timeout=TIMEOUT).text  # the step opened again: the hint stays while they differ
        assert _hint(page, "name") == f"与身份证识别结果（{read}）不一致，请核对"
        assert 'data-testid="card-hint-saved"' not in page
        # not blocking: the same answer saved again goes on
        r = post(phone, url, {**CUSTOMER, "name": typed})
        assert r.status_code == 200 and r.url.endswith("/steps/work")
        # the ID number likewise (its own reading shown: the customer's own card)
        other = CUSTOMER["id_number"][:-2] + ("1" if CUSTOMER["id_number"][-2] != "1" else "3")
        other += check_digit(other)
        r = post(phone, url, {**CUSTOMER, "name": typed, "id_number": other})
        assert r.status_code == 200 and r.url == url
        assert _hint(r.text, "id_number") == f"与身份证识别结果（{CUSTOMER['id_number']}）不一致，请核对"
        # corrected to the card's: on to the next step, no hint
        r = post(phone, url, CUSTOMER)
        assert r.status_code == 200 and r.url.endswith("/steps/work")
        assert "data-mismatch" not in phone.get(url, timeout=TIMEOUT).text
