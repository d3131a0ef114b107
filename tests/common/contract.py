"""The contract service over real HTTP for the tests: its own database, SeaweedFS, a local TSA, real tokens."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from tests.common.risk import Tokens

AUDIENCE = "leaseline-contract"


class ContractServer:
    """The contract service on 127.0.0.1 and a free port (werkzeug, threaded), B-T signatures from ``tsa``."""

    def __init__(self, database_url: str, var_dir: Path, s3: Any, tsa: Any, **config: Any) -> None:
        from contract.app import create_app
        from tests.conftest import LiveServer

        self.key_path = var_dir / "service_signing_key.pem"
        roots = var_dir / f"tsa-roots-{uuid.uuid4().hex[:6]}.pem"
        roots.write_bytes(tsa.root_certificate.public_bytes(serialization.Encoding.PEM))
        self.app = create_app({
            "database_url": database_url, "env": "test", "signing_key_path": str(self.key_path),
            "signing_dir": str(var_dir / "signing"), "ledger_key_path": str(var_dir / "ledger_signing_key.pem"),
            "s3_endpoint_url": s3.endpoint_url, "s3_access_key": s3.access_key, "s3_secret_key": s3.secret_key,
            "bucket": f"contracts-{uuid.uuid4().hex[:8]}", "tsa_url": tsa.url, "tsa_roots": str(roots), **config})
        self.tokens = Tokens(self.key_path)
        self.components = self.app.extensions["contract"]
        self._live = LiveServer(self.app)
        self.url = self._live.url

    def headers(self, *scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.make(scopes or ('contract:write',), audience=AUDIENCE)}"}

    def __enter__(self) -> ContractServer:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(*exc)
        self.components.dispose()
