"""The lessor's product (rate card, insurance tariff, fees, option steps) and the vehicles it applies to."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from functools import cache
from importlib import resources

from plans.errors import MESSAGES
from plans.errors import FieldError
from plans.errors import PlanInputError
from plans.errors import error
from plans.money import ZERO
from plans.money import fen
from plans.policy import Category
from plans.policy import Policy
from plans.policy import Reason
from plans.quote import Charge
from plans.quote import Quote
from plans.quote import QuoteRequest
from plans.quote import Timing
from plans.quote import quote


@dataclass(frozen=True)
class Vehicle:
    """A vehicle of the catalogue as the maths sees it."""

    id: str
    make: str
    model: str
    name_zh: str
    name_en: str
    price: Decimal
    category: Category = field(default_factory=Category)
    seats: int = 5
    body: str = "sedan"
    colour: str = "#888888"
    year: int = 2026
    mileage_km: int = 0
    #: Dealer rate subsidy (贴息), subtracted from the product's rate (never below zero).
    rate_subsidy: Decimal = ZERO


@dataclass(frozen=True)
class Coverage:
    code: str
    name_zh: str
    name_en: str
    base: Decimal = ZERO
    ratio: Decimal = ZERO
    per_seat: Decimal = ZERO
    commercial_base: Decimal | None = None
    seven_seat_base: Decimal | None = None
    group: str | None = None

    def premium(self, vehicle: Vehicle) -> Decimal:
        """First-year premium for ``vehicle``, to the fen."""
        base = self.base
        if vehicle.category.usage == "commercial" and self.commercial_base is not None:
            base = self.commercial_base
        elif vehicle.seats >= 7 and self.seven_seat_base is not None:
            base = self.seven_seat_base
        return fen(base + self.ratio * vehicle.price + self.per_seat * vehicle.seats)


@dataclass(frozen=True)
class CoverageGroup:
    """Coverages of which a plan takes at most one (e.g. 三者 ¥1M or ¥2M)."""

    code: str
    name_zh: str
    name_en: str


#: how interest accrues by the day (the daily rate is the annual one divided by 360 or 365)
DAY_COUNTS = ("ACT/360", "ACT/365")
#: a deposit-free (免押) lease's card hold lasts this long on the card network (Stripe: 7 days for a card hold
#: without extended authorisation); the contract and the payment page state it, the payments code applies it
CARD_HOLD_DAYS = 7
#: the bounds of the early-settlement terms a product (and so a contract) may state
MAX_EARLY_SETTLEMENT_FEE = Decimal("0.10")
MAX_NOTICE_WORKING_DAYS = 30


@dataclass(frozen=True)
class EarlySettlement:
    """Early settlement (提前结清) as a product's contracts state it: on any day of the term, asked for
    ``notice_working_days`` ahead; the principal outstanding after the last rent paid, the interest accrued on it
    since that rent (at the contract rate, actual days, ``day_count``), and a fee of ``fee_rate`` of that principal
    (0 allowed). The servicing of the lease computes the quote from these terms, frozen with the contract."""

    fee_rate: Decimal = Decimal("0.03")
    day_count: str = "ACT/360"  # PBOC 《人民币利率管理规定》 art. 20: 日利率 = 年利率 ÷ 360
    notice_working_days: int = 5

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.fee_rate <= MAX_EARLY_SETTLEMENT_FEE:
            raise ValueError(f"early settlement fee_rate must be from 0 to {MAX_EARLY_SETTLEMENT_FEE}")
        if self.day_count not in DAY_COUNTS:
            raise ValueError(f"early settlement day_count must be one of {', '.join(DAY_COUNTS)}")
        if not 0 <= self.notice_working_days <= MAX_NOTICE_WORKING_DAYS:
            raise ValueError(f"early settlement notice_working_days must be from 0 to {MAX_NOTICE_WORKING_DAYS}")

    @property
    def days_in_year(self) -> int:
        """The divisor of the daily rate: 360 for ACT/360, 365 for ACT/365."""
        return int(self.day_count.split("/")[1])


#: the least a product may ask before it ends a lease for unpaid rent: the Supreme People's Court's default rule
#: (融资租赁解释 art. 5(2): two rents, or 15 % of all rent, unpaid after a demand and a reasonable period). A contract
#: may agree other grounds; a consumer lease of ours is never stricter than the court's default (our policy)
MIN_OVERDUE_PERIODS = 2
MIN_OVERDUE_SHARE = Decimal("0.15")


@dataclass(frozen=True)
class DefaultRemedies:
    """What the lessor may do when the lessee does not pay, as a product's contracts state it (Civil Code art. 752:
    after a demand and a reasonable period, *either* all unpaid rent *or* termination and the car back; 融资租赁解释
    arts. 5, 10–12; 担保制度解释 art. 65). The servicing of the lease acts on these terms, frozen with the contract.

    - ``overdue_periods`` / ``overdue_share``: the rents (or the share of all rent) unpaid before either route opens;
    - ``demand_cure_days``: the reasonable period after the written demand (催告) in which the lessee may still pay;
    - ``redemption_days``: after a recovered car is valued, the days the lessee has to pay what is owed and take it
      back before it is sold;
    - ``appraisal_objection_days``: the days the lessee has to ask for a second appraisal;
    - ``surplus_refund_working_days``: the sale's surplus over what is owed goes back to the lessee within these;
    - ``gps_cure_days``: a GPS device removed or disabled is a breach to be put right within these days of notice,
      not by itself a ground to end the lease."""

    overdue_periods: int = 2
    overdue_share: Decimal = Decimal("0.15")
    demand_cure_days: int = 15
    redemption_days: int = 15
    appraisal_objection_days: int = 7
    surplus_refund_working_days: int = 15
    gps_cure_days: int = 7

    def __post_init__(self) -> None:
        if self.overdue_periods < MIN_OVERDUE_PERIODS or self.overdue_share < MIN_OVERDUE_SHARE:
            raise ValueError(f"default overdue_periods must be at least {MIN_OVERDUE_PERIODS} and overdue_share "
                             f"at least {MIN_OVERDUE_SHARE} (融资租赁解释 art. 5)")
        if self.overdue_share >= 1:
            raise ValueError("default overdue_share must be below 1")
        _check_days("default", self, DEFAULT_DAY_BOUNDS)


#: the bounds of each period of days a product's terms may state (field, least, most): the product file is refused
#: at load outside them, and the contract service refuses a snapshot outside them (contract/document/model.py)
DEFAULT_DAY_BOUNDS = (("demand_cure_days", 7, 60), ("redemption_days", 7, 60), ("appraisal_objection_days", 3, 30),
                      ("surplus_refund_working_days", 1, 30), ("gps_cure_days", 3, 30))
END_OF_TERM_DAY_BOUNDS = (("notice_days", 7, 90), ("settle_days", 1, 30))
TITLE_DAY_BOUNDS = (("mortgage_days", 1, 60), ("pboc_registration_working_days", 1, 20),
                    ("release_working_days", 1, 30))
#: the bounds of a card hold's life a contract may state
CARD_HOLD_DAY_BOUNDS = (1, 30)


def _check_days(kind: str, terms: object, bounds: tuple[tuple[str, int, int], ...]) -> None:
    for name, low, high in bounds:
        if not low <= getattr(terms, name) <= high:
            raise ValueError(f"{kind} {name} must be from {low} to {high}")


#: the most a product may ask for the title at the end of the term: a nominal price, never a hidden balloon
MAX_PURCHASE_PRICE = Decimal("1000")


#: the most a product may charge per km over a returned car's mileage allowance, and for one damage item (CNY)
MAX_EXCESS_MILEAGE_RATE = Decimal("5")
MAX_DAMAGE_CHARGE = Decimal("50000")


@dataclass(frozen=True)
class DamageItem:
    """A damage the dealer may find on a returned car, and its fixed charge (CNY, to the fen)."""

    code: str
    name_zh: str
    name_en: str
    charge: Decimal


@dataclass(frozen=True)
class ReturnTerms:
    """What a returned car is charged (issue 18 §6; product 2026.12-3 on): ``excess_mileage_rate`` CNY per km driven
    over the allowance (``allowance_km_per_year`` × the term's years, rounded up to the km: in the lessee's favour),
    and each damage item the dealer's inspection finds, at its fixed charge."""

    allowance_km_per_year: int = 20000
    excess_mileage_rate: Decimal = Decimal("0.50")
    damage_items: tuple[DamageItem, ...] = ()

    def __post_init__(self) -> None:
        if not 1000 <= self.allowance_km_per_year <= 200_000:
            raise ValueError("return allowance_km_per_year must be from 1000 to 200000")
        if not Decimal(0) <= self.excess_mileage_rate <= MAX_EXCESS_MILEAGE_RATE or self.excess_mileage_rate != fen(
                self.excess_mileage_rate):
            raise ValueError(f"return excess_mileage_rate must be from 0 to {MAX_EXCESS_MILEAGE_RATE}, to the fen")
        codes = [d.code for d in self.damage_items]
        if len(set(codes)) != len(codes):
            raise ValueError("return damage item codes must be unique")
        for item in self.damage_items:
            if not Decimal(0) < item.charge <= MAX_DAMAGE_CHARGE or item.charge != fen(item.charge):
                raise ValueError(f"damage item {item.code}: charge must be above 0, at most {MAX_DAMAGE_CHARGE}")

    def item(self, code: str) -> DamageItem | None:
        return next((d for d in self.damage_items if d.code == code), None)


def parse_return_terms(data: object) -> ReturnTerms | None:
    """A product file's ``[end_of_term.return]`` (None when absent: product versions before 2026.12-3)."""
    if data is None:
        return None
    assert isinstance(data, dict)
    damage = data.get("damage", {})
    assert isinstance(damage, dict)
    return ReturnTerms(
        allowance_km_per_year=int(data.get("allowance_km_per_year", 20000)),
        excess_mileage_rate=Decimal(str(data.get("excess_mileage_rate", "0.50"))),
        damage_items=tuple(DamageItem(str(code), str(d["name_zh"]), str(d["name_en"]), Decimal(str(d["charge"])))
                           for code, d in damage.items()))


@dataclass(frozen=True)
class EndOfTerm:
    """The end of the term as a product's contracts state it. The balloon is a rent (尾付租金), owed whatever the
    lessee chooses; the title passes for a nominal purchase price (留购价, Civil Code art. 759 lets a nominal price
    stand for the title passing); the lessee says which choice ``notice_days`` before the end. A returned car is
    valued as a recovered one (independent appraisal, :class:`DefaultRemedies`) and its value offsets the final rent;
    the difference is paid, or refunded, within ``settle_days``."""

    purchase_price: Decimal = Decimal("100")
    notice_days: int = 30
    settle_days: int = 15
    #: what a returned car is charged (None: a product version before they were stated)
    returns: ReturnTerms | None = None

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.purchase_price <= MAX_PURCHASE_PRICE or self.purchase_price != fen(
                self.purchase_price):
            raise ValueError(f"end of term purchase_price must be from 0 to {MAX_PURCHASE_PRICE}, to the fen")
        _check_days("end of term", self, END_OF_TERM_DAY_BOUNDS)


#: how the lease is structured: a direct lease (直租), the lessor buying the car from the dealer it leases it out
#: from; a sale-and-leaseback (回租) would need its own contract text and is not offered
STRUCTURES = ("direct",)
#: in whose name the car is registered at the vehicle registration office during the term
REGISTERED_IN = ("lessee", "lessor")


@dataclass(frozen=True)
class Title:
    """Who owns the car, in whose name it is registered and how the lessor's ownership is made to hold against
    third parties, as a product's contracts state it (issue 16 §2).

    A direct lease: the dealer invoices the lessor (机动车销售统一发票, buyer: the lessor), the lessor owns the car
    for the whole term. Registered in the lessee's name (the usual case for a consumer, for plates and local
    rules), the car is mortgaged to the lessor at the registration office within ``mortgage_days`` of the plates,
    and the lessor keeps the registration certificate. Either way the lessor registers the lease on the PBOC credit
    reference centre's unified movable-property registration system within ``pboc_registration_working_days`` of
    delivery — unregistered, its ownership does not hold against a buyer in good faith or the lessee's other
    creditors (Civil Code art. 745) — and cancels it within ``release_working_days`` of the last payment."""

    structure: str = "direct"
    registered_in: str = "lessee"
    mortgage_days: int = 30
    pboc_registration_working_days: int = 10
    release_working_days: int = 15

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise ValueError(f"title structure must be one of {', '.join(STRUCTURES)}")
        if self.registered_in not in REGISTERED_IN:
            raise ValueError(f"title registered_in must be one of {', '.join(REGISTERED_IN)}")
        _check_days("title", self, TITLE_DAY_BOUNDS)


#: who may receive a fee the lessee pays: the lessor, or the dealer (for a service it renders, e.g. fitting a device)
PAYEES = ("lessor", "dealer")


@dataclass(frozen=True)
class Fee:
    code: str
    name_zh: str
    name_en: str
    amount: Decimal = ZERO
    ratio: Decimal = ZERO
    #: what the fee pays for and who receives it, as the contract states them (issue 16 §8)
    purpose_zh: str = ""
    payee: str = "lessor"

    def __post_init__(self) -> None:
        if self.payee not in PAYEES:
            raise ValueError(f"fee {self.code} payee must be one of {', '.join(PAYEES)}")

    def for_vehicle(self, vehicle: Vehicle) -> Decimal:
        return fen(self.amount + self.ratio * vehicle.price)


@dataclass(frozen=True)
class Pack:
    code: str
    name_zh: str
    name_en: str
    coverages: frozenset[str]


@dataclass(frozen=True)
class PlanChoice:
    """What the customer chooses for one vehicle. Ratios are of the vehicle price."""

    down_ratio: Decimal
    term: int
    insurance: frozenset[str]
    residual_ratio: Decimal = ZERO
    deposit_free: bool = False
    extras_financed: bool = True
    timing: Timing = "arrears"


@dataclass(frozen=True)
class PlanResult:
    """A priced plan and every reason the policy refuses it (none: allowed)."""

    vehicle: Vehicle
    choice: PlanChoice
    quote: Quote
    reasons: tuple[Reason, ...]
    policy_version: str
    product_version: str

    @property
    def allowed(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class Product:
    version: str
    name_zh: str
    name_en: str
    rates: dict[str, dict[int, Decimal]]
    down_ratios: tuple[Decimal, ...]
    terms: tuple[int, ...]
    residual_ratios: tuple[Decimal, ...]
    deposit_ratio: Decimal
    fees: tuple[Fee, ...]
    coverages: dict[str, Coverage]
    packs: dict[str, Pack]
    coverage_groups: dict[str, CoverageGroup]
    #: the late charge (逾期违约金) a day on an overdue amount, before the policy's cap on the cost of default
    late_fee_daily_rate: Decimal = Decimal("0.0005")
    early_settlement: EarlySettlement = EarlySettlement()
    default_remedies: DefaultRemedies = DefaultRemedies()
    end_of_term: EndOfTerm = EndOfTerm()
    title: Title = Title()

    @staticmethod
    def rate_class(vehicle: Vehicle) -> str:
        if vehicle.category.condition == "used":
            return "used"
        return "commercial" if vehicle.category.usage == "commercial" else "retail"

    def rate_for(self, vehicle: Vehicle, term: int) -> Decimal:
        """The customer's nominal annual rate for ``term``: the rate card's, less any dealer subsidy.

        A term between listed terms takes the rate of the next listed term up (the longer, dearer one).
        """
        card = self.rates[self.rate_class(vehicle)]
        listed = [t for t in sorted(card) if t >= term] or [max(card)]
        return max(card[listed[0]] - vehicle.rate_subsidy, ZERO)

    def charges(self, vehicle: Vehicle, coverages: frozenset[str], financed: bool) -> tuple[
        tuple[Charge, ...], tuple[Charge, ...]
    ]:
        """(fees, premiums) for ``vehicle`` with the chosen coverages, all financed or all upfront."""
        fees = tuple(Charge(f.code, f.for_vehicle(vehicle), financed) for f in self.fees)
        premiums = tuple(
            Charge(code, self.coverages[code].premium(vehicle), financed)
            for code in sorted(coverages)
        )
        return fees, premiums

    def check_coverages(self, coverages: frozenset[str]) -> None:
        """Refuse unknown coverage codes and two coverages of one group (e.g. 三者 ¥1M and ¥2M)."""
        unknown = sorted(coverages - set(self.coverages))
        if unknown:
            raise PlanInputError([error("insurance", "unknown_option", value=unknown[0][:20])])
        seen: dict[str, Coverage] = {}
        for code in sorted(coverages):
            cover = self.coverages[code]
            if cover.group is None:
                continue
            if cover.group in seen:
                other = seen[cover.group]
                raise PlanInputError([FieldError(
                    "insurance", "exclusive_coverages",
                    MESSAGES["exclusive_coverages"][0].format(a=other.name_zh, b=cover.name_zh),
                    MESSAGES["exclusive_coverages"][1].format(a=other.name_en, b=cover.name_en))])
            seen[cover.group] = cover

    def groups(self) -> tuple[list[Coverage], dict[CoverageGroup, list[Coverage]]]:
        """(coverages chosen on their own, {group: its mutually exclusive coverages}) in file order."""
        single = [c for c in self.coverages.values() if c.group is None]
        grouped: dict[CoverageGroup, list[Coverage]] = {}
        for c in self.coverages.values():
            if c.group is not None:
                grouped.setdefault(self.coverage_groups[c.group], []).append(c)
        return single, grouped

    def request_for(self, vehicle: Vehicle, choice: PlanChoice) -> QuoteRequest:
        """The exact quote request for ``choice`` on ``vehicle``; raises PlanInputError for bad coverages."""
        self.check_coverages(choice.insurance)
        fees, premiums = self.charges(vehicle, choice.insurance, choice.extras_financed)
        return QuoteRequest(
            price=vehicle.price,
            down_payment=fen(choice.down_ratio * vehicle.price),
            term=choice.term,
            annual_rate=self.rate_for(vehicle, choice.term),
            residual_ratio=choice.residual_ratio,
            timing=choice.timing,
            fees=fees,
            premiums=premiums,
            deposit_ratio=ZERO if choice.deposit_free else self.deposit_ratio,
            purchase_price=self.end_of_term.purchase_price,
        )

    def evaluate(self, vehicle: Vehicle, choice: PlanChoice, policy: Policy) -> PlanResult:
        """Price ``choice`` exactly and check it against ``policy``."""
        result = quote(self.request_for(vehicle, choice))
        reasons = policy.check(
            vehicle.category,
            down_ratio=choice.down_ratio,
            term=choice.term,
            residual_ratio=choice.residual_ratio,
            apr=result.apr,
            insurance=choice.insurance,
            deposit_free=choice.deposit_free,
        )
        return PlanResult(vehicle, choice, result, reasons, policy.version, self.version)


def parse_product(data: dict[str, object]) -> Product:
    """Build a :class:`Product` from its parsed TOML document."""

    def dec(table: dict[str, object], key: str) -> Decimal:
        return Decimal(str(table.get(key, "0")))

    rates_raw = data["rates"]
    options = data["options"]
    fees_raw = data["fees"]
    insurance_raw = data["insurance"]
    packs_raw = data["packs"]
    groups_raw = data.get("insurance_groups", {})
    default_terms = data.get("default_terms", {})
    early = data.get("early_settlement", {})
    end = data.get("end_of_term", {})
    title = data.get("title", {})
    assert isinstance(end, dict) and isinstance(title, dict)
    assert isinstance(default_terms, dict) and isinstance(early, dict)
    assert isinstance(rates_raw, dict) and isinstance(options, dict) and isinstance(fees_raw, dict)
    assert isinstance(insurance_raw, dict) and isinstance(packs_raw, dict) and isinstance(groups_raw, dict)
    rates = {cls: {int(t): Decimal(v) for t, v in card.items()} for cls, card in rates_raw.items()}
    for card in rates.values():
        for rate in card.values():
            if rate != rate.quantize(Decimal("0.0001")):
                raise ValueError(f"rate {rate} has more than 4 decimals")
    coverages = {
        code: Coverage(
            code, c["name_zh"], c["name_en"], dec(c, "base"), dec(c, "ratio"), dec(c, "per_seat"),
            Decimal(c["commercial_base"]) if "commercial_base" in c else None,
            Decimal(c["seven_seat_base"]) if "seven_seat_base" in c else None,
            c.get("group"),
        )
        for code, c in insurance_raw.items()
    }
    product = Product(
        version=str(data["version"]),
        name_zh=str(data["name_zh"]),
        name_en=str(data["name_en"]),
        rates=rates,
        down_ratios=tuple(Decimal(x) for x in options["down_ratios"]),
        terms=tuple(int(x) for x in options["terms"]),
        residual_ratios=tuple(Decimal(x) for x in options["residual_ratios"]),
        deposit_ratio=Decimal(options["deposit_ratio"]),
        fees=tuple(Fee(code, f["name_zh"], f["name_en"], dec(f, "amount"), dec(f, "ratio"),
                       purpose_zh=str(f.get("purpose_zh", "")), payee=str(f.get("payee", "lessor")))
                   for code, f in fees_raw.items()),
        coverages=coverages,
        packs={code: Pack(code, p["name_zh"], p["name_en"], frozenset(p["coverages"]))
               for code, p in packs_raw.items()},
        coverage_groups={code: CoverageGroup(code, g["name_zh"], g["name_en"])
                         for code, g in groups_raw.items()},
        late_fee_daily_rate=Decimal(str(default_terms.get("late_fee_daily_rate", "0.0005"))),
        early_settlement=EarlySettlement(fee_rate=Decimal(str(early.get("fee_rate", "0.03"))),
                                         day_count=str(early.get("day_count", "ACT/360")),
                                         notice_working_days=int(early.get("notice_working_days", 5))),
        default_remedies=DefaultRemedies(
            overdue_periods=int(default_terms.get("overdue_periods", 2)),
            overdue_share=Decimal(str(default_terms.get("overdue_share", "0.15"))),
            **{name: int(default_terms[name]) for name, _, _ in DEFAULT_DAY_BOUNDS if name in default_terms}),
        end_of_term=EndOfTerm(purchase_price=Decimal(str(end.get("purchase_price", "100"))),
                              notice_days=int(end.get("notice_days", 30)), settle_days=int(end.get("settle_days", 15)),
                              returns=parse_return_terms(end.get("return"))),
        title=Title(structure=str(title.get("structure", "direct")),
                    registered_in=str(title.get("registered_in", "lessee")),
                    mortgage_days=int(title.get("mortgage_days", 30)),
                    pboc_registration_working_days=int(title.get("pboc_registration_working_days", 10)),
                    release_working_days=int(title.get("release_working_days", 15))),
    )
    for pack in product.packs.values():
        product.check_coverages(pack.coverages)  # a malformed product file fails at load, not per quote
    return product


@cache
def load_product(name: str = "standard") -> Product:
    """Load ``plans/products/<name>.toml`` (cached)."""
    text = resources.files("plans").joinpath("products", f"{name}.toml").read_text(encoding="utf-8")
    return parse_product(tomllib.loads(text))
