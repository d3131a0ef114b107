"""One SMS signature everywhere (issue 17 §8): every text goes out under the product's own name, 租程 (Leaseline), as
its screens call it by default, or the one the account has approved (a setting both adapters sign with); no second
brand left in the sources or the translations."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bff.config import Settings
from infra import sms
from infra.sms import SIGNATURE
from infra.sms import TEMPLATES

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "bff/translations/zh_Hans_CN/LC_MESSAGES/messages.po"


def test_the_signature_is_the_product_s_name_on_its_screens() -> None:
    with CATALOGUE.open("rb") as fh:
        catalogue = read_po(fh)
    assert SIGNATURE == catalogue.get("Leaseline").string == "租程"
    # wherever the screens name the product, they name it the same way
    named = [m for m in catalogue if isinstance(m.id, str) and "Leaseline" in m.id and m.string]
    assert named and all("领航租赁" not in m.string for m in named), [m.string for m in named]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_carries_the_one_signature(name: str) -> None:
    template = TEMPLATES[name]
    body = template.render(SIGNATURE, {p: "123456" for p in template.params})
    assert body.startswith(f"【{SIGNATURE}】") and body.count("【") == 1
    assert "【" not in template.text  # no template brings a signature of its own


def test_one_configurable_signature_is_used_by_both_adapters() -> None:
    """Tencent Cloud refuses a SignName not approved for the account: the one signature is a setting
    (``LEASELINE_SMS_SIGNATURE``, 租程 by default), and whichever adapter the settings choose signs with it."""
    from bff.bootstrap import sms_sender
    from bff.config import ConfigError

    assert Settings.from_env({}).sms_signature == SIGNATURE == "租程"
    settings = Settings.from_env({"LEASELINE_SMS_SIGNATURE": "租程汽车"})
    assert settings.sms_signature == "租程汽车"
    assert sms_sender(settings, None).signature == "租程汽车"  # type: ignore[arg-type,attr-defined]
    tencent = sms.TencentSms(secret_id="x", secret_key="y", app_id="1", template_ids={n: "1" for n in TEMPLATES},
                             signature="租程汽车")
    assert tencent.signature == "租程汽车"
    for bad in ("", "租", "【租程】", "租" * 13):
        with pytest.raises(ConfigError):
            Settings.from_env({"LEASELINE_SMS_SIGNATURE": bad})


def test_no_source_names_another_brand() -> None:
    sources = [*ROOT.glob("bff/**/*.py"), *ROOT.glob("infra/**/*.py"), *ROOT.glob("leaseline/**/*.py"),
               *ROOT.glob("pwa/templates/**/*.html"), ROOT / "README.md"]
    assert [str(p) for p in sources if "领航租赁" in p.read_text(encoding="utf-8")] == []
