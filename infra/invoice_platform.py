"""The invoice platform (issue 19 §3): the ``InvoicePlatform`` port through which Leaseline asks for China's fully
digitised e-invoices (全面数字化的电子发票, 数电发票), what it sends and what comes back.

A 数电发票 is issued on the tax administration's e-invoice service platform (电子发票服务平台), directly or through a
licensed channel (乐企, a service provider); the seller's request carries the invoice's face (票面) and the platform
gives it its number. The fields below follow the invoice's face as 国家税务总局公告2024年第11号 (推广应用全面数字化的
电子发票, from 2024-12-01) describes it and as the channels' published interfaces name them (pinyin initials, e.g.
``fphm`` 发票号码, ``kprq`` 开票日期, ``xsfnsrsbh`` 销售方纳税人识别号, ``gmfmc`` 购买方名称, ``spmc`` 项目名称,
``sphfwssflbm`` 商品和服务税收分类编码, ``je`` 金额, ``slv`` 税率, ``se`` 税额, ``jshj`` 价税合计,
``lzfphm`` 蓝字发票号码, ``chyydm`` 冲红原因代码); each channel's exact schema differs, so a real adapter maps
:meth:`IssueRequest.payload` to its own. What every channel shares, and this port keeps:

- **the number**: 20 digits — the year's last two digits, the province (the 2-digit administrative division code of
  the issuing tax authority), the issuing channel (1 digit), a 15-digit sequence (:func:`is_invoice_number`);
- **the face**: issue date; seller (name and 统一社会信用代码); buyer (name; an individual — 自然人 — with their ID
  number and its type, 201 居民身份证); lines (item ``*分类简称*名称``, the tax classification code, specification,
  amount without tax 金额, rate, tax 税额); totals (金额合计, 税额合计, 价税合计);
- **red-letter invoices** (红字发票): a negative invoice against one issued blue invoice (蓝字发票), with the reason
  (冲红原因: 01 开票有误, 02 销货退回, 03 服务中止, 04 销售折让) and the red-letter confirmation (红字发票信息确认单)
  the platform makes for it (one the buyer need not confirm when the buyer is an individual who deducts no input tax);
- **the request's key** (流水号): a retry of a request under the same key returns what the first one got and never
  issues a second invoice. Leaseline's key is the invoice request's id (infra/invoicing.py).

Money is integer fen here; the payload writes yuan with two decimals, as the face does. Nothing in this module
computes a tax: the lines come computed (bff/servicing/invoices.py, from books/vat.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from decimal import Decimal
from typing import Any
from typing import Protocol

#: 冲红原因 (red-letter reasons) as the platform codes them
RED_REASONS = {"01": "开票有误", "02": "销货退回", "03": "服务中止", "04": "销售折让"}
#: 证件类型 of a resident identity card (居民身份证)
RESIDENT_ID_CARD = "201"
#: 发票票种: 普通发票 (an individual cannot deduct input tax: no 增值税专用发票 is issued to one)
ORDINARY = "82"
ISSUED, PENDING = "issued", "pending"
_NUMBER = re.compile(r"\d{20}")


def is_invoice_number(value: str) -> bool:
    """Whether ``value`` has the shape of a 数电发票 number: 20 digits (year, province, channel, sequence)."""
    return bool(_NUMBER.fullmatch(value or ""))


def yuan(fen: int) -> str:
    """``fen`` as the face writes it: yuan with two decimals (``-1234.50``)."""
    return f"{Decimal(fen) / 100:.2f}"


@dataclass(frozen=True)
class Party:
    """The seller (``tax_id``: its 统一社会信用代码) or the buyer (an individual: ``id_number`` and its type)."""

    name: str
    tax_id: str = ""
    id_number: str = ""
    id_type: str = RESIDENT_ID_CARD
    individual: bool = False


@dataclass(frozen=True)
class Line:
    """One line of the invoice (明细): ``item`` as the face shows it (``*分类简称*名称``), its tax classification code,
    ``specification`` (规格型号: which rent, a late charge), ``amount`` without tax (金额, fen), ``rate`` (税率, a
    Decimal fraction such as 0.13) and ``tax`` (税额, fen). Negative amounts and taxes on a red-letter invoice."""

    item: str
    tax_code: str
    amount: int
    rate: Decimal
    tax: int
    specification: str = ""

    @property
    def total(self) -> int:
        """价税合计 of the line (fen)."""
        return self.amount + self.tax

    def as_dict(self) -> dict[str, Any]:
        return {"item": self.item, "tax_code": self.tax_code, "amount": self.amount, "rate": str(self.rate),
                "tax": self.tax, "specification": self.specification}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Line:
        return cls(str(data["item"]), str(data["tax_code"]), int(data["amount"]), Decimal(str(data["rate"])),
                   int(data["tax"]), str(data.get("specification", "")))

    def negated(self) -> Line:
        return Line(self.item, self.tax_code, -self.amount, self.rate, -self.tax, self.specification)


@dataclass(frozen=True)
class RedLetter:
    """What makes an invoice red: the blue invoice it reverses (number and issue date) and why (:data:`RED_REASONS`)."""

    original_number: str
    original_date: date
    reason_code: str


@dataclass(frozen=True)
class IssueRequest:
    """An invoice to issue, under ``key`` (the request's 流水号: the same key, the same invoice). ``red``: a red-letter
    invoice (its lines negative, the blue invoice's negation). ``remark``: 备注."""

    key: str
    seller: Party
    buyer: Party
    lines: tuple[Line, ...]
    red: RedLetter | None = None
    remark: str = ""
    kind: str = ORDINARY

    @property
    def amount(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def tax(self) -> int:
        return sum(line.tax for line in self.lines)

    @property
    def total(self) -> int:
        return self.amount + self.tax

    def payload(self) -> dict[str, Any]:
        """The request as the channels' interfaces shape it (see the module's docstring)."""
        body: dict[str, Any] = {
            "lsh": self.key, "fppz": self.kind, "lzfpbz": "1" if self.red else "0",  # 蓝字发票标志: 0 blue, 1 red
            "xsfmc": self.seller.name, "xsfnsrsbh": self.seller.tax_id,
            "gmfmc": self.buyer.name, "gmfnsrsbh": self.buyer.tax_id,
            "zrrbs": "Y" if self.buyer.individual else "N",  # 是否自然人
            "gmfzjlx": self.buyer.id_type if self.buyer.id_number else "", "gmfzjhm": self.buyer.id_number,
            "hjje": yuan(self.amount), "hjse": yuan(self.tax), "jshj": yuan(self.total), "bz": self.remark,
            "mxxx": [{"xh": n, "spmc": line.item, "sphfwssflbm": line.tax_code, "ggxh": line.specification,
                      "je": yuan(line.amount), "slv": str(line.rate), "se": yuan(line.tax)}
                     for n, line in enumerate(self.lines, start=1)]}
        if self.red is not None:
            body.update({"lzfphm": self.red.original_number, "lzkprq": self.red.original_date.isoformat(),
                         "chyydm": self.red.reason_code})
        return body


@dataclass(frozen=True)
class Issued:
    """The platform's answer to a request (or to a later look at it): ``issued`` with its number (``number``) and
    time (``issued_at``, UTC; ``issued_on`` its day in Asia/Shanghai, the 开票日期), or ``pending`` — accepted, the
    result comes later: ask again with :meth:`InvoicePlatform.status`. A red-letter invoice's answer names its
    confirmation (红字发票信息确认单 number and status)."""

    status: str
    number: str = ""
    issued_at: datetime | None = None
    issued_on: date | None = None
    confirmation: str = ""
    confirmation_status: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


class InvoicePlatformUnavailable(Exception):
    """The platform could not be reached or did not answer: nothing is known to be issued; ask again, same key."""


class InvoiceRejected(Exception):
    """The platform refused the request (its answer's ``code`` and ``message``): nothing was issued under the key; the
    request may be sent again, same key, once what it refused is put right."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class InvoicePlatform(Protocol):
    """Where Leaseline's e-invoices are issued. ``name`` says which platform (the sandbox, or a real channel)."""

    name: str
    #: whether what it issues is a specimen (样票), never a valid invoice: every rendering says so
    specimen: bool

    def issue(self, request: IssueRequest) -> Issued:
        """Issue ``request`` (blue, or red against an issued blue invoice) under its key, once: the same key again
        returns the first answer. Raises InvoiceRejected (nothing issued) or InvoicePlatformUnavailable (unknown:
        ask again under the same key)."""
        ...

    def status(self, key: str) -> Issued:
        """What became of the request ``key`` answered ``pending``. Raises InvoiceRejected when the platform
        refused it meanwhile, LookupError when it never received it, InvoicePlatformUnavailable."""
        ...

    def document(self, number: str) -> bytes:
        """The issued invoice ``number`` as a PDF (版式文件) for its buyer. Raises LookupError for an unknown number,
        InvoicePlatformUnavailable."""
        ...
