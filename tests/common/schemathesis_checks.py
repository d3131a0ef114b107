"""schemathesis 4's checks, all of them, as the services' tests run them (``case.call_and_validate``).

One refinement of ``positive_data_acceptance``: a request the document calls valid may still break a rule no
JSON Schema states (a check digit, one figure against another). The document lists those rules' field-error
codes on the operation's 422 response (httpkit.openapi.RULES_BEYOND_SCHEMA); a 422 whose every field error
is one of them is accepted. Any other 422 for schema-valid data fails, as before.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from httpkit.openapi import RULES_BEYOND_SCHEMA


def load(document: dict[str, Any]) -> Any:
    """The schemathesis schema of ``document``. Generated text holds no U+0000: every service refuses it with a
    400 (httpkit.bodies.NulCharacter), as each document's description says and its own strings' patterns
    state; the keys and values of additional properties, which any request may carry, cannot say it."""
    schema = schemathesis.openapi.from_dict(document)
    schema.config.generation.update(allow_x00=False)
    return schema


def positive_data_acceptance_but_rules_beyond_schema(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's ``positive_data_acceptance``, except for a 422 naming only the documented rules."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        rules = case.operation.definition.raw.get("responses", {}).get("422", {}).get(RULES_BEYOND_SCHEMA, {})
        try:
            codes = {e["code"] for e in response.json()["errors"]}
        except (ValueError, KeyError, TypeError):
            codes = set()
        if response.status_code == 422 and codes and codes <= set(rules):
            return None
        raise


def validate(case: Any, **kwargs: Any) -> Any:
    """Call the operation and run every check of schemathesis on the answer (the one refinement above)."""
    return case.call_and_validate(excluded_checks=[positive_data_acceptance],
                                  additional_checks=[positive_data_acceptance_but_rules_beyond_schema], **kwargs)
