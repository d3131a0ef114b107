"""The contract terms a product file states (issue 16) are refused at load when outside their bounds: a malformed
or unlawful product fails when the service starts, never on a customer's quote or contract."""

from __future__ import annotations

import pytest

from plans.product import parse_product
from tests.unit.test_contract_document import product_data


@pytest.mark.parametrize(("section", "field", "value"), [
    ("default_terms", "overdue_periods", 1),  # stricter than the court's default rule (融资租赁解释 art. 5(2))
    ("default_terms", "overdue_share", "0.10"),
    ("default_terms", "demand_cure_days", 3),  # not a reasonable period after a demand
    ("default_terms", "redemption_days", 90),
    ("default_terms", "gps_cure_days", 0),
    ("end_of_term", "purchase_price", "5000"),  # a nominal price, never a hidden balloon
    ("end_of_term", "purchase_price", "99.999"),
    ("end_of_term", "notice_days", 3),
    ("end_of_term", "settle_days", 0),
    ("title", "structure", "leaseback"),  # only the direct lease has a contract text
    ("title", "registered_in", "dealer"),
    ("title", "mortgage_days", 0),
    ("title", "pboc_registration_working_days", 40),
    ("fees.gps", "payee", "anyone"),
])
def test_a_product_file_outside_the_bounds_is_refused_at_load(section: str, field: str, value: object) -> None:
    data = product_data()
    table = data
    for key in section.split("."):
        table = table[key]
    table[field] = value
    with pytest.raises(ValueError, match=field):
        parse_product(data)
