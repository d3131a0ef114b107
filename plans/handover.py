"""What the vehicle's handover record (车辆交接确认书, issue 16) holds, shared by the BFF's form
(bff/payments/handover.py) and the contract service's record (contract/document/handover.py): the items a dealer
hands over with the car, the bounds of the odometer, the keys and the texts, and what text may be printed on a
signed record. The BFF reaches the contract service over HTTP only; this module, with no I/O, is what both import,
so the two never disagree."""

from __future__ import annotations

import unicodedata

#: The items handed over with the car, by code (the contract service's API enum): (Chinese, English). The original
#: registration certificate (机动车登记证书) is not one: the lessor keeps it by the contract's title clause.
HANDOVER_ITEMS: dict[str, tuple[str, str]] = {
    "tools": ("随车工具", "Vehicle tool kit"),
    "manuals": ("使用说明书及保修手册", "Owner's manual and warranty booklet"),
    "temporary_plate": ("临时号牌", "Temporary number plate"),
    "driving_licence": ("机动车行驶证", "Vehicle licence (行驶证)"),
    "insurance_policy": ("保险单", "Insurance policy"),
    "invoice_copy": ("购车发票复印件", "Copy of the purchase invoice"),
    "charging_cable": ("随车充电线", "Charging cable"),
}
MAX_ODOMETER_KM = 2_000_000
MAX_KEYS = 9
MAX_NOTE = 500
MAX_HANDED_OVER_BY = 64


def printable(text: str) -> bool:
    """True when ``text`` has no control, format, private-use or unassigned character (Unicode category C): such a
    character would hide or reorder what a signed record prints (a zero-width joiner in an emoji is one)."""
    return not any(unicodedata.category(c).startswith("C") for c in text)
