"""Template filters: money as ¥ with Babel, rates as percentages, dates in Asia/Shanghai."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC
from datetime import datetime
from decimal import ROUND_HALF_UP
from decimal import Decimal

from flask import Flask
from flask import current_app
from flask import g
from flask_babel import format_datetime
from flask_babel import format_decimal
from flask_babel import format_timedelta
from flask_babel import get_locale
from flask_babel import lazy_gettext

from bff.auth.roles import allowed
from bff.services import services
from plans.money import format_cny


def money(value: Decimal | str | None) -> str:
    """``¥12,345.60``: CNY as both our locales write it (CLDR ``¤#,##0.00`` with ``,`` and ``.``).

    Formatted directly rather than through Babel's ``format_currency``, which costs ~0.2 ms a call and
    dominated the quote fragment (a 60-row schedule renders ~250 amounts); a test pins it to Babel's output.
    """
    if value is None:
        return "—"
    if isinstance(value, str):  # a frozen quote's amount ("6795.68")
        value = Decimal(value)
    return format_cny(value)


def fen(value: int | None) -> str:
    """An amount in fen (as payments keep them, like Stripe) as ``¥12,345.60``."""
    if value is None:
        return "—"
    return format_cny(Decimal(value) / 100)


def money0(value: Decimal | None) -> str:
    """Whole yuan, for prices: ``¥229,800``."""
    if value is None:
        return "—"
    return "¥" + format_decimal(value, format="#,##0")


def percent(value: Decimal | None, places: int = 2) -> str:
    """A fraction as a percentage: 0.0599 → ``5.99%``."""
    if value is None:
        return "—"
    # Round half-up here: Babel rounds half-even, which would understate 6.225% as 6.22%.
    shown = (value * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP) + 0
    pattern = "#,##0." + "0" * places if places else "#,##0"
    return format_decimal(shown, format=pattern) + "%"


def text(obj: object) -> str:
    """The zh/en text of a Reason or FieldError, in the current locale."""
    locale = str(get_locale() or "zh_CN")
    method = getattr(obj, "text", None)
    return method(locale) if callable(method) else str(obj)


def name(obj: object) -> str:
    """``name_zh`` or ``name_en`` of a catalogue object, by locale."""
    zh = str(get_locale() or "zh_CN").startswith("zh")
    return str(getattr(obj, "name_zh" if zh else "name_en"))


class VehicleNames:
    """The catalogue's localized vehicle names, by id and by the frozen ``make model`` label, kept a few minutes
    (a page lists many applications; the catalogue changes rarely)."""

    TTL = 300.0

    def __init__(self) -> None:
        self._names: dict[str, tuple[str, str]] = {}
        self._loaded = float("-inf")
        self._lock = threading.Lock()

    def lookup(self, key: str) -> tuple[str, str] | None:
        """``(name_zh, name_en)`` of the vehicle with id or label ``key``, or None."""
        with self._lock:
            if time.monotonic() - self._loaded > self.TTL:
                names: dict[str, tuple[str, str]] = {}
                for v in services().plans.vehicles():
                    names[f"{v.make} {v.model}"] = names[v.id] = (v.name_zh, v.name_en)
                self._names, self._loaded = names, time.monotonic()
            return self._names.get(key)


def vehicle_name(obj: object) -> str:
    """An application's vehicle (or anything with ``vehicle_label`` and maybe ``vehicle_id``) by its catalogue name
    in the UI language (比亚迪 汉EV / BYD Han EV); the label frozen at creation when the catalogue no longer has it."""
    label = str(getattr(obj, "vehicle_label", obj) or "")
    cache: VehicleNames = current_app.extensions.setdefault("vehicle_names", VehicleNames())
    found = cache.lookup(str(getattr(obj, "vehicle_id", "") or "")) or cache.lookup(label)
    if found is None:
        return label
    return found[0] if str(get_locale() or "zh_CN").startswith("zh") else found[1]


_FIGURES = re.compile(r"\s*[（(](?:距离|distance)\s[^）)]*[）)]")


def without_figures(value: str) -> str:
    """A face-check line without its measured distance, for customers: 人脸比对一致（距离 0.363 ≤ 0.6） →
    人脸比对一致 (the figures mean something to staff only)."""
    return _FIGURES.sub("", str(value))


ROLE_NAMES = {
    "dealer_admin": lazy_gettext("Dealer admin"),
    "sales": lazy_gettext("Sales"),
    "risk_officer_t1": lazy_gettext("Risk officer (tier 1)"),
    "risk_officer_t2": lazy_gettext("Risk officer (tier 2)"),
    "ops_admin": lazy_gettext("Operations admin"),
    "auditor": lazy_gettext("Auditor"),
}


MODULE_NAMES = {
    "basic_signing": lazy_gettext("Basic signing (always on)"),
    "inventory_finance": lazy_gettext("Inventory finance"),
    "residual_prediction": lazy_gettext("Residual value prediction"),
    "telemetry": lazy_gettext("Vehicle telemetry"),
}


def module(code: str) -> str:
    return str(MODULE_NAMES.get(code, code))


def role(code: str) -> str:
    return str(ROLE_NAMES.get(code, code))


def when(value: datetime | str | None) -> str:
    """A UTC timestamp (or a service's ISO 8601 string) shown in Asia/Shanghai (BABEL_DEFAULT_TIMEZONE), e.g.
    2026-11-25 23:05:09."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value is None:
        return "—"
    return format_datetime(value, "yyyy-MM-dd HH:mm:ss")


def age(value: datetime | None) -> str:
    """How long ago, in words of the UI language (e.g. 3 小时 / 3 hours)."""
    if value is None:
        return "—"
    return format_timedelta(datetime.now(UTC) - value, threshold=1.0, granularity="minute")


def register(app: Flask) -> None:
    @app.context_processor
    def _locale() -> dict[str, object]:
        return {"is_zh": str(get_locale() or "zh_CN").startswith("zh")}

    app.add_template_filter(money)
    app.add_template_filter(money0)
    app.add_template_filter(fen)
    app.add_template_filter(percent)
    app.add_template_filter(text)
    app.add_template_filter(name)
    app.add_template_filter(vehicle_name)
    app.add_template_filter(without_figures)
    app.add_template_filter(role)
    app.add_template_filter(module)
    app.add_template_filter(when)
    app.add_template_filter(age)

    @app.context_processor
    def _can() -> dict[str, object]:
        def can(permission: str) -> bool:
            user = g.get("user")
            return user is not None and allowed(user, permission)

        return {"can": can}
