"""contract.document: the contract's data from a snapshot (reconciled to the fen) and its PDF.

The snapshots are made from real quotes (plans.product → plans.quote), so the schedule is the one the
customer was shown. The PDF is checked with poppler (pdftotext, pdffonts, pdftoppm), independent of
WeasyPrint: text, fonts, the watermark on every page and the signature boxes' emptiness.
"""

from __future__ import annotations

import copy
import io
import math
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC
from datetime import date
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image

from contract.document.model import ContractData
from contract.document.model import ContractDataError
from contract.document.model import from_snapshot
from contract.document.model import uscc_check_char
from kyc.idnumber import check_digit
from plans.contract_terms import contract_terms
from plans.money import format_cny
from plans.policy import load_policy
from plans.product import PlanChoice
from plans.product import Vehicle
from plans.product import load_product
from plans.quote import Quote
from plans.quote import Timing
from plans.quote import quote

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")

LESSEE_NAME = "张三丰"
ID_NUMBER = "11010519491231002" + check_digit("11010519491231002")
VIN = "LGXCE6CB8N0123456"  # BYD's WMI, a valid check digit
ENGINE_NO = "BYD472QA-2611"
LESSOR_CODE = "91350100M000100Y43"  # the GB 32100 example code
DEALER_CODE = "914403001922038216"
GENERATED = "2026-11-25T12:01:00Z"  # 20:01 in Beijing


# --------------------------------------------------------------------------------------- the snapshot


def make_quote(term: int = 36, *, down: str = "0.20", residual: str = "0", timing: Timing = "arrears",
               deposit_free: bool = False, financed: bool = True,
               insurance: frozenset[str] = frozenset({"ctpl", "damage", "tpl_1m"})) -> tuple[Vehicle, Quote]:
    product = load_product()
    vehicle = Vehicle(id="bydqin", make="比亚迪", model="秦PLUS DM-i", name_zh="比亚迪 秦PLUS DM-i",
                      name_en="BYD Qin PLUS DM-i", price=Decimal("139800.00"))
    choice = PlanChoice(down_ratio=Decimal(down), term=term, insurance=insurance, residual_ratio=Decimal(residual),
                        deposit_free=deposit_free, extras_financed=financed, timing=timing)
    return vehicle, quote(product.request_for(vehicle, choice))


def product_data() -> dict[str, Any]:
    """The standard product file as parsed TOML, for a test to change one term of and parse again."""
    import tomllib
    from importlib import resources

    return tomllib.loads(resources.files("plans").joinpath("products", "standard.toml").read_text(encoding="utf-8"))


def snapshot_from(vehicle: Vehicle, q: Quote, *, start: date = date(2026, 11, 30), signed: bool = False,
                  number: str = "LL-2026-000123") -> dict[str, Any]:
    """The JSON the contract service receives for an approved application priced as ``q``."""
    return {
        "number": number,
        "generated_at": GENERATED,
        "signed": signed,
        "lessor": {"name": "领航融资租赁（深圳）有限公司", "credit_code": LESSOR_CODE,
                   "address": "广东省深圳市南山区粤海街道科苑南路 2666 号 18 楼", "service_phone": "400-000-0000",
                   "service_email": "service@lessor.example"},
        "lessee": {"name": LESSEE_NAME, "id_number": ID_NUMBER, "mobile": "13800138000",
                   "address": "北京市朝阳区建国路 88 号 3 单元 502 室"},
        "dealer": {"name": "深圳市鹏城比亚迪汽车销售服务有限公司", "credit_code": DEALER_CODE,
                   "address": "广东省深圳市龙岗区布吉街道深惠路 1 号"},
        "vehicle": {"make": vehicle.make, "model": vehicle.model, "trim": "2026款 DM-i 120km 领先型",
                    "vin": VIN, "price": f"{vehicle.price:.2f}", "condition": "new", "quantity": 1,
                    "powertrain": "nev", "engine_no": ENGINE_NO, "mileage_km": None},
        **contract_terms(q, load_product(), load_policy(), start),
    }


#: the plan's terms in the order contracts came to state them (issue 16); a contract generated before one of them
#: stated none of the later ones either
STATED_IN_TURN = ("early_settlement", "default_remedies", "end_of_term", "title", "commencement")


def generated_before(snapshot: dict[str, Any], terms: str) -> dict[str, Any]:
    """``snapshot`` as the BFF sent it before contracts stated ``terms``: it and every later term left out (with the
    purchase price, the end of the term's, out of the total too)."""
    plan = snapshot["plan"]
    for name in STATED_IN_TURN[STATED_IN_TURN.index(terms):]:
        del plan[name]
        if name == "end_of_term":
            total = Decimal(plan["total_payable"]) - Decimal(plan.pop("purchase_price"))
            plan["total_payable"] = f"{total:.2f}"
    return snapshot


def example_snapshot(**kwargs: Any) -> dict[str, Any]:
    vehicle, q = make_quote(**kwargs)
    return snapshot_from(vehicle, q)


# --------------------------------------------------------------------------------------- from_snapshot


def test_good_snapshot_parses_to_the_quote_figures() -> None:
    vehicle, q = make_quote()
    data = from_snapshot(snapshot_from(vehicle, q))
    assert isinstance(data, ContractData)
    assert data == ContractData.from_snapshot(snapshot_from(vehicle, q))
    assert data.lessee.id_number == ID_NUMBER and data.vehicle.vin == VIN
    plan = data.plan
    assert plan.financed_amount == q.financed_amount and plan.monthly_payment == q.monthly_payment
    assert plan.apr == q.apr and plan.nominal_rate == q.request.annual_rate
    assert plan.total_payable == q.total_payable and plan.due_at_signing == q.due_at_signing
    assert [(r.period, r.payment, r.principal, r.interest, r.balance) for r in data.schedule] == [
        (r.period, r.payment, r.principal, r.interest, r.balance) for r in q.schedule]
    assert data.schedule[0].due_date == date(2026, 12, 30) and data.schedule[2].due_date == date(2027, 2, 28)
    assert data.generated_at == datetime(2026, 11, 25, 12, 1, tzinfo=UTC)
    assert all(isinstance(v, Decimal) for v in (plan.price, plan.deposit, data.schedule[5].interest))
    # 5.99 % a year and 0.05 % a day would cost 24.24 % a year in default: the charge is lowered to fit 24 %
    assert plan.late_fee_daily_rate == Decimal("0.000493") and plan.early_settlement_fee_rate == 0
    assert plan.nominal_rate + plan.late_fee_daily_rate * 365 <= plan.default_cost_cap == Decimal("0.24")


@pytest.mark.parametrize("kwargs", [
    {"timing": "advance", "residual": "0.30", "term": 24},
    {"deposit_free": True, "financed": False, "term": 12},
])
def test_other_plans_reconcile(kwargs: dict[str, Any]) -> None:
    vehicle, q = make_quote(**kwargs)
    data = from_snapshot(snapshot_from(vehicle, q))
    assert data.schedule[-1].balance == q.residual
    assert data.plan.due_at_signing == q.due_at_signing


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(s: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        node: Any = s
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if key.isdigit():
            del node[int(key)]
        else:
            del node[key]
    return change


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(s: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        node: Any = s
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[int(key) if key.isdigit() else key] = value
    return change


REQUIRED = ["number", "generated_at", "signed", "lessor", "lessor.name", "lessor.credit_code", "lessor.address",
            "lessee.name", "lessee.id_number", "lessee.mobile", "lessee.address", "dealer.name",
            "vehicle.make", "vehicle.model", "vehicle.trim", "vehicle.vin", "vehicle.price", "vehicle.condition",
            "plan.term", "plan.timing", "plan.down_payment", "plan.financed_amount", "plan.residual",
            "plan.monthly_payment", "plan.apr", "plan.nominal_rate", "plan.deposit", "plan.deposit_free",
            "plan.total_interest", "plan.total_payable", "plan.due_at_signing", "schedule"]


@pytest.mark.parametrize("path", REQUIRED)
def test_missing_field_is_named(path: str) -> None:
    snapshot = example_snapshot()
    _drop(path)(snapshot)
    with pytest.raises(ContractDataError) as info:
        from_snapshot(snapshot)
    assert info.value.field == path


@pytest.mark.parametrize("path", ["schedule.4.due_date", "schedule.0.principal", "plan.insurance.1.premium",
                                  "plan.fees.0.financed"])
def test_missing_nested_field_is_named(path: str) -> None:
    snapshot = example_snapshot()
    _drop(path)(snapshot)
    with pytest.raises(ContractDataError) as info:
        from_snapshot(snapshot)
    parts = path.split(".")
    expected = f"{parts[0]}[{parts[1]}].{parts[2]}" if parts[0] == "schedule" else \
        f"{parts[0]}.{parts[1]}[{parts[2]}].{parts[3]}"
    assert info.value.field == expected


INVALID: list[tuple[str, object, str]] = [
    ("number", "LL 2026/1", "number"),
    ("generated_at", "2026-11-25T12:01:00", "generated_at"),  # no offset
    ("generated_at", "yesterday", "generated_at"),
    ("signed", "no", "signed"),
    ("lessor", "领航", "lessor"),
    ("lessor.credit_code", "91350100M000100Y44", "lessor.credit_code"),  # check character
    ("dealer.credit_code", "91350100M000100Y4", "dealer.credit_code"),
    ("lessee.name", "   ", "lessee.name"),
    ("lessee.name", "张\u0000三", "lessee.name"),
    ("lessee.id_number", ID_NUMBER[:-1] + ("0" if ID_NUMBER[-1] != "0" else "1"), "lessee.id_number"),
    ("lessee.mobile", "1380013800", "lessee.mobile"),
    ("vehicle.vin", "LGXCE6CB9N0123456", "vehicle.vin"),  # check digit
    ("vehicle.price", 139800.0, "vehicle.price"),  # a float: never
    ("vehicle.price", "139800.001", "vehicle.price"),
    ("vehicle.condition", "demo", "vehicle.condition"),
    ("plan.term", "36", "plan.term"),
    ("plan.term", True, "plan.term"),
    ("plan.timing", "monthly", "plan.timing"),
    ("plan.down_payment", "-1.00", "plan.down_payment"),
    ("plan.apr", 0.0712, "plan.apr"),
    ("plan.apr", "1.5", "plan.apr"),
    ("plan.nominal_rate", "5.99%", "plan.nominal_rate"),
    ("plan.deposit_free", 0, "plan.deposit_free"),
    ("plan.insurance", {"name": "交强险"}, "plan.insurance"),
    ("plan.late_fee_daily_rate", "0.05%", "plan.late_fee_daily_rate"),
    ("schedule.3.due_date", "2027-02-30", "schedule[3].due_date"),
    ("schedule.3.due_date", "2027/02/28", "schedule[3].due_date"),
    ("schedule.3.period", 3.0, "schedule[3].period"),
    ("schedule", [], "schedule"),
    # figures that do not agree with each other
    ("plan.financed_amount", "1.00", "plan.financed_amount"),
    ("plan.deposit", "0.00", "plan.deposit"),
    ("plan.deposit_free", True, "plan.deposit"),
    ("plan.term", 35, "schedule"),
    ("plan.total_interest", "1.00", "plan.total_interest"),
    ("plan.total_payable", "1.00", "plan.total_payable"),
    ("plan.due_at_signing", "1.00", "plan.due_at_signing"),
    ("plan.monthly_payment", "1.00", "plan.monthly_payment"),
    ("schedule.3.period", 5, "schedule[3].period"),
    ("schedule.3.due_date", "2026-12-30", "schedule[3].due_date"),
]


@pytest.mark.parametrize(("path", "value", "field"), INVALID)
def test_invalid_field_is_named(path: str, value: object, field: str) -> None:
    snapshot = example_snapshot()
    _set(path, value)(snapshot)
    with pytest.raises(ContractDataError) as info:
        from_snapshot(snapshot)
    assert info.value.field == field, info.value


def _fen(text: str, delta: str) -> str:
    return f"{Decimal(text) + Decimal(delta):.2f}"


def test_schedule_off_by_one_fen_is_refused() -> None:
    good = example_snapshot()
    from_snapshot(good)

    # One row's principal a fen more (its rent and balance follow): the principal parts no longer sum to
    # financed amount − residual.
    s = copy.deepcopy(good)
    row = s["schedule"][7]
    row["principal"], row["payment"] = _fen(row["principal"], "0.01"), _fen(row["payment"], "0.01")
    with pytest.raises(ContractDataError) as info:
        from_snapshot(s)
    assert info.value.field == "schedule"

    # A fen moved from one principal to the next: the sum holds, the row's rent does not.
    s = copy.deepcopy(good)
    a, b = s["schedule"][7], s["schedule"][8]
    a["principal"], b["principal"] = _fen(a["principal"], "0.01"), _fen(b["principal"], "-0.01")
    with pytest.raises(ContractDataError) as info:
        from_snapshot(s)
    assert info.value.field == "schedule[7].payment"

    # ... and with interest moved the other way so every rent is principal + interest: the balance breaks.
    s = copy.deepcopy(good)
    a, b = s["schedule"][7], s["schedule"][8]
    a["principal"], a["interest"] = _fen(a["principal"], "0.01"), _fen(a["interest"], "-0.01")
    b["principal"], b["interest"] = _fen(b["principal"], "-0.01"), _fen(b["interest"], "0.01")
    with pytest.raises(ContractDataError) as info:
        from_snapshot(s)
    assert info.value.field == "schedule[7].balance"

    # The closing balance a fen off the residual.
    s = copy.deepcopy(good)
    s["schedule"][-1]["balance"] = _fen(s["schedule"][-1]["balance"], "0.01")
    with pytest.raises(ContractDataError) as info:
        from_snapshot(s)
    assert info.value.field == f"schedule[{len(s['schedule']) - 1}].balance"

    # The residual a fen off the schedule.
    s = copy.deepcopy(good)
    s["plan"]["residual"] = _fen(s["plan"]["residual"], "0.01")
    with pytest.raises(ContractDataError):
        from_snapshot(s)


def test_uscc_check_character() -> None:
    # Codes printed on business licences (the GB 32100 example and two well-known companies).
    for code in ("91350100M000100Y43", "914403001922038216", "91330100716105852F"):
        assert uscc_check_char(code[:17]) == code[17]


# --------------------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(("amount", "words"), [
    # The PBOC's examples (《正确填写票据和结算凭证的基本规定》), the first form where two are allowed.
    ("1409.50", "人民币壹仟肆佰零玖元伍角"),
    ("6007.14", "人民币陆仟零柒元壹角肆分"),
    ("1680.32", "人民币壹仟陆佰捌拾元零叁角贰分"),
    ("107000.53", "人民币壹拾万柒仟元零伍角叁分"),
    ("16409.02", "人民币壹万陆仟肆佰零玖元零贰分"),
    ("325.04", "人民币叁佰贰拾伍元零肆分"),
    # and others
    ("0.00", "人民币零元整"),
    ("0.05", "人民币伍分"),
    ("0.50", "人民币伍角"),
    ("10.00", "人民币壹拾元整"),
    ("3000.00", "人民币叁仟元整"),
    ("100100.00", "人民币壹拾万零壹佰元整"),
    ("1000010.00", "人民币壹佰万零壹拾元整"),
    ("10007000.00", "人民币壹仟万柒仟元整"),
    ("100000001.00", "人民币壹亿零壹元整"),
    ("100100000.00", "人民币壹亿零壹拾万元整"),
    ("200000000.00", "人民币贰亿元整"),
    ("1000001000.00", "人民币壹拾亿零壹仟元整"),
    ("139800.00", "人民币壹拾叁万玖仟捌佰元整"),
    ("12345.67", "人民币壹万贰仟叁佰肆拾伍元陆角柒分"),
    ("999999999999.99", "人民币玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
])
def test_capital_numerals(amount: str, words: str) -> None:
    from contract.document.render import cny_upper

    assert cny_upper(Decimal(amount)) == words


def test_rates_and_times() -> None:
    from contract.document.render import beijing_time
    from contract.document.render import exact_percent
    from contract.document.render import percent

    assert percent(Decimal("0.071234")) == "7.12%"
    assert percent(Decimal("0.06225")) == "6.23%"  # half-up, as every disclosed figure
    assert percent(Decimal("0.0599")) == "5.99%"
    assert exact_percent(Decimal("0.0005")) == "0.05%"
    assert exact_percent(Decimal("0.00035")) == "0.035%"
    assert exact_percent(Decimal("0.02")) == "2.00%"
    assert beijing_time(datetime(2026, 11, 25, 16, 30, tzinfo=UTC)) == "2026-11-26 00:30 北京时间"
    from contract.document.render import cny_upper

    for out_of_range in ("-0.01", "1000000000000.00"):
        with pytest.raises(ValueError):
            cny_upper(Decimal(out_of_range))


# --------------------------------------------------------------------------------------- the PDF


class Rendering:
    """One rendered contract and poppler's view of it."""

    def __init__(self, data: ContractData, quote: Quote, tmp: Any) -> None:
        from contract.document.render import render

        self.data, self.quote = data, quote
        self.result = render(data)
        self.path = tmp / f"{data.number}-{int(data.signed)}.pdf"
        self.path.write_bytes(self.result.pdf)
        # -nodiag: the body text without the diagonal watermark; -raw: the watermark's letters too, in the
        # order they are drawn
        self.pages = self.text("-layout", "-nodiag").split("\f")[: self.result.pages]
        self.raw_pages = self.text("-raw").split("\f")[: self.result.pages]

    def text(self, *options: str) -> str:
        return subprocess.run(["pdftotext", *options, str(self.path), "-"], check=True, capture_output=True,
                              text=True, timeout=60).stdout

    @property
    def body(self) -> str:
        return "\n".join(self.pages)

    def watermark(self, page: int) -> str:
        """A page's text in drawing order without white space. pdftotext cannot lay out diagonal text (one
        letter a line), but -raw keeps the watermark's letters together, after the body it is drawn over."""
        return squash(self.raw_pages[page])


@pytest.fixture(scope="module")
def drafts(tmp_path_factory: pytest.TempPathFactory) -> Rendering:
    vehicle, q = make_quote(36)
    return Rendering(from_snapshot(snapshot_from(vehicle, q)), q, tmp_path_factory.mktemp("pdf"))


@pytest.fixture(scope="module")
def final(tmp_path_factory: pytest.TempPathFactory) -> Rendering:
    vehicle, q = make_quote(24, timing="advance", residual="0.30", deposit_free=True, financed=False)
    data = from_snapshot(snapshot_from(vehicle, q, signed=True, number="LL-2026-000124"))
    return Rendering(data, q, tmp_path_factory.mktemp("pdf"))


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


SECTIONS = ["第一条 合同当事人", "第二条 租赁车辆", "第三条 租赁期限", "第四条 租金及支付", "第五条 保证金",
            "第六条 保险", "第七条 所有权及留购", "第八条 违约责任", "第九条 提前结清", "第十条 GPS 定位装置",
            "第十一条 争议解决", "第十二条 其他约定", "第十三条 签署", "附件一：租金支付计划表"]


def test_pdf_has_every_section_and_the_parties(drafts: Rendering) -> None:
    body = squash(drafts.body)
    for heading in SECTIONS:
        assert squash(heading) in body, heading
    data = drafts.data
    for text in (LESSEE_NAME, ID_NUMBER, VIN, data.lessor.name, data.lessor.credit_code, data.dealer.name,
                 data.dealer.credit_code, "比亚迪", "秦PLUS DM-i", "2026款", "¥139,800.00",
                 "人民币壹拾叁万玖仟捌佰元整"):
        assert squash(text) in body, text
    assert drafts.result.pages >= 4


def test_apr_is_on_the_first_page_and_formatted(drafts: Rendering) -> None:
    apr = f"{(drafts.quote.apr * 100).quantize(Decimal('0.01'), rounding='ROUND_HALF_UP')}%"
    assert squash(f"年化利率（单利）{apr}") in squash(drafts.pages[0])
    assert squash(f"名义年利率）为{drafts.quote.request.annual_rate * 100:.2f}%") in squash(drafts.pages[0])
    # this plan: the fees, the interest-free deposit and the ¥100 purchase price push it above the 5.99% rate
    # (numpy-financial's IRR of the same monthly flows: 8.4534 %; 8.4021 % without the purchase price)
    assert apr == "8.45%"


def test_money_terms_match_the_quote(drafts: Rendering) -> None:
    q, body = drafts.quote, squash(drafts.body)
    for label, amount in [("首付款", q.request.down_payment), ("融资金额", q.financed_amount),
                          ("每期租金", q.monthly_payment), ("签约时应付", q.due_at_signing),
                          ("应付总额", q.total_payable), ("其中利息合计", q.total_interest)]:
        assert squash(f"{label}{format_cny(amount)}") in body, label
    assert f"保证金{format_cny(q.deposit)}" in body
    assert "逾期金额每日0.0493%" in body  # the late charge clause, within the cap on the cost of default
    assert "逾期违约金逾期金额每日0.0493%" in body and "合计不超过年24.00%" in body  # and on page one


def test_schedule_rows_and_totals(drafts: Rendering) -> None:
    q = drafts.quote
    annex = drafts.body[drafts.body.index("附件一"):]
    lines = [" ".join(line.split()) for line in annex.splitlines()]
    for row, inst in zip(q.schedule, drafts.data.schedule, strict=True):
        expected = " ".join([str(row.period), inst.due_date.isoformat(), format_cny(row.payment),
                             format_cny(row.principal), format_cny(row.interest), format_cny(row.balance)])
        assert expected in lines, expected
    totals = " ".join(["合计", format_cny(sum(r.payment for r in q.schedule)),
                       format_cny(sum(r.principal for r in q.schedule)), format_cny(q.total_interest)])
    assert totals in lines
    assert sum(r.principal for r in q.schedule) == q.financed_amount - q.residual


def test_watermark_on_every_page(drafts: Rendering, final: Rendering) -> None:
    for rendering, draft in ((drafts, True), (final, False)):
        assert len(rendering.raw_pages) == rendering.result.pages
        # the masked name (kyc.masking: 张三丰 → 张**) appears nowhere but in the watermark
        mark = f"{rendering.data.number}张**2026-11-2520:01北京时间"
        for page in range(rendering.result.pages):
            text = rendering.watermark(page)
            assert text.count(mark) == 2, (page, text[-200:])
            assert text.count(mark + "草稿/DRAFT") == (2 if draft else 0), (page, text[-200:])
        # the body (without diagonal text) never says 草稿
        assert "草稿" not in rendering.body
    assert "草稿" not in "".join(final.raw_pages)


def test_final_text_of_an_advance_deposit_free_plan(final: Rendering) -> None:
    body, q = squash(final.body), final.quote
    assert "本合同免收保证金（免押）" in body
    assert "每期期初支付（先付）" in body
    assert squash(f"尾付租金：{format_cny(q.residual)}") in body and "为本合同的最后一笔租金" in body
    assert squash(f"留购价：{format_cny(q.request.purchase_price)}") in body and "尾款" not in body
    assert "签约时一次性支付" in body
    # the advance plan's early-settlement rule: the principal outstanding after a rent paid in advance
    assert "上一期在附件一所列的“剩余本金”（首期为融资金额）减去该期租金" in body


def test_cjk_fonts_are_embedded(drafts: Rendering) -> None:
    fonts = subprocess.run(["pdffonts", str(drafts.path)], check=True, capture_output=True, text=True,
                           timeout=30).stdout.splitlines()[2:]
    cjk = [line for line in fonts if "CJK" in line]
    assert any("Serif-CJK-SC" in line for line in cjk) and any("Sans-CJK-SC" in line for line in cjk)
    for line in fonts:
        assert line.split()[-5] == "yes", line  # emb


def test_header_and_footer_on_every_page(drafts: Rendering) -> None:
    total = drafts.result.pages
    for i, page in enumerate(drafts.pages, 1):
        flat = squash(page)
        assert squash(f"合同编号：{drafts.data.number}") in flat
        assert f"第{i}页/共{total}页" in flat


def test_page_images(drafts: Rendering) -> None:
    from contract.document.render import page_images

    images = page_images(drafts.result.pdf, dpi=110)
    assert len(images) == drafts.result.pages
    for png in images:
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG"
            # A4 (595.28 × 841.89 pt) at 110 dpi, rounded up as pdftoppm does
            assert image.size == (math.ceil(595.28 / 72 * 110), math.ceil(841.89 / 72 * 110)) == (910, 1287)


def test_page_images_refuses_a_broken_pdf() -> None:
    from contract.document.render import RenderError
    from contract.document.render import page_images

    with pytest.raises(RenderError):
        page_images(b"%PDF-1.7 not really")


def test_signature_boxes_are_on_the_page_and_empty(drafts: Rendering, final: Rendering) -> None:
    for rendering in (drafts, final):
        boxes = rendering.result.signature_boxes
        assert set(boxes) == {"lessee", "lessor"}
        lessee, lessor = boxes["lessee"], boxes["lessor"]
        assert lessee.page == lessor.page < rendering.result.pages - 1  # before the annex
        a4_width, a4_height = 595.28, 841.89
        for box in (lessee, lessor):
            x1, y1, x2, y2 = box.box
            assert 0 < x1 < x2 < a4_width and 0 < y1 < y2 < a4_height
            assert round((x2 - x1) / 72 * 25.4) == 70 and round((y2 - y1) / 72 * 25.4) == 30  # the CSS size
            # pdftotext crops in points from the top left at 72 dpi: nothing but the diagonal watermark
            inside = rendering.text("-nodiag", "-f", str(box.page + 1), "-l", str(box.page + 1),
                                    "-x", str(int(x1) + 1), "-y", str(int(a4_height - y2) + 1),
                                    "-W", str(int(x2 - x1) - 2), "-H", str(int(y2 - y1) - 2))
            assert inside.strip("\f\n ") == "", inside
        assert lessee.x2 < lessor.x1  # side by side, not overlapping
        # the labels are right above the boxes
        above = rendering.text("-nodiag", "-f", str(lessee.page + 1), "-l", str(lessee.page + 1),
                               "-x", str(int(lessee.x1)), "-y", str(int(a4_height - lessee.y2) - 20),
                               "-W", str(int(lessor.x2 - lessee.x1)), "-H", "20")
        assert "承租人（签名）" in above and "出租人（盖章）" in above


def test_html_is_escaped() -> None:
    from contract.document.render import render_html

    snapshot = example_snapshot()
    snapshot["lessee"]["address"] = "<img src=x onerror=alert(1)> 北京"
    html = render_html(from_snapshot(snapshot))
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt; 北京" in html


def test_render_refuses_data_that_does_not_reconcile() -> None:
    import dataclasses

    from contract.document.render import render_html

    data = from_snapshot(example_snapshot())
    broken = dataclasses.replace(data, plan=dataclasses.replace(data.plan, total_interest=Decimal("1.00")))
    with pytest.raises(ContractDataError):
        render_html(broken)


def test_signature_boxes_take_pyhanko_fields(drafts: Rendering) -> None:
    """A signer can put visible signature fields exactly on the boxes (pyHanko SigFieldSpec)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import SigFieldSpec
    from pyhanko.sign.fields import append_signature_field

    boxes = drafts.result.signature_boxes
    writer = IncrementalPdfFileWriter(io.BytesIO(drafts.result.pdf))
    for signer, box in boxes.items():
        append_signature_field(writer, SigFieldSpec(sig_field_name=f"Signature_{signer}", on_page=box.page,
                                                    box=box.box))  # type: ignore[arg-type]  # floats are fine
    out = io.BytesIO()
    writer.write(out)
    reader = PdfFileReader(out)
    fields = {str(f["/T"]): f for f in (ref.get_object() for ref in reader.root["/AcroForm"]["/Fields"])}
    for signer, box in boxes.items():
        field = fields[f"Signature_{signer}"]
        assert [float(v) for v in field["/Rect"]] == pytest.approx(list(box.box), abs=0.01)
        page = reader.root["/Pages"]["/Kids"][box.page].get_object()
        assert any(annot.get_object() is field or annot.get_object().get("/T") == field["/T"]
                   for annot in page["/Annots"])


def test_signature_boxes_missing_from_the_layout() -> None:
    import weasyprint

    from contract.document.render import RenderError
    from contract.document.render import signature_boxes

    document = weasyprint.HTML(string='<p id="sig-lessee">only one</p>').render()
    with pytest.raises(RenderError, match="lessor"):
        signature_boxes(document)
