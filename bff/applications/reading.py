"""The contract read on a phone (issue 17 §2): the text the PDF was rendered from, as HTML that reflows, with the
fingerprint the PDF prints, the clauses as a table of contents and the key terms first.

The contract service hands out the text with its SHA-256 only when the current PDF prints that fingerprint
(``GET /api/v1/contracts/{id}/text``). The BFF checks the hash of the bytes it received before it says "the same
as the PDF", then checks it is made only of the elements and attributes a contract's text uses
(:func:`sanitised`): the page has a strict CSP and the text, however trusted its source, is not let to carry a
style, a script or a link; a text that holds anything else is refused whole (the page offers the PDF), never
repaired into other words.
Its ids and classes get a ``ct-`` prefix so that they can clash with none of the page's own."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from html import escape
from html.parser import HTMLParser
from typing import Any

from flask_babel import gettext as _
from markupsafe import Markup

from bff.applications.access import log_document_view
from bff.filters import money
from bff.filters import percent
from bff.rendering import in_locale
from bff.services import services
from infra.applications import Application
from infra.clients.http import ServiceRefused
from infra.clients.http import ServiceUnavailable

log = logging.getLogger(__name__)
PREFIX = "ct-"
#: the contract's own headings move one level down: the page has its h1, the reading section its h2
TAGS = {"h1": "h2", "h2": "h3", "h3": "h4", "p": "p", "ol": "ol", "ul": "ul", "li": "li", "section": "section",
        "table": "table", "thead": "thead", "tbody": "tbody", "tr": "tr", "th": "th", "td": "td", "span": "span",
        "div": "div", "br": "br", "strong": "strong", "em": "em"}
VOID = {"br"}
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
SPAN = re.compile(r"[1-9][0-9]{0,2}")
#: the widest a cell spans: the schedule has six columns
MAX_SPAN = 6


class UnsafeText(ValueError):
    """A text the page could show only by changing it: an element or attribute it does not keep, an end tag that
    closes no open element, an element left open. Refused whole, never repaired: a repair changes the words."""


class _Sanitiser(HTMLParser):
    """Re-writes HTML made of :data:`TAGS` with their ``class``, ``id``, ``colspan``, ``rowspan`` and ``data-label``
    (ids and classes prefixed, an id already used dropped, a span capped at :data:`MAX_SPAN`), the text escaped.
    Anything else raises :class:`UnsafeText`; comments are left out (they are not words of the text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []  # the elements open, innermost last
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TAGS:
            raise UnsafeText(f"element {tag}")
        first = {name: value or "" for name, value in reversed(attrs)}  # a repeated attribute: its first, as browsers
        kept = "".join(self._attribute(name, value) for name, value in reversed(first.items()))
        self.out.append(f"<{TAGS[tag]}{kept}>")
        if tag not in VOID:
            self.open.append(tag)

    def _attribute(self, name: str, value: str) -> str:
        """The attribute as the page writes it ("" for an id already used); :class:`UnsafeText` for another."""
        if name == "id" and NAME.fullmatch(value):
            if value in self.ids:
                return ""
            self.ids.add(value)
            return f' id="{PREFIX}{value}"'
        if name == "class" and all(NAME.fullmatch(c) for c in value.split()):
            return f' class="{" ".join(PREFIX + c for c in value.split())}"' if value.split() else ""
        if name in ("colspan", "rowspan") and SPAN.fullmatch(value):
            return f' {name}="{min(int(value), MAX_SPAN)}"'
        if name == "data-label":
            return f' data-label="{escape(value)}"'
        raise UnsafeText(f"attribute {name}={value!r}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            raise UnsafeText(f"self-closing {tag}")
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise UnsafeText(f"end tag {tag} with {self.open[-1] if self.open else 'nothing'} open")
        self.open.pop()
        self.out.append(f"</{TAGS[tag]}>")

    def handle_data(self, data: str) -> None:
        self.out.append(escape(data, quote=False))

    def handle_decl(self, decl: str) -> None:
        raise UnsafeText("declaration")

    def handle_pi(self, data: str) -> None:
        raise UnsafeText("processing instruction")

    def unknown_decl(self, data: str) -> None:
        raise UnsafeText("declaration")


def sanitised(html: str) -> Markup:
    """``html``, which must be made only of what a contract's text uses (see :class:`_Sanitiser`), safe to put in a
    page; :class:`UnsafeText` when it holds anything else."""
    parser = _Sanitiser()
    parser.feed(html)
    parser.close()
    if parser.open:
        raise UnsafeText(f"{', '.join(parser.open)} left open")
    return Markup("".join(parser.out))  # built from escaped text and checked names only


def exact_percent(rate: Decimal) -> str:
    """A contractual rate in full, at least two decimals, as the contract prints it: ``0.000493`` → ``0.0493%``."""
    whole, _dot, decimals = f"{rate * 100:f}".partition(".")
    return f"{whole}.{decimals.rstrip('0').ljust(2, '0')}%"


@dataclass(frozen=True)
class KeyTerm:
    """One key term: its name, its figure in large type, a line that qualifies it, and the clause stating it."""

    label: str
    value: str
    detail: str
    section: str  # the id of the clause in the contract's text (without the prefix)


@dataclass(frozen=True)
class Reading:
    """The contract's text for the page: ``ready`` (with the rest), ``unavailable`` (the service has no reading
    copy that matches the PDF: an older contract) or ``error`` (the service is away, or its answer did not hold)."""

    state: str
    html: Markup = Markup("")
    sha256: str = ""
    sections: tuple[tuple[str, str], ...] = ()
    terms: tuple[KeyTerm, ...] = field(default=())


def key_terms(t: dict[str, Any]) -> tuple[KeyTerm, ...]:
    """The contract's key terms (the contract service's ``terms``) in the reader's language, in the order issue 17
    §2 asks for: rent, APR, term, total, deposit, early settlement, default."""
    term = int(t["term"])
    last = "" if t["last_payment"] == t["monthly_payment"] else _("the last one %(amount)s",
                                                                  amount=money(t["last_payment"]))
    es = t["early_settlement"]
    fee = Decimal(es["fee_rate"])
    hold = t.get("card_hold")
    remedies = t.get("default")
    separator = in_locale("；", "; ")
    late = _("%(rate)s a year", rate=exact_percent(Decimal(t["late_fee_annual_rate"])))
    if t.get("default_cost_cap"):
        late += separator + _("with the contract rate at most %(cap)s a year",
                         cap=exact_percent(Decimal(t["default_cost_cap"])))
    if remedies:
        share = exact_percent(Decimal(remedies["overdue_share"]))
        late += separator + _("after %(n)s unpaid rents (or %(share)s of all rent) and a written demand left unpaid "
                              "for %(days)s days, the lessor may claim all unpaid rent, or end the contract and take "
                              "the car back", n=remedies["overdue_periods"], share=share,
                              days=remedies["demand_cure_days"])
    return (
        KeyTerm(_("Monthly rent"), money(t["monthly_payment"]),
                separator.join(filter(None, [_("%(n)s rents", n=term), last])), "rent"),
        KeyTerm(_("APR (simple interest)"), percent(Decimal(t["apr"])),
                _("Contract rate %(rate)s a year", rate=percent(Decimal(t["nominal_rate"]))), "key-facts"),
        KeyTerm(_("Lease term"), _("%(n)s months long", n=term),
                _("Rent paid at the start of each month") if t["timing"] == "advance"
                else _("Rent paid at the end of each month"), "term"),
        KeyTerm(_("Total you pay"), money(t["total_payable"]),
                _("Due at signing: %(amount)s", amount=money(t["due_at_signing"])), "rent"),
        KeyTerm(_("Deposit"), _("None (deposit-free)") if t["deposit_free"] else money(t["deposit"]),
                _("A hold of %(amount)s on your card before the handover, released after %(days)s days",
                  amount=money(hold["amount"]), days=hold["days"]) if t["deposit_free"] and hold
                else "" if t["deposit_free"] else _("Refunded after everything is paid"), "deposit"),
        KeyTerm(_("Early settlement"),
                _("Fee %(rate)s of the principal outstanding", rate=exact_percent(fee)) if fee else _("No fee"),
                _("On any day, asked %(n)s working days ahead", n=es["notice_working_days"]) if es["any_day"]
                else _("On a rent's due day, asked %(n)s working days ahead", n=es["notice_working_days"]),
                "early-settlement"),
        KeyTerm(_("Late payment"), _("%(rate)s a day", rate=exact_percent(Decimal(t["late_fee_daily_rate"]))),
                late, "default"),
    )


def original_text(app: Application) -> bytes | None:
    """The contract's text exactly as the contract service keeps it, the bytes whose SHA-256 the PDF prints, for
    anyone to hash; None when there is none to give (no contract, an older one, the service away, a text not of
    the PDF this page serves). Audit-logged for staff as the reading is."""
    if not app.contract_id:
        return None
    try:
        body = services().contracts.client.text(app.contract_id)
    except (ServiceRefused, ServiceUnavailable):
        return None
    html = body.get("html")
    current = app.contract.get("signed_sha256") or app.contract.get("draft_sha256")
    if not isinstance(html, str) or body.get("document_sha256") != current:
        return None
    data = html.encode("utf-8")
    if hashlib.sha256(data).hexdigest() != body.get("sha256"):
        log.error("contract %s: the text's hash is not the one the contract service states", app.contract_id)
        return None
    log_document_view(app, "contract_text")
    return data


def contract_reading(app: Application) -> Reading | None:
    """The application's contract text for the page, or None before there is a contract. A staff member's reading
    is audit-logged as a PDF download is: the text holds the customer's full ID number."""
    if not app.contract_id:
        return None
    try:
        body = services().contracts.client.text(app.contract_id)
    except ServiceRefused as exc:
        return Reading("unavailable" if exc.status in (404, 409) else "error")
    except ServiceUnavailable:
        return Reading("error")
    html, digest = body.get("html"), body.get("sha256")
    if not isinstance(html, str) or hashlib.sha256(html.encode("utf-8")).hexdigest() != digest:
        log.error("contract %s: the text's hash is not the one the contract service states", app.contract_id)
        return Reading("error")
    # the text of the PDF this page serves (the signed one once signed), not of another
    current = app.contract.get("signed_sha256") or app.contract.get("draft_sha256")
    if body.get("document_sha256") != current:
        log.error("contract %s: the text is of the PDF %s, the contract's is %s", app.contract_id,
                  body.get("document_sha256"), current)
        return Reading("error")
    try:
        terms = key_terms(body["terms"])
        sections = tuple((str(s["id"]), str(s["title"])) for s in body["sections"] if NAME.fullmatch(str(s["id"])))
    except (KeyError, TypeError, ValueError, ArithmeticError):
        log.exception("contract %s: the text's terms or sections are malformed", app.contract_id)
        return Reading("error")
    try:
        text = sanitised(html)
    except UnsafeText as exc:
        log.error("contract %s: the text holds what the page does not show as it is (%s)", app.contract_id, exc)
        return Reading("error")
    log_document_view(app, "contract_text")
    return Reading("ready", text, str(digest), sections, terms)
