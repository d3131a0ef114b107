"""The lease contract as a document: its data (:mod:`contract.document.model`, pure) and its rendering to
PDF and page images (:mod:`contract.document.render`, WeasyPrint and poppler); its vehicle handover record's
data (:mod:`contract.document.handover`, pure), rendered by the same engine.

The model is importable without WeasyPrint; import :mod:`contract.document.render` (about a second, once per
process: call :func:`contract.document.render.warm_up` at start-up) only where a PDF is made.
"""

from __future__ import annotations

from contract.document.model import ContractData
from contract.document.model import ContractDataError
from contract.document.model import from_snapshot

__all__ = ["ContractData", "ContractDataError", "from_snapshot"]
