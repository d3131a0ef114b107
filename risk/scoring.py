"""The model port: the scorecard in ``risk/model`` behind a small interface the service and the tests share."""

from __future__ import annotations

from typing import Any
from typing import Protocol

from risk.rules import ModelView


class ModelInputError(ValueError):
    """The snapshot lacks what the model needs; ``field`` names it when the model said which."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


class Model(Protocol):
    """Scores one application snapshot."""

    version: str

    def assess(self, snapshot: dict[str, Any]) -> ModelView:
        """The score, PD and reasons for a snapshot in the API's shape; :class:`ModelInputError` if unusable."""
        ...


class ScorecardModel:
    """The trained scorecard artifact (``risk.model.scorecard.load``) and its feature mapping
    (``risk.model.features.from_snapshot``)."""

    def __init__(self) -> None:
        from risk.model.features import from_snapshot
        from risk.model.scorecard import load

        self._card = load()
        self._features = from_snapshot
        self.version = str(self._card.version)

    def assess(self, snapshot: dict[str, Any]) -> ModelView:
        try:
            features = self._features(snapshot)
        except ValueError as exc:  # names the missing or unusable field
            raise ModelInputError(str(exc), _field_of(str(exc))) from None
        result = self._card.score(features)
        return ModelView(score=int(result.score), pd=float(result.pd), contributions=tuple(result.contributions))


def _field_of(message: str) -> str:
    for word in message.replace("'", " ").replace('"', " ").split():
        if "." in word and word.split(".")[0] in ("applicant", "vehicle", "plan", "kyc", "device"):
            return word.strip(":,;")
    return "body"
