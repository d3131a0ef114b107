"""Example contracts for review (issue 16: a rendered contract for each timing and for a deposit-free lease, kept in
``docs/contracts/``): the standard product's plans on a demo car, a fictitious lessee and dealer, fixed dates, the
lessor of ``contract/lessor.toml``. ``python -m contract.document.examples docs/contracts`` writes each as HTML and
as PDF; a test renders the HTML again and compares, so the copies in ``docs/`` cannot drift from the template."""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from kyc.idnumber import check_digit
from plans.contract_terms import contract_terms
from plans.policy import load_policy
from plans.product import PlanChoice
from plans.product import Vehicle
from plans.product import load_product
from plans.quote import quote

CAR = Vehicle(id="bydqin", make="比亚迪", model="秦PLUS DM-i", name_zh="比亚迪 秦PLUS DM-i",
              name_en="BYD Qin PLUS DM-i", price=Decimal("139800.00"))
#: the plans shown: (file name, term, down payment, balloon, timing, deposit-free)
PLANS = (("arrears-36-balloon-30", 36, "0.20", "0.30", "arrears", False),
         ("advance-24-balloon-30", 24, "0.20", "0.30", "advance", False),
         ("deposit-free-36", 36, "0.30", "0", "arrears", True))
STARTS_ON = date(2027, 1, 31)  # a month end: the rent dates clamp to shorter months
GENERATED_AT = "2027-01-20T02:30:00Z"


def _lessor() -> dict[str, str]:
    from contract.service import lessor_party

    return lessor_party()


def snapshot(term: int, down: str, balloon: str, timing: str, deposit_free: bool) -> dict[str, Any]:
    """The contract service's snapshot of one example plan (a fictitious lessee: the ID number is synthetic)."""
    product = load_product()
    choice = PlanChoice(down_ratio=Decimal(down), term=term, insurance=frozenset({"ctpl", "damage", "tpl_1m"}),
                        residual_ratio=Decimal(balloon), deposit_free=deposit_free, extras_financed=True,
                        timing=timing)  # type: ignore[arg-type]
    q = quote(product.request_for(CAR, choice))
    return {
        "number": f"LL-EXAMPLE-{term:02d}{'A' if timing == 'advance' else 'R'}{'F' if deposit_free else 'D'}",
        "generated_at": GENERATED_AT, "signed": False, "lessor": _lessor(),
        "lessee": {"name": "张三丰", "id_number": "11010519491231002" + check_digit("11010519491231002"),
                   "mobile": "13800138000", "address": "北京市朝阳区建国路 88 号 3 单元 502 室"},
        "dealer": {"name": "示例市比亚迪汽车销售服务有限公司", "credit_code": "914403001922038216",
                   "address": "广东省深圳市龙岗区布吉街道深惠路 1 号"},
        "vehicle": {"make": CAR.make, "model": CAR.model, "trim": "2026款 DM-i 120km 领先型",
                    "vin": "LGXCE6CB8N0123456", "price": f"{CAR.price:.2f}", "condition": "new", "quantity": 1,
                    "powertrain": "nev", "engine_no": "BYD472QA-2611", "mileage_km": None},
        **contract_terms(q, product, load_policy(), STARTS_ON),
    }


def examples() -> dict[str, dict[str, Any]]:
    """Each example's snapshot by its file name."""
    return {name: snapshot(*plan) for name, *plan in PLANS}  # type: ignore[misc]


def write(folder: Path) -> list[Path]:
    """Write each example as ``<name>.html`` and ``<name>.pdf`` in ``folder``."""
    from contract.document import from_snapshot
    from contract.document.render import render_html
    from contract.document.render import render_pdf

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in examples().items():
        contract = from_snapshot(data)
        for path, content in ((folder / f"{name}.html", render_html(contract).encode()),
                              (folder / f"{name}.pdf", render_pdf(contract))):
            path.write_bytes(content)
            written.append(path)
    return written


if __name__ == "__main__":
    for written in write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/contracts")):
        print(written)
