"""Documents on request, the rules without I/O: a file's type by its content, a PDF's page count, the default due
day (working days, Beijing time) and the time a case paused while the applicant gathered documents, taken out of
the review's SLA."""

from __future__ import annotations

import io
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest
from PIL import Image

from bff.documents.services import JPEG
from bff.documents.services import PDF
from bff.documents.services import PNG
from bff.documents.services import default_due
from bff.documents.services import overdue
from bff.documents.services import paused
from bff.documents.services import pdf_pages
from bff.documents.services import sniff
from infra.documents import DocumentRequest

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 in Beijing


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 40), "white").save(out, fmt)
    return out.getvalue()


def _pdf(pages: int) -> bytes:
    images = [Image.new("RGB", (60, 80), "white") for _ in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:])
    return out.getvalue()


def _request(status: str, requested: datetime, submitted: datetime | None = None,
             due: date = date(2026, 12, 10)) -> DocumentRequest:
    return DocumentRequest("r", "a", "d", "c", ("income_proof",), "note", due, status, "o", "o", requested,
                           submitted, None)


def test_a_file_is_known_by_its_content_not_its_name() -> None:
    assert sniff(_image("PNG")) == PNG and sniff(_image("JPEG")) == JPEG and sniff(_pdf(1)) == PDF
    assert sniff(_image("GIF")) is None and sniff(b"<html>%PDF-") is None and sniff(b"") is None


def test_a_pdf_s_pages_are_counted_and_a_broken_one_is_refused() -> None:
    assert pdf_pages(_pdf(3)) == 3
    assert pdf_pages(b"%PDF-1.4\n%%EOF") is None and pdf_pages(_pdf(2)[:200]) is None


@pytest.mark.parametrize(("today", "due"), [
    (date(2026, 12, 7), date(2026, 12, 10)),  # Monday → Thursday
    (date(2026, 12, 10), date(2026, 12, 15)),  # Thursday → the next Tuesday (the weekend does not count)
    (date(2026, 12, 12), date(2026, 12, 16)),  # Saturday → Wednesday
])
def test_a_request_is_due_three_working_days_later(today: date, due: date) -> None:
    assert default_due(today) == due


def test_the_time_waiting_for_the_applicant_is_counted_once_per_request() -> None:
    sent = _request("submitted", T0, T0 + timedelta(hours=2))
    waiting = _request("open", T0 + timedelta(hours=3))
    assert paused([sent], T0 + timedelta(hours=10)) == timedelta(hours=2)
    assert paused([sent, waiting], T0 + timedelta(hours=4)) == timedelta(hours=3)
    assert paused([], T0) == timedelta()


def test_a_request_is_overdue_only_after_its_day_in_beijing() -> None:
    request = _request("open", T0, due=date(2026, 12, 10))
    assert not overdue(request, datetime(2026, 12, 10, 15, 59, tzinfo=UTC))  # 23:59 on the 10th in Beijing
    assert overdue(request, datetime(2026, 12, 10, 16, 0, tzinfo=UTC))  # 00:00 on the 11th
    assert not overdue(_request("submitted", T0, T0, due=date(2026, 12, 1)), T0)


def test_the_sla_deadline_moves_by_the_paused_time() -> None:
    from flask import Flask
    from flask_babel import Babel

    from bff.reviews.services import sla_of

    app = Flask(__name__)
    Babel(app)
    with app.test_request_context():
        case = {"state": "claimed", "sla_due_at": "2026-12-07T06:00:00Z", "overdue": True}
        late = sla_of(case, T0 + timedelta(hours=5))
        assert late.overdue
        moved = sla_of(case, T0 + timedelta(hours=5), paused=timedelta(hours=2))
        assert moved.due == datetime(2026, 12, 7, 8, 0, tzinfo=UTC) and not moved.overdue


def _lying(pages: int, count: int) -> bytes:
    """A PDF of ``pages`` pages whose page tree's /Count says ``count`` (same width: the offsets stay right)."""
    data = _pdf(pages)
    said, says = f"/Count {pages}".encode(), f"/Count {count}".encode()
    assert data.count(said) == 1 and len(said) >= len(says)
    return data.replace(said, says.ljust(len(said)))


def test_a_pdf_s_pages_are_counted_in_its_page_tree_not_taken_from_its_count() -> None:
    assert pdf_pages(_lying(25, 1)) == 25  # 25 pages saying 1 are still over the limit of 20
    assert pdf_pages(_lying(12, 99)) == 12


def test_a_photographed_page_is_stored_without_its_exif_such_as_where_it_was_taken() -> None:
    from bff.documents.services import DocumentService
    from bff.documents.services import Upload

    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (31.0, 14.0, 0.0), 3: "E", 4: (121.0, 28.0, 0.0)}  # GPS: Shanghai
    out = io.BytesIO()
    Image.new("RGB", (600, 800), "white").save(out, "JPEG", exif=exif)
    assert Image.open(io.BytesIO(out.getvalue())).getexif()  # the photo as the phone sent it
    stored, content_type, _ = DocumentService.__new__(DocumentService)._checked(Upload("income_proof",
                                                                                       out.getvalue()))
    assert content_type == JPEG and not Image.open(io.BytesIO(stored)).getexif()
    assert b"Exif" not in stored and b"PhoneMaker" not in stored
