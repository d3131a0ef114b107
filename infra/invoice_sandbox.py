"""The embedded default of the invoice platform port (infra/invoice_platform.py): ``SandboxInvoicePlatform``, a
clearly named sandbox that issues numbered **specimen** invoices (样票) — never a real invoice. Nothing it makes is
reported to any tax authority, and every rendering of it says 样票 / SPECIMEN — 非有效发票, not a valid invoice.

No 数电发票 platform can run here (the tax administration's platform, and the licensed channels in front of it, serve
registered taxpayers only), so the sandbox answers as one does, on the request's documented shape
(:meth:`infra.invoice_platform.IssueRequest.payload`), and keeps what it issued in its own table, ``sandbox_invoices``
(migration 0031), in the BFF's database: any web process and any worker see the same invoices.

**What it does** (the codes are the sandbox's own, shaped as a platform's ``{code, message}``, not a platform's):

- **issued at once**: a valid request is issued when it arrives, its answer ``issued`` with its number and time;
- **numbered**: 20 digits (:func:`invoice_number`) — the issue year's last two digits, the province of the seller's
  统一社会信用代码 (its 3rd–4th characters, the registering authority's division), the channel digit ``9`` (the
  sandbox's own marker; no real channel uses it here) and a 15-digit sequence (``sandbox_invoice_numbers``);
- **idempotent**: the same key (流水号) again returns the first answer — the same number — whatever the request says;
  a rejected request keeps nothing, so the same key may be sent again once its fault is put right;
- **checks** a request before it issues it: the seller's name and 统一社会信用代码 (GB 32100 check character):
  ``SBX4201``; the buyer's name: ``SBX4001``; an individual buyer's ID number, when given, its shape, province and
  birth date: ``SBX4002``, its **GB 11643 check digit** (ISO 7064 MOD 11-2): ``SBX4003``; at least one line, each
  with an item, a tax classification code, a rate from 0 to 1 and a tax within 6 fen of amount × rate (the 0.06 yuan
  per line a platform tolerates): ``SBX4101``; totals that add up: ``SBX4102``;
- **a delayed result**: a buyer name containing :data:`DELAY_MARK` (``延迟``) is answered ``pending``; each
  :meth:`SandboxInvoicePlatform.status` is a poll, and the invoice is issued at the :data:`PENDING_POLLS`-th (the
  first poll still answers ``pending``);
- **red-letter invoices** (红字发票): against an issued blue invoice of the sandbox (``SBX4301`` otherwise), with a
  reason code of infra.invoice_platform.RED_REASONS (``SBX4304``), once per blue invoice (``SBX4302``: reversed
  already), the lines exactly the blue invoice's negated — a full reversal (全额红冲; ``SBX4303``) — and the same
  buyer; its answer names a red-letter confirmation (红字发票信息确认单) ``SBXQR…`` whose status is ``01`` 无需确认: the
  buyer is an individual who deducts no input tax;
- **the rendering** (:meth:`SandboxInvoicePlatform.document`): a PDF of the face with 样票 / SPECIMEN across it and the
  buyer's ID number masked. The sandbox keeps no full ID number: it checks it and stores it masked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from collections.abc import Mapping
from datetime import date
from datetime import datetime
from decimal import Decimal
from decimal import InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy import text

from infra.db.engine import Database
from infra.db.models import SandboxInvoiceRow
from infra.db.models import utcnow
from infra.invoice_platform import ISSUED
from infra.invoice_platform import PENDING
from infra.invoice_platform import RED_REASONS
from infra.invoice_platform import InvoiceRejected
from infra.invoice_platform import Issued
from infra.invoice_platform import IssueRequest
from kyc import uscc
from kyc.idnumber import check_id_number
from kyc.masking import mask_id_number

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: the sandbox's issuing-channel digit (the number's 5th): no real channel is this sandbox
CHANNEL = "9"
#: a buyer name containing this is answered ``pending`` (a delayed result), issued at its PENDING_POLLS-th poll
DELAY_MARK = "延迟"
PENDING_POLLS = 2
#: a line's tax may differ from amount × rate by this much (fen)
TAX_TOLERANCE = 6
#: 红字发票信息确认单 status: 无需确认 (the buyer, an individual, deducts no input tax)
NO_CONFIRMATION_NEEDED = "01"
_TEMPLATE = Path(__file__).with_name("invoice_specimen.html")
_RENDER = threading.Lock()  # WeasyPrint documents no thread safety: one layout at a time per process


def invoice_number(issued_on: date, seller_tax_id: str, sequence: int) -> str:
    """The 20-digit number of the sandbox's ``sequence``-th invoice, issued on ``issued_on`` by the seller of
    ``seller_tax_id``: year (2), province (2, the code's 3rd–4th characters; ``00`` when they are not digits),
    channel (1, :data:`CHANNEL`), sequence (15)."""
    if not 0 < sequence < 10 ** 15:
        raise ValueError(f"an invoice sequence runs from 1 to 10**15 - 1, not {sequence}")
    province = seller_tax_id[2:4] if seller_tax_id[2:4].isdigit() else "00"
    return f"{issued_on.year % 100:02d}{province}{CHANNEL}{sequence:015d}"


def check_request(payload: Mapping[str, Any]) -> None:
    """Raise :class:`InvoiceRejected` for what the sandbox refuses in a request (the module's docstring)."""
    seller, tax_id = str(payload.get("xsfmc") or "").strip(), str(payload.get("xsfnsrsbh") or "")
    if not seller or not uscc.is_valid(tax_id):
        raise InvoiceRejected("SBX4201", "销售方名称或统一社会信用代码有误 the seller's name or unified social credit "
                                         "code is wrong")
    if not str(payload.get("gmfmc") or "").strip():
        raise InvoiceRejected("SBX4001", "购买方名称不能为空 the buyer's name is missing")
    id_number = str(payload.get("gmfzjhm") or "")
    if id_number:
        verdict = check_id_number(id_number)
        codes = {r.code for r in verdict.reasons}
        if codes - {"id_check_digit"}:
            raise InvoiceRejected("SBX4002", "购买方身份证件号码格式有误 the buyer's ID number is malformed")
        if codes:
            raise InvoiceRejected("SBX4003", "购买方身份证件号码校验码有误（GB 11643） the buyer's ID number fails its "
                                             "check digit (GB 11643)")
    lines = payload.get("mxxx")
    if not isinstance(lines, list) or not lines:
        raise InvoiceRejected("SBX4101", "发票明细不能为空 the invoice has no lines")
    totals = [0, 0]
    for n, line in enumerate(lines, start=1):
        try:
            amount, tax, rate = _fen(line["je"]), _fen(line["se"]), Decimal(str(line["slv"]))
        except (KeyError, TypeError, InvalidOperation, ValueError):
            raise InvoiceRejected("SBX4101", f"第{n}行金额、税率或税额有误 line {n}: amount, rate or tax "
                                             f"unreadable") from None
        if not str(line.get("spmc") or "").startswith("*") or not str(line.get("sphfwssflbm") or "").strip():
            raise InvoiceRejected("SBX4101", f"第{n}行项目名称或税收分类编码有误 line {n}: item name (*分类简称*名称) "
                                             f"or tax classification code missing")
        if not Decimal(0) <= rate < Decimal(1) or abs(Decimal(amount) * rate - tax) > TAX_TOLERANCE:
            raise InvoiceRejected("SBX4101", f"第{n}行税额与金额×税率不符 line {n}: the tax is not amount × rate")
        totals[0], totals[1] = totals[0] + amount, totals[1] + tax
    try:
        stated = _fen(payload["hjje"]), _fen(payload["hjse"]), _fen(payload["jshj"])
    except (KeyError, TypeError, InvalidOperation, ValueError):
        stated = (None, None, None)  # type: ignore[assignment]
    if stated != (totals[0], totals[1], totals[0] + totals[1]):
        raise InvoiceRejected("SBX4102", "合计金额、税额或价税合计与明细不符 the totals do not add up to the lines")


def _fen(value: object) -> int:
    amount = Decimal(str(value)) * 100
    if amount != amount.to_integral_value():
        raise ValueError(value)
    return int(amount)


class SandboxInvoicePlatform:
    """The sandbox platform (the module's docstring): issues specimen invoices into ``sandbox_invoices``."""

    name = "sandbox"
    specimen = True

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.clock = db, clock

    def __repr__(self) -> str:
        return "SandboxInvoicePlatform()"

    def issue(self, request: IssueRequest) -> Issued:
        payload = request.payload()
        key = request.key
        if not key or len(key) > 64:
            raise InvoiceRejected("SBX4000", "流水号有误 the request's key (流水号) must be 1 to 64 characters")
        with self.db.session() as session:
            # one request of a key at a time: a retry meanwhile waits, then finds the first answer
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"sandbox-invoice:{key}"})
            row = session.scalars(select(SandboxInvoiceRow).where(SandboxInvoiceRow.request_key == key)).one_or_none()
            if row is not None:
                return _answer(row)
            check_request(payload)
            original = None
            if request.red is not None:
                original = self._reversible(session, request)
            now = self.clock()
            issued_on = now.astimezone(SHANGHAI).date()
            sequence = int(session.execute(text("SELECT nextval('sandbox_invoice_numbers')")).scalar_one())
            pending = request.red is None and DELAY_MARK in request.buyer.name
            kept = {**payload, "gmfzjhm": mask_id_number(request.buyer.id_number) if request.buyer.id_number else ""}
            row = SandboxInvoiceRow(
                number=invoice_number(issued_on, request.seller.tax_id, sequence), request_key=key,
                kind="red" if request.red is not None else "blue", status=PENDING if pending else ISSUED,
                payload=json.dumps(kept, ensure_ascii=False, sort_keys=True), polls=0,
                original_number=original.number if original is not None else None,
                confirmation=f"SBXQR{issued_on:%Y%m%d}{sequence:07d}" if original is not None else None,
                created_at=now, issued_at=None if pending else now)
            session.add(row)
            session.flush()
            return _answer(row)

    def _reversible(self, session: Any, request: IssueRequest) -> SandboxInvoiceRow:
        """The blue invoice a red request reverses, checked (the module's docstring)."""
        assert request.red is not None
        if request.red.reason_code not in RED_REASONS:
            raise InvoiceRejected("SBX4304", f"冲红原因代码无效 unknown red-letter reason {request.red.reason_code!r}")
        original = session.get(SandboxInvoiceRow, request.red.original_number, with_for_update=True)
        if original is None or original.kind != "blue" or original.status != ISSUED:
            raise InvoiceRejected("SBX4301", "蓝字发票不存在或未开具 no issued blue invoice has that number")
        reversed_by = session.scalars(select(SandboxInvoiceRow.number).where(
            SandboxInvoiceRow.original_number == original.number)).first()
        if reversed_by is not None:
            raise InvoiceRejected("SBX4302", f"蓝字发票已全额冲红 the blue invoice is reversed already ({reversed_by})")
        blue = json.loads(original.payload)
        red = request.payload()
        same = [(line["spmc"], line["sphfwssflbm"], line["slv"], -_fen(line["je"]), -_fen(line["se"]))
                for line in blue["mxxx"]] == [(line["spmc"], line["sphfwssflbm"], line["slv"], _fen(line["je"]),
                                               _fen(line["se"])) for line in red["mxxx"]]
        if not same or blue["gmfmc"] != red["gmfmc"] or blue["xsfnsrsbh"] != red["xsfnsrsbh"]:
            raise InvoiceRejected("SBX4303", "红字发票须为蓝字发票的全额负数（全额红冲） a red-letter invoice must be "
                                             "the blue invoice's lines negated, whole, for the same parties")
        if request.red.original_date != _issued_on(original):
            raise InvoiceRejected("SBX4303", "蓝字发票开票日期不符 the blue invoice's issue date does not match")
        return original  # type: ignore[no-any-return]

    def status(self, key: str) -> Issued:
        """A poll of the request ``key``: a pending one counts it, and is issued at its :data:`PENDING_POLLS`-th."""
        with self.db.session() as session:
            row = session.scalars(select(SandboxInvoiceRow).where(SandboxInvoiceRow.request_key == key)
                                  .with_for_update()).one_or_none()
            if row is None:
                raise LookupError(key)
            if row.status == PENDING:
                row.polls += 1
                if row.polls >= PENDING_POLLS:
                    row.status, row.issued_at = ISSUED, self.clock()
                session.flush()
            return _answer(row)

    def received(self, number: str) -> dict[str, Any]:
        """The request the sandbox issued as ``number`` (its ID number masked): tests and developers read the shape."""
        with self.db.session() as session:
            row = session.get(SandboxInvoiceRow, number)
            if row is None:
                raise LookupError(number)
            return json.loads(row.payload)  # type: ignore[no-any-return]

    def document(self, number: str) -> bytes:
        """The specimen's PDF: its face, 样票 / SPECIMEN across it, the buyer's ID number masked."""
        with self.db.session() as session:
            row = session.get(SandboxInvoiceRow, number)
            if row is None or row.status != ISSUED:
                raise LookupError(number)
            face = specimen_face(row)
        return render_specimen(face)


def _issued_on(row: SandboxInvoiceRow) -> date | None:
    return row.issued_at.astimezone(SHANGHAI).date() if row.issued_at is not None else None


def _answer(row: SandboxInvoiceRow) -> Issued:
    if row.status != ISSUED:
        return Issued(PENDING, details={"code": "0000", "message": "开具中 being issued", "lsh": row.request_key})
    return Issued(ISSUED, number=row.number, issued_at=row.issued_at, issued_on=_issued_on(row),
                  confirmation=row.confirmation or "",
                  confirmation_status=NO_CONFIRMATION_NEEDED if row.confirmation else "",
                  details={"code": "0000", "message": "开具成功 issued", "fphm": row.number,
                           "kprq": row.issued_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
                           if row.issued_at else ""})


def specimen_face(row: SandboxInvoiceRow) -> dict[str, Any]:
    """What the specimen's face shows, from the sandbox's record (already masked)."""
    payload = json.loads(row.payload)
    return {"number": row.number, "issued_on": _issued_on(row), "red": row.kind == "red",
            "original_number": row.original_number or "", "confirmation": row.confirmation or "",
            "reason": RED_REASONS.get(str(payload.get("chyydm") or ""), ""), **payload}


def render_specimen(face: Mapping[str, Any]) -> bytes:
    """The face as a PDF (WeasyPrint, Noto CJK): the template ``infra/invoice_specimen.html``, autoescaped."""
    from jinja2 import Environment
    from jinja2 import FileSystemLoader
    from jinja2 import StrictUndefined

    env = Environment(loader=FileSystemLoader(str(_TEMPLATE.parent)), autoescape=True, undefined=StrictUndefined)
    html = env.get_template(_TEMPLATE.name).render(face=face)
    with _RENDER:
        from weasyprint import HTML

        return HTML(string=html).write_pdf()  # type: ignore[no-any-return]
