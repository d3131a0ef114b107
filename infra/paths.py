"""Where a checkout keeps its local state: generated keys, the development CA, the embedded PostgreSQL's
cluster, SeaweedFS's data (``LEASELINE_VAR_DIR``, ``./var`` by default). One definition for every service."""

from __future__ import annotations

import os
from pathlib import Path


def var_dir() -> Path:
    """``LEASELINE_VAR_DIR`` or ``./var``, absolute."""
    return Path(os.environ.get("LEASELINE_VAR_DIR", "var")).resolve()


def embedded_postgres_dir() -> Path:
    """The embedded PostgreSQL's folder (its cluster in ``data/``, its log): ``<var>/postgres``."""
    return var_dir() / "postgres"
