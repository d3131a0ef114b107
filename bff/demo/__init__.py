"""Demo data: the catalogue that ``leaseline demo`` and ``make run`` load (idempotent)."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from importlib import resources

from infra.accounts import SqlAccounts
from plans.policy import Category
from plans.product import Vehicle


def demo_vehicles() -> list[Vehicle]:
    """The vehicles of ``bff/demo/catalogue.toml``."""
    data = tomllib.loads(resources.files("bff.demo").joinpath("catalogue.toml").read_text(encoding="utf-8"))
    return [
        Vehicle(
            id=v["id"], make=v["make"], model=v["model"], name_zh=v["name_zh"], name_en=v["name_en"],
            price=Decimal(v["price"]),
            category=Category(v.get("condition", "new"), v.get("usage", "personal"), v.get("powertrain", "ice")),
            seats=int(v.get("seats", 5)), body=v["body"], colour=v["colour"], year=int(v.get("year", 2026)),
            mileage_km=int(v.get("mileage_km", 0)), rate_subsidy=Decimal(v.get("rate_subsidy", "0")),
        )
        for v in data["vehicle"]
    ]


#: Development credentials, printed by ``leaseline demo``; never use these outside a demo database.
DEMO_PASSWORD = "Leaseline-demo-2026"
DEMO_TOTP_SECRET = "LEASELINEDEMOTOTPSECRET234567ABC"  # base32; lessor roles need a TOTP code from it
DEMO_RECOVERY_CODES = ("DEMO-RECOVERY-0001", "DEMO-RECOVERY-0002", "DEMO-RECOVERY-0003")
GROUP = "华东汽车集团 East China Auto Group"
DEALERS = (
    ("pudong", "上海浦东 4S 店", "上海"),
    ("xihu", "杭州西湖 4S 店", "杭州"),
)
#: their registered details for contracts (made-up codes with valid GB 32100 check characters)
DEALER_DETAILS = {
    "pudong": ("91310115MA1K4BXE2T", "上海市浦东新区张杨路 1000 号"),
    "xihu": ("91330106MA2H0F6C3F", "浙江省杭州市西湖区文三路 500 号"),
}
#: each person's name is what the screens, histories and signed records (交车经办人) show: a name, as a Chinese dealer's
#: staff are named, never a role in English (the role is on the account page; the e-mail says it too)
PEOPLE = (  # (email, name, role, dealer key or None)
    ("admin.pudong@demo.leaseline.cn", "王经理", "dealer_admin", "pudong"),
    ("sales.pudong@demo.leaseline.cn", "李销售", "sales", "pudong"),
    ("admin.xihu@demo.leaseline.cn", "赵经理", "dealer_admin", "xihu"),
    ("sales.xihu@demo.leaseline.cn", "陈销售", "sales", "xihu"),
    ("risk1@demo.leaseline.cn", "周风控", "risk_officer_t1", None),
    ("risk2@demo.leaseline.cn", "吴风控", "risk_officer_t2", None),
    # tier-2 cases need two different tier-2 officers (four eyes)
    ("risk3@demo.leaseline.cn", "冯风控", "risk_officer_t2", None),
    # a month of the books closes on two different ops users' word (four eyes: one asks, the other approves)
    ("finance@demo.leaseline.cn", "钱财务", "ops_admin", None),
    ("ops@demo.leaseline.cn", "郑运营", "ops_admin", None),
    ("auditor@demo.leaseline.cn", "孙审计", "auditor", None),
)


def seed_people(accounts: SqlAccounts) -> list[tuple[str, str, str | None]]:
    """One lessor group, two dealers and one account per role (idempotent). Returns (email, role, dealer)."""
    from bff.auth.passwords import hash_secret
    from bff.auth.roles import TOTP_REQUIRED

    group_id = accounts.ensure_group(GROUP)
    dealer_ids = {key: accounts.ensure_dealer(group_id, name, city, ["basic_signing"]) for key, name, city in DEALERS}
    for key, (code, address) in DEALER_DETAILS.items():
        accounts.set_dealer_details(dealer_ids[key], code, address)
    password_hash = hash_secret(DEMO_PASSWORD)
    recovery = [hash_secret(code) for code in DEMO_RECOVERY_CODES]
    seeded = []
    for email, name, role, dealer in PEOPLE:
        lessor = role in TOTP_REQUIRED
        user_id = accounts.ensure_user(email, name, role, dealer_ids[dealer] if dealer else None, password_hash,
                                       DEMO_TOTP_SECRET if lessor else None, recovery if lessor else [])
        found = accounts.get(user_id)
        if found is not None and found.name.startswith(f"{name} ("):  # seeded earlier as "李销售 (Pudong sales)"
            accounts.set_name(user_id, name)
        seeded.append((email, role, dealer))
    return seeded
