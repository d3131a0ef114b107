"""Why a KYC check failed, in both UI languages. Every check of the package reports :class:`Reason`s."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    """One problem found by a check: a stable ``code`` for programs, a message for people (zh-CN and en)."""

    code: str
    text_zh: str
    text_en: str

    def text(self, locale: str) -> str:
        """The message in ``locale`` (``zh…`` gives Chinese, anything else English)."""
        return self.text_zh if locale.lower().startswith("zh") else self.text_en

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "text_zh": self.text_zh, "text_en": self.text_en}


@dataclass(frozen=True)
class Check:
    """One explained check inside a larger verdict (face match, liveness): what was measured and whether it
    passed, with a message for people in both UI languages."""

    code: str
    passed: bool
    value: float | int | str | None
    text_zh: str
    text_en: str

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "passed": self.passed, "value": self.value,
                "text_zh": self.text_zh, "text_en": self.text_en}
