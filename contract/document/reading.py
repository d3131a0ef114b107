"""What a reader of the contract's text needs beside it (issue 17 §2: the contract read on a phone): its clauses as
a table of contents, and its key terms as figures, both taken from the contract itself — the sections from the
rendered text (:func:`contract.document.render.render_text`), the terms from its data — so that neither can say
something the contract does not. Pure: no WeasyPrint, no I/O."""

from __future__ import annotations

from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

from contract.document.model import ContractData

#: the notice and fee of early settlement in contracts generated before the product stated them (the template's
#: legacy clause: "应至少提前 5 个工作日向出租人提出申请")
LEGACY_NOTICE_WORKING_DAYS = 5


class _Sections(HTMLParser):
    """Each ``<section id=…>`` of the text with the words of its first ``<h2>``, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[dict[str, str]] = []
        self._section: str | None = None
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self._section = dict(attrs).get("id")
        elif tag == "h2" and self._section:
            self._heading = []

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2" and self._heading is not None and self._section:
            self.found.append({"id": self._section, "title": " ".join("".join(self._heading).split())})
            self._heading, self._section = None, None


def sections(text: str) -> list[dict[str, str]]:
    """The text's clauses as ``{id, title}`` (the section's id, its heading), for a table of contents that links
    into the text; a section without a heading (the key facts box) is not listed."""
    parser = _Sections()
    parser.feed(text)
    parser.close()
    return parser.found


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _rate(value: Decimal) -> str:
    """A rate as a plain decimal fraction (never ``5E-4``)."""
    return f"{value:f}"


def key_terms(data: ContractData) -> dict[str, Any]:
    """The contract's key terms as figures (amounts as strings of yuan, rates as fractions): what a summary before
    the text shows in large type, each pointing at the clause that states it."""
    plan = data.plan
    es = plan.early_settlement
    remedies = plan.default_remedies
    return {
        "term": plan.term, "timing": plan.timing,
        "monthly_payment": _money(plan.monthly_payment), "last_payment": _money(data.last_payment),
        "apr": _rate(plan.apr), "nominal_rate": _rate(plan.nominal_rate),
        "down_payment": _money(plan.down_payment), "financed_amount": _money(plan.financed_amount),
        "residual": _money(plan.residual), "total_rent": _money(data.total_rent),
        "total_payable": _money(plan.total_payable), "due_at_signing": _money(plan.due_at_signing),
        "deposit": _money(plan.deposit), "deposit_free": plan.deposit_free,
        "card_hold": None if plan.card_hold is None else {"amount": _money(plan.card_hold.amount),
                                                          "days": plan.card_hold.days},
        "early_settlement": {
            "notice_working_days": es.notice_working_days if es else LEGACY_NOTICE_WORKING_DAYS,
            "fee_rate": _rate(es.fee_rate if es else plan.early_settlement_fee_rate),
            "any_day": es is not None,  # before the product stated it: on a rent's due day only
        },
        "late_fee_daily_rate": _rate(plan.late_fee_daily_rate),
        "late_fee_annual_rate": _rate(plan.late_fee_annual_rate),
        "default_cost_cap": None if plan.default_cost_cap is None else _rate(plan.default_cost_cap),
        "default": None if remedies is None else {"overdue_periods": remedies.overdue_periods,
                                                  "overdue_share": _rate(remedies.overdue_share),
                                                  "demand_cure_days": remedies.demand_cure_days},
    }
