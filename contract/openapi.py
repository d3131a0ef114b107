"""The OpenAPI 3.1 description of the contract service's JSON API (served at ``/api/v1/openapi.json``).

The contract paths state what the service enforces (contract/document/model.py and contract/api.py check the
same patterns); what no JSON Schema states — check characters, figures that must reconcile, a PNG's or a PDF's
content — is listed on their 422 responses (httpkit.openapi.RULES_BEYOND_SCHEMA). The evidence log's paths
(/api/v1/ledger/…) are described as they were: their documents are being rewritten (issue 14, evidence-log
privacy), and tests/integration/test_contract_openapi.py holds them to "no 5xx" only until then.
"""

from __future__ import annotations

from typing import Any

from contract.document.handover import HANDOVER_ITEMS
from contract.document.handover import MAX_HANDED_OVER_BY
from contract.document.handover import MAX_KEYS
from contract.document.handover import MAX_NOTE
from contract.document.handover import MAX_ODOMETER_KM
from contract.document.handover import MAX_VEHICLE_NAME
from contract.document.model import CHECK
from contract.document.model import COMMENCEMENTS
from contract.document.model import CONTROL_CHARACTERS
from contract.document.model import DATE_PATTERN
from contract.document.model import INCONSISTENT
from contract.document.model import MAX_MONEY
from contract.document.model import MAX_TERM
from contract.document.model import MONEY_PATTERN
from contract.document.model import POWERTRAINS
from contract.document.model import RATE_PATTERN
from contract.document.model import TIMINGS
from contract.document.servicing import AFTER_TERM
from contract.document.servicing import BEFORE_SIGNING as SERVICING_BEFORE_SIGNING
from contract.document.servicing import KINDS as KINDS_OF_DOCUMENTS
from contract.document.servicing import LATE_PAYMENT_DAYS
from contract.document.servicing import OPTIONS
from contract.document.servicing import PAID_AFTER_SETTLEMENT
from contract.document.servicing import ROW_FIELDS
from contract.document.servicing import SCHEDULE_ANNEX
from contract.document.servicing import SETTLEMENT_CERTIFICATE
from contract.document.servicing import SETTLEMENT_LINES
from contract.document.servicing import SIGNED_MONEY_PATTERN
from contract.document.servicing import SUBJECT_ID_PATTERN
from contract.handover import BEFORE_SIGNING
from contract.handover import IN_THE_FUTURE
from contract.ledger import KINDS
from contract.ledger import MAX_INDEX
from contract.ledger import SUBJECT_PATTERN
from contract.service import BASE64_PATTERN
from contract.service import DATE_TIME_PATTERN
from contract.service import IDENTITY_METHODS
from contract.service import MAX_SIGNATURE_BASE64
from contract.service import NOT_A_PNG
from contract.service import NOT_THE_LESSEE
from contract.service import STALE_IDENTITY
from httpkit.openapi import BAD_BODY
from httpkit.openapi import BAD_QUERY
from httpkit.openapi import NOT_BLANK
from httpkit.openapi import PROBLEM_SCHEMA
from httpkit.openapi import STRING
from httpkit.openapi import problem as _problem
from httpkit.openapi import refusing_nul
from plans.money import decimal_pattern
from plans.product import CARD_HOLD_DAY_BOUNDS
from plans.product import DAY_COUNTS
from plans.product import DEFAULT_DAY_BOUNDS
from plans.product import END_OF_TERM_DAY_BOUNDS
from plans.product import MIN_OVERDUE_PERIODS
from plans.product import PAYEES
from plans.product import REGISTERED_IN
from plans.product import STRUCTURES
from plans.product import TITLE_DAY_BOUNDS

HEX = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
B64 = {"type": "string", "contentEncoding": "base64"}
MONEY = {"type": "string", "pattern": MONEY_PATTERN, "description": "CNY, at most 2 decimals and 100000000"}
RATE = {"type": "string", "pattern": RATE_PATTERN, "description": "a fraction from 0 to below 1"}


def text(max_length: int) -> dict[str, Any]:
    """At most ``max_length`` characters as sent, not only white space (runs of it become one space)."""
    return {"type": "string", "maxLength": max_length, "pattern": NOT_BLANK}


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


AUTH = {"401": _problem("No, invalid, expired or wrong-audience bearer token"),
        "403": _problem("The token lacks the scope")}
PUBLIC: list[dict[str, Any]] = []
CONTRACT_ID = {"name": "contract_id", "in": "path", "required": True, "schema": {**STRING, "maxLength": 64}}
SNAPSHOT_RULES = {
    CHECK: "an ID number, mobile number, VIN or unified social credit code that is not a valid one (its form and "
           "check character: GB 11643, GB 16735, GB 32100)",
    CONTROL_CHARACTERS: "text with a control, format, private-use or unassigned character",
    INCONSISTENT: "figures that do not reconcile to the fen (price, down payment, financed amount, schedule, "
                  "totals), or due dates out of order",
}
SIGNING_RULES = {
    NOT_A_PNG: "signature_png does not decode to a PNG of at most 2 MB, or the PNG cannot be stamped",
    STALE_IDENTITY: "the identity check is older than 10 minutes",
    NOT_THE_LESSEE: "the signer is not the lessee named in the contract",
}


HANDOVER_RULES = {
    BEFORE_SIGNING: "delivered_on is before the day (in Beijing) the contract was signed",
    IN_THE_FUTURE: "delivered_on is after today in Beijing",
    CONTROL_CHARACTERS: "note, handed_over_by or vehicle_name holds a control, format, private-use or unassigned "
                        "character",
    **SIGNING_RULES,
}
#: the signer's part of a signing request: the contract's and the handover record's
SIGNER: dict[str, Any] = {
    "signer_name": text(64),
    "signature_png": {**B64, "contentMediaType": "image/png", "pattern": BASE64_PATTERN,
                      "maxLength": MAX_SIGNATURE_BASE64, "description": "the drawn signature, a PNG of at most 2 MB"},
    "identity": {"type": "object", "required": ["method", "reference", "verified_at"], "properties": {
        "method": {"enum": list(IDENTITY_METHODS)},
        "reference": {**STRING, "minLength": 1, "maxLength": 128},
        "verified_at": {"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN}}},
}
DAY = {"type": "string", "format": "date", "pattern": DATE_PATTERN}


def _handover_request() -> dict[str, Any]:
    """contract.api._handover_request's shape, with the signer's part of a signing request."""
    return {"type": "object", "required": ["delivered_on", "odometer_km", "keys", "items", "handed_over_by",
                                           *SIGNER], "properties": {
        "delivered_on": {**DAY, "description": "the handover day in Beijing (Asia/Shanghai), the start of the "
                                               "term: not before the contract's signing day, not after today"},
        "odometer_km": {"type": "integer", "minimum": 0, "maximum": MAX_ODOMETER_KM},
        "keys": {"type": "integer", "minimum": 1, "maximum": MAX_KEYS, "description": "keys handed over"},
        "items": {"type": "array", "uniqueItems": True, "maxItems": len(HANDOVER_ITEMS),
                  "items": {"enum": list(HANDOVER_ITEMS)},
                  "description": "items handed over with the car: " + "; ".join(
                      f"{code} {label}" for code, label in HANDOVER_ITEMS.items())},
        "note": {**STRING, "maxLength": MAX_NOTE},
        "handed_over_by": {**text(MAX_HANDED_OVER_BY), "description": "the dealer's staff member, as the dealer "
                                                                        "labels them"},
        "vehicle_name": {**text(MAX_VEHICLE_NAME), "description": "the car's brand and model as the record prints them "
                                                                  "(品牌及车型), in Chinese as the dealer's catalogue "
                                                                  "names it; the contract's make and model without"},
        **SIGNER}}


SERVICING_RULES = {
    INCONSISTENT: "figures that do not reconcile to the fen: the settlement's lines and its amount_due, the balance "
                  "before and after the prepayment, a row's rent and its principal and interest, a row's balance and "
                  "the one before it, rent numbers that do not follow rents_paid, due dates out of order or before "
                  "effective_on, a last row that leaves a balance, the final rent on a row other than the last",
    SERVICING_BEFORE_SIGNING: "settled_on, paid_on or effective_on is before the day (in Beijing) the contract was "
                              "signed",
    PAID_AFTER_SETTLEMENT: f"paid_on is more than {LATE_PAYMENT_DAYS} days after settled_on",
    AFTER_TERM: f"settled_on, effective_on or a due_date is after the contract's end plus the longest term ({MAX_TERM} "
                "months)",
}
DOCUMENT_ID = {"name": "document_id", "in": "path", "required": True, "schema": {**STRING, "maxLength": 64}}


def _servicing_request() -> dict[str, Any]:
    """contract.document.servicing.parse_request's shape: one of the two kinds, with its figures."""
    signed_money = {"type": "string", "pattern": SIGNED_MONEY_PATTERN,
                    "description": "CNY, at most 2 decimals, negative: the lessor refunds the difference"}
    subject = {"type": "string", "pattern": SUBJECT_ID_PATTERN,
               "description": "the BFF's settlement quote or prepayment: with kind, the idempotency key"}
    settled_on = {**DAY, "description": "the settlement day (结清日): the quote's, interest counted to it; the lease "
                                        "is settled on it. The BFF's business date, never compared with this "
                                        "service's clock; not after the contract's end plus the longest term"}
    paid_on = {**DAY, "description": "the day the lessee paid the settlement (付清日): the business date the payment "
                                     "was booked: on or before settled_on, or at most "
                                     f"{LATE_PAYMENT_DAYS} days after it (a bank's late answer)"}
    settlement = {"type": "object", "required": ["settled_on", "paid_on", *(c for c, _, _ in SETTLEMENT_LINES),
                                                 "amount_due"],
                  "properties": {"settled_on": settled_on, "paid_on": paid_on,
                                 **{c: {**MONEY, "description": f"{zh} ({en})"} for c, zh, en in SETTLEMENT_LINES},
                                 "amount_due": signed_money}}
    row = {"type": "object", "required": ["number", "due_date", *ROW_FIELDS], "properties": {
        "number": {"type": "integer", "minimum": 1, "maximum": MAX_TERM + 1}, "due_date": DAY,
        **{f: MONEY for f in ROW_FIELDS}, "final": {"type": "boolean", "description": "the final rent (尾付租金)"}}}
    annex = {"type": "object", "required": ["effective_on", "prepaid", "option", "rents_paid", "balance_before",
                                            "balance_after", "rows"], "properties": {
        "effective_on": DAY, "prepaid": {**MONEY, "pattern": decimal_pattern(MAX_MONEY, positive=True, places=2)},
        "option": {"enum": list(OPTIONS)}, "rents_paid": {"type": "integer", "minimum": 0, "maximum": MAX_TERM},
        "balance_before": MONEY, "balance_after": MONEY,
        "rows": {"type": "array", "minItems": 1, "maxItems": MAX_TERM + 1, "items": row}}}
    return {"oneOf": [
        {"type": "object", "required": ["kind", "subject_id", "settlement"], "properties": {
            "kind": {"const": SETTLEMENT_CERTIFICATE}, "subject_id": subject, "settlement": settlement}},
        {"type": "object", "required": ["kind", "subject_id", "annex"], "properties": {
            "kind": {"const": SCHEDULE_ANNEX}, "subject_id": subject, "annex": annex}}]}


def _servicing_document() -> dict[str, Any]:
    """contract.servicing_documents.ServicingDocuments._json's shape."""
    return {"type": "object", "required": ["id", "contract_id", "contract_number", "kind", "subject_id", "sha256",
                                           "request_sha256", "ledger_index", "signed_at", "retain_until"],
            "properties": {"id": {"type": "string"}, "contract_id": {"type": "string"},
                           "contract_number": {"type": "string"}, "kind": {"enum": list(KINDS_OF_DOCUMENTS)},
                           "subject_id": {"type": "string"}, "sha256": HEX, "request_sha256": HEX,
                           "ledger_index": {"type": "integer"}, "signed_at": {"type": "string", "format": "date-time"},
                           "retain_until": {"type": "string", "format": "date-time"}}}


def _handover() -> dict[str, Any]:
    """contract.handover.HandoverService._json's shape."""
    money = {"type": "string", "pattern": MONEY_PATTERN}
    return {"type": "object", "required": [
        "id", "contract_id", "contract_number", "starts_on", "ends_on", "dated_from", "odometer_km", "keys", "items",
        "handed_over_by", "sha256", "signed_at", "retain_until", "ledger_index", "schedule", "final_rent"],
        "properties": {
            "id": {"type": "string"}, "contract_id": {"type": "string"}, "contract_number": {"type": "string"},
            "starts_on": {**DAY, "description": "起租日: the handover day"},
            "ends_on": {**DAY, "description": "租赁期届满日, counted from starts_on (dated_from handover), or the "
                                              "contract's own (dated_from contract)"},
            "dated_from": {"enum": ["handover", "contract"], "description": "handover: every date counted from the "
                           "handover day, as contracts stating the commencement date agree; contract: a contract "
                           "generated before that clause, whose own dates stand"},
            "odometer_km": {"type": "integer"}, "keys": {"type": "integer"},
            "items": {"type": "array", "items": {"enum": list(HANDOVER_ITEMS)}},
            "handed_over_by": {"type": "string"}, "sha256": HEX,
            "signed_at": {"type": "string", "format": "date-time"},
            "retain_until": {"type": "string", "format": "date-time",
                             "description": "the record's PDF is under Object Lock until then"},
            "ledger_index": {"type": "integer"},
            "schedule": {"type": "array", "description": "the contract's rents, dated from starts_on", "items": {
                "type": "object", "required": ["period", "due_date", "payment"], "properties": {
                    "period": {"type": "integer", "minimum": 1}, "due_date": DAY, "payment": money}}},
            "final_rent": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["due_date", "amount"], "description": "the balloon, due on ends_on",
                "properties": {"due_date": DAY, "amount": money}}]},
            "servicing": _servicing_terms()}}


def _servicing_terms() -> dict[str, Any]:
    """contract.document.servicing_terms.servicing_terms's shape: the terms the lease is serviced by (issue 18 §0)."""
    money = {"type": "string", "pattern": MONEY_PATTERN}
    rate = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "description": "a rate, as a fraction"}
    count = {"type": "integer", "minimum": 0}
    return {"type": "object", "required": ["terms", "amortisation"], "properties": {
        "terms": {"type": "object", "required": [
            "source", "term", "timing", "nominal_rate", "late_fee_daily_rate", "late_fee_base", "grace_days",
            "default_cost_cap", "early_settlement"], "properties": {
            "source": {"enum": ["contract", "legacy"], "description": "legacy: a contract generated before the "
                       "early-settlement terms were stated, serviced by the terms its text states"},
            "term": count, "timing": {"enum": ["arrears", "advance"]}, "nominal_rate": rate,
            "structure": {"enum": ["direct", "leaseback"], "description": "the lease's structure (its VAT)"},
            "financed_amount": money, "residual": money, "monthly_payment": money, "deposit": money,
            "deposit_free": {"type": "boolean"}, "purchase_price": money,
            "late_fee_daily_rate": {**rate, "description": "of the overdue amount, a day, from its first day overdue"},
            "late_fee_base": {"enum": ["overdue_amount"]}, "grace_days": count,
            "default_cost_cap": {"oneOf": [{"type": "null"}, rate]},
            "early_settlement": {"type": "object", "properties": {
                "any_day": {"type": "boolean", "description": "false: only on a rent's due day (older contracts)"},
                "fee_rate": rate, "day_count": {"enum": ["ACT/360", "ACT/365"]}, "notice_working_days": count}},
            "default": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
                "overdue_periods": count, "overdue_share": rate, "demand_cure_days": count}}]}}},
        "amortisation": {"type": "array", "description": "each rent's principal and interest, and the balance after "
                         "it, as the contract's schedule states them", "items": {
            "type": "object", "required": ["period", "principal", "interest", "balance"], "properties": {
                "period": {"type": "integer", "minimum": 1}, "principal": money, "interest": money,
                "balance": money}}}}}


def _contract_text() -> dict[str, Any]:
    """The contract's text for reading (contract.service.ContractService.text; contract.document.reading)."""
    decimal = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "description": "a rate, as a fraction"}
    money = {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$"}
    count = {"type": "integer", "minimum": 0}
    terms = {"type": "object", "required": ["term", "monthly_payment", "apr", "total_payable", "deposit_free",
                                            "early_settlement", "late_fee_daily_rate"], "properties": {
        "term": count, "timing": {"enum": list(TIMINGS)}, "monthly_payment": money, "last_payment": money,
        "apr": decimal, "nominal_rate": decimal, "down_payment": money, "financed_amount": money, "residual": money,
        "total_rent": money, "total_payable": money, "due_at_signing": money, "deposit": money,
        "deposit_free": {"type": "boolean"},
        "card_hold": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {"amount": money,
                                                                                     "days": count}}]},
        "early_settlement": {"type": "object", "properties": {
            "notice_working_days": count, "fee_rate": decimal,
            "any_day": {"type": "boolean", "description": "false: only on a rent's due day (older contracts)"}}},
        "late_fee_daily_rate": decimal, "late_fee_annual_rate": decimal,
        "default_cost_cap": {"oneOf": [{"type": "null"}, decimal]},
        "default": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
            "overdue_periods": count, "overdue_share": decimal, "demand_cure_days": count}}]}}}
    return {"type": "object", "required": ["contract_id", "number", "status", "sha256", "document_sha256", "html",
                                           "sections", "terms"], "properties": {
        "contract_id": {"type": "string"}, "number": {"type": "string"},
        "status": {"enum": ["draft", "signing", "signed"]},
        "sha256": {**HEX, "description": "SHA-256 of html (UTF-8), as the PDF prints it"},
        "document_sha256": {**HEX, "description": "the current PDF's own hash (the draft, or the signed contract)"},
        "html": {"type": "string", "description": "the text's HTML elements (no html, head or body element)"},
        "sections": {"type": "array", "items": {"type": "object", "required": ["id", "title"], "properties": {
            "id": {"type": "string", "description": "the id of the section in html"}, "title": {"type": "string"}}}},
        "terms": terms}}


def _int(name: str, minimum: int) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": True,
            "schema": {"type": "integer", "minimum": minimum, "maximum": MAX_INDEX}}


def _bundle() -> dict[str, Any]:
    """An evidence entry's proof bundle (contract/ledger/bundle.py describes how to check it offline)."""
    inclusion = {"type": "object", "required": ["tree_size", "audit_path"], "properties": {
        "tree_size": {"type": "integer"}, "audit_path": {"type": "array", "items": HEX}}}
    return {"type": "object", "required": ["format", "index", "opening", "leaf", "leaf_hash", "inclusion",
                                           "checkpoint"], "properties": {
        "format": {"const": "leaseline.cn/evidence-bundle/v1"}, "index": {"type": "integer"},
        "opening": {"type": "object", "required": ["entry", "salt"], "properties": {"entry": B64, "salt": HEX}},
        "content": {"type": ["object", "null"]}, "leaf": B64, "leaf_hash": HEX, "inclusion": inclusion,
        "checkpoint": {"$ref": "#/components/schemas/Checkpoint"},
        "previous_log": {"type": ["object", "null"]}}}


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    return refusing_nul({
        "openapi": "3.1.0",
        "info": {"title": "Leaseline contract service API", "version": "1.0.0",
                 "description": "Lease contract PDFs (WeasyPrint), PAdES signatures (pyHanko: the lessor certifies, "
                                "the customer signs with an event certificate, the lessor countersigns), signed "
                                "PDFs under S3 Object Lock, and a public RFC 6962 evidence log with signed "
                                "checkpoints and proofs."},
        "servers": [{"url": "/"}],
        "security": [{"serviceToken": []}],
        "paths": {
            "/api/v1/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "security": PUBLIC,
                                             "responses": {"200": {"description": "OpenAPI 3.1",
                                                                   "content": {"application/json": {}}}}}},
            "/api/v1/contracts": {
                "post": {"operationId": "createContract",
                         "summary": "Generate the contract (draft) of an approved application (scope contract:write)",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "$ref": "#/components/schemas/ContractSnapshot"}}}},
                         "responses": {"201": _json("Contract", "A new contract"),
                                       "200": _json("Contract", "The application's existing contract"),
                                       "400": BAD_BODY, **AUTH, "413": _problem("Body too large"),
                                       "422": _problem("Invalid snapshot, with field errors", SNAPSHOT_RULES),
                                       "503": _problem("Document storage unavailable")}},
                "get": {"operationId": "findContract", "summary": "The contract of an application (contract:read)",
                        "parameters": [{"name": "application_id", "in": "query", "required": True,
                                        "schema": {**STRING, "minLength": 1, "maxLength": 64}}],
                        "responses": {"200": _json("Contract", "The contract"), "400": BAD_QUERY, **AUTH,
                                      "404": _problem("No contract")}},
            },
            "/api/v1/contracts/{contract_id}": {"get": {
                "operationId": "getContract", "summary": "A contract's metadata (contract:read)",
                "parameters": [CONTRACT_ID],
                "responses": {"200": _json("Contract", "The contract"), **AUTH, "404": _problem("No such contract")}}},
            "/api/v1/contracts/{contract_id}/document": {"get": {
                "operationId": "contractDocument", "summary": "The current PDF: signed, or the draft (contract:read)",
                "parameters": [CONTRACT_ID],
                "responses": {"200": {"description": "PDF", "content": {"application/pdf": {}}}, **AUTH,
                              "404": _problem("No such contract"),
                              "409": _problem("The stored file does not match its recorded hash"),
                              "503": _problem("Document storage unavailable")}}},
            "/api/v1/contracts/{contract_id}/text": {"get": {
                "operationId": "contractText",
                "summary": "The text the current PDF was rendered from, as HTML, with its fingerprint (contract:read)",
                "description": "For reading the contract on a phone. The text as stored when the contract was "
                               "generated; sha256 is the SHA-256 of html's UTF-8 bytes; the PDF prints it on its "
                               "first page (正文指纹 SHA-256), so anyone holding both can check they are one "
                               "document. The HTML has no style attributes and no scripts.",
                "parameters": [CONTRACT_ID],
                "responses": {"200": _json("ContractText", "The text"), **AUTH, "404": _problem("No such contract"),
                              "409": _problem("No stored text (no_text: generated before it was kept), the stored "
                                              "text or PDF does not match its recorded hash (tampered), the PDF "
                                              "prints another fingerprint (text_differs), or its fingerprint cannot "
                                              "be read just now (text_unavailable): read the PDF"),
                              "503": _problem("Document storage unavailable")}}},
            "/api/v1/contracts/{contract_id}/pages/{page}": {"get": {
                "operationId": "contractPage", "summary": "One page as a PNG (contract:read)",
                "parameters": [CONTRACT_ID, {"name": "page", "in": "path", "required": True,
                                             "schema": {"type": "integer", "minimum": 1}}],
                "responses": {"200": {"description": "PNG", "content": {"image/png": {}}}, **AUTH,
                              "404": _problem("No such contract or page"),
                              "503": _problem("Document storage unavailable")}}},
            "/api/v1/contracts/{contract_id}/signatures": {"post": {
                "operationId": "signContract",
                "summary": "The customer signs, the lessor countersigns (contract:write); once",
                "parameters": [CONTRACT_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/SignRequest"}}}},
                "responses": {"200": _json("Contract", "The signed contract"), "400": BAD_BODY, **AUTH,
                              "404": _problem("No such contract"),
                              "409": _problem("Being signed right now, or the final text is not the text of the "
                                              "draft the customer read (text_changed)"),
                              "422": _problem("Invalid signer, image or identity evidence", SIGNING_RULES),
                              "503": _problem("Document storage unavailable")}}},
            "/api/v1/contracts/{contract_id}/handover": {
                "post": {
                    "operationId": "handOver",
                    "summary": "The signed vehicle handover record: its day starts the lease's term (起租日) and dates "
                               "every rent (contract:write); once per contract",
                    "parameters": [CONTRACT_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/HandoverRequest"}}}},
                    "responses": {"201": _json("Handover", "The new record"),
                                  "200": _json("Handover", "The contract's existing record, whatever the body says"),
                                  "400": BAD_BODY, **AUTH, "404": _problem("No such contract"),
                                  "409": _problem("The contract is not signed (not_signed), or its record is being "
                                                  "signed right now (handover_in_progress)"),
                                  "422": _problem("Invalid handover, signer, image or identity evidence",
                                                  HANDOVER_RULES),
                                  "503": _problem("Document storage unavailable")}},
                "get": {"operationId": "getHandover", "summary": "The contract's handover record (contract:read)",
                        "parameters": [CONTRACT_ID],
                        "responses": {"200": _json("Handover", "The record"), **AUTH,
                                      "404": _problem("No such contract, or no handover record yet")}}},
            "/api/v1/contracts/{contract_id}/handover/document": {"get": {
                "operationId": "handoverDocument", "summary": "The signed handover record's PDF (contract:read)",
                "parameters": [CONTRACT_ID],
                "responses": {"200": {"description": "PDF", "content": {"application/pdf": {}}}, **AUTH,
                              "404": _problem("No such contract, or no handover record yet"),
                              "409": _problem("The stored file does not match its recorded hash"),
                              "503": _problem("Document storage unavailable")}}},
            "/api/v1/contracts/{contract_id}/servicing-documents": {"post": {
                "operationId": "issueServicingDocument",
                "summary": "A document of the lease in force, signed by the lessor and logged (contract:write): a "
                           "settlement certificate (结清证明) or a schedule annex after a partial prepayment "
                           "(还款计划变更确认书); once per kind and subject_id",
                "parameters": [CONTRACT_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/ServicingDocumentRequest"}}}},
                "responses": {"201": _json("ServicingDocument", "The new document"),
                              "200": _json("ServicingDocument", "The document issued before for this kind and "
                                                                "subject_id, with the same figures"),
                              "400": BAD_BODY, **AUTH, "404": _problem("No such contract"),
                              "409": _problem("The contract is not signed (not_signed), the kind and subject_id were "
                                              "issued with other figures or for another contract (subject_reused), "
                                              "or the document is being signed right now (document_in_progress)"),
                              "422": _problem("Invalid figures", SERVICING_RULES),
                              "503": _problem("Document storage unavailable")}}},
            "/api/v1/contracts/{contract_id}/servicing-documents/{document_id}": {"get": {
                "operationId": "getServicingDocument", "summary": "A signed servicing document (contract:read)",
                "parameters": [CONTRACT_ID, DOCUMENT_ID],
                "responses": {"200": _json("ServicingDocument", "The document"), **AUTH,
                              "404": _problem("No such contract, or no such document of it")}}},
            "/api/v1/contracts/{contract_id}/servicing-documents/{document_id}/document": {"get": {
                "operationId": "servicingDocumentPdf", "summary": "A signed servicing document's PDF (contract:read)",
                "parameters": [CONTRACT_ID, DOCUMENT_ID],
                "responses": {"200": {"description": "PDF", "content": {"application/pdf": {}}}, **AUTH,
                              "404": _problem("No such contract, or no such document of it"),
                              "409": _problem("The stored file does not match its recorded hash"),
                              "503": _problem("Document storage unavailable")}}},
            "/api/v1/contracts/{contract_id}/verification": {"get": {
                "operationId": "contractVerification",
                "summary": "Each signature's validation and the log inclusion proof (contract:read)",
                "parameters": [CONTRACT_ID],
                "responses": {"200": _json("Verification", "The verdict"), **AUTH,
                              "404": _problem("No such contract")}}},
            "/api/v1/verification": {"post": {
                "operationId": "verifyUpload", "summary": "Public: check any PDF", "security": PUBLIC,
                "requestBody": {"required": True, "content": {"application/pdf": {}, "multipart/form-data": {
                    "schema": {"type": "object", "required": ["file"], "properties": {"file": {
                        "type": "string", "contentMediaType": "application/pdf"}}}}}},
                "responses": {"200": _json("Verification", "The verdict"), "413": _problem("Too large"),
                              "422": _problem("Not a PDF", {"not_a_pdf": "the upload is not a readable PDF"})}}},
            "/api/v1/ledger/entries": {"post": {
                "operationId": "appendEntry", "summary": "Append an evidence entry (scope ledger:append)",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/NewEntry"}}}},
                "responses": {"201": _json("Appended", "Appended"), "200": _json("Appended", "Appended before"),
                              **AUTH, "422": _problem("Invalid entry")}}},
            "/api/v1/ledger/batches": {"post": {
                "operationId": "appendBatch",
                "summary": "Append up to 100 entries in one transaction under one checkpoint (scope ledger:append)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["entries"], "properties": {"entries": {
                        "type": "array", "minItems": 1, "maxItems": 100, "items": {"allOf": [
                            {"$ref": "#/components/schemas/NewEntry"},
                            {"type": "object", "properties": {"idempotency_key": {
                                "type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"}}}]}}}}}}},
                "responses": {"200": {"description": "Appended (or appended before, per key)", "content": {
                    "application/json": {"schema": {"type": "object", "required": ["entries", "checkpoint"],
                                                    "properties": {"entries": {"type": "array", "items": {
                                                        "type": "object", "required": ["index", "leaf_hash",
                                                                                       "created"],
                                                        "properties": {"index": {"type": "integer"},
                                                                       "leaf_hash": HEX,
                                                                       "created": {"type": "boolean"}}}},
                                                        "checkpoint": {"$ref": "#/components/schemas/Checkpoint"}}}}}},
                              **AUTH, "422": _problem("Invalid batch")}}},
            "/api/v1/ledger/checkpoint": {"get": {
                "operationId": "checkpoint", "summary": "Public: the latest signed checkpoint", "security": PUBLIC,
                "responses": {"200": _json("Checkpoint", "Signed checkpoint")}}},
            "/api/v1/ledger/entries/{index}": {"get": {
                "operationId": "entry", "security": PUBLIC,
                "summary": "Public: one leaf's exact bytes: a salted commitment {\"commitment\",\"v\":2}, or at "
                           "index 0 the signed log start statement (no personal data in either)",
                "parameters": [{"name": "index", "in": "path", "required": True,
                                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INDEX}}],
                "responses": {"200": _json("Entry", "The entry"), "404": _problem("No such entry")}}},
            "/api/v1/ledger/subjects/{subject}/entries": {"get": {
                "operationId": "subjectEntries", "summary": "The entries about one application (scope ledger:read)",
                "parameters": [{"name": "subject", "in": "path", "required": True,
                                "schema": {"type": "string", "pattern": SUBJECT_PATTERN}}],
                "responses": {"200": {"description": "Index, kind and time of each entry, oldest first", "content": {
                    "application/json": {"schema": {"type": "object", "required": ["subject", "entries"],
                                                    "properties": {"subject": {"type": "string"}, "entries": {
                                                        "type": "array", "items": {
                                                            "type": "object", "required": ["index", "kind", "at"],
                                                            "properties": {"index": {"type": "integer"},
                                                                           "kind": {"type": "string"},
                                                                           "at": {"type": "string"}}}}}}}}},
                              **AUTH, "422": _problem("Bad subject")}}},
            "/api/v1/ledger/openings/{index}": {"get": {
                "operationId": "opening",
                "summary": "One entry's opening (clear entry and salt) as a proof bundle (scope ledger:read)",
                "parameters": [{"name": "index", "in": "path", "required": True,
                                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INDEX}},
                               {"name": "previous_log", "in": "query", "required": False,
                                "description": "true: for an entry of the first log (public in clear until the "
                                               "log held commitments), its proof there too, as previous_log. Only "
                                               "for auditors and the lessor's staff: its audit path holds the "
                                               "unsalted leaf hashes of other people's entries",
                                "schema": {"type": "boolean", "default": False}}],
                "responses": {"200": {"description": "The bundle, with the entry's kind and subject", "content": {
                    "application/json": {"schema": {"type": "object", "required": ["index", "kind", "subject",
                                                                                    "bundle"],
                                                    "properties": {"index": {"type": "integer"},
                                                                   "kind": {"type": "string"},
                                                                   "subject": {"type": "string"},
                                                                   "bundle": _bundle()}}}}},
                              "400": BAD_QUERY, **AUTH,
                              "404": _problem("No such entry, or the log start (no opening)")}}},
            "/api/v1/ledger/proof/inclusion": {"get": {
                "operationId": "inclusionProof", "summary": "Public: RFC 6962 audit path", "security": PUBLIC,
                "parameters": [_int("index", 0), _int("tree_size", 1)],
                "responses": {"200": {"description": "Audit path", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["index", "tree_size", "audit_path"], "properties": {
                        "index": {"type": "integer"}, "tree_size": {"type": "integer"},
                        "audit_path": {"type": "array", "items": HEX}}}}}},
                    "404": _problem("Outside the log"), "422": _problem("Bad parameter")}}},
            "/api/v1/ledger/proof/consistency": {"get": {
                "operationId": "consistencyProof", "summary": "Public: RFC 6962 consistency proof", "security": PUBLIC,
                "parameters": [_int("first", 1), _int("second", 1)],
                "responses": {"200": {"description": "Proof", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["first", "second", "proof"], "properties": {
                        "first": {"type": "integer"}, "second": {"type": "integer"},
                        "proof": {"type": "array", "items": HEX}}}}}},
                    "404": _problem("Outside the log"), "422": _problem("Bad parameter")}}},
        },
        "components": {
            "securitySchemes": {"serviceToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Problem": PROBLEM_SCHEMA,
                "ContractSnapshot": _snapshot(),
                "Contract": {"type": "object", "required": ["id", "number", "application_id", "status", "sha256"],
                             "properties": {"id": {"type": "string"}, "number": {"type": "string"},
                                            "application_id": {"type": "string"},
                                            "status": {"enum": ["draft", "signing", "signed"]},
                                            "sha256": HEX, "pages": {"type": "integer"},
                                            "signatures": {"type": "array", "items": {"type": "object"}},
                                            "ledger": {"type": "array", "items": {"type": "object"}}}},
                "ContractText": _contract_text(),
                "SignRequest": {"type": "object", "required": list(SIGNER), "properties": SIGNER},
                "HandoverRequest": _handover_request(),
                "Handover": _handover(),
                "ServicingDocumentRequest": _servicing_request(),
                "ServicingDocument": _servicing_document(),
                "Verification": {"type": "object", "required": ["sha256", "signatures", "all_valid"], "properties": {
                    "sha256": HEX, "contract": {"type": ["object", "null"]}, "all_valid": {"type": "boolean"},
                    "signatures": {"type": "array", "items": {"type": "object"}},
                    "ledger": {"type": ["object", "null"]},
                    "document": {"enum": ["contract", "handover", None],
                                 "description": "which of our documents the file is (by its hash); null: none"},
                    "handover": {"type": ["object", "null"],
                                 "description": "the handover record the file is; contract is its contract"}}},
                "NewEntry": {"type": "object", "required": ["kind", "subject"], "properties": {
                    "kind": {"enum": sorted(KINDS)}, "subject": {"type": "string", "pattern": SUBJECT_PATTERN},
                    "data": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/PlainJson"},
                             "description": "ids, hashes and amounts as strings: no floats anywhere"}}},
                "PlainJson": {"description": "JSON without floats (contract.ledger.entries.check_json)", "anyOf": [
                    {"type": ["string", "integer", "boolean", "null"]},
                    {"type": "array", "items": {"$ref": "#/components/schemas/PlainJson"}},
                    {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/PlainJson"}}]},
                "Appended": {"type": "object", "required": ["index", "leaf_hash", "checkpoint"], "properties": {
                    "index": {"type": "integer"}, "leaf_hash": HEX,
                    "checkpoint": {"$ref": "#/components/schemas/Checkpoint"}}},
                "Checkpoint": {"type": "object",
                               "description": "A signed tree head (contract/ledger/checkpoint.py) and its anchor: an "
                                              "RFC 3161 time-stamp token over SHA-256 of the signed bytes, from "
                                              "the lessor's time-stamping authority (contract/ledger/timestamps.py)",
                               "required": ["tree_size", "root_hash", "timestamp", "signature", "public_key",
                                            "anchored", "anchor"],
                               "properties": {"origin": {"type": "string"}, "tree_size": {"type": "integer"},
                                              "root_hash": HEX, "timestamp": {"type": "string"},
                                              "signature": B64, "public_key": B64,
                                              "anchored": {"type": "boolean", "description": (
                                                  "false: no token yet (no TSA configured, or the TSA was "
                                                  "down: the ledger.anchor job stamps it later)")},
                                              "anchor": {"oneOf": [{"type": "null"}, {"$ref": (
                                                  "#/components/schemas/CheckpointAnchor")}]}}},
                "CheckpointAnchor": {"type": "object", "required": ["token", "gen_time"], "properties": {
                    "token": {**B64, "description": "the DER TimeStampToken (RFC 3161 §2.4.2), base64; its "
                                                    "messageImprint is SHA-256 of the checkpoint's signed bytes"},
                    "gen_time": {"type": "string", "format": "date-time",
                                 "description": "the token's genTime, RFC 3339 UTC"}}},
                "Entry": {"type": "object", "required": ["index", "entry", "leaf_hash"], "properties": {
                    "index": {"type": "integer"}, "entry": B64, "leaf_hash": HEX}},
            },
        },
    })


def _snapshot() -> dict[str, Any]:
    """contract.document.model.from_snapshot's shape, without number, generated_at, signed and lessor (the
    service's own)."""
    def line(amount: str) -> dict[str, Any]:
        return {"type": "object", "required": ["name", amount, "financed"],
                "properties": {"name": text(100), amount: MONEY, "financed": {"type": "boolean"}}}

    def days(low: int, high: int) -> dict[str, Any]:
        return {"type": "integer", "minimum": low, "maximum": high}

    def periods(bounds: tuple[tuple[str, int, int], ...]) -> dict[str, Any]:
        return {name: days(low, high) for name, low, high in bounds}

    fee = line("amount")  # and, since issue 16, what it pays for and who receives it
    fee = {**fee, "properties": {**fee["properties"], "purpose": text(200), "payee": {"enum": list(PAYEES)}}}

    party = {"type": "object", "required": ["name", "credit_code", "address"],
             "properties": {"name": text(100), "credit_code": text(18), "address": text(200)}}
    optional_rate = {"oneOf": [RATE, {"type": "null"}]}
    return {
        "type": "object", "required": ["application_id", "dealer_id", "lessee", "dealer", "vehicle", "plan",
                                       "schedule"],
        "properties": {
            "application_id": {**STRING, "minLength": 1, "maxLength": 64},
            "dealer_id": {**STRING, "minLength": 1, "maxLength": 64},
            "lessee": {"type": "object", "required": ["name", "id_number", "mobile", "address"], "properties": {
                "name": text(50), "id_number": text(30), "mobile": text(30), "address": text(200)}},
            "dealer": party,
            "vehicle": {"type": "object", "required": ["make", "model", "trim", "vin", "price", "condition"],
                        "properties": {"make": text(100), "model": text(100), "trim": text(100), "vin": text(30),
                                       "price": {**MONEY, "pattern": decimal_pattern(MAX_MONEY, positive=True,
                                                                                     places=2)},
                                       "condition": {"enum": ["new", "used"]},
                                       # the fuller description (issue 16 §8); absent in older snapshots
                                       "quantity": {"type": "integer", "minimum": 1, "maximum": 1},
                                       "powertrain": {"enum": list(POWERTRAINS)},
                                       "engine_no": {"type": "string", "pattern": "^(|[A-Za-z0-9-]{5,20})$"},
                                       "mileage_km": {"oneOf": [{"type": "null"}, {
                                           "type": "integer", "minimum": 0, "maximum": 2_000_000}]}}},
            "plan": {"type": "object", "required": [
                "timing", "term", "down_payment", "financed_amount", "residual", "monthly_payment", "apr",
                "nominal_rate", "deposit", "deposit_free", "total_interest", "total_payable", "due_at_signing"],
                "properties": {
                    "timing": {"enum": list(TIMINGS)}, "term": {"type": "integer", "minimum": 1, "maximum": MAX_TERM},
                    **{key: MONEY for key in ("down_payment", "financed_amount", "residual", "monthly_payment",
                                              "deposit", "total_interest", "total_payable", "due_at_signing")},
                    "apr": RATE, "nominal_rate": RATE, "deposit_free": {"type": "boolean"},
                    "insurance": {"type": ["array", "null"], "items": line("premium")},
                    "fees": {"type": ["array", "null"], "items": fee},
                    "late_fee_daily_rate": optional_rate, "early_settlement_fee_rate": optional_rate,
                    "default_cost_cap": optional_rate,
                    "early_settlement": {"type": "object", "required": ["fee_rate", "day_count",
                                                                         "notice_working_days"],
                                         "properties": {"fee_rate": RATE, "day_count": {"enum": list(DAY_COUNTS)},
                                                        "notice_working_days": {"type": "integer", "minimum": 0,
                                                                                "maximum": 30}}},
                    # the term's last day, when the balloon and the deposit's refund fall due; derived from the
                    # schedule when absent (the snapshots of contracts generated before it was stated)
                    "ends_on": {"type": "string", "format": "date", "pattern": DATE_PATTERN},
                    # issue 16: the default route, the end of the term, the title, the deposit-free hold; each
                    # absent in the snapshots of contracts generated before it was stated (plans.product)
                    "default_remedies": {"type": "object", "required": [
                        "overdue_periods", "overdue_share", *(name for name, _, _ in DEFAULT_DAY_BOUNDS)],
                        "properties": {"overdue_periods": days(MIN_OVERDUE_PERIODS, MAX_TERM), "overdue_share": RATE,
                                       **periods(DEFAULT_DAY_BOUNDS)}},
                    "purchase_price": MONEY,
                    "end_of_term": {"type": "object", "required": [name for name, _, _ in END_OF_TERM_DAY_BOUNDS],
                                    "properties": periods(END_OF_TERM_DAY_BOUNDS)},
                    "title": {"type": "object", "required": [
                        "structure", "registered_in", *(name for name, _, _ in TITLE_DAY_BOUNDS)], "properties": {
                        "structure": {"enum": list(STRUCTURES)}, "registered_in": {"enum": list(REGISTERED_IN)},
                        **periods(TITLE_DAY_BOUNDS)}},
                    "card_hold": {"oneOf": [{"type": "null"}, {
                        "type": "object", "required": ["amount", "days"],
                        "properties": {"amount": MONEY, "days": days(*CARD_HOLD_DAY_BOUNDS)}}]},
                    "commencement": {
                        "type": "object", "required": ["by", "estimated_starts_on"],
                        "description": "The term and every rent run from the day of the signed handover record; "
                                       "the schedule is dated from the estimated start (its end is the term's "
                                       "length later).",
                        "properties": {"by": {"enum": list(COMMENCEMENTS)},
                                       "estimated_starts_on": {"type": "string", "format": "date",
                                                               "pattern": DATE_PATTERN}}}}},
            "schedule": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["period", "due_date", "payment", "principal", "interest", "balance"],
                "properties": {"period": {"type": "integer", "minimum": 1, "maximum": MAX_TERM},
                               "due_date": {"type": "string", "format": "date", "pattern": DATE_PATTERN},
                               **{key: MONEY for key in ("payment", "principal", "interest", "balance")}}}},
        },
    }
