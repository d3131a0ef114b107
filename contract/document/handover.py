"""The vehicle handover record (车辆交接确认书) as data: what was handed over on which day, and the lease's dates
counted from that day. Pure (no I/O); :func:`contract.document.render.render_handover` lays it out.

The lease contract says the term runs from delivery (its 第三条: "自本合同生效且车辆交付承租人之日起计算"), but its
schedule's dates were computed when the contract was generated, from an assumed start. The handover day is the
real start (起租日): every rent and the term's end are dated again from it with :func:`plans.timeline.timeline`,
the same calendar the contract used. The amounts stay the contract's own: the APR is priced on monthly periods
(plans.quote.customer_cash_flows), not on calendar days, so moving the start changes no amount and not the APR.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from contract.document.model import ContractData
from plans.handover import HANDOVER_ITEMS as ITEMS
from plans.handover import MAX_HANDED_OVER_BY  # noqa: F401 — the API's bounds, re-exported
from plans.handover import MAX_KEYS  # noqa: F401
from plans.handover import MAX_NOTE  # noqa: F401
from plans.handover import MAX_ODOMETER_KM  # noqa: F401
from plans.timeline import timeline

#: the longest car name a record prints (as the contract's make and model, each at most 100 characters)
MAX_VEHICLE_NAME = 100

#: The items a dealer hands over with the car, by code (the API's enum) and as the record names them (plans.handover,
#: the table the BFF's form reads too)
HANDOVER_ITEMS: dict[str, str] = {code: names[0] for code, names in ITEMS.items()}


@dataclass(frozen=True)
class DatedRent:
    """One rent of the contract's schedule, dated from the handover day; ``paid_at_signing``: rent 1 of a lease
    paid in advance, which the lessee paid with the contract's amounts due at signing."""

    period: int
    due_date: date
    payment: Decimal
    paid_at_signing: bool


@dataclass(frozen=True)
class HandoverData:
    """Everything the handover record states."""

    contract: ContractData
    delivered_on: date  # 交车日期 = 起租日
    ends_on: date  # 租赁期届满日, counted from delivered_on
    odometer_km: int
    keys: int
    items: tuple[str, ...]  # codes of HANDOVER_ITEMS, in the order given
    note: str
    handed_over_by: str  # the dealer's staff member, as the dealer labels them
    schedule: tuple[DatedRent, ...]
    final_rent: Decimal | None  # the balloon (尾付租金), due on ends_on; None when the plan has none
    #: ``handover``: the dates counted from the handover day, as contracts stating the commencement date agree;
    #: ``contract``: a contract generated before that clause fixed its dates itself (its 附件一), which stand
    dated_from: str = "handover"
    #: the car's brand and model as the record prints them (品牌及车型): the Chinese name the dealer's catalogue gives
    #: it (比亚迪 汉EV), "" for the contract's own make and model
    vehicle_name: str = ""

    @property
    def item_labels(self) -> list[str]:
        return [HANDOVER_ITEMS[code] for code in self.items]

    @property
    def vehicle_label(self) -> str:
        """品牌及车型 as printed: the name given with the handover, else the contract's make and model."""
        v = self.contract.vehicle
        return self.vehicle_name or f"{v.make} {v.model}"


def handover_data(contract: ContractData, *, delivered_on: date, odometer_km: int, keys: int,
                  items: tuple[str, ...] | list[str], note: str, handed_over_by: str,
                  vehicle_name: str = "") -> HandoverData:
    """The record of ``contract``'s car handed over on ``delivered_on``: rent k on ``rent_dates[k − 1]`` of the
    timeline starting that day, the balloon and the term's end on its ``ends_on``, each amount the contract's."""
    unknown = [code for code in items if code not in HANDOVER_ITEMS]
    if unknown:
        raise ValueError(f"unknown handover items: {', '.join(unknown)}")
    plan = contract.plan
    if plan.commencement is None:  # signed before the commencement clause: its own dates stand (issue 16)
        assert plan.ends_on is not None  # derived from the schedule when the snapshot does not state it
        rent_dates, ends_on, dated_from = tuple(row.due_date for row in contract.schedule), plan.ends_on, "contract"
    else:
        dates = timeline(delivered_on, plan.term, plan.timing)
        rent_dates, ends_on, dated_from = dates.rent_dates, dates.ends_on, "handover"
    schedule = tuple(DatedRent(row.period, rent_dates[row.period - 1], row.payment,
                               plan.timing == "advance" and row.period == 1) for row in contract.schedule)
    return HandoverData(contract=contract, delivered_on=delivered_on, ends_on=ends_on, odometer_km=odometer_km,
                        keys=keys, items=tuple(items), note=note, handed_over_by=handed_over_by, schedule=schedule,
                        final_rent=plan.residual if plan.residual > 0 else None, dated_from=dated_from,
                        vehicle_name=vehicle_name)
