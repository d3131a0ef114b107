"""The lessor's documents of a lease in force (issue 18 §5; contract/document/servicing.py): a request's figures are
checked for shape and for reconciling to the fen (field errors naming the JSON path), and the settlement certificate
and the schedule annex print the contract's parties, number and car with those figures, zh first with English."""

from __future__ import annotations

import copy
import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from contract.document.servicing import SCHEDULE_ANNEX
from contract.document.servicing import SETTLEMENT_CERTIFICATE
from contract.document.servicing import FigureError
from contract.document.servicing import ServicingData
from contract.document.servicing import check_dates
from contract.document.servicing import parse_request
from tests.unit.test_contract_document import LESSEE_NAME
from tests.unit.test_contract_document import VIN
from tests.unit.test_handover_record import contract
from tests.unit.test_handover_record import text


def certificate_body(**changes: Any) -> dict[str, Any]:
    settlement = {"settled_on": "2027-06-15", "paid_on": "2027-06-08", "outstanding_principal": "98000.00",
                  "accrued_interest": "245.00", "early_settlement_fee": "2940.00", "arrears": "0.00",
                  "penalties": "12.30", "paid_ahead_interest": "0.00", "deposit_offset": "10000.00",
                  "amount_due": "91197.30", **changes}
    return {"kind": SETTLEMENT_CERTIFICATE, "subject_id": "quote-1", "settlement": settlement}


def annex_body(**changes: Any) -> dict[str, Any]:
    """After rent 6, 20 000 off a 60 000 balance; three rents left (the last the final rent), each balance following."""
    rows = [{"number": 7, "due_date": "2027-07-31", "rent": "13500.00", "principal": "13300.00", "interest": "200.00",
             "balance": "26700.00"},
            {"number": 8, "due_date": "2027-08-31", "rent": "13433.50", "principal": "13300.00", "interest": "133.50",
             "balance": "13400.00"},
            {"number": 9, "due_date": "2027-09-30", "rent": "13467.00", "principal": "13400.00", "interest": "67.00",
             "balance": "0.00", "final": True}]
    annex = {"effective_on": "2027-07-01", "prepaid": "20000.00", "option": "lower_rent", "rents_paid": 6,
             "balance_before": "60000.00", "balance_after": "40000.00", "rows": rows, **changes}
    return {"kind": SCHEDULE_ANNEX, "subject_id": "prepayment-1", "annex": annex}


def refused(body: dict[str, Any]) -> FigureError:
    with pytest.raises(FigureError) as caught:
        parse_request(body)
    return caught.value


def test_a_settlement_s_lines_must_add_up_to_its_total_to_the_fen() -> None:
    parsed = parse_request(certificate_body())
    assert parsed.settlement is not None and parsed.settlement.amount_due == Decimal("91197.30")
    assert (parsed.settlement.settled_on, parsed.settlement.paid_on) == (date(2027, 6, 15), date(2027, 6, 8))
    assert parsed.last_day == date(2027, 6, 15)
    assert parse_request(certificate_body(paid_on="2027-07-01")).last_day == date(2027, 7, 1)  # paid after it
    error = refused(certificate_body(amount_due="91197.31"))
    assert (error.field, error.code) == ("settlement.amount_due", "inconsistent") and "91197.30" in error.message_zh
    # the deposit beyond what is owed: a negative total, the refund
    refund = parse_request(certificate_body(outstanding_principal="0.00", accrued_interest="0.00",
                                            early_settlement_fee="0.00", penalties="0.00", amount_due="-10000.00"))
    assert refund.settlement is not None and refund.settlement.refund == Decimal("10000.00")
    for field, value in (("arrears", "-1.00"), ("arrears", 12), ("arrears", "1.234"), ("settled_on", "2027-02-30"),
                         ("settled_on", "15/06/2027"), ("paid_on", "2027-02-30"), ("paid_on", None),
                         ("amount_due", "1e3")):
        assert refused(certificate_body(**{field: value})).field == f"settlement.{field}", (field, value)
    assert refused({**certificate_body(), "kind": "receipt"}).field == "kind"
    assert refused({**certificate_body(), "subject_id": "a b"}).field == "subject_id"
    assert refused({"kind": SETTLEMENT_CERTIFICATE, "subject_id": "q"}).field == "settlement"


def test_an_annex_s_rows_follow_the_prepayment_and_each_other() -> None:
    parsed = parse_request(annex_body())
    assert parsed.annex is not None and [r.number for r in parsed.annex.rows] == [7, 8, 9]
    assert parsed.annex.total_interest == Decimal("400.50") and parsed.last_day == date(2027, 9, 30)
    assert refused(annex_body(balance_after="40000.01")).field == "annex.balance_after"
    assert refused(annex_body(option="both")).field == "annex.option"
    assert refused(annex_body(prepaid="0.00")).field == "annex.prepaid"
    assert refused(annex_body(rows=[])).field == "annex.rows"
    for index, field, value in ((1, "rent", "13433.51"), (1, "balance", "13400.01"), (2, "number", 10),
                                (1, "due_date", "2027-07-30"), (0, "due_date", "2027-06-30"), (2, "final", "yes")):
        body = annex_body()
        body["annex"]["rows"][index][field] = value
        error = refused(body)
        assert error.field == f"annex.rows.{index}.{field}", (index, field, value, error)
    # the same figures give the same fingerprint (the idempotency check), other figures another
    again, other = parse_request(copy.deepcopy(annex_body())), parse_request(annex_body(option="shorter_term"))
    assert again.fingerprint == parsed.fingerprint != other.fingerprint


def test_an_annex_pays_the_balance_off_with_its_last_rent_the_final_rent_last_and_no_rent_of_nothing() -> None:
    # the rows leave a balance outstanding after the last rent: never paid off
    body = annex_body()
    body["annex"]["rows"] = body["annex"]["rows"][:2]
    error = refused(body)
    assert (error.field, error.code) == ("annex.rows.1.balance", "inconsistent") and "13400.00" in error.message
    # the final rent (尾付租金) is the last row only
    body = annex_body()
    body["annex"]["rows"][0]["final"] = True
    assert (refused(body).field, refused(body).code) == ("annex.rows.0.final", "inconsistent")
    # a rent of 0.00 is not a rent
    body = annex_body()
    body["annex"]["rows"][1].update(rent="0.00", principal="0.00", interest="0.00", balance="26700.00")
    body["annex"]["rows"][2].update(rent="26767.00", principal="26700.00", interest="67.00")
    assert refused(body).field == "annex.rows.1.rent"
    # an annex without a final rent ends with a rent that pays the balance off
    body = annex_body()
    del body["annex"]["rows"][2]["final"]
    assert parse_request(body).annex is not None


def test_the_dates_a_document_may_state() -> None:
    """No date is compared with the issuer's clock (the business date, the system's date of record, may run
    months ahead of it in a demo): a certificate's settlement day (结清日, agreed) and the day it was paid (付清日)
    are checked against the contract — paid not before it was signed nor more than 31 days after the settlement day
    (a bank's late answer), settled not before the signing nor after the contract's end plus the longest term —; an
    annex's dates stay within the contract's end plus the longest term."""
    signed_on, ends_on = date(2026, 6, 1), date(2029, 5, 31)
    ok = parse_request(certificate_body())
    check_dates(ok, signed_on=signed_on, ends_on=ends_on)
    for settled_on, paid_on in (
        ("2027-06-15", "2027-07-16"),  # paid 31 days after the settlement day: a late answer from the bank
        ("2039-05-31", "2027-06-15"),  # the contract's end plus 120 months
        ("2027-06-15", "2026-06-01"),  # paid the day it was signed
        ("2030-01-01", "2030-01-01"),  # days ahead of any real clock: the business date's
    ):
        check_dates(
            parse_request(certificate_body(settled_on=settled_on, paid_on=paid_on)), signed_on=signed_on,
            ends_on=ends_on)
    for settled_on, paid_on, field, code in (
        ("2026-05-31", "2026-06-01", "settlement.settled_on", "before_signing"),
        ("2027-06-15", "2026-05-31", "settlement.paid_on", "before_signing"),
        ("2027-06-15", "2027-07-17", "settlement.paid_on", "paid_after_settlement"),
        ("2027-06-15", "9999-12-31", "settlement.paid_on", "paid_after_settlement"),
        ("2039-06-01", "2027-06-15", "settlement.settled_on", "after_term"),
        ("2090-01-01", "2027-06-15", "settlement.settled_on", "after_term"),
        ("9999-12-31", "2027-06-15", "settlement.settled_on", "after_term"),
    ):
        with pytest.raises(FigureError) as caught:
            check_dates(
                parse_request(certificate_body(settled_on=settled_on, paid_on=paid_on)),
                signed_on=signed_on,
                ends_on=ends_on,
            )
        assert (caught.value.field, caught.value.code) == (field, code), (settled_on, paid_on)
    annex = parse_request(annex_body())
    check_dates(annex, signed_on=signed_on, ends_on=ends_on)  # rents ahead are the annex's point
    # the contract ends 2029-05-31; the longest term is 120 months: 2039-05-31 is the last day an annex may name
    late = annex_body()
    late["annex"]["rows"][2]["due_date"] = "2039-06-01"
    with pytest.raises(FigureError) as caught:
        check_dates(parse_request(late), signed_on=signed_on, ends_on=ends_on)
    assert (caught.value.field, caught.value.code) == ("annex.rows.2.due_date", "after_term")
    late["annex"]["rows"][2]["due_date"] = "2039-05-31"
    check_dates(parse_request(late), signed_on=signed_on, ends_on=ends_on)
    far = annex_body(effective_on="2090-01-01")
    for row, day in zip(far["annex"]["rows"], ("2090-01-31", "2090-02-28", "2090-03-31"), strict=True):
        row["due_date"] = day
    with pytest.raises(FigureError) as caught:
        check_dates(parse_request(far), signed_on=signed_on, ends_on=ends_on)
    assert (caught.value.field, caught.value.code) == ("annex.effective_on", "after_term")
    with pytest.raises(FigureError) as caught:
        check_dates(
            parse_request(annex_body(effective_on="2026-05-31")), signed_on=signed_on, ends_on=ends_on
        )
    assert (caught.value.field, caught.value.code) == ("annex.effective_on", "before_signing")


def test_the_certificate_names_the_lessee_the_car_the_amounts_and_the_discharge() -> None:
    from contract.document.render import render_servicing_html

    data = contract()
    words = text(render_servicing_html(ServicingData(data, parse_request(certificate_body()), date(2027, 6, 16))))
    assert words.startswith("结清证明") or "结清证明 Settlement Certificate" in words
    assert LESSEE_NAME in words and VIN in words and data.number in words and data.lessor.name in words
    assert "结清日 Settled on 2027年6月15日（2027-06-15）" in words
    assert "付清日 Paid on 2027年6月8日（2027-06-08）" in words
    assert "承租人已于 2027年6月8日 付清" in words and "租赁关系于 2027年6月15日 结清" in words
    assert "The lessee paid on 2027-06-08" in words and "the lease is settled on 2027-06-15" in words
    assert "保证金冲抵 Deposit offset -¥10,000.00" in words and "¥91,197.30" in words
    assert "已到期未付款项" not in words  # a zero line is left out
    assert "租金支付义务已全部履行完毕" in words and "抵押解除" in words and "discharged" in words
    assert "出具日期：2027年6月16日" in words
    html = render_servicing_html(ServicingData(data, parse_request(certificate_body()), date(2027, 6, 16)))
    assert 'id="sig-lessor"' in html and 'id="sig-lessee"' not in html  # the lessor issues it alone


def test_the_annex_lists_the_new_schedule_and_the_option_chosen() -> None:
    from contract.document.render import render_servicing_html

    words = text(render_servicing_html(ServicingData(contract(), parse_request(annex_body()), date(2027, 7, 1))))
    assert "还款计划变更确认书" in words and "租赁期限不变，减少每期租金" in words
    assert "¥60,000.00 → ¥40,000.00" in words
    assert "8 2027-08-31 ¥13,433.50 ¥13,300.00 ¥133.50 ¥13,400.00" in words
    assert "尾付租金 2027-09-30 ¥13,467.00" in words
    assert re.search(r"合计 Total ¥40,400.50 ¥40,000.00 ¥400.50", words), words[-400:]


def test_both_documents_lay_out_with_the_lessor_s_box_only() -> None:
    from contract.document.render import render_servicing

    for body in (certificate_body(), annex_body()):
        rendered = render_servicing(ServicingData(contract(), parse_request(body), date(2027, 7, 1)))
        assert rendered.pdf.startswith(b"%PDF") and rendered.pages == 1
        assert list(rendered.signature_boxes) == ["lessor"]


def test_the_bff_dates_the_certificate_by_the_business_dates_of_the_settlement_and_its_payment() -> None:
    """The certificate's settlement day is the quote's (结清日: interest counted to it, the lease's ``settled_on``), its
    day paid the business date the payment was booked (``paid_on``) — never the real clock's day it was paid
    (``settled_at``), which a demo's business date runs months ahead of (the certificate said 2026-12-07, the quote
    and the lease 2027-03-23). A quote paid before ``paid_on`` was kept: paid on the lease's settlement day."""
    from datetime import UTC
    from datetime import datetime
    from types import SimpleNamespace

    from bff.servicing.settled import settlement_body

    lease = SimpleNamespace(settled_on=date(2027, 6, 15))
    fen = {"outstanding_principal": 9_800_000, "accrued_interest": 24_500, "early_settlement_fee": 294_000,
           "arrears": 0, "penalties": 1_230, "paid_ahead_interest": 0, "deposit_offset": 1_000_000}
    paid_at = datetime(2026, 12, 7, 2, 30, tzinfo=UTC)  # the real clock's day: months behind the business date
    quote = SimpleNamespace(id="quote-1", settles_on=date(2027, 6, 15), paid_on=date(2027, 6, 8), amount_due=9_119_730,
                            penalties_booked=None, settled_at=paid_at, **fen)
    body = settlement_body(lease, quote)  # type: ignore[arg-type]
    assert (body["settlement"]["settled_on"], body["settlement"]["paid_on"]) == ("2027-06-15", "2027-06-08")
    assert parse_request(body).settlement == parse_request(certificate_body()).settlement
    older = SimpleNamespace(**{**vars(quote), "paid_on": None})
    body = settlement_body(lease, older)  # type: ignore[arg-type]
    assert (body["settlement"]["settled_on"], body["settlement"]["paid_on"]) == ("2027-06-15", "2027-06-15")


class FakeTexts:
    """The lease documents' reads document_text uses, and the text's record on one ready certificate."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        self.row = SimpleNamespace(id="row-1", lease_id="lease-1", kind="settlement_certificate", subject_id="q-1",
                                   status="ready", text_status="", text_detail="", text_at=None)
        self.lease_row = SimpleNamespace(id="lease-1", application_id="app-1", dealer_id="dealer-1",
                                         contract_number="LL1", settled_on=date(2027, 6, 15))

    def document(self, row_id: str) -> Any:
        return self.row if row_id == self.row.id else None

    def lease(self, lease_id: str) -> Any:
        return self.lease_row

    def language(self, application_id: str) -> str:
        return "zh"

    def business_date(self) -> date:
        return date(2027, 6, 15)

    def claim_text(self, row_id: str, now: Any) -> bool:
        if self.row.text_status not in ("", "no_mobile"):
            return False
        self.row.text_status, self.row.text_at = "sending", now
        return True

    def release_text(self, row_id: str) -> None:
        if self.row.text_status == "sending":
            self.row.text_status, self.row.text_at = "", None

    def text_done(self, row_id: str, status: str, detail: str, now: Any) -> None:
        self.row.text_status, self.row.text_detail, self.row.text_at = status, detail, now


class FakeSms:
    def __init__(self, *failures: Exception) -> None:
        self.sent: list[str] = []
        self.failures = list(failures)

    def send(self, to: str, template: str, params: Any, dealer_id: str | None = None) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(template)


def tasks(repo: FakeTexts, sms: FakeSms, mobile: str | None = "13700000000") -> Any:
    from datetime import UTC
    from datetime import datetime

    from bff.servicing.settled import LeaseDocuments

    return LeaseDocuments(repo, None, sms, lambda _app: mobile, lambda lease: f"https://x/leases/{lease}",  # type: ignore[arg-type]
                          clock=lambda: datetime(2027, 6, 15, 2, tzinfo=UTC))


def test_the_document_s_text_is_claimed_before_it_is_sent_and_its_outcome_kept_for_ops() -> None:
    from infra.sms import SmsRefused
    from infra.sms import SmsUnavailable

    repo, sms = FakeTexts(), FakeSms()
    tasks(repo, sms).document_text("row-1")
    tasks(repo, sms).document_text("row-1")  # run again (a worker killed after sending, a retry): not sent twice
    assert sms.sent == ["lease_settled"] and repo.row.text_status == "sent" and repo.row.text_at is not None
    # the platform away: the claim released, the worker's retry sends it
    repo, sms = FakeTexts(), FakeSms(SmsUnavailable("timeout"))
    with pytest.raises(SmsUnavailable):
        tasks(repo, sms).document_text("row-1")
    assert repo.row.text_status == ""
    tasks(repo, sms).document_text("row-1")
    assert sms.sent == ["lease_settled"] and repo.row.text_status == "sent"
    # refused by the platform: recorded with why, for the lease page's staff view; not retried
    repo, sms = FakeTexts(), FakeSms(SmsRefused("FailedOperation.PhoneNumberInBlacklist", "blacklisted"))
    tasks(repo, sms).document_text("row-1")
    assert repo.row.text_status == "refused" and "blacklisted" in repo.row.text_detail and sms.sent == []
    # no mobile number on the application: recorded, nothing sent
    repo, sms = FakeTexts(), FakeSms()
    tasks(repo, sms, mobile=None).document_text("row-1")
    assert (repo.row.text_status, sms.sent) == ("no_mobile", []) and repo.row.text_at is not None
